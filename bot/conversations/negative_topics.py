"""The negative-topic ranking (docs/EXPERIENCE.md): customers' negative messages, each given a
named topic (nlp/topics.py) by the schedule in batches, counted per ISO week with examples.

Assignment runs off the request path: a job takes up to 500 analysed negative customer messages
without a topic, encodes them in an executor thread, and stores the topic (or none)."""
from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import datetime, timezone
from typing import Callable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from nlp.topics import OTHER, TOPICS
from storage.sql import analyses, dialect_insert, message_topics, messages

BATCH = 500
EXAMPLES = 3


class NegativeTopics:
    def __init__(self, engine: AsyncEngine, assigner_of: Callable[[], object]) -> None:
        self.engine = engine
        self.assigner_of = assigner_of  # loads (or trains) the topic model on first use, in a thread
        self._assigner = None

    def _get_assigner(self):
        if self._assigner is None:
            self._assigner = self.assigner_of()
        return self._assigner

    async def assign_new(self, limit: int = BATCH) -> int:
        stmt = (sa.select(messages.c.msgid, messages.c.text, messages.c.msgtime)
                .select_from(messages.join(analyses, analyses.c.msgid == messages.c.msgid)
                             .outerjoin(message_topics, message_topics.c.msgid == messages.c.msgid))
                .where(analyses.c.sentiment == "negative", messages.c.role == "customer",
                       message_topics.c.msgid.is_(None), messages.c.text.is_not(None))
                .order_by(messages.c.msgtime.desc()).limit(limit))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        if not rows:
            return 0
        loop = asyncio.get_running_loop()
        assigned = await loop.run_in_executor(None, lambda: self._get_assigner().assign([r.text[:500] for r in rows]))
        ins = dialect_insert(self.engine, message_topics).on_conflict_do_nothing(index_elements=["msgid"])
        async with self.engine.begin() as conn:
            await conn.execute(ins, [{"msgid": r.msgid, "topic": t, "score": round(sc, 4), "msgtime": r.msgtime}
                                     for r, (t, sc) in zip(rows, assigned)])
        return len(rows)

    async def ranking(self, since_ms: int, until_ms: int) -> dict:
        """Topics by count in the window, each with its count per ISO week and a few examples."""
        stmt = (sa.select(message_topics.c.topic, message_topics.c.msgtime, message_topics.c.score, messages.c.text,
                          messages.c.msgid)
                .select_from(message_topics.join(messages, messages.c.msgid == message_topics.c.msgid))
                .where(message_topics.c.msgtime >= since_ms, message_topics.c.msgtime < until_ms))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        per: dict[str | None, dict] = {}
        for topic, at, score, text, msgid in rows:
            t = per.setdefault(topic, {"count": 0, "weeks": defaultdict(int), "examples": []})
            t["count"] += 1
            y, w, _ = datetime.fromtimestamp(at / 1000, timezone.utc).isocalendar()
            t["weeks"][f"{y}-W{w:02d}"] += 1
            t["examples"].append((score, msgid, text))
        names = {t.key: t.name for t in TOPICS}
        items = []
        for key, t in sorted(per.items(), key=lambda kv: (kv[0] is None, -kv[1]["count"])):
            best = sorted(t["examples"], reverse=True)[:EXAMPLES]
            items.append({"topic": key, "name": names.get(key, OTHER), "count": t["count"],
                          "weeks": dict(sorted(t["weeks"].items())),
                          "examples": [{"msgid": m, "text": x} for _s, m, x in best]})
        total = sum(i["count"] for i in items)
        named = sum(i["count"] for i in items if i["topic"] is not None)
        return {"total": total, "named_share": round(named / total, 3) if total else None, "items": items}
