"""Segments (人群): saved filters over customer profiles and tags, counted and listed in SQL.

A filter: {"tags_all": [..], "tags_any": [..], "tags_none": [..], "dormant_days": d,
"active_within_days": d, "channel": str, "staff": str, "status": "active"|"lost"}; every part is
optional and they combine with AND. Tag parts are EXISTS over the (tag, customer_id) index, so a
count over a million profiles stays one index-driven query (bench/customers_bench.py).
"""
from __future__ import annotations

import base64
import re
import secrets
import time
from datetime import datetime, timezone
from typing import Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.customers.profiles import DAY_MS
from bot.customers.tag_rules import TAG_PATTERN
from storage.sql import customer_staff, customer_tags, customers, segments

class SegmentFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tags_all: list[str] = Field(default_factory=list, max_length=20)
    tags_any: list[str] = Field(default_factory=list, max_length=20)
    tags_none: list[str] = Field(default_factory=list, max_length=20)
    dormant_days: int | None = Field(default=None, ge=1, le=3650)
    active_within_days: int | None = Field(default=None, ge=1, le=3650)
    channel: str | None = Field(default=None, max_length=64)
    staff: str | None = Field(default=None, max_length=128)
    status: Literal["active", "lost"] | None = None

    @field_validator("tags_all", "tags_any", "tags_none")
    @classmethod
    def _tags(cls, v: list[str]) -> list[str]:
        for t in v:
            if not isinstance(t, str) or not re.match(TAG_PATTERN, t):
                raise ValueError(f"invalid tag {t!r}")
        return v


class SegmentInput(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str = Field(min_length=1, max_length=100)
    filter: SegmentFilter


def _has_tag(tag: str):
    return sa.exists().where(customer_tags.c.customer_id == customers.c.id, customer_tags.c.tag == tag)


def where_clause(f: SegmentFilter, now_ms: int | None = None):
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    parts = []
    # Wanted tags are semi-joins on the (tag, customer_id) index.
    # (One semi-join per tag: a GROUP BY ... HAVING count = n over the tags is estimated at one row
    # by PostgreSQL's planner, which then probes customers once per tagged row — 3 s at 1M.)
    for tag in sorted(set(f.tags_all)):
        parts.append(customers.c.id.in_(sa.select(customer_tags.c.customer_id).where(customer_tags.c.tag == tag)))
    if f.tags_any:
        parts.append(customers.c.id.in_(sa.select(customer_tags.c.customer_id)
                                        .where(customer_tags.c.tag.in_(sorted(set(f.tags_any))))))
    parts += [~_has_tag(t) for t in f.tags_none]
    seen = sa.func.coalesce(customers.c.last_message_at, customers.c.first_seen_at)
    if f.dormant_days is not None:
        parts.append(seen < now_ms - f.dormant_days * DAY_MS)
    if f.active_within_days is not None:
        parts.append(seen >= now_ms - f.active_within_days * DAY_MS)
    if f.channel is not None:
        parts.append(customers.c.channel == f.channel)
    if f.status is not None:
        parts.append(customers.c.status == f.status)
    if f.staff is not None:
        parts.append(sa.exists().where(customer_staff.c.customer_id == customers.c.id,
                                       customer_staff.c.staff_id == f.staff, customer_staff.c.deleted_at.is_(None)))
    return sa.and_(sa.true(), *parts)


def count_statement(f: SegmentFilter):
    """A filter of tags only is counted on `customer_tags` alone, driven by one wanted tag's index
    range with index probes for the others: no pass over the customers table (at a million
    profiles the hash join with it is the cost; docs/BENCHMARKS.md). Anything else joins customers."""
    other = f.model_dump(exclude={"tags_all", "tags_any", "tags_none"}, exclude_none=True)
    if other or not (f.tags_all or f.tags_any):
        return sa.select(sa.func.count()).select_from(customers).where(where_clause(f))
    a = customer_tags.alias("a")

    def has(*tags: str):
        b = customer_tags.alias()
        return sa.exists().where(b.c.customer_id == a.c.customer_id, b.c.tag.in_(tags))

    nones = [~has(t) for t in sorted(set(f.tags_none))]
    if f.tags_all:
        first, *rest = sorted(set(f.tags_all))
        anys = [has(*sorted(set(f.tags_any)))] if f.tags_any else []
        return sa.select(sa.func.count()).select_from(a).where(
            a.c.tag == first, *(has(t) for t in rest), *anys, *nones)
    return sa.select(sa.func.count(sa.distinct(a.c.customer_id))).select_from(a).where(
        a.c.tag.in_(sorted(set(f.tags_any))), *nones)


def encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode("utf-8")).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        out = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise ValueError("invalid cursor") from None
    if not out or len(out) > 128:
        raise ValueError("invalid cursor")
    return out


class Segments:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def count(self, f: SegmentFilter) -> int:
        async with self.engine.connect() as conn:
            return int((await conn.execute(count_statement(f))).scalar_one())

    async def page(self, f: SegmentFilter, limit: int = 50, cursor: str | None = None) -> tuple[list, str | None]:
        """Profiles rows in id order; → (rows, next cursor)."""
        stmt = sa.select(customers).where(where_clause(f)).order_by(customers.c.id).limit(limit + 1)
        if cursor:
            stmt = stmt.where(customers.c.id > decode_cursor(cursor))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).mappings().all()
        nxt = encode_cursor(rows[limit - 1]["id"]) if len(rows) > limit else None
        return list(rows[:limit]), nxt

    async def create(self, seg: SegmentInput, by: str) -> dict:
        sid = secrets.token_hex(8)
        async with self.engine.begin() as conn:
            await conn.execute(segments.insert().values(id=sid, name=seg.name, filter=seg.filter.model_dump(exclude_defaults=True),
                                                        created_by=by[:200], created_at=datetime.now(timezone.utc)))
        return {"id": sid, "name": seg.name, "filter": seg.filter.model_dump(exclude_defaults=True),
                "count": await self.count(seg.filter)}

    async def get(self, sid: str) -> dict | None:
        async with self.engine.connect() as conn:
            r = (await conn.execute(sa.select(segments).where(segments.c.id == sid))).mappings().first()
        return {"id": r["id"], "name": r["name"], "filter": r["filter"]} if r else None

    async def list(self) -> list[dict]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(segments).order_by(segments.c.created_at))).mappings().all()
        return [{"id": r["id"], "name": r["name"], "filter": r["filter"]} for r in rows]
