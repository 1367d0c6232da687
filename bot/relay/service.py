"""Relay use cases: create, take a group message, close, state, CSV export, recovery.

The ledger (Redis) decides; every decision's event is written to SQL before the caller gets an
answer (group-committed per event-loop tick), so an acknowledged sign-up survives any crash.
"""
from __future__ import annotations

import asyncio
import io
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import keys
from bot.csv_export import csv_text
from bot.foreground import Foreground
from bot.relay.ledger import RelayLedger, RelayMissing
from bot.relay.parse import clean_name, list_credits, parse_native_list, remember_lines, resolve, understand
from bot.relay.review import Reading, RelayReviewer, needs_review
from storage.sql import aware_iso, insert_ignore, relay_events, relays

log = logging.getLogger(__name__)


class RelayNotFound(Exception):
    pass


@dataclass(frozen=True)
class RelaySpec:
    chat_id: str
    title: str
    stock: int
    per_user_limit: int = 1
    ends_at: datetime | None = None
    waitlist: bool = True
    chat_kind: str = "customer"  # customer (客户群, roomid wr…) | appchat (internal app group chat)
    owner_userid: str | None = None



class EventWriter:
    """Group commit: one transaction at a time; events arriving while it runs go in the next one,
    so under load batches grow instead of transactions piling up."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._pending: list[tuple[dict, asyncio.Future]] = []
        self._flushing = False

    async def write(self, row: dict) -> None:
        fut = asyncio.get_running_loop().create_future()
        self._pending.append((row, fut))
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(self._drain()))
        await fut

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                await self._flush(batch)
        finally:
            self._flushing = False

    async def _flush(self, batch: list[tuple[dict, asyncio.Future]]) -> None:
        try:
            async with self.engine.begin() as conn:
                await conn.execute(insert_ignore(self.engine, relay_events), [r for r, _ in batch])
        except Exception as exc:  # noqa: BLE001 - every waiter learns of the failure
            for _r, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
            return
        for _r, fut in batch:
            if not fut.done():
                fut.set_result(None)


def event_row(relay_id: str, e: dict) -> dict:
    return {
        "relay_id": relay_id, "seq": int(e["seq"]), "kind": e["kind"], "sender_id": e.get("sender", ""),
        "sender_name": e.get("name", ""), "msgid": e.get("msgid") or None,
        "changes": [list(c) for c in (e.get("changes") or [])] if isinstance(e.get("changes"), list) else [],
        "response": e.get("response"), "line": e.get("line", ""), "at": float(e["at"]),
    }


def relay_json(row) -> dict:
    return {
        "id": row["id"], "chat_id": row["chat_id"], "title": row["title"], "stock": row["stock"],
        "per_user_limit": row["per_user_limit"], "waitlist_enabled": row["waitlist"],
        "ends_at": aware_iso(row["ends_at"]), "chat_kind": row["chat_kind"],
        "owner_userid": row["owner_userid"], "created_by": row["created_by"],
        "created_at": aware_iso(row["created_at"]), "closed_at": aware_iso(row["closed_at"]),
    }


def held_units(snap) -> dict[str, int]:
    """Units each sender holds, confirmed and waiting."""
    out: dict[str, int] = {}
    for e in (*snap.entries, *snap.waitlist):
        out[e["sender_id"]] = out.get(e["sender_id"], 0) + e["quantity"]
    return out


class RelayService:
    def __init__(self, engine: AsyncEngine, ledger: RelayLedger, clock: Callable[[], float] = time.time,
                 on_change: Callable[[str, str], None] | None = None, events_engine: AsyncEngine | None = None,
                 foreground: Foreground | None = None, reviewer: RelayReviewer | None = None) -> None:
        """`events_engine`: where events are written (storage.sql.open_relay_log: on SQLite the
        relay log's own file, so other writers never hold up an answer); reads go through `engine`.
        `reviewer`: the learned second reading of text messages (bot/relay/review.py); None, rules only."""
        self.engine = engine
        self.reviewer = reviewer
        self.ledger = ledger
        self.clock = clock
        self.writer = EventWriter(events_engine or engine)
        self.foreground = foreground or Foreground()  # told of every message, so bulk work yields
        self.on_change = on_change  # (relay_id, reason) → e.g. schedule a group announcement
        self._rebuild_locks: dict[str, asyncio.Lock] = {}
        self._rows: dict[str, tuple[float, object]] = {}
        self._row_locks: dict[str, asyncio.Lock] = {}

    # --- lifecycle ---------------------------------------------------------------------------
    async def create(self, spec: RelaySpec, created_by: str) -> dict:
        rid = uuid.uuid4().hex[:16]
        now = datetime.now(timezone.utc)
        row = {"id": rid, "chat_id": spec.chat_id, "title": spec.title, "stock": spec.stock,
               "per_user_limit": spec.per_user_limit, "waitlist": spec.waitlist, "ends_at": spec.ends_at,
               "status": "open", "chat_kind": spec.chat_kind, "owner_userid": spec.owner_userid,
               "created_by": created_by, "created_at": now, "closed_at": None}
        async with self.engine.begin() as conn:
            await conn.execute(relays.insert().values(**row))
        await self.ledger.init(rid, spec.stock, spec.per_user_limit, spec.waitlist)
        return await self.state(rid)

    async def _row(self, relay_id: str):
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(relays).where(relays.c.id == relay_id))).mappings().first()
        if row is None:
            raise RelayNotFound(relay_id)
        return row

    async def open_relay_for_chat(self, chat_id: str) -> str | None:
        async with self.engine.connect() as conn:
            rid = (await conn.execute(
                sa.select(relays.c.id).where(relays.c.chat_id == chat_id, relays.c.status != "closed")
                .order_by(relays.c.created_at.desc()).limit(1))).scalar()
        return rid

    async def open_relays_for_chats(self, chat_ids) -> dict[str, str]:
        """{chat_id: newest open relay id} for the given chats, in one query."""
        ids = list(chat_ids)
        if not ids:
            return {}
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(relays.c.chat_id, relays.c.id).where(
                relays.c.chat_id.in_(ids), relays.c.status != "closed").order_by(relays.c.created_at))).all()
        return {chat: rid for chat, rid in rows}

    async def ensure_state(self, relay_id: str) -> None:
        """Make Redis hold this relay: rebuild from SQL if Redis lost it, and catch SQL up with
        events Redis has that SQL lacks (a crash between the two writes)."""
        lock = self._rebuild_locks.setdefault(relay_id, asyncio.Lock())
        async with lock:
            row = await self._row(relay_id)
            async with self.engine.connect() as conn:
                max_seq = (await conn.execute(sa.select(sa.func.max(relay_events.c.seq))
                                              .where(relay_events.c.relay_id == relay_id))).scalar() or 0
            if await self.ledger.exists(relay_id):
                missing = await self.ledger.events_after(relay_id, max_seq)
                for e in missing:
                    await self.writer.write(event_row(relay_id, e))
                return
            async with self.engine.connect() as conn:
                rows = (await conn.execute(sa.select(relay_events).where(relay_events.c.relay_id == relay_id)
                                           .order_by(relay_events.c.seq))).mappings().all()
            events = [{"seq": r["seq"], "kind": r["kind"], "sender": r["sender_id"], "name": r["sender_name"],
                       "msgid": r["msgid"], "changes": r["changes"], "response": r["response"], "line": r["line"],
                       "at": r["at"], "status": None} for r in rows]
            status = row["status"]
            # Replay derives stock accounting; the SQL row holds the lifecycle status.
            await self.ledger.rebuild(relay_id, row["stock"], row["per_user_limit"], row["waitlist"], events)
            snap = await self.ledger.snapshot(relay_id)
            derived = "closed" if status == "closed" else ("sold_out" if snap.remaining <= 0 else "open")
            await self.ledger.redis.hset(keys.relay(relay_id, "meta"), "status", derived)
            log.warning("relay state rebuilt from SQL", extra={"relay": relay_id, "events": len(events)})

    async def recover_all(self) -> int:
        """At start: every relay not closed gets its Redis state checked/rebuilt."""
        async with self.engine.connect() as conn:
            ids = (await conn.execute(sa.select(relays.c.id).where(relays.c.status != "closed"))).scalars().all()
        for rid in ids:
            await self.ensure_state(rid)
        return len(ids)

    # --- messages ---------------------------------------------------------------------------
    async def handle_message(self, relay_id: str, sender_id: str, sender_name: str, text: str,
                             msgid: str = "", role: str = "customer") -> dict:
        """`role`: "staff" for a message from a staff account. Staff and the relay's opener run the
        relay: their texts answer, confirm and remind, and only an explicit sign-up of their own counts."""
        self.foreground.touch()
        row = await self._cached_row(relay_id)
        organiser = role == "staff" or sender_id in (row["created_by"], row["owner_userid"])
        if row["ends_at"] is not None and row["status"] != "closed" and self.clock() >= row["ends_at"].timestamp():
            await self.close(relay_id, reason="ended")
        for attempt in (1, 2):
            try:
                return await self._apply(relay_id, sender_id, sender_name, text, msgid, organiser)
            except RelayMissing:
                if attempt == 2:
                    raise
                await self.ensure_state(relay_id)
        raise AssertionError("unreachable")

    async def _cached_row(self, relay_id: str):
        """The relay row only feeds the ends_at check here (the Lua step enforces closed/sold out),
        so a short cache, filled once however many requests miss together, saves an SQL round trip
        per sign-up."""
        hit = self._rows.get(relay_id)
        now = time.monotonic()
        if hit and hit[0] > now:
            return hit[1]
        lock = self._row_locks.setdefault(relay_id, asyncio.Lock())
        async with lock:
            hit = self._rows.get(relay_id)
            if hit and hit[0] > time.monotonic():
                return hit[1]
            row = await self._row(relay_id)
            self._rows[relay_id] = (time.monotonic() + 10.0, row)
            return row

    async def _apply(self, relay_id: str, sender_id: str, sender_name: str, text: str, msgid: str,
                     organiser: bool = False) -> dict:
        native = parse_native_list(text)
        if native is not None:
            return await self._apply_list(relay_id, sender_id, sender_name, native[1], msgid, organiser)
        intent = understand(text, sender_name=sender_name, organiser=organiser)
        review = self.reviewer is not None and needs_review(text)
        held = 0
        if intent.action == "set" or review:
            held = await self.ledger.holding(relay_id, sender_id)
        answer, intent = resolve(intent, held)  # "改成两份": the change that reaches the new total
        if review:
            reading = Reading(text, answer, held, organiser)
            reviewed = await asyncio.get_running_loop().run_in_executor(None, self.reviewer.review, reading)
            if reviewed != answer:
                intent = reviewed
        resp = await self._apply_one(relay_id, sender_id, sender_name, intent.action, intent.quantity, msgid, "")
        if intent.action == "cancel" and resp.get("status") not in ("ignored", "rejected") \
                and not resp.get("confirmed_quantity"):
            await self.ledger.mark_withdrawn(relay_id, clean_name(sender_name))
        return resp

    async def _apply_list(self, relay_id: str, sender_id: str, sender_name: str, lines: list[str], msgid: str,
                          organiser: bool = False) -> dict:
        """A re-posted native list: each new line is credited to the name on it (a friend's line
        to a stand-in id `name:<name>`, so it counts against stock and its own limit, not the sender's)."""
        seen = await self.ledger.seen_lines(relay_id)
        snap = await self.ledger.snapshot(relay_id)
        by_id = held_units(snap)
        # Names already holding units: a member who signed up by text and shows up in this list is
        # not signed up again; the sender's own line states their total.
        held = {clean_name(e["sender_name"]): by_id[e["sender_id"]] for e in (*snap.entries, *snap.waitlist)
                if e["sender_name"] and e["sender_id"] != sender_id}
        held[clean_name(sender_name)] = by_id.get(sender_id, 0)
        credits = list_credits(lines, seen, sender_name, held, await self.ledger.withdrawn(relay_id), organiser)
        await self.ledger.remember_seen(relay_id, remember_lines(seen, lines))
        answers = []
        for i, c in enumerate(credits):
            sid, name = (sender_id, sender_name) if not c.name else (f"name:{c.name}", c.name)
            cid = msgid if i == 0 or not msgid else f"{msgid}#{i}"
            answers.append((c.name, await self._apply_one(relay_id, sid, name, c.action, c.quantity, cid, c.line)))
        if not answers:
            return await self._apply_one(relay_id, sender_id, sender_name, "none", 0, msgid, "")
        # The sender is told about their own line when the list had one, else about the first.
        return next((a for n, a in answers if not n), answers[0][1])

    async def _apply_one(self, relay_id: str, sender_id: str, sender_name: str, action: str, quantity: int,
                         msgid: str, line: str) -> dict:
        now = self.clock()
        if action == "join":
            resp, event = await self.ledger.join(relay_id, sender_id, sender_name, quantity, msgid, now, line)
        elif action == "cancel":
            resp, event = await self.ledger.cancel(relay_id, sender_id, sender_name, quantity, msgid, now)
        else:
            if msgid:
                prev = await self.ledger.remembered(relay_id, msgid)
                if prev is not None:
                    return prev
            snap = await self.ledger.snapshot(relay_id)
            mine = next((e["quantity"] for e in snap.entries if e["sender_id"] == sender_id), 0)
            return {"action": "none", "quantity": 0, "status": "ignored", "confirmed_quantity": mine,
                    "remaining": snap.remaining}
        if event is not None:
            # Durable before the answer: the caller is told only what SQL already holds.
            await self.writer.write(event_row(relay_id, event))
            if self.on_change and resp["status"] not in ("ignored", "rejected"):
                self.on_change(relay_id, "sold_out" if resp["remaining"] == 0 else "change")
        return resp

    async def correct(self, relay_id: str, sender_id: str, sender_name: str, quantity: int, ref: str) -> dict:
        """An operator's fix: the member should hold `quantity` units in total (confirmed and
        waitlisted). Applied as a join or cancel of the difference, through the same ledger step
        (stock and the waitlist stay right); `ref` makes a retried fix a no-op."""
        self.foreground.touch()
        await self.ensure_state(relay_id)
        snap = await self.ledger.snapshot(relay_id)
        have = sum(e["quantity"] for e in snap.entries if e["sender_id"] == sender_id) + \
            sum(w["quantity"] for w in snap.waitlist if w["sender_id"] == sender_id)
        fix_id = f"fix:{ref}:{quantity}"
        prev = await self.ledger.remembered(relay_id, fix_id)
        if prev is not None:
            return prev
        if quantity > have:
            return await self._apply_one(relay_id, sender_id, sender_name, "join", quantity - have, fix_id, "")
        if quantity < have:
            return await self._apply_one(relay_id, sender_id, sender_name, "cancel", have - quantity, fix_id, "")
        return {"action": "none", "quantity": 0, "status": "unchanged", "confirmed_quantity": have,
                "remaining": snap.remaining}

    async def close(self, relay_id: str, reason: str = "manual") -> dict:
        await self._row(relay_id)
        try:
            event = await self.ledger.close(relay_id, self.clock())
        except RelayMissing:
            await self.ensure_state(relay_id)
            event = await self.ledger.close(relay_id, self.clock())
        if event is not None:
            await self.writer.write(event_row(relay_id, event))
        self._rows.pop(relay_id, None)
        async with self.engine.begin() as conn:
            await conn.execute(relays.update().where(relays.c.id == relay_id, relays.c.status != "closed")
                               .values(status="closed", closed_at=datetime.now(timezone.utc)))
        if self.on_change:
            self.on_change(relay_id, "closed")
        return await self.state(relay_id)

    async def close_due(self) -> list[str]:
        """Close relays whose ends_at has passed (called on a timer)."""
        now = datetime.fromtimestamp(self.clock(), timezone.utc)
        async with self.engine.connect() as conn:
            ids = (await conn.execute(sa.select(relays.c.id).where(
                relays.c.status != "closed", relays.c.ends_at.is_not(None), relays.c.ends_at <= now))).scalars().all()
        for rid in ids:
            await self.close(rid, reason="ended")
        return list(ids)

    # --- reading ------------------------------------------------------------------------------
    async def state(self, relay_id: str) -> dict:
        row = await self._row(relay_id)
        try:
            snap = await self.ledger.snapshot(relay_id)
        except RelayMissing:
            await self.ensure_state(relay_id)
            snap = await self.ledger.snapshot(relay_id)
        for e in snap.entries:
            e["at"] = datetime.fromtimestamp(e["at"], timezone.utc).isoformat()
        return {**relay_json(row), "status": snap.status, "remaining": snap.remaining,
                "confirmed_total": snap.total, "entries": snap.entries, "waitlist": snap.waitlist}

    async def list(self, status: str | None = None, chat_id: str | None = None, limit: int = 50) -> list[dict]:
        q = sa.select(relays).order_by(relays.c.created_at.desc()).limit(limit)
        if status == "closed":
            q = q.where(relays.c.status == "closed")
        elif status in ("open", "active"):
            q = q.where(relays.c.status != "closed")
        if chat_id:
            q = q.where(relays.c.chat_id == chat_id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).mappings().all()
        return [relay_json(r) for r in rows]

    async def export_csv(self, relay_id: str) -> str:
        st = await self.state(relay_id)
        rows: list[list] = [["list", "position", "sender_id", "sender_name", "quantity", "at"]]
        rows += [["confirmed", e["position"], e["sender_id"], e["sender_name"], e["quantity"], e["at"]]
                 for e in st["entries"]]
        rows += [["waitlist", e["position"], e["sender_id"], e["sender_name"], e["quantity"], ""] for e in st["waitlist"]]
        return csv_text(rows)


def canonical_list_text(state: dict) -> str:
    """The numbered list the bot posts to the group (and the sidebar offers to send)."""
    lines = [f"#接龙 {state['title']}"]
    lines.append(f"剩余 {state['remaining']} / {state['stock']}，每人限 {state['per_user_limit']}")
    for e in state["entries"]:
        lines.append(f"{e['position']}. {e['sender_name'] or e['sender_id']} {e['quantity']}份")
    if state["waitlist"]:
        lines.append("候补：")
        for e in state["waitlist"]:
            lines.append(f"候补{e['position']}. {e['sender_name'] or e['sender_id']} {e['quantity']}份")
    if state["status"] == "sold_out":
        lines.append("已售罄，取消后按候补顺序递补")
    elif state["status"] == "closed":
        lines.append("接龙已结束")
    return "\n".join(lines)
