"""Team figures over work orders: per owner, how many opened, how fast someone answered the
customer and how fast the order was resolved, how many met their SLA or were escalated, and how
often the same customer needed another order within 7 days of one being resolved (re-contact),
and what customers answered in the satisfaction survey (CSAT, the mean of 1-5 ratings).

First response is the time from the customer's message that opened the order to the first message
the staff side sent in that conversation after it; an order without one counts from its opening to
its first transition. Medians, not
means: one forgotten order should not hide a team that answers in minutes.
"""
from __future__ import annotations

import bisect
import statistics
from collections import defaultdict
from typing import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.sql import messages, work_order_events, work_order_surveys, work_orders

HOUR_MS = 3_600_000
RECONTACT_MS = 7 * 24 * HOUR_MS


def _median_hours(values: Sequence[int]) -> float | None:
    return round(statistics.median(values) / HOUR_MS, 2) if values else None


async def team_figures(engine: AsyncEngine, since_ms: int, member: str | None = None) -> dict:
    stmt = sa.select(work_orders).where(work_orders.c.created_at >= since_ms)
    if member is not None:
        stmt = stmt.where(sa.or_(work_orders.c.owner == member, work_orders.c.staff_id == member))
    async with engine.connect() as conn:
        orders = (await conn.execute(stmt)).mappings().all()
        ids = [o["id"] for o in orders]
        first_transition: dict[str, int] = {}
        first_reply: dict[str, tuple[int, int]] = {}  # order → (first staff message, the customer's)
        if ids:
            for oid, at in (await conn.execute(
                    sa.select(work_order_events.c.order_id, sa.func.min(work_order_events.c.at))
                    .where(work_order_events.c.order_id.in_(ids), work_order_events.c.kind == "transition")
                    .group_by(work_order_events.c.order_id))).all():
                first_transition[oid] = int(at)
            # From the customer's message that opened the order (archive records may arrive late) to
            # the staff side's next message in that conversation: two queries for the whole window.
            opened = [o for o in orders if o["conversation_id"] and o["evidence"]]
            evidence_at = dict((await conn.execute(sa.select(messages.c.msgid, messages.c.msgtime).where(
                messages.c.msgid.in_(sorted({m for o in opened for m in o["evidence"]}) or [""])))).all())
            asked = {o["id"]: min((evidence_at[m] for m in o["evidence"] if m in evidence_at), default=None)
                     for o in opened}
            staff_times: dict[str, list[int]] = defaultdict(list)
            if any(v is not None for v in asked.values()):
                for conv, at in (await conn.execute(sa.select(messages.c.conversation_id, messages.c.msgtime).where(
                        messages.c.conversation_id.in_(sorted({o["conversation_id"] for o in opened})),
                        messages.c.msgtime > min(v for v in asked.values() if v is not None),
                        sa.not_(messages.c.sender_id.like("wm%")), sa.not_(messages.c.sender_id.like("wo%")))
                        .order_by(messages.c.msgtime))).all():
                    staff_times[conv].append(int(at))
            for o in opened:
                t0 = asked[o["id"]]
                times = staff_times.get(o["conversation_id"], [])
                i = bisect.bisect_right(times, t0) if t0 is not None else len(times)
                if i < len(times):
                    first_reply[o["id"]] = (times[i], int(t0))
        rated = {oid: int(r) for oid, r in (await conn.execute(
            sa.select(work_order_surveys.c.order_id, work_order_surveys.c.rating).where(
                work_order_surveys.c.order_id.in_(ids or [""]), work_order_surveys.c.rating.is_not(None)))).all()}
        later = defaultdict(list)  # customer → created_at of every order (for re-contact)
        for c, at in (await conn.execute(sa.select(work_orders.c.customer_id, work_orders.c.created_at).where(
                work_orders.c.customer_id.in_({o["customer_id"] for o in orders} or {""})))).all():
            later[c].append(int(at))
    per: dict[str, dict] = {}
    for o in orders:
        f = per.setdefault(o["owner"], {"owner": o["owner"], "opened": 0, "resolved": 0, "within_sla": 0,
                                        "escalated": 0, "_response": [], "_resolve": [], "_recontact": 0,
                                        "_ratings": []})
        f["opened"] += 1
        if o["id"] in first_reply:
            replied, asked = first_reply[o["id"]]
            f["_response"].append(replied - asked)
        elif o["id"] in first_transition:
            f["_response"].append(first_transition[o["id"]] - o["created_at"])
        if o["resolved_at"]:
            f["resolved"] += 1
            f["_resolve"].append(o["resolved_at"] - o["created_at"])
            f["within_sla"] += o["resolved_at"] <= o["due_at"]
            f["_recontact"] += any(o["resolved_at"] < t <= o["resolved_at"] + RECONTACT_MS
                                   for t in later[o["customer_id"]])
        f["escalated"] += o["escalated_at"] is not None
        if o["id"] in rated:
            f["_ratings"].append(rated[o["id"]])
    rows = []
    for f in sorted(per.values(), key=lambda x: -x["opened"]):
        rows.append({"owner": f["owner"], "opened": f["opened"], "resolved": f["resolved"],
                     "within_sla_rate": round(f["within_sla"] / f["resolved"], 3) if f["resolved"] else None,
                     "escalated": f["escalated"],
                     "median_first_response_hours": _median_hours(f["_response"]),
                     "median_resolve_hours": _median_hours(f["_resolve"]),
                     "recontact_rate": round(f["_recontact"] / f["resolved"], 3) if f["resolved"] else None,
                     "surveys_answered": len(f["_ratings"]),
                     "csat": round(sum(f["_ratings"]) / len(f["_ratings"]), 2) if f["_ratings"] else None})
    total_resolved = sum(r["resolved"] for r in rows)
    return {"since": since_ms, "owners": rows, "total": {
        "opened": sum(r["opened"] for r in rows), "resolved": total_resolved,
        "escalated": sum(r["escalated"] for r in rows),
        "median_first_response_hours": _median_hours([v for f in per.values() for v in f["_response"]]),
        "median_resolve_hours": _median_hours([v for f in per.values() for v in f["_resolve"]])}}
