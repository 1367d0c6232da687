"""The material library: items staff send (texts, images, links, mini-program cards, files), with
tags and search, WeCom media for images and files, and what followed each use.

Images and files are kept under DATA_DIR/materials and uploaded to WeCom (`media/upload`) when
first used; the temporary media_id is valid 3 days, so it is reused for 2.5 days and uploaded
again after. A use records where (sidebar, SOP post, campaign), by whom and in which
conversation; a reply is a customer message in that conversation within 24 h after the use, a
conversion a purchase-intent message or a relay sign-up of a customer of that conversation within
7 days. The ranking orders materials by conversions, then replies per use."""
from __future__ import annotations

import re
import secrets
import time
from pathlib import Path
from typing import Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.wecom_api import WeComClient
from storage.sql import analyses, material_uses, materials, messages

HOUR_MS = 3_600_000
MEDIA_REUSE_MS = 60 * HOUR_MS  # WeCom keeps temporary media 3 days; renew with half a day to spare
MAX_FILE_BYTES = 10 << 20
FILE_TYPES = {"image": ("image/png", "image/jpeg", "image/gif"), "file": None}


class MaterialInput(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    kind: Literal["text", "image", "link", "miniprogram", "file"]
    title: str = Field(min_length=1, max_length=200)
    content: str = Field(default="", max_length=4000)
    tags: list[str] = Field(default_factory=list, max_length=20)

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: list[str]) -> list[str]:
        if any(not re.match(r"^[^\s\x00-\x1f]{1,30}$", t) for t in v):
            raise ValueError("tags are 1-30 characters without spaces")
        return v


class UseInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: Literal["sidebar", "sop", "campaign"] = "sidebar"
    conversation_id: str | None = Field(default=None, max_length=300)


class MaterialError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _json(r) -> dict:
    return {"id": r["id"], "kind": r["kind"], "title": r["title"], "content": r["content"], "tags": r["tags"],
            "file_name": r["file_name"], "has_file": bool(r["file_name"]), "created_at": r["created_at"]}


class MaterialLibrary:
    def __init__(self, engine: AsyncEngine, wecom: WeComClient | None, data_dir: Path, clock=time.time) -> None:
        self.engine = engine
        self.wecom = wecom
        self.dir = data_dir / "materials"
        self.clock = clock

    def _now(self) -> int:
        return int(self.clock() * 1000)

    async def create(self, m: MaterialInput) -> dict:
        mid = secrets.token_hex(8)
        async with self.engine.begin() as conn:
            await conn.execute(materials.insert().values(id=mid, kind=m.kind, title=m.title, content=m.content,
                                                         tags=m.tags, created_at=self._now()))
        return await self.get(mid)  # type: ignore[return-value]

    async def get(self, mid: str) -> dict | None:
        async with self.engine.connect() as conn:
            r = (await conn.execute(sa.select(materials).where(materials.c.id == mid))).mappings().first()
        return {**_json(r), "stats": (await self.stats([mid]))[mid]} if r else None

    async def attach_file(self, mid: str, name: str, content_type: str, data: bytes) -> dict:
        async with self.engine.connect() as conn:
            r = (await conn.execute(sa.select(materials.c.kind).where(materials.c.id == mid))).first()
        if r is None:
            raise MaterialError(404, "not_found", "no such material")
        if r.kind not in FILE_TYPES:
            raise MaterialError(400, "invalid_request", f"a {r.kind} material has no file")
        allowed = FILE_TYPES[r.kind]
        if allowed and content_type not in allowed:
            raise MaterialError(415, "unsupported_media_type", f"an image is one of {', '.join(allowed)}")
        if not data or len(data) > MAX_FILE_BYTES:
            raise MaterialError(413, "too_large", f"a file is 1 byte to {MAX_FILE_BYTES >> 20} MiB")
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / f".{mid}.tmp"
        tmp.write_bytes(data)
        tmp.replace(self.dir / mid)
        async with self.engine.begin() as conn:
            await conn.execute(materials.update().where(materials.c.id == mid).values(
                file_name=name[:200], content_type=content_type, media_id=None, media_at=None))
        return await self.get(mid)  # type: ignore[return-value]

    async def media_id(self, mid: str) -> str | None:
        """The WeCom media_id of an image or file material, uploaded when missing or near expiry."""
        async with self.engine.connect() as conn:
            r = (await conn.execute(sa.select(materials).where(materials.c.id == mid))).mappings().first()
        if r is None or not r["file_name"] or self.wecom is None:
            return None
        now = self._now()
        if r["media_id"] and now - (r["media_at"] or 0) < MEDIA_REUSE_MS:
            return r["media_id"]
        media = await self.wecom.upload_media("image" if r["kind"] == "image" else "file", r["file_name"],
                                              r["content_type"] or "application/octet-stream",
                                              (self.dir / mid).read_bytes())
        async with self.engine.begin() as conn:
            await conn.execute(materials.update().where(materials.c.id == mid).values(media_id=media, media_at=now))
        return media

    async def use(self, mid: str, u: UseInput, by: str) -> dict:
        if await self.get(mid) is None:
            raise MaterialError(404, "not_found", "no such material")
        media = await self.media_id(mid)
        async with self.engine.begin() as conn:
            await conn.execute(material_uses.insert().values(material_id=mid, channel=u.channel, by=by[:200],
                                                             conversation_id=u.conversation_id, at=self._now()))
        return {"material_id": mid, "media_id": media, "stats": (await self.stats([mid]))[mid]}

    async def stats(self, ids: list[str]) -> dict[str, dict]:
        out = {i: {"uses": 0, "replies_24h": 0, "conversions_7d": 0} for i in ids}
        if not ids:
            return out
        u = material_uses
        replied = sa.exists().where(messages.c.conversation_id == u.c.conversation_id, messages.c.role == "customer",
                                    messages.c.msgtime > u.c.at, messages.c.msgtime <= u.c.at + 24 * HOUR_MS)
        converted = sa.exists().where(messages.c.conversation_id == u.c.conversation_id, messages.c.role == "customer",
                                      analyses.c.msgid == messages.c.msgid, analyses.c.intent == "purchase_intent",
                                      messages.c.msgtime > u.c.at, messages.c.msgtime <= u.c.at + 7 * 24 * HOUR_MS)
        stmt = (sa.select(u.c.material_id, sa.func.count(), sa.func.sum(sa.case((replied, 1), else_=0)),
                          sa.func.sum(sa.case((converted, 1), else_=0)))
                .where(u.c.material_id.in_(ids)).group_by(u.c.material_id))
        async with self.engine.connect() as conn:
            for mid, n, r, c in (await conn.execute(stmt)).all():
                out[mid] = {"uses": int(n), "replies_24h": int(r or 0), "conversions_7d": int(c or 0)}
        return out

    async def search(self, q: str | None = None, tag: str | None = None, kind: str | None = None,
                     sort: str = "recent", limit: int = 50) -> list[dict]:
        stmt = sa.select(materials)
        if q:
            like = f"%{q.replace('%', '').replace('_', '')}%"
            stmt = stmt.where(sa.or_(materials.c.title.like(like), materials.c.content.like(like)))
        if kind:
            stmt = stmt.where(materials.c.kind == kind)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt.order_by(materials.c.created_at.desc()).limit(2000))).mappings().all()
        rows = [r for r in rows if not tag or tag in (r["tags"] or [])]
        stats = await self.stats([r["id"] for r in rows])
        items = [{**_json(r), "stats": stats[r["id"]]} for r in rows]
        if sort == "best":
            items.sort(key=lambda m: (-m["stats"]["conversions_7d"],
                                      -(m["stats"]["replies_24h"] / m["stats"]["uses"] if m["stats"]["uses"] else 0),
                                      -m["stats"]["uses"]))
        return items[:limit]
