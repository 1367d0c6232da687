"""Satisfaction surveys after a work order is resolved: one link per order (an unguessable token,
`COPILOT_PUBLIC_URL/survey/<token>`), which the staff member forwards to the customer. The
customer answers once, 1-5 and a comment; a rating of 2 or less reopens the order (resolved →
in_progress, by "survey", with the comment in the note), so a bad experience is not closed on a
staff member's word. Answers count in the team figures (CSAT)."""
from __future__ import annotations

import secrets
import time

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.customers.work_orders import WorkOrderError, WorkOrders
from storage.sql import dialect_insert, work_order_surveys

REOPEN_AT_OR_BELOW = 2


class SurveyAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    rating: int = Field(ge=1, le=5)
    comment: str = Field(default="", max_length=500)


class Surveys:
    def __init__(self, engine: AsyncEngine, work_orders: WorkOrders, public_url: str = "", clock=time.time) -> None:
        self.engine = engine
        self.work_orders = work_orders
        self.public_url = public_url.rstrip("/")
        self.clock = clock

    def _json(self, r) -> dict:
        return {"token": r["token"], "url": f"{self.public_url}/survey/{r['token']}", "rating": r["rating"],
                "comment": r["comment"], "answered_at": r["answered_at"]}

    async def ensure(self, order_id: str) -> dict:
        """The order's survey, made on first call (repeated calls answer the same link)."""
        ins = dialect_insert(self.engine, work_order_surveys).on_conflict_do_nothing(index_elements=["order_id"])
        async with self.engine.begin() as conn:
            await conn.execute(ins, [{"token": secrets.token_urlsafe(18), "order_id": order_id,
                                      "created_at": int(self.clock() * 1000)}])
        return await self.for_order(order_id)  # type: ignore[return-value]

    async def for_order(self, order_id: str) -> dict | None:
        async with self.engine.connect() as conn:
            r = (await conn.execute(sa.select(work_order_surveys).where(work_order_surveys.c.order_id == order_id))
                 ).mappings().first()
        return self._json(r) if r else None

    async def get(self, token: str) -> dict | None:
        async with self.engine.connect() as conn:
            r = (await conn.execute(sa.select(work_order_surveys).where(work_order_surveys.c.token == token))
                 ).mappings().first()
        return {"answered": r["answered_at"] is not None} if r else None

    async def answer(self, token: str, a: SurveyAnswer) -> dict:
        now = int(self.clock() * 1000)
        async with self.engine.begin() as conn:
            order_id = (await conn.execute(sa.select(work_order_surveys.c.order_id)
                                           .where(work_order_surveys.c.token == token))).scalar()
            if order_id is None:
                raise WorkOrderError(404, "not_found", "no such survey")
            done = await conn.execute(work_order_surveys.update().where(
                work_order_surveys.c.token == token, work_order_surveys.c.answered_at.is_(None))
                .values(rating=a.rating, comment=a.comment or None, answered_at=now))
            if not done.rowcount:
                raise WorkOrderError(409, "conflict", "this survey was already answered")
        reopened = False
        if a.rating <= REOPEN_AT_OR_BELOW:
            order = await self.work_orders.get(order_id)
            if order is not None and order["status"] == "resolved":
                note = f"满意度 {a.rating}/5" + (f"：{a.comment}" if a.comment else "")
                await self.work_orders.transition(order_id, "in_progress", "survey", note)
                reopened = True
        return {"rating": a.rating, "reopened": reopened}

    async def ratings(self, order_ids: list[str]) -> dict[str, int]:
        if not order_ids:
            return {}
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(work_order_surveys.c.order_id, work_order_surveys.c.rating).where(
                work_order_surveys.c.order_id.in_(order_ids), work_order_surveys.c.rating.is_not(None)))).all()
        return {o: int(r) for o, r in rows}
