"""Customer profiles (external contacts), kept current from what comes in: analysed archive
messages (who spoke, when, what they asked, how they felt), external-contact events (who follows
them, from which channel, when they left) and names from WeCom.

Counts are kept per customer and day (`customer_daily`), so any window of days is one indexed sum.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable, Mapping, Sequence
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.sql import (analyses, customer_daily, customer_staff, customer_tags, customers, dialect_insert, messages,
                         relay_events)

DAY_MS = 86_400_000


def is_customer_id(user_id: str) -> bool:
    return user_id[:2] in ("wo", "wm")


def day_number(ms: int, tz: ZoneInfo) -> int:
    """Days since 1970-01-01 in the brand's time zone."""
    d = datetime.fromtimestamp(ms / 1000, tz).date()
    return d.toordinal() - 719163


def staff_of(conversation_id: str, customer: str) -> str | None:
    """The staff member of a private conversation ("p:<a>|<b>")."""
    if not conversation_id.startswith("p:"):
        return None
    other = [p for p in conversation_id[2:].split("|") if p != customer]
    return other[0] if other and not is_customer_id(other[0]) else None


@dataclass(frozen=True)
class ContactChange:
    """An external-contact event, as the domain sees it."""
    kind: str              # add_external_contact | edit_external_contact | del_external_contact | del_follow_user
    staff_id: str
    customer_id: str
    state: str | None
    at_ms: int


class CustomerStore:
    def __init__(self, engine: AsyncEngine, tz: str = "Asia/Shanghai") -> None:
        self.engine = engine
        self.tz = ZoneInfo(tz)

    def today(self, now_ms: int | None = None) -> int:
        return day_number(now_ms if now_ms is not None else int(datetime.now(timezone.utc).timestamp() * 1000), self.tz)

    # --- writing --------------------------------------------------------------------------------
    async def observe(self, msgs: Sequence[Mapping]) -> set[str]:
        """Analysed (and stored) customer messages update their senders' profiles; → the customers
        touched. The day counts of each (customer, day) touched are recounted from the stored
        analyses, not incremented, so running this twice for a batch changes nothing."""
        now = datetime.now(timezone.utc)
        last: dict[str, int] = {}
        follows: dict[tuple[str, str], int] = {}
        days: dict[str, set[int]] = defaultdict(set)
        for m in msgs:
            cid = m["sender_id"]
            if m["role"] != "customer" or not is_customer_id(cid):
                continue
            last[cid] = max(last.get(cid, 0), m["msgtime"])
            staff = staff_of(m["conversation_id"], cid)
            if staff:
                follows.setdefault((cid, staff), m["msgtime"])
            days[cid].add(day_number(m["msgtime"], self.tz))
        if not last:
            return set()
        counts = await self._recount(days)
        async with self.engine.begin() as conn:
            ins = dialect_insert(self.engine, customers)
            await conn.execute(ins.on_conflict_do_update(index_elements=["id"], set_={
                "last_message_at": sa.case((sa.func.coalesce(customers.c.last_message_at, 0) < ins.excluded.last_message_at,
                                            ins.excluded.last_message_at), else_=customers.c.last_message_at),
                "updated_at": ins.excluded.updated_at}),
                [{"id": c, "first_seen_at": t, "last_message_at": t, "updated_at": now, "status": "active"}
                 for c, t in sorted(last.items())])
            if follows:
                await conn.execute(dialect_insert(self.engine, customer_staff).on_conflict_do_nothing(),
                                   [{"customer_id": c, "staff_id": s, "added_at": t} for (c, s), t in sorted(follows.items())])
            if counts:
                ins = dialect_insert(self.engine, customer_daily)
                await conn.execute(ins.on_conflict_do_update(
                    index_elements=["customer_id", "day", "kind", "label"], set_={"n": ins.excluded.n}),
                    [{"customer_id": c, "day": d, "kind": k, "label": lab, "n": n}
                     for (c, d, k, lab), n in sorted(counts.items())])
        return set(last)

    async def _recount(self, days: Mapping[str, set[int]]) -> dict[tuple[str, int, str, str], int]:
        lo = min(min(d) for d in days.values()) - 1
        hi = max(max(d) for d in days.values()) + 1
        start_ms, end_ms = (lo - 1) * DAY_MS, (hi + 2) * DAY_MS  # a margin for the time zone
        counts: dict[tuple[str, int, str, str], int] = defaultdict(int)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(
                sa.select(messages.c.sender_id, messages.c.msgtime, analyses.c.intent, analyses.c.sentiment)
                .select_from(messages.join(analyses, analyses.c.msgid == messages.c.msgid))
                .where(messages.c.sender_id.in_(list(days)), messages.c.msgtime >= start_ms,
                       messages.c.msgtime < end_ms, messages.c.recalled.is_(False)))).all()
        for cid, t, intent, sentiment in rows:
            day = day_number(t, self.tz)
            if day in days[cid]:
                counts[(cid, day, "intent", intent)] += 1
                counts[(cid, day, "sentiment", sentiment)] += 1
        return counts

    async def contact_changed(self, ch: ContactChange) -> None:
        now = datetime.now(timezone.utc)
        async with self.engine.begin() as conn:
            ins = dialect_insert(self.engine, customers)
            if ch.kind in ("add_external_contact", "edit_external_contact"):
                await conn.execute(ins.on_conflict_do_update(index_elements=["id"], set_={
                    "status": "active", "updated_at": now,
                    "channel": sa.func.coalesce(customers.c.channel, ins.excluded.channel)}),
                    [{"id": ch.customer_id, "first_seen_at": ch.at_ms, "status": "active", "updated_at": now,
                      "channel": ch.state or None}])
                sins = dialect_insert(self.engine, customer_staff)
                await conn.execute(sins.on_conflict_do_update(
                    index_elements=["customer_id", "staff_id"],
                    set_={"deleted_at": None, "state": sa.func.coalesce(sins.excluded.state, customer_staff.c.state)}),
                    [{"customer_id": ch.customer_id, "staff_id": ch.staff_id, "added_at": ch.at_ms, "state": ch.state}])
            elif ch.kind == "del_follow_user":
                # The customer deleted the staff member: a loss for that staff member and channel.
                await conn.execute(customer_staff.update().where(
                    customer_staff.c.customer_id == ch.customer_id, customer_staff.c.staff_id == ch.staff_id)
                    .values(deleted_at=ch.at_ms))
                left = (await conn.execute(sa.select(sa.func.count()).select_from(customer_staff).where(
                    customer_staff.c.customer_id == ch.customer_id, customer_staff.c.deleted_at.is_(None)))).scalar_one()
                if not left:
                    await conn.execute(customers.update().where(customers.c.id == ch.customer_id)
                                       .values(status="lost", updated_at=now))
            elif ch.kind == "del_external_contact":
                # The staff member removed the customer.
                await conn.execute(customer_staff.delete().where(
                    customer_staff.c.customer_id == ch.customer_id, customer_staff.c.staff_id == ch.staff_id))

    async def set_name(self, customer_id: str, name: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(customers.update().where(customers.c.id == customer_id)
                               .values(name=name[:200], updated_at=datetime.now(timezone.utc)))

    # --- reading --------------------------------------------------------------------------------
    async def intents(self, ids: Iterable[str], days: int = 30, now_ms: int | None = None) -> dict[str, dict[str, int]]:
        ids = list(ids)
        if not ids:
            return {}
        since = self.today(now_ms) - days + 1
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(customer_daily.c.customer_id, customer_daily.c.label,
                                                 sa.func.sum(customer_daily.c.n))
                                       .where(customer_daily.c.customer_id.in_(ids), customer_daily.c.kind == "intent",
                                              customer_daily.c.day >= since)
                                       .group_by(customer_daily.c.customer_id, customer_daily.c.label))).all()
        out: dict[str, dict[str, int]] = {i: {} for i in ids}
        for cid, label, n in rows:
            out[cid][label] = int(n)
        return out

    async def _lists(self, value, ids: Iterable[str], *where, order) -> dict[str, list[str]]:
        """{customer id: [value, ...]} for `ids`, from a table keyed by customer_id."""
        ids = list(ids)
        out: dict[str, list[str]] = {i: [] for i in ids}
        if ids:
            table = value.table
            async with self.engine.connect() as conn:
                for cid, v in (await conn.execute(sa.select(table.c.customer_id, value).where(
                        table.c.customer_id.in_(ids), *where).order_by(order))).all():
                    out[cid].append(v)
        return out

    async def tags(self, ids: Iterable[str]) -> dict[str, list[str]]:
        return await self._lists(customer_tags.c.tag, ids, order=customer_tags.c.tag)

    async def staff(self, ids: Iterable[str]) -> dict[str, list[str]]:
        """Who follows each customer now, earliest first."""
        return await self._lists(customer_staff.c.staff_id, ids, customer_staff.c.deleted_at.is_(None),
                                 order=customer_staff.c.added_at)

    async def profiles(self, rows: Sequence[Mapping]) -> list[dict]:
        ids = [r["id"] for r in rows]
        tags, intents, staff = await self.tags(ids), await self.intents(ids), await self.staff(ids)
        return [{"id": r["id"], "name": r["name"], "status": r["status"], "channel": r["channel"],
                 "staff": staff[r["id"]], "tags": tags[r["id"]], "intents": intents[r["id"]],
                 "first_seen_at": r["first_seen_at"], "last_message_at": r["last_message_at"]} for r in rows]

    async def get(self, customer_id: str, timeline: int = 50) -> dict | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(customers).where(customers.c.id == customer_id))).mappings().first()
            if row is None:
                return None
            msgs = (await conn.execute(
                sa.select(messages.c.msgid, messages.c.conversation_id, messages.c.msgtime, messages.c.text,
                          analyses.c.intent, analyses.c.sentiment)
                .select_from(messages.outerjoin(analyses, analyses.c.msgid == messages.c.msgid))
                .where(messages.c.sender_id == customer_id).order_by(messages.c.msgtime.desc()).limit(timeline))).all()
            relays = (await conn.execute(sa.select(relay_events.c.relay_id, relay_events.c.kind, relay_events.c.at,
                                                   relay_events.c.changes)
                                         .where(relay_events.c.sender_id == customer_id)
                                         .order_by(relay_events.c.seq.desc()).limit(timeline))).all()
            tag_rows = (await conn.execute(sa.select(customer_tags.c.tag, customer_tags.c.source, customer_tags.c.added_at)
                                           .where(customer_tags.c.customer_id == customer_id))).all()
        [profile] = await self.profiles([row])
        sentiment = await self.sentiment_trend(customer_id)
        events = [{"kind": "message", "at": m.msgtime, "msgid": m.msgid, "conversation_id": m.conversation_id,
                   "text": m.text, "intent": m.intent, "sentiment": m.sentiment} for m in msgs]
        events += [{"kind": f"relay_{r.kind}", "at": int(r.at * 1000) if isinstance(r.at, float) else r.at,
                    "relay_id": r.relay_id} for r in relays]
        events += [{"kind": "tag", "at": int(t.added_at.replace(tzinfo=t.added_at.tzinfo or timezone.utc).timestamp() * 1000),
                    "tag": t.tag, "source": t.source} for t in tag_rows]
        events.sort(key=lambda e: -(e["at"] or 0))
        return {**profile, "sentiment_by_week": sentiment, "timeline": events[:timeline]}

    async def sentiment_trend(self, customer_id: str, weeks: int = 8) -> list[dict]:
        since = self.today() - weeks * 7 + 1
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(customer_daily.c.day, customer_daily.c.label, customer_daily.c.n)
                                       .where(customer_daily.c.customer_id == customer_id,
                                              customer_daily.c.kind == "sentiment", customer_daily.c.day >= since))).all()
        by_week: dict[int, dict[str, int]] = defaultdict(lambda: {"positive": 0, "neutral": 0, "negative": 0})
        for day, label, n in rows:
            by_week[(day - since) // 7][label] = by_week[(day - since) // 7].get(label, 0) + n
        return [{"week": w, **by_week[w]} for w in sorted(by_week)]
