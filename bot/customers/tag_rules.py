"""Automatic tags: rules over what customers said and did (docs/CUSTOMERS.md).

`when` forms (one per rule):
- {"intent": <label>, "min_count": n, "days": d}       asked that n+ times in the last d days
- {"sentiment": <label>, "min_count": n, "days": d}    felt that n+ times in the last d days
- {"dormant_days": d}                                   no message of their own for d days
- {"relays_min": n, "days": d}                          signed up to n+ relays in the last d days

Rules are evaluated set-based in SQL: for the customers an analysis batch touched, and for
everyone on a schedule (dormancy changes with time alone). A newly held tag is stored once and
queued once for WeCom; when a rule with `remove_when_false` stops holding, the tag is removed and
its removal queued.
"""
from __future__ import annotations

import secrets
import time
from datetime import datetime, timezone
from typing import Literal, Sequence

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.customers.profiles import DAY_MS, CustomerStore
from nlp.models import INTENT_LABELS, SENTIMENT_LABELS
from storage.sql import customer_daily, customer_tags, customers, dialect_insert, relay_events, tag_pushes, tag_rules

TAG_PATTERN = r"^[^\s\x00-\x1f]{1,30}$"  # WeCom corp tag names are at most 30 characters


class When(BaseModel):
    model_config = ConfigDict(extra="forbid")
    intent: Literal[INTENT_LABELS] | None = None  # type: ignore[valid-type]
    sentiment: Literal[SENTIMENT_LABELS] | None = None  # type: ignore[valid-type]
    min_count: int | None = Field(default=None, ge=1, le=10_000)
    days: int | None = Field(default=None, ge=1, le=3650)
    dormant_days: int | None = Field(default=None, ge=1, le=3650)
    relays_min: int | None = Field(default=None, ge=1, le=10_000)

    @model_validator(mode="after")
    def _one_form(self):
        forms = [self.intent is not None, self.sentiment is not None, self.dormant_days is not None,
                 self.relays_min is not None]
        if sum(forms) != 1:
            raise ValueError("when needs exactly one of intent, sentiment, dormant_days, relays_min")
        windowed = self.intent is not None or self.sentiment is not None
        if windowed and (self.min_count is None or self.days is None):
            raise ValueError("intent and sentiment rules need min_count and days")
        if self.relays_min is not None and self.days is None:
            raise ValueError("relays_min needs days")
        if self.dormant_days is not None and (self.min_count is not None or self.days is not None):
            raise ValueError("dormant_days takes no min_count or days")
        return self


class TagRuleInput(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str = Field(min_length=1, max_length=100)
    tag: str = Field(pattern=TAG_PATTERN)
    when: When
    remove_when_false: bool = True
    enabled: bool = True


def rule_json(r) -> dict:
    return {"id": r["id"], "name": r["name"], "tag": r["tag"], "when": r["when"],
            "remove_when_false": r["remove_when_false"], "enabled": r["enabled"],
            "created_at": (r["created_at"] if r["created_at"].tzinfo else r["created_at"].replace(tzinfo=timezone.utc)).isoformat()}


class TagRules:
    def __init__(self, engine: AsyncEngine, profiles: CustomerStore, clock=time.time) -> None:
        self.engine = engine
        self.profiles = profiles
        self.clock = clock

    # --- CRUD -------------------------------------------------------------------------------
    async def create(self, rule: TagRuleInput) -> dict:
        rid = secrets.token_hex(8)
        async with self.engine.begin() as conn:
            await conn.execute(tag_rules.insert().values(
                id=rid, name=rule.name, tag=rule.tag, when=rule.when.model_dump(exclude_none=True),
                remove_when_false=rule.remove_when_false, enabled=rule.enabled, created_at=datetime.now(timezone.utc)))
        return await self.get(rid)  # type: ignore[return-value]

    async def get(self, rid: str) -> dict | None:
        async with self.engine.connect() as conn:
            r = (await conn.execute(sa.select(tag_rules).where(tag_rules.c.id == rid))).mappings().first()
        return rule_json(r) if r else None

    async def list(self) -> list[dict]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(tag_rules).order_by(tag_rules.c.created_at))).mappings().all()
        return [rule_json(r) for r in rows]

    async def update(self, rid: str, rule: TagRuleInput) -> dict | None:
        async with self.engine.begin() as conn:
            done = await conn.execute(tag_rules.update().where(tag_rules.c.id == rid).values(
                name=rule.name, tag=rule.tag, when=rule.when.model_dump(exclude_none=True),
                remove_when_false=rule.remove_when_false, enabled=rule.enabled))
        return await self.get(rid) if done.rowcount else None

    async def delete(self, rid: str) -> bool:
        """The rule goes; the tags it set stay (a trainer may remove them by hand)."""
        async with self.engine.begin() as conn:
            return (await conn.execute(tag_rules.delete().where(tag_rules.c.id == rid))).rowcount > 0

    # --- evaluation -------------------------------------------------------------------------
    def _holding(self, when: dict, ids: Sequence[str] | None):
        """A SELECT of the customer ids for whom `when` holds (within `ids` when given)."""
        now_ms = int(self.clock() * 1000)
        today = self.profiles.today(now_ms)
        if "dormant_days" in when:
            cutoff = now_ms - when["dormant_days"] * DAY_MS
            q = sa.select(customers.c.id).where(
                customers.c.status == "active",
                sa.func.coalesce(customers.c.last_message_at, customers.c.first_seen_at) < cutoff)
            return q.where(customers.c.id.in_(ids)) if ids is not None else q
        if "relays_min" in when:
            since = self.clock() - when["days"] * 86400
            q = (sa.select(relay_events.c.sender_id.label("id")).where(relay_events.c.kind == "join",
                                                                       relay_events.c.at >= since)
                 .group_by(relay_events.c.sender_id)
                 .having(sa.func.count(sa.distinct(relay_events.c.relay_id)) >= when["relays_min"]))
            return q.where(relay_events.c.sender_id.in_(ids)) if ids is not None else q
        kind = "intent" if "intent" in when else "sentiment"
        q = (sa.select(customer_daily.c.customer_id.label("id"))
             .where(customer_daily.c.kind == kind, customer_daily.c.label == when[kind],
                    customer_daily.c.day > today - when["days"])
             .group_by(customer_daily.c.customer_id).having(sa.func.sum(customer_daily.c.n) >= when["min_count"]))
        return q.where(customer_daily.c.customer_id.in_(ids)) if ids is not None else q

    async def evaluate(self, ids: Sequence[str] | None = None) -> dict[str, int]:
        """Apply every enabled rule (to `ids`, or to everyone); → {"added": n, "removed": m}."""
        if ids is not None and not ids:
            return {"added": 0, "removed": 0}
        added = removed = 0
        async with self.engine.connect() as conn:
            rules = (await conn.execute(sa.select(tag_rules).where(tag_rules.c.enabled.is_(True)))).mappings().all()
        chunks = [list(ids[i:i + 500]) for i in range(0, len(ids), 500)] if ids is not None else [None]
        for chunk in chunks:
            async with self.engine.begin() as conn:  # one transaction for every rule of a chunk
                for r in rules:
                    a, d = await self._apply(conn, r, chunk)
                    added, removed = added + a, removed + d
        return {"added": added, "removed": removed}

    async def _apply(self, conn: AsyncConnection, rule, ids: Sequence[str] | None) -> tuple[int, int]:
        source = f"rule:{rule['id']}"
        holding = {row[0] for row in (await conn.execute(self._holding(rule["when"], ids))).all()}
        # Only customers with a profile are tagged (relay senders may be staff or friends' stand-ins).
        if holding and "relays_min" in rule["when"]:
            holding = {row[0] for row in (await conn.execute(
                sa.select(customers.c.id).where(customers.c.id.in_(list(holding))))).all()}
        have_q = sa.select(customer_tags.c.customer_id, customer_tags.c.source).where(customer_tags.c.tag == rule["tag"])
        if ids is not None:
            have_q = have_q.where(customer_tags.c.customer_id.in_(ids))
        have = dict((await conn.execute(have_q)).all())
        new = sorted(holding - set(have))
        gone = sorted(c for c, src in have.items() if src == source and c not in holding) \
            if rule["remove_when_false"] else []
        now = datetime.now(timezone.utc)
        inserted: list[str] = []
        for i in range(0, len(new), 1000):
            # Another process evaluating the same customer may have tagged them a moment ago:
            # only the rows this statement inserted are queued for WeCom.
            stmt = dialect_insert(self.engine, customer_tags).on_conflict_do_nothing().returning(
                customer_tags.c.customer_id)
            part = (await conn.execute(stmt, [{"customer_id": c, "tag": rule["tag"], "source": source,
                                               "added_at": now} for c in new[i:i + 1000]])).scalars().all()
            inserted += part
            await self._queue(conn, part, rule["tag"], "add", now)
        for i in range(0, len(gone), 1000):
            part = gone[i:i + 1000]
            await conn.execute(customer_tags.delete().where(customer_tags.c.tag == rule["tag"],
                                                            customer_tags.c.customer_id.in_(part)))
            await self._queue(conn, part, rule["tag"], "remove", now)
        return len(inserted), len(gone)

    @staticmethod
    async def _queue(conn: AsyncConnection, ids: Sequence[str], tag: str, op: str, now: datetime) -> None:
        if ids:
            await conn.execute(tag_pushes.insert(), [{"customer_id": c, "tag": tag, "op": op, "status": "pending",
                                                      "created_at": now, "updated_at": now} for c in ids])
