"""Operator analytics over the conversation record. Windows are bounded (default 30 days) and
aggregated in Python where SQL dialects differ (dates in the configured time zone)."""
from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.sql import analyses, conversations, flags, messages, relay_events, relays


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat()


class Analytics:
    def __init__(self, engine: AsyncEngine, tz: str = "Asia/Shanghai") -> None:
        self.engine = engine
        self.tz = ZoneInfo(tz)

    async def groups(self, since: datetime, until: datetime) -> list[dict]:
        """Per customer group: messages, active members, customers, relay sign-ups — side by side."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(messages.c.conversation_id, messages.c.sender_id, messages.c.role)
                                       .where(messages.c.conversation_id.like("g:%"), messages.c.action == "send",
                                              messages.c.msgtime >= _ms(since), messages.c.msgtime < _ms(until)))).all()
            signups = (await conn.execute(
                sa.select(relays.c.chat_id, relay_events.c.changes)
                .select_from(relay_events.join(relays, relays.c.id == relay_events.c.relay_id))
                .where(relay_events.c.at >= since.timestamp(), relay_events.c.at < until.timestamp()))).all()
        per: dict[str, dict] = defaultdict(lambda: {"messages": 0, "members": set(), "customers": set()})
        for conv, sender, role in rows:
            g = per[conv[2:]]
            g["messages"] += 1
            g["members"].add(sender)
            if role == "customer":
                g["customers"].add(sender)
        units: Counter = Counter()
        for chat_id, changes in signups:
            units[chat_id] += sum(c[1] for c in (changes or []) if isinstance(c, list))
        out = [{"roomid": room, "messages": g["messages"], "active_members": len(g["members"]),
                "active_customers": len(g["customers"]), "relay_units_confirmed": units.get(room, 0)}
               for room, g in per.items()]
        for room in set(units) - set(per):
            out.append({"roomid": room, "messages": 0, "active_members": 0, "active_customers": 0,
                        "relay_units_confirmed": units[room]})
        return sorted(out, key=lambda g: (-g["messages"], g["roomid"]))

    async def customers(self, since: datetime, limit: int) -> list[dict]:
        """Core users: customers by messages sent in the window, with their active days."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(messages.c.sender_id, messages.c.msgtime, messages.c.conversation_id)
                                       .where(messages.c.role == "customer", messages.c.action == "send",
                                              messages.c.msgtime >= _ms(since)))).all()
        stats: dict[str, dict] = defaultdict(lambda: {"messages": 0, "days": set(), "conversations": set(), "last": 0})
        for sender, t, conv in rows:
            s = stats[sender]
            s["messages"] += 1
            s["days"].add(datetime.fromtimestamp(t / 1000, self.tz).date())
            s["conversations"].add(conv)
            s["last"] = max(s["last"], t)
        ranked = sorted(stats.items(), key=lambda kv: (-kv[1]["messages"], -len(kv[1]["days"]), kv[0]))[:limit]
        return [{"customer_id": c, "messages": s["messages"], "active_days": len(s["days"]),
                 "conversations": len(s["conversations"]), "last_message_at": _iso(s["last"])} for c, s in ranked]

    async def dormant(self, days: int, now: datetime, limit: int, staff: str | None = None) -> list[dict]:
        """1-on-1 customers silent for `days`, or whose last message was never answered
        (`staff`: only that staff member's customers)."""
        cutoff = _ms(now - timedelta(days=days))
        q = sa.select(conversations.c.id, conversations.c.customer_id, conversations.c.staff_id,
                      conversations.c.last_message_at).where(conversations.c.kind == "private",
                                                             conversations.c.customer_id.is_not(None))
        if staff is not None:
            q = q.where(conversations.c.staff_id == staff)
        async with self.engine.connect() as conn:
            convs = (await conn.execute(q.order_by(conversations.c.last_message_at).limit(5000))).all()
            out = []
            for conv_id, customer, staff, last_at in convs:
                last_role = (await conn.execute(sa.select(messages.c.role).where(
                    messages.c.conversation_id == conv_id, messages.c.action == "send")
                    .order_by(messages.c.msgtime.desc()).limit(1))).scalar()
                silent = last_at < cutoff
                unanswered = last_role == "customer"
                if silent or unanswered:
                    out.append({"customer_id": customer, "staff_id": staff, "conversation_id": conv_id,
                                "last_message_at": _iso(last_at), "silent_days": (_ms(now) - last_at) // 86_400_000,
                                "reason": "unanswered" if unanswered else "silent"})
                if len(out) >= limit:
                    break
        return out

    async def response_times(self, since: datetime) -> list[dict]:
        """Per staff member: time from a customer's first message of a turn to the staff reply."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(messages.c.conversation_id, messages.c.sender_id, messages.c.role,
                                                 messages.c.msgtime)
                                       .where(messages.c.conversation_id.like("p:%"), messages.c.action == "send",
                                              messages.c.msgtime >= _ms(since))
                                       .order_by(messages.c.conversation_id, messages.c.msgtime))).all()
        waits: dict[str, list[float]] = defaultdict(list)
        pending_since: dict[str, int] = {}
        for conv, sender, role, t in rows:
            if role == "customer":
                pending_since.setdefault(conv, t)
            elif conv in pending_since:
                waits[sender].append((t - pending_since.pop(conv)) / 1000)
        out = []
        for staff, w in waits.items():
            w.sort()
            out.append({"staff_id": staff, "replies": len(w), "median_seconds": round(statistics.median(w), 1),
                        "p90_seconds": round(w[min(len(w) - 1, int(len(w) * 0.9))], 1)})
        return sorted(out, key=lambda r: r["median_seconds"])

    async def daily(self, days: int, now: datetime) -> list[dict]:
        """Per day: messages, customer sentiment, flags raised (the sentiment trend and flag counts)."""
        since = now - timedelta(days=days)
        async with self.engine.connect() as conn:
            msgs = (await conn.execute(sa.select(messages.c.msgtime, messages.c.role, analyses.c.sentiment)
                                       .select_from(messages.outerjoin(analyses, analyses.c.msgid == messages.c.msgid))
                                       .where(messages.c.msgtime >= _ms(since), messages.c.action == "send"))).all()
            fl = (await conn.execute(sa.select(flags.c.created_at, flags.c.severity)
                                     .where(flags.c.created_at >= since))).all()
        per: dict[str, dict] = defaultdict(lambda: {"messages": 0, "positive": 0, "neutral": 0, "negative": 0,
                                                    "flags": 0, "high_flags": 0})
        for t, role, sentiment in msgs:
            d = per[datetime.fromtimestamp(t / 1000, self.tz).date().isoformat()]
            d["messages"] += 1
            if role == "customer" and sentiment:
                d[sentiment] += 1
        for created, severity in fl:
            if created.tzinfo is None:
                created = created.replace(tzinfo=timezone.utc)
            d = per[created.astimezone(self.tz).date().isoformat()]
            d["flags"] += 1
            d["high_flags"] += severity == "high"
        return [{"date": day, **v} for day, v in sorted(per.items())]
