"""The durable conversation record: conversations, messages, analyses, flags (SQL)."""
from __future__ import annotations

import asyncio
import base64
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import safe_json
from bot.conversations.records import ArchiveRecord
from bot.foreground import Foreground
from storage.sql import (analyses, conversation_members, conversations, dialect_insert, flag_reviews, flags,
                              insert_ignore, messages)

SEVERITY_RANK = {"high": 3, "medium": 2, "low": 1}




def encode_cursor(*parts) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode()


INT64 = (-(1 << 63), (1 << 63) - 1)


def decode_cursor(cursor: str, *shape: type) -> list:
    """A cursor this store made: a base64 JSON list of exactly `shape` (int = a 64-bit integer,
    str = a string ≤ 300 chars, datetime = an ISO-8601 time with an offset). Anything else —
    forged, truncated, from another list — raises ValueError("invalid cursor")."""
    try:
        value = safe_json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")), max_depth=1)
    except (ValueError, UnicodeEncodeError):  # binascii.Error and JsonInputError are ValueErrors
        raise ValueError("invalid cursor") from None
    if not isinstance(value, list) or len(value) != len(shape):
        raise ValueError("invalid cursor")
    out = []
    for v, kind in zip(value, shape):
        if kind is int and isinstance(v, int) and not isinstance(v, bool) and INT64[0] <= v <= INT64[1]:
            out.append(v)
        elif kind is str and isinstance(v, str) and len(v) <= 300:
            out.append(v)
        elif kind is datetime and isinstance(v, str) and len(v) <= 40:
            out.append(_cursor_time(v))
        else:
            raise ValueError("invalid cursor")
    return out


def _cursor_time(raw: str) -> datetime:
    try:
        value = datetime.fromisoformat(raw)
        if value.tzinfo is None:
            raise ValueError
        return value.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        raise ValueError("invalid cursor") from None


@dataclass(frozen=True)
class NewFlag:
    conversation_id: str
    msgid: str | None
    staff_id: str | None
    reason: str
    severity: str
    detail: str = ""


def _in_scope(column, member: str | None):
    """A WHERE clause limiting `column` (a conversation id) to `member`'s conversations, or None."""
    if member is None:
        return None
    return column.in_(sa.select(conversation_members.c.conversation_id)
                      .where(conversation_members.c.member_id == member))


class ConversationStore:
    def __init__(self, engine: AsyncEngine, foreground: Foreground | None = None) -> None:
        self.engine = engine
        self.foreground = foreground or Foreground()
        # One ingestion at a time per process. A bulk import then takes at most one batch's share
        # of the event loop, however many clients push batches, and the rest stays for interactive
        # requests such as relay sign-ups (issue 11, finding 7); on SQLite concurrent ingestions
        # only took turns on the write lock anyway, polling in its busy handler.
        self._ingest_gate = asyncio.Semaphore(1)

    async def backfill_members(self) -> int:
        """Fill `conversation_members` from conversations stored before it existed (once: only
        while it is empty). Returns the number of conversations filled in."""
        async with self.engine.begin() as conn:
            if (await conn.execute(sa.select(conversation_members.c.member_id).limit(1))).first() is not None:
                return 0
            rows = (await conn.execute(sa.select(conversations.c.id, conversations.c.participants))).all()
            members = [{"conversation_id": cid, "member_id": p["id"]} for cid, people in rows
                       for p in (people or []) if isinstance(p, dict) and p.get("id")]
            for start in range(0, len(members), 1000):
                await conn.execute(insert_ignore(self.engine, conversation_members), members[start:start + 1000])
        return len(rows)

    # --- ingestion ------------------------------------------------------------------------------
    async def ingest(self, records: Sequence[ArchiveRecord], source: str = "archive") -> tuple[list[str], int]:
        """Store new records (idempotent by msgid). Returns (msgids newly stored, duplicates).
        A transaction the database aborts (deadlock, serialization) is retried as a whole."""
        from sqlalchemy.exc import DBAPIError

        for attempt in range(4):
            try:
                async with self._ingest_gate, self.foreground.bulk():
                    return await self._ingest(records, source)
            except DBAPIError as exc:
                if attempt == 3 or "deadlock" not in str(exc).lower() and "could not serialize" not in str(exc).lower():
                    raise
        raise AssertionError("unreachable")

    async def _ingest(self, records: Sequence[ArchiveRecord], source: str) -> tuple[list[str], int]:
        if not records:
            return [], 0
        unique: dict[str, ArchiveRecord] = {}
        for r in records:
            unique.setdefault(r.msgid, r)
        ids = list(unique)
        async with self.engine.begin() as conn:
            have = set((await conn.execute(sa.select(messages.c.msgid).where(messages.c.msgid.in_(ids)))).scalars())
            new = [unique[i] for i in ids if i not in have]
            if not new:
                return [], len(records)
            rows = []
            for r in new:
                conv_id, *_ = r.conversation
                rows.append({"msgid": r.msgid, "seq": r.seq, "conversation_id": conv_id, "sender_id": r.sender,
                             "role": r.role, "action": r.action, "msgtime": r.msgtime, "msgtype": r.msgtype,
                             "text": r.text, "raw": dict(r.raw), "recalled": False, "recalls_msgid": r.recalls,
                             "analyzed": False, "source": source})
            result = await conn.execute(insert_ignore(self.engine, messages).returning(messages.c.msgid), rows)
            stored = set(result.scalars())
            new = [r for r in new if r.msgid in stored]
            await self._touch_conversations(conn, new)
            # Recalls in either order: a recall marks its original; an original whose recall
            # arrived first is marked as it lands.
            recalled = [r.recalls for r in new if r.recalls]
            if recalled:
                await conn.execute(messages.update().where(messages.c.msgid.in_(recalled)).values(recalled=True))
            originals = [r.msgid for r in new if not r.recalls]
            if originals:
                pre = set((await conn.execute(sa.select(messages.c.recalls_msgid)
                                              .where(messages.c.recalls_msgid.in_(originals)))).scalars())
                if pre:
                    await conn.execute(messages.update().where(messages.c.msgid.in_(list(pre))).values(recalled=True))
        return [r.msgid for r in new], len(records) - len(new)

    async def _touch_conversations(self, conn, new: Sequence[ArchiveRecord]) -> None:
        by_conv: dict[str, list[ArchiveRecord]] = {}
        for r in new:
            if r.action == "switch":
                continue
            by_conv.setdefault(r.conversation[0], []).append(r)
        # One multi-row upsert with rows in id order: concurrent ingests lock conversation rows in
        # the same order and cannot deadlock, and concurrent first messages add up.
        rows, people_by_conv = [], {}
        for conv_id in sorted(by_conv):
            recs = by_conv[conv_id]
            _cid, kind, staff, customer, _people = recs[0].conversation
            people: dict[str, dict] = {}
            for r in recs:
                for p in r.conversation[4]:
                    people.setdefault(p["id"], p)
            people_by_conv[conv_id] = people
            rows.append({"id": conv_id, "kind": kind, "roomid": recs[0].roomid or None, "staff_id": staff,
                         "customer_id": customer, "participants": list(people.values()),
                         "last_message_at": max(r.msgtime for r in recs), "message_count": len(recs), "flag_count": 0})
        stmt = dialect_insert(self.engine, conversations)
        stmt = stmt.on_conflict_do_update(index_elements=[conversations.c.id], set_={
            "message_count": conversations.c.message_count + stmt.excluded.message_count,
            "last_message_at": sa.case((conversations.c.last_message_at < stmt.excluded.last_message_at,
                                        stmt.excluded.last_message_at), else_=conversations.c.last_message_at),
        }).returning(conversations.c.id, conversations.c.participants, sort_by_parameter_order=True)
        returned = (await conn.execute(stmt, rows)).all()
        members = [{"conversation_id": conv_id, "member_id": pid}
                   for conv_id, people in people_by_conv.items() for pid in sorted(people)]
        if members:
            await conn.execute(insert_ignore(self.engine, conversation_members), members)
        for conv_id, participants in returned:
            known = {p["id"]: p for p in (participants or [])}
            people = people_by_conv[conv_id]
            if any(pid not in known for pid in people):  # a group with new members
                known.update({pid: p for pid, p in people.items() if pid not in known})
                await conn.execute(conversations.update().where(conversations.c.id == conv_id)
                                   .values(participants=list(known.values())))

    # --- analysis -------------------------------------------------------------------------------
    async def pending(self, msgids: Sequence[str]) -> list[dict]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(messages).where(messages.c.msgid.in_(list(msgids)),
                                                                 messages.c.analyzed.is_(False)))).mappings().all()
        return [dict(r) for r in rows]

    async def unanalyzed_older_than(self, msgtime_ms: int, limit: int = 1000) -> list[str]:
        async with self.engine.connect() as conn:
            return list((await conn.execute(sa.select(messages.c.msgid).where(
                messages.c.analyzed.is_(False), messages.c.msgtime < msgtime_ms).limit(limit))).scalars())

    async def save_analyses(self, results: dict[str, dict | None]) -> None:
        """Store analyses (once per msgid, whatever the retries) and mark the messages analysed."""
        now = datetime.now(timezone.utc)
        rows = [{"msgid": m, "intent": a["intent"]["label"], "intent_score": a["intent"]["score"],
                 "sentiment": a["sentiment"]["label"], "sentiment_score": a["sentiment"]["score"],
                 "sensitive": a["sensitive"], "flagged": a["flagged"], "analyzed_at": now,
                 "models": a.get("models") or None}
                for m, a in results.items() if a is not None]
        async with self.engine.begin() as conn:
            if rows:
                await conn.execute(insert_ignore(self.engine, analyses), rows)
            await conn.execute(messages.update().where(messages.c.msgid.in_(list(results))).values(analyzed=True))

    # --- flags ------------------------------------------------------------------------------------
    async def add_flags(self, new: Sequence[NewFlag]) -> list[str]:
        """Insert flags (unique per message and reason) and count them on their conversations."""
        if not new:
            return []
        now = datetime.now(timezone.utc)
        rows = [{"id": uuid.uuid4().hex, "conversation_id": f.conversation_id, "msgid": f.msgid, "staff_id": f.staff_id,
                 "reason": f.reason, "severity": f.severity, "severity_rank": SEVERITY_RANK[f.severity],
                 "status": "open", "detail": f.detail[:2000], "created_at": now} for f in new]
        async with self.engine.begin() as conn:
            result = await conn.execute(insert_ignore(self.engine, flags).returning(flags.c.id, flags.c.conversation_id), rows)
            inserted = result.all()
            per_conv: dict[str, int] = {}
            for _fid, conv in inserted:
                per_conv[conv] = per_conv.get(conv, 0) + 1
            for conv, n in per_conv.items():
                await conn.execute(conversations.update().where(conversations.c.id == conv)
                                   .values(flag_count=conversations.c.flag_count + n))
        return [fid for fid, _c in inserted]

    async def list_flags(self, status: str | None, reason: str | None, severity: str | None,
                         conversation_id: str | None, staff: str | None, since: datetime | None,
                         until: datetime | None, cursor: str | None, limit: int,
                         member: str | None = None) -> tuple[list[dict], str | None]:
        q = sa.select(flags).order_by(flags.c.severity_rank.desc(), flags.c.created_at.desc(), flags.c.id.desc())
        if (scope := _in_scope(flags.c.conversation_id, member)) is not None:
            q = q.where(scope)
        for col, value in ((flags.c.status, status), (flags.c.reason, reason), (flags.c.severity, severity),
                           (flags.c.conversation_id, conversation_id), (flags.c.staff_id, staff)):
            if value:
                q = q.where(col == value)
        if since:
            q = q.where(flags.c.created_at >= since)
        if until:
            q = q.where(flags.c.created_at < until)
        if cursor:
            rank, created_dt, fid = decode_cursor(cursor, int, datetime, str)
            q = q.where(sa.or_(
                flags.c.severity_rank < rank,
                sa.and_(flags.c.severity_rank == rank, flags.c.created_at < created_dt),
                sa.and_(flags.c.severity_rank == rank, flags.c.created_at == created_dt, flags.c.id < fid)))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q.limit(limit + 1))).mappings().all()
        items = [flag_json(r) for r in rows[:limit]]
        nxt = None
        if len(rows) > limit:
            last = rows[limit - 1]
            nxt = encode_cursor(last["severity_rank"], _aware(last["created_at"]).isoformat(), last["id"])
        return items, nxt

    async def get_flag(self, flag_id: str) -> dict | None:
        async with self.engine.connect() as conn:
            r = (await conn.execute(sa.select(flags).where(flags.c.id == flag_id))).mappings().first()
        return flag_json(r) if r else None

    async def review_flag(self, flag_id: str, verdict: str, note: str, reviewer: str) -> dict | None:
        now = datetime.now(timezone.utc)
        async with self.engine.begin() as conn:
            res = await conn.execute(flags.update().where(flags.c.id == flag_id).values(
                status=verdict, note=note, reviewed_by=reviewer, reviewed_at=now))
            if not res.rowcount:
                return None
            await conn.execute(flag_reviews.insert().values(flag_id=flag_id, verdict=verdict, note=note,
                                                            reviewer=reviewer, at=now))
        return await self.get_flag(flag_id)

    async def flag_history(self, flag_id: str) -> list[dict]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(flag_reviews).where(flag_reviews.c.flag_id == flag_id)
                                       .order_by(flag_reviews.c.id))).mappings().all()
        return [{"verdict": r["verdict"], "note": r["note"], "reviewer": r["reviewer"],
                 "at": _aware(r["at"]).isoformat()} for r in rows]

    # --- reading ----------------------------------------------------------------------------------
    async def list_conversations(self, kind: str | None, staff: str | None, flagged: bool | None,
                                 cursor: str | None, limit: int, member: str | None = None) -> tuple[list[dict], str | None]:
        """`member`: only conversations this person takes part in (a staff member's scope)."""
        q = sa.select(conversations).order_by(conversations.c.last_message_at.desc(), conversations.c.id.desc())
        if (scope := _in_scope(conversations.c.id, member)) is not None:
            q = q.where(scope)
        if kind:
            q = q.where(conversations.c.kind == kind)
        if staff:
            q = q.where(conversations.c.staff_id == staff)
        if flagged:
            q = q.where(conversations.c.flag_count > 0)
        if cursor:
            last_at, cid = decode_cursor(cursor, int, str)
            q = q.where(sa.or_(conversations.c.last_message_at < last_at,
                               sa.and_(conversations.c.last_message_at == last_at, conversations.c.id < cid)))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q.limit(limit + 1))).mappings().all()
        items = [conversation_json(r) for r in rows[:limit]]
        nxt = encode_cursor(rows[limit - 1]["last_message_at"], rows[limit - 1]["id"]) if len(rows) > limit else None
        return items, nxt

    async def get_conversation(self, conv_id: str, member: str | None = None) -> dict | None:
        """The conversation, or None when it does not exist or `member` does not take part in it."""
        q = sa.select(conversations).where(conversations.c.id == conv_id)
        if (scope := _in_scope(conversations.c.id, member)) is not None:
            q = q.where(scope)
        async with self.engine.connect() as conn:
            r = (await conn.execute(q)).mappings().first()
        return conversation_json(r) if r else None

    async def list_messages(self, conv_id: str, cursor: str | None, limit: int,
                            around: str | None = None) -> tuple[list[dict], str | None]:
        """Oldest first. `around=msgid` returns a window of context centred on that message."""
        base = sa.select(messages, analyses).select_from(
            messages.outerjoin(analyses, analyses.c.msgid == messages.c.msgid)).where(messages.c.conversation_id == conv_id)
        async with self.engine.connect() as conn:
            if around:
                pivot = (await conn.execute(sa.select(messages.c.msgtime).where(messages.c.msgid == around))).scalar()
                if pivot is None:
                    return [], None
                before = (await conn.execute(base.where(messages.c.msgtime <= pivot)
                                             .order_by(messages.c.msgtime.desc(), messages.c.msgid.desc())
                                             .limit(limit // 2 + 1))).mappings().all()
                after = (await conn.execute(base.where(messages.c.msgtime > pivot)
                                            .order_by(messages.c.msgtime, messages.c.msgid)
                                            .limit(limit // 2))).mappings().all()
                rows = list(reversed(before)) + list(after)
                return [message_json(r) for r in rows], None
            q = base.order_by(messages.c.msgtime, messages.c.msgid)
            if cursor:
                t, mid = decode_cursor(cursor, int, str)
                q = q.where(sa.or_(messages.c.msgtime > t, sa.and_(messages.c.msgtime == t, messages.c.msgid > mid)))
            rows = (await conn.execute(q.limit(limit + 1))).mappings().all()
        items = [message_json(r) for r in rows[:limit]]
        nxt = encode_cursor(rows[limit - 1]["msgtime"], rows[limit - 1]["msgid"]) if len(rows) > limit else None
        return items, nxt


def _aware(dt: datetime | None) -> datetime | None:
    if dt is not None and dt.tzinfo is None:
        return dt.replace(tzinfo=timezone.utc)  # SQLite hands back naive datetimes
    return dt


def flag_json(r) -> dict:
    return {"id": r["id"], "conversation_id": r["conversation_id"], "msgid": r["msgid"], "reason": r["reason"],
            "severity": r["severity"], "status": r["status"], "staff_id": r["staff_id"], "detail": r["detail"],
            "created_at": _aware(r["created_at"]).isoformat(), "reviewed_by": r["reviewed_by"],
            "reviewed_at": _aware(r["reviewed_at"]).isoformat() if r["reviewed_at"] else None, "note": r["note"]}


def conversation_json(r) -> dict:
    return {"id": r["id"], "kind": r["kind"], "roomid": r["roomid"], "participants": r["participants"],
            "staff_id": r["staff_id"], "customer_id": r["customer_id"],
            "last_message_at": datetime.fromtimestamp(r["last_message_at"] / 1000, timezone.utc).isoformat(),
            "message_count": r["message_count"], "flag_count": r["flag_count"]}


def message_json(r) -> dict:
    analysis = None
    if r.get("intent") is not None:
        analysis = {"intent": {"label": r["intent"], "score": r["intent_score"]},
                    "sentiment": {"label": r["sentiment"], "score": r["sentiment_score"]},
                    "sensitive": r["sensitive"], "flagged": r["flagged"], "models": r.get("models")}
    return {"msgid": r["msgid"], "conversation_id": r["conversation_id"], "sender_id": r["sender_id"], "role": r["role"],
            "msgtime": r["msgtime"], "msgtype": r["msgtype"], "text": r["text"], "recalled": bool(r["recalled"]),
            "action": r["action"], "analysis": analysis}
