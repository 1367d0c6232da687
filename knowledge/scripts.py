"""Reply scripts (话术): validated input and the SQL store."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Literal, Sequence

import numpy as np
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.sql import script_vectors, scripts

ID_PATTERN = r"^[A-Za-z0-9_\-:.]{1,128}$"


MAX_ALTERNATIVES = 20


class ScriptInput(BaseModel):
    """One script as clients send it (API body, JSON Lines or CSV row)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
    id: str | None = Field(default=None, pattern=ID_PATTERN)
    question: str = Field(min_length=1, max_length=1000)
    reply: str = Field(min_length=1, max_length=4000)
    scenario: str = Field(default="", max_length=200)
    tags: list[str] = Field(default_factory=list, max_length=20)
    source: str = Field(default="", max_length=200)
    status: Literal["draft", "approved"] = "approved"
    # Other ways customers ask the same thing (trainer-written or approved from staff picks).
    alternatives: list[str] = Field(default_factory=list, max_length=MAX_ALTERNATIVES)

    @field_validator("alternatives", mode="before")
    @classmethod
    def _alternatives(cls, v):
        return string_list(v, "alternative", 300)

    @field_validator("tags", mode="before")
    @classmethod
    def _tags(cls, v):
        return string_list(v, "tag", 50)


def string_list(v, what: str, max_chars: int) -> list[str]:
    """A list of distinct non-empty strings; CSV gives them "|"-separated ("美妆|价格")."""
    if v is None or v == "":
        return []
    if isinstance(v, str):
        v = v.split("|")
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ValueError(f"{what}s must be a list of strings")
    out = []
    for x in v:
        x = x.strip()
        if not x or len(x) > max_chars:
            raise ValueError(f"each {what} must be 1..{max_chars} characters")
        if x not in out:
            out.append(x)
    return out


@dataclass
class Script:
    id: str
    vector_id: int
    question: str
    reply: str
    scenario: str
    tags: list[str]
    source: str
    status: str
    stats: dict = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    alternatives: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "id": self.id, "question": self.question, "reply": self.reply, "scenario": self.scenario,
            "tags": list(self.tags), "alternatives": list(self.alternatives), "source": self.source,
            "status": self.status, "stats": dict(self.stats),
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
        }

    def index_text(self) -> str:
        """What lexical search sees: every view's words and the tags."""
        return " ".join([self.question, self.scenario, *self.alternatives, self.reply, " ".join(self.tags)])

    def views(self) -> list[str]:
        return script_views(self.question, self.scenario, self.reply, self.alternatives)


def script_views(question: str, scenario: str, reply: str, alternatives: Sequence[str]) -> list[str]:
    """The texts a script is found by, each embedded on its own; a query matches a script by its
    best view. Customers phrase a need the way the question, the scenario or the reply does."""
    whole = " ".join(p for p in (question, scenario, reply) if p)
    return [question, whole, reply, *alternatives]


def vector_id_for(script_id: str) -> int:
    """A stable 63-bit id for FAISS, the same in every process."""
    return int.from_bytes(hashlib.blake2b(script_id.encode(), digest_size=8).digest(), "big") & ((1 << 63) - 1)


def new_script_id(question: str, reply: str) -> str:
    return "sc_" + hashlib.blake2b(f"{question}\0{reply}".encode(), digest_size=8).hexdigest()


def empty_stats() -> dict:
    return {"shown": 0, "adopted": 0, "rejected": 0}


def _aware(t: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    return t.replace(tzinfo=timezone.utc) if t is not None and t.tzinfo is None else t


def _row_to_script(r) -> Script:
    return Script(r["id"], int(r["vector_id"]), r["question"], r["reply"], r["scenario"], list(r["tags"] or []),
                  r["source"], r["status"], dict(r["stats"] or {}), _aware(r["created_at"]), _aware(r["updated_at"]),
                  list(r.get("alternatives") or []))


class ScriptStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def upsert_many(self, items: Sequence[ScriptInput], vectors: Sequence[np.ndarray],
                          model: str) -> tuple[list[Script], int, list[str]]:
        """Insert or update by id; `vectors[i]` is item i's stacked view embeddings. Returns the
        stored scripts (one per distinct id; the first of repeated ids wins), how many were new,
        and the id of each item in order."""
        now = datetime.now(timezone.utc)
        ids = [it.id or new_script_id(it.question, it.reply) for it in items]
        created = 0
        async with self.engine.begin() as conn:
            existing = {}
            for chunk in range(0, len(ids), 500):
                rows = (await conn.execute(sa.select(scripts.c.id, scripts.c.stats, scripts.c.created_at)
                                           .where(scripts.c.id.in_(ids[chunk:chunk + 500])))).mappings().all()
                existing.update({r["id"]: r for r in rows})
            inserts, out = [], []
            for sid, it in zip(ids, items):
                values = {"question": it.question, "reply": it.reply, "scenario": it.scenario, "tags": it.tags,
                          "source": it.source, "status": it.status, "updated_at": now,
                          "alternatives": it.alternatives}
                if sid in existing:
                    await conn.execute(scripts.update().where(scripts.c.id == sid).values(**values))
                    prev = existing[sid]
                    out.append(Script(sid, vector_id_for(sid), it.question, it.reply, it.scenario, it.tags, it.source,
                                      it.status, dict(prev["stats"] or {}), prev["created_at"], now,
                                      list(it.alternatives)))
                elif sid in {i["id"] for i in inserts}:
                    continue  # the same id twice in one batch: the first wins
                else:
                    inserts.append({"id": sid, "vector_id": vector_id_for(sid), "stats": empty_stats(),
                                    "created_at": now, **values})
                    out.append(Script(sid, vector_id_for(sid), it.question, it.reply, it.scenario, it.tags, it.source,
                                      it.status, empty_stats(), now, now, list(it.alternatives)))
            if inserts:
                await conn.execute(scripts.insert(), inserts)
                created = len(inserts)
            await conn.execute(script_vectors.delete().where(script_vectors.c.script_id.in_(ids),
                                                             script_vectors.c.model == model))
            seen: set[str] = set()
            vec_rows = []
            for sid, vec in zip(ids, vectors):
                if sid not in seen:
                    seen.add(sid)
                    vec_rows.append({"script_id": sid, "model": model, "vector": np.asarray(vec, np.float32).tobytes()})
            await conn.execute(script_vectors.insert(), vec_rows)
        return out, created, ids

    async def get(self, script_id: str) -> Script | None:
        async with self.engine.connect() as conn:
            r = (await conn.execute(sa.select(scripts).where(scripts.c.id == script_id))).mappings().first()
        return _row_to_script(r) if r else None

    async def get_many(self, ids: Sequence[str]) -> list[Script]:
        if not ids:
            return []
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(scripts).where(scripts.c.id.in_(list(ids))))).mappings().all()
        return [_row_to_script(r) for r in rows]

    async def delete(self, script_id: str) -> bool:
        async with self.engine.begin() as conn:
            res = await conn.execute(scripts.delete().where(scripts.c.id == script_id))
            await conn.execute(script_vectors.delete().where(script_vectors.c.script_id == script_id))
        return res.rowcount > 0

    async def all(self) -> list[Script]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(scripts).order_by(scripts.c.id))).mappings().all()
        return [_row_to_script(r) for r in rows]

    async def list(self, q: str | None, tag: str | None, status: str | None, cursor: str | None,
                   limit: int) -> tuple[list[Script], str | None]:
        stmt = sa.select(scripts).order_by(scripts.c.id).limit(limit + 1)
        if cursor:
            stmt = stmt.where(scripts.c.id > cursor)
        if status:
            stmt = stmt.where(scripts.c.status == status)
        if q:
            # A searched % or _ is a character, not a wildcard.
            like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            stmt = stmt.where(sa.or_(scripts.c.question.like(like, escape="\\"),
                                     scripts.c.reply.like(like, escape="\\")))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).mappings().all()
        items = [_row_to_script(r) for r in rows]
        if tag:  # JSON containment differs across databases; tags are few, filter here
            items = [s for s in items if tag in s.tags]
        nxt = items[limit - 1].id if len(rows) > limit and len(items) >= limit else None
        return items[:limit], nxt

    async def vectors(self, model: str, ids: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        stmt = sa.select(script_vectors.c.script_id, script_vectors.c.vector).where(script_vectors.c.model == model)
        if ids is not None:
            stmt = stmt.where(script_vectors.c.script_id.in_(list(ids)))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return {sid: np.frombuffer(vec, dtype=np.float32) for sid, vec in rows}

    async def record_feedback(self, script_id: str, adopted: bool) -> dict | None:
        async with self.engine.begin() as conn:
            r = (await conn.execute(sa.select(scripts.c.stats).where(scripts.c.id == script_id))).first()
            if r is None:
                return None
            stats = {**empty_stats(), **dict(r[0] or {})}
            stats["adopted" if adopted else "rejected"] += 1
            await conn.execute(scripts.update().where(scripts.c.id == script_id).values(stats=stats))
        return stats

    async def merge_stats(self, script_id: str, extra: dict) -> None:
        async with self.engine.begin() as conn:
            r = (await conn.execute(sa.select(scripts.c.stats).where(scripts.c.id == script_id))).first()
            if r is not None:
                await conn.execute(scripts.update().where(scripts.c.id == script_id)
                                   .values(stats={**empty_stats(), **dict(r[0] or {}), **extra}))

    async def count_shown(self, ids: Sequence[str]) -> None:
        """Suggestions shown, for the adoption rate (one statement per id; ids are ≤ 20)."""
        if not ids:
            return
        async with self.engine.begin() as conn:
            rows = (await conn.execute(sa.select(scripts.c.id, scripts.c.stats).where(scripts.c.id.in_(list(ids))))).all()
            for sid, stats in rows:
                s = {**empty_stats(), **dict(stats or {})}
                s["shown"] += 1
                await conn.execute(scripts.update().where(scripts.c.id == sid).values(stats=s))
