"""Orders and ROI per touchpoint (docs/CUSTOMERS.md).

Orders come from the brand's shop system (`POST /api/v1/orders`, idempotent by order id). An
order may name its campaign, channel or staff member; otherwise it is attributed to the
customer's channel (the contact way they came through) and following staff member. Revenue per
touchpoint is the sum of its orders in the window; a campaign's revenue is its delivered targets'
orders within 7 days of delivery (or the orders that name it)."""
from __future__ import annotations

import time
from datetime import datetime, timezone

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.customers.profiles import DAY_MS
from bot.customers.times import aware_utc
from storage.sql import campaign_targets, campaigns, customer_staff, customers, dialect_insert, orders

ID = r"^[A-Za-z0-9_\-:.]{1,64}$"


class OrderInput(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    id: str = Field(pattern=ID)
    customer_id: str = Field(min_length=1, max_length=128)
    amount: float = Field(ge=0, le=1e9)          # yuan
    at: datetime
    campaign_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{16}$")
    channel: str | None = Field(default=None, max_length=64)
    staff_id: str | None = Field(default=None, max_length=128)

    @field_validator("at")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        return aware_utc(v, "at")


class Orders:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def add(self, items: list[OrderInput]) -> tuple[int, int]:
        """→ (accepted, duplicates); an order id seen before changes nothing."""
        if not items:
            return 0, 0
        rows = {o.id: {"id": o.id, "customer_id": o.customer_id, "amount_cents": round(o.amount * 100),
                       "at": int(o.at.timestamp() * 1000), "campaign_id": o.campaign_id, "channel": o.channel,
                       "staff_id": o.staff_id} for o in items}
        async with self.engine.begin() as conn:
            new = (await conn.execute(dialect_insert(self.engine, orders).on_conflict_do_nothing()
                                      .returning(orders.c.id), list(rows.values()))).scalars().all()
        return len(new), len(items) - len(new)

    async def touchpoints(self, days: int = 30, now_ms: int | None = None) -> dict:
        """Revenue and buyers per channel, staff member and campaign over the last `days`."""
        now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
        since = now_ms - days * DAY_MS
        first_staff = (sa.select(customer_staff.c.customer_id, sa.func.min(customer_staff.c.staff_id).label("staff_id"))
                       .group_by(customer_staff.c.customer_id).subquery())
        channel = sa.func.coalesce(orders.c.channel, customers.c.channel)
        staff = sa.func.coalesce(orders.c.staff_id, first_staff.c.staff_id)
        base = (orders.outerjoin(customers, customers.c.id == orders.c.customer_id)
                .outerjoin(first_staff, first_staff.c.customer_id == orders.c.customer_id))

        async def by(col) -> list[dict]:
            stmt = (sa.select(col.label("key"), sa.func.count(), sa.func.count(sa.distinct(orders.c.customer_id)),
                              sa.func.sum(orders.c.amount_cents))
                    .select_from(base).where(orders.c.at >= since).group_by(col).order_by(sa.func.sum(orders.c.amount_cents).desc()))
            async with self.engine.connect() as conn:
                # (PostgreSQL sums a bigint as numeric: int() before JSON)
                return [{"key": k, "orders": n, "buyers": b, "revenue": round(int(c or 0) / 100, 2)}
                        for k, n, b, c in (await conn.execute(stmt)).all() if k is not None]

        t = campaign_targets
        attributed = sa.or_(orders.c.campaign_id == t.c.campaign_id,
                            sa.and_(orders.c.campaign_id.is_(None), t.c.status == "delivered",
                                    orders.c.at > t.c.delivered_at, orders.c.at <= t.c.delivered_at + 7 * DAY_MS))
        stmt = (sa.select(campaigns.c.id, campaigns.c.name, sa.func.count(sa.distinct(orders.c.id)),
                          sa.func.count(sa.distinct(orders.c.customer_id)), sa.func.sum(orders.c.amount_cents))
                .select_from(t.join(campaigns, campaigns.c.id == t.c.campaign_id)
                             .join(orders, sa.and_(orders.c.customer_id == t.c.customer_id, attributed)))
                .where(campaigns.c.created_at >= datetime.fromtimestamp(since / 1000, timezone.utc))
                .group_by(campaigns.c.id, campaigns.c.name))
        async with self.engine.connect() as conn:
            camp = [{"key": cid, "name": name, "orders": n, "buyers": b, "revenue": round(int(c or 0) / 100, 2)}
                    for cid, name, n, b, c in (await conn.execute(stmt)).all()]
        return {"days": days, "channels": await by(channel), "staff": await by(staff), "campaigns": camp}
