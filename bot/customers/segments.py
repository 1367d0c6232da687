"""Segments (人群): saved filters over customer profiles and tags, counted from the segment index
and listed in SQL.

A filter: {"tags_all": [..], "tags_any": [..], "tags_none": [..], "dormant_days": d,
"active_within_days": d, "channel": str, "staff": str, "status": "active"|"lost"}; every part is
optional and they combine with AND. Counts come from the Redis index over dense customer numbers
(bot/customers/segment_index.py), brought up to date with SQL before each count, so every filter
form costs a few array operations at a million profiles (bench/customers_bench.py). Pages are an
id-ordered SQL query (`where_clause`): a page reads 50 rows, not a million.
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
from bot.customers.segment_index import SegmentIndex
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


def whole_second_ms() -> int:
    """Now, at the second: the resolution of the index's last-seen times, so that a count and a
    page taken in the same second draw the dormancy line in the same place."""
    return int(time.time()) * 1000


def where_clause(f: SegmentFilter, now_ms: int | None = None):
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    parts = []
    # Wanted tags are semi-joins on the (tag, customer_id) index (one per tag: a GROUP BY …
    # HAVING count = n is estimated at one row by PostgreSQL, which then probes customers per row).
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
    def __init__(self, engine: AsyncEngine, index: SegmentIndex) -> None:
        self.engine = engine
        self.index = index

    async def count(self, f: SegmentFilter, now_ms: int | None = None) -> int:
        return await self.index.count(f, now_ms if now_ms is not None else whole_second_ms())

    async def page(self, f: SegmentFilter, limit: int = 50, cursor: str | None = None,
                   now_ms: int | None = None) -> tuple[list, str | None]:
        """Profiles rows in id order; → (rows, next cursor)."""
        now_ms = now_ms if now_ms is not None else whole_second_ms()
        stmt = sa.select(customers).where(where_clause(f, now_ms)).order_by(customers.c.id).limit(limit + 1)
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
