"""Suggestion picks: which script staff chose (or ignored) for a customer's words.

Each (script, query) pair is counted. A query picked for a script, that is not already one of its
views, is proposed to a trainer as an alternative question; once accepted it becomes a view of
the script (knowledge/scripts.py, `alternatives`), so the next customer who asks that way finds
it. Rejected pairs are not proposed again."""
from __future__ import annotations

import hashlib
import re
from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.sql import script_picks

MAX_QUERY_CHARS = 300
_SPACE = re.compile(r"\s+")


def clean_query(text: str) -> str:
    return _SPACE.sub(" ", text).strip()[:MAX_QUERY_CHARS]


def pick_id(script_id: str, query: str) -> str:
    return hashlib.sha256(f"{script_id}\0{query}".encode("utf-8")).hexdigest()[:24]


class PickStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def record(self, script_id: str, query: str, picked: bool, by: str) -> None:
        query = clean_query(query)
        if not query:
            return
        pid, now = pick_id(script_id, query), datetime.now(timezone.utc)
        col = "picked" if picked else "ignored"
        async with self.engine.begin() as conn:
            done = await conn.execute(script_picks.update().where(script_picks.c.id == pid).values(
                {col: script_picks.c[col] + 1, "last_by": by[:200], "updated_at": now}))
            if done.rowcount == 0:
                try:
                    async with conn.begin_nested():
                        await conn.execute(script_picks.insert().values(
                            id=pid, script_id=script_id, query=query, picked=int(picked), ignored=int(not picked),
                            status="proposed", last_by=by[:200], updated_at=now))
                except sa.exc.IntegrityError:  # another request inserted it first
                    await conn.execute(script_picks.update().where(script_picks.c.id == pid).values(
                        {col: script_picks.c[col] + 1, "last_by": by[:200], "updated_at": now}))

    async def proposals(self, limit: int = 50) -> list[dict]:
        """Proposed pairs picked more often than ignored, most picked first."""
        stmt = (sa.select(script_picks).where(script_picks.c.status == "proposed",
                                              script_picks.c.picked > script_picks.c.ignored)
                .order_by(script_picks.c.picked.desc(), script_picks.c.updated_at.desc()).limit(limit))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).mappings().all()
        return [{"id": r["id"], "script_id": r["script_id"], "query": r["query"], "picked": r["picked"],
                 "ignored": r["ignored"]} for r in rows]

    async def get(self, pid: str) -> dict | None:
        async with self.engine.connect() as conn:
            r = (await conn.execute(sa.select(script_picks).where(script_picks.c.id == pid))).mappings().first()
        return dict(r) if r else None

    async def decide(self, pid: str, status: str, by: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(script_picks.update().where(script_picks.c.id == pid).values(
                status=status, last_by=by[:200], updated_at=datetime.now(timezone.utc)))
