"""Labels for the learning loop: validated at the boundary, stored with provenance, and the
labelling queue of what the models are least sure of (docs/API: /api/v1/labels)."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal, Sequence

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.ext.asyncio import AsyncEngine

from nlp.models import INTENT_LABELS, SENTIMENT_LABELS
from nlp.sensitive import CATEGORIES
from storage.sql import analyses, labels, messages

_RELAY_LABEL = re.compile(r"^(join:[1-9]\d{0,2}|cancel|none)$")
QUEUE_TASKS = ("intent", "sentiment", "sensitive")


def allowed(task: str, label: str) -> bool:
    if task == "intent":
        return label in INTENT_LABELS
    if task == "sentiment":
        return label in SENTIMENT_LABELS
    if task == "sensitive":
        return label in CATEGORIES or label == "clean"
    return bool(_RELAY_LABEL.match(label))


class LabelInput(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    task: Literal["intent", "sentiment", "sensitive", "relay"]
    text: str = Field(min_length=1, max_length=2000)
    label: str = Field(min_length=1, max_length=64)
    msgid: str | None = Field(default=None, max_length=128)
    role: Literal["customer", "staff"] = "customer"

    @model_validator(mode="after")
    def _label_for_task(self):
        if not allowed(self.task, self.label):
            raise ValueError(f"{self.label!r} is not a {self.task} label")
        return self


def label_key(task: str, text: str) -> str:
    return hashlib.sha256(f"{task}\0{text}".encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class StoredLabel:
    task: str
    text: str
    label: str
    source: str
    created_by: str
    msgid: str | None


class LabelStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def add(self, items: Sequence[LabelInput], source: str, created_by: str,
                  guesses: dict[str, str] | None = None) -> int:
        """Store (latest label per task and text wins); returns how many were stored."""
        if not items:
            return 0
        now = datetime.now(timezone.utc)
        rows = {}
        for it in items:
            key = label_key(it.task, it.text)
            rows[key] = {"key": key, "task": it.task, "text": it.text, "label": it.label, "msgid": it.msgid,
                         "source": source, "created_by": created_by[:128], "created_at": now,
                         "model_guess": (guesses or {}).get(it.msgid or "")}
        async with self.engine.begin() as conn:
            keys = list(rows)
            for i in range(0, len(keys), 500):
                await conn.execute(labels.delete().where(labels.c.key.in_(keys[i:i + 500])))
            await conn.execute(labels.insert(), list(rows.values()))
        return len(rows)

    async def from_flag_review(self, flag: dict, verdict: str, category: str | None, reviewer: str) -> int:
        """A QA verdict becomes a label: a confirmed sensitive flag its category (or the corrected
        one), a dismissed one "clean"; a confirmed complaint flag an intent label."""
        async with self.engine.connect() as conn:
            r = (await conn.execute(sa.select(messages.c.text, messages.c.role, analyses.c.intent,
                                              analyses.c.sensitive)
                                    .select_from(messages.outerjoin(analyses, analyses.c.msgid == messages.c.msgid))
                                    .where(messages.c.msgid == flag["msgid"]))).mappings().first()
        if r is None or not r["text"]:
            return 0
        reason = flag["reason"]
        flagged_cat = reason.split("_", 1)[1] if "_" in reason else None
        if flagged_cat in CATEGORIES or category:
            label = category or (flagged_cat if verdict == "confirmed" else "clean")
            item = LabelInput(task="sensitive", text=r["text"][:2000], label=label, msgid=flag["msgid"],
                              role=r["role"] if r["role"] in ("customer", "staff") else "customer")
            guess = {flag["msgid"]: flagged_cat or ""}
        elif reason == "complaint" and verdict == "confirmed":
            item = LabelInput(task="intent", text=r["text"][:2000], label="complaint", msgid=flag["msgid"])
            guess = {flag["msgid"]: r["intent"] or ""}
        else:
            return 0
        return await self.add([item], "flag_review", reviewer, guess)

    async def allow_proposals(self, min_dismissals: int = 3) -> list[dict]:
        """Words QA keeps dismissing: each lexicon match behind flags dismissed as clean, counted
        over distinct messages; at `min_dismissals` it is proposed for the allow-list."""
        stmt = (sa.select(labels.c.msgid, analyses.c.sensitive)
                .select_from(labels.join(analyses, analyses.c.msgid == labels.c.msgid))
                .where(labels.c.task == "sensitive", labels.c.label == "clean", labels.c.source == "flag_review"))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        seen: dict[tuple[str, str], set[str]] = {}
        for msgid, hits in rows:
            for h in hits or []:
                if str(h.get("rule", "")).startswith("lexicon:"):
                    seen.setdefault((h["match"], h["category"]), set()).add(msgid)
        out = [{"match": m, "category": c, "dismissals": len(ids)} for (m, c), ids in seen.items()
               if len(ids) >= min_dismissals]
        return sorted(out, key=lambda p: (-p["dismissals"], p["match"]))

    async def for_training(self, task: str) -> list[StoredLabel]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(labels).where(labels.c.task == task)
                                       .order_by(labels.c.created_at))).mappings().all()
        return [StoredLabel(r["task"], r["text"], r["label"], r["source"], r["created_by"], r["msgid"]) for r in rows]

    async def counts(self) -> dict[str, dict[str, int]]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(labels.c.task, labels.c.source, sa.func.count())
                                       .group_by(labels.c.task, labels.c.source))).all()
        out: dict[str, dict[str, int]] = {}
        for task, source, n in rows:
            out.setdefault(task, {})[source] = n
        return out

    async def context(self, msgids: Sequence[str], around: int = 2) -> dict[str, list[dict]]:
        """The messages just before and after each one in its conversation (the labelling page shows
        them: a reply often decides what a customer meant)."""
        out: dict[str, list[dict]] = {}
        async with self.engine.connect() as conn:
            for msgid in msgids:
                me = (await conn.execute(sa.select(messages.c.conversation_id, messages.c.msgtime)
                                         .where(messages.c.msgid == msgid))).first()
                if me is None:
                    continue
                cols = (messages.c.msgid, messages.c.role, messages.c.text, messages.c.msgtime)
                same = (messages.c.conversation_id == me.conversation_id) & messages.c.text.is_not(None)
                before = (await conn.execute(sa.select(*cols).where(same, messages.c.msgtime < me.msgtime)
                                             .order_by(messages.c.msgtime.desc()).limit(around))).all()
                after = (await conn.execute(sa.select(*cols).where(same, messages.c.msgtime > me.msgtime)
                                            .order_by(messages.c.msgtime).limit(around))).all()
                out[msgid] = [{"msgid": r.msgid, "role": r.role, "text": r.text, "msgtime": r.msgtime, "at": at}
                              for at, rows in (("before", reversed(before)), ("after", after)) for r in rows]
        return out

    async def queue(self, task: str, limit: int) -> list[dict]:
        """Analysed customer texts the model is least sure of, not yet labelled, interleaved across
        the model's guesses so one confused class does not fill the page."""
        if task not in QUEUE_TASKS:
            raise ValueError(f"no labelling queue for {task!r}; one of {', '.join(QUEUE_TASKS)}")
        score_col = analyses.c.sentiment_score if task == "sentiment" else analyses.c.intent_score
        guess_col = analyses.c.sentiment if task == "sentiment" else analyses.c.intent
        labelled = sa.select(labels.c.msgid).where(labels.c.task == task, labels.c.msgid.is_not(None))
        stmt = (sa.select(messages.c.msgid, messages.c.text, messages.c.msgtime, guess_col.label("guess"),
                          score_col.label("score"), analyses.c.sensitive)
                .select_from(messages.join(analyses, analyses.c.msgid == messages.c.msgid))
                .where(messages.c.text.is_not(None), messages.c.recalled == sa.false(),
                       messages.c.msgid.not_in(labelled))
                .order_by(score_col, messages.c.msgtime.desc()).limit(limit * 10))
        # Intent and sentiment are read on customers' words; sensitive words on anyone's.
        stmt = stmt.where(messages.c.role.in_(("customer", "staff") if task == "sensitive" else ("customer",)))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).mappings().all()
        if task == "sensitive":
            # Least sure there: the learned model's hits (no lexicon word behind them), weakest first.
            picked = []
            for r in rows:
                hits = [h for h in (r["sensitive"] or []) if str(h.get("rule", "")).startswith("model:")]
                if hits:
                    picked.append({"text": r["text"], "msgid": r["msgid"],
                                   "guess": {"label": hits[0]["category"], "rule": hits[0]["rule"]},
                                   "score": 1.0 if hits[0]["severity"] == "high" else 0.5})
            return picked[:limit]
        by_guess: dict[str, list] = {}
        for r in rows:
            by_guess.setdefault(r["guess"], []).append(r)
        out = []
        while len(out) < limit and any(by_guess.values()):
            for g in sorted(by_guess, key=lambda g: by_guess[g][0]["score"] if by_guess[g] else 2.0):
                if by_guess[g] and len(out) < limit:
                    r = by_guess[g].pop(0)
                    out.append({"text": r["text"], "msgid": r["msgid"], "guess": {"label": r["guess"],
                                "score": round(float(r["score"]), 4)}, "score": round(float(r["score"]), 4)})
        return out
