"""Stored messages → analysis → flags, relay hand-off and suggestions (runs in workers).

Every step is idempotent by msgid, so a batch that is retried after a crash changes nothing that
was already done: analyses are stored once, flags are unique per message and reason."""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterable

import redis.asyncio as aioredis

from bot import keys
from bot.conversations.store import ConversationStore, NewFlag
from nlp.pipeline import AnalyzeItem

log = logging.getLogger(__name__)

QUESTION_INTENTS = {"price_inquiry", "promotion", "product_info", "purchase_intent", "shipping", "return_refund",
                    "complaint", "membership", "store_visit"}


def flags_for(msg: dict, analysis: dict) -> list[NewFlag]:
    """The QA rules: any high-severity hit; staff ad_law/diversion; customer abuse; a customer
    complaint with negative sentiment."""
    out: dict[str, NewFlag] = {}
    conv, msgid, role = msg["conversation_id"], msg["msgid"], msg["role"]
    staff = msg["sender_id"] if role == "staff" else None

    def add(reason: str, severity: str, detail: str) -> None:
        prev = out.get(reason)
        rank = {"high": 3, "medium": 2, "low": 1}
        if prev is None or rank[severity] > rank[prev.severity]:
            out[reason] = NewFlag(conv, msgid, staff, reason, severity, detail)

    for h in analysis["sensitive"]:
        detail = f"{h['category']}: {h['match']}"
        if role == "staff" and h["category"] in ("ad_law", "diversion"):
            add(f"staff_{h['category']}", h["severity"], detail)
        elif role == "customer" and h["category"] == "abuse":
            add("customer_abuse", h["severity"], detail)
        elif h["severity"] == "high":
            add(f"{role}_{h['category']}", "high", detail)
    if role == "customer" and analysis["intent"]["label"] == "complaint" and analysis["sentiment"]["label"] == "negative":
        add("complaint", "medium", "complaint with negative sentiment")
    return list(out.values())


@dataclass
class Pipeline:
    store: ConversationStore
    nlp: Any
    redis: aioredis.Redis
    relays: Any = None
    knowledge: Any = None
    flag_window: int = 3600
    unanswered_sla_ms: int = 30 * 60 * 1000
    stats: dict = field(default_factory=lambda: {"analyzed": 0, "flags": 0})
    # Called with (messages, analyses) once a batch is stored: customer profiles and tag rules.
    after_save: Callable[[list[dict], dict], Awaitable[None]] | None = None

    async def process(self, msgids: Iterable[str], known: dict[str, dict] | None = None) -> int:
        """Analyse the batch's unanalysed messages; `known` holds analyses already computed by the
        source (客服's reply decision), which are used instead of analysing again. A bulk batch:
        it yields to relay sign-ups (bot/foreground.py)."""
        async with self.store.foreground.bulk():
            return await self._process(msgids, known)

    async def _process(self, msgids: Iterable[str], known: dict[str, dict] | None) -> int:
        pending = await self.store.pending(list(msgids))
        if not pending:
            return 0
        known = known or {}
        texts = [m for m in pending if m["text"] and m["action"] == "send" and not m["recalls_msgid"]]
        results: dict[str, dict | None] = {m["msgid"]: None for m in pending}
        to_analyse = [m for m in texts if m["msgid"] not in known]
        if to_analyse:
            analysed = await self.nlp.analyze([AnalyzeItem(m["text"][:5000], m["role"]) for m in to_analyse])
            for m, a in zip(to_analyse, analysed):
                results[m["msgid"]] = a
        for m in texts:
            if m["msgid"] in known:
                results[m["msgid"]] = known[m["msgid"]]
        new_flags = []
        for m in texts:
            for f in flags_for(m, results[m["msgid"]]):
                if await self._first_in_window(f):
                    new_flags.append(f)
        if new_flags:
            self.stats["flags"] += len(await self.store.add_flags(new_flags))
        await self._hand_off(texts, results)
        # Marked analysed last: a crash before this line re-runs the batch, which is harmless.
        await self.store.save_analyses(results)
        self.stats["analyzed"] += len(results)
        if self.after_save is not None and texts:
            # After the analyses are stored: a failure here re-runs nothing; the schedule's full
            # rule evaluation catches up (bot/jobs.py).
            try:
                await self.after_save(texts, results)
            except Exception:  # noqa: BLE001
                log.exception("customer update after analysis failed")
        return len(results)

    async def _first_in_window(self, f: NewFlag) -> bool:
        """One flag per conversation and reason per window; a retry of the same message still counts."""
        key = keys.flag_window(f.conversation_id, f.reason)
        if await self.redis.set(key, (f.msgid or "").encode(), nx=True, ex=self.flag_window):
            return True
        holder = await self.redis.get(key)
        return holder is not None and holder.decode() == (f.msgid or "")

    async def _hand_off(self, texts: list[dict], results: dict[str, dict | None]) -> None:
        latest_question: dict[str, dict] = {}
        group_msgs = [m for m in texts if m["conversation_id"].startswith("g:")]
        open_relays = await self.relays.open_relays_for_chats({m["conversation_id"][2:] for m in group_msgs}) \
            if self.relays is not None and group_msgs else {}
        for m in texts:
            conv = m["conversation_id"]
            if conv.startswith("g:"):
                rid = open_relays.get(conv[2:])
                if rid is not None:
                    try:
                        await self.relays.handle_message(rid, m["sender_id"], m["sender_id"], m["text"], f"arc:{m['msgid']}",
                                                        role=m["role"])
                    except Exception:  # noqa: BLE001 - the relay keeps its own durability; log and go on
                        log.exception("relay hand-off failed", extra={"msgid": m["msgid"]})
            elif m["role"] == "customer" and results[m["msgid"]]["intent"]["label"] in QUESTION_INTENTS:
                latest_question[conv] = m
        if self.knowledge is None or not latest_question:
            return
        convs = list(latest_question)
        found = await self.knowledge.suggest_many(
            [latest_question[c]["text"] for c in convs], k=3,
            intents=[(results[latest_question[c]["msgid"]]["intent"]["label"],
                      results[latest_question[c]["msgid"]]["intent"]["score"]) for c in convs])
        async with self.redis.pipeline(transaction=False) as pipe:
            for conv, sugs in zip(convs, found):
                m = latest_question[conv]
                payload = {"msgid": m["msgid"], "text": m["text"], "at": m["msgtime"], "suggestions": [s.to_json() for s in sugs]}
                pipe.set(keys.conversation_suggestions(conv), json.dumps(payload, ensure_ascii=False), ex=86400)
            await pipe.execute()

    async def sweep_unanswered(self, now_ms: int | None = None) -> int:
        """Flag 1-on-1 conversations whose last message is a customer question older than the SLA."""
        import sqlalchemy as sa

        from storage.sql import analyses, conversations, messages

        now_ms = now_ms or int(time.time() * 1000)
        cutoff = now_ms - self.unanswered_sla_ms
        async with self.store.engine.connect() as conn:
            convs = (await conn.execute(sa.select(conversations.c.id, conversations.c.staff_id).where(
                conversations.c.kind == "private", conversations.c.last_message_at < cutoff,
                conversations.c.last_message_at > cutoff - 7 * 86400 * 1000))).all()
            new = []
            for conv_id, staff in convs:
                last = (await conn.execute(sa.select(messages.c.msgid, messages.c.role, analyses.c.intent)
                                           .select_from(messages.outerjoin(analyses, analyses.c.msgid == messages.c.msgid))
                                           .where(messages.c.conversation_id == conv_id, messages.c.action == "send")
                                           .order_by(messages.c.msgtime.desc()).limit(1))).first()
                if last and last.role == "customer" and last.intent in QUESTION_INTENTS:
                    new.append(NewFlag(conv_id, last.msgid, staff, "unanswered", "low",
                                       f"customer question unanswered for over {self.unanswered_sla_ms // 60000} min"))
        return len(await self.store.add_flags(new)) if new else 0

    async def requeue_stale(self, queue, older_than_ms: int = 60_000) -> int:
        """Stored but never analysed (e.g. Redis was down when they were accepted): queue them again."""
        from bot.conversations.intake import analysis_batch

        ids = await self.store.unanalyzed_older_than(int(time.time() * 1000) - older_than_ms)
        if ids:
            await queue.append(analysis_batch(ids))
        return len(ids)
