"""Layered channel codes: the channel tree with statistics per node and rolled up.

Per node, over contacts added through its `State` in a window of days (`customer_staff`):
- adds: contacts added;
- losses_7d: of those, deleted by the customer within 7 days of being added (del_follow_user);
- active: of those customers, how many wrote a message in the last 30 days (`active_rate` = active / adds);
- conversions: of those customers, how many showed purchase intent or signed up to a relay after being added.
A node's `total` is its own numbers plus all of its descendants'.
"""
from __future__ import annotations

import time

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.channels import ChannelStore
from bot.customers.profiles import DAY_MS
from storage.sql import analyses, customer_staff, customers, messages, relay_events

FIELDS = ("adds", "losses_7d", "active", "conversions")


async def node_stats(engine: AsyncEngine, days: int, now_ms: int | None = None) -> dict[str, dict[str, int]]:
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    since = now_ms - days * DAY_MS
    cs = customer_staff
    active = sa.exists().where(customers.c.id == cs.c.customer_id, customers.c.last_message_at >= now_ms - 30 * DAY_MS)
    bought = sa.exists().where(messages.c.sender_id == cs.c.customer_id, analyses.c.msgid == messages.c.msgid,
                               analyses.c.intent == "purchase_intent", messages.c.msgtime >= cs.c.added_at)
    joined = sa.exists().where(relay_events.c.sender_id == cs.c.customer_id, relay_events.c.kind == "join",
                               relay_events.c.at * 1000 >= cs.c.added_at)
    stmt = (sa.select(cs.c.state, sa.func.count(),
                      sa.func.sum(sa.case((cs.c.deleted_at.is_not(None) & (cs.c.deleted_at - cs.c.added_at <= 7 * DAY_MS), 1),
                                          else_=0)),
                      sa.func.sum(sa.case((active, 1), else_=0)),
                      sa.func.sum(sa.case((sa.or_(bought, joined), 1), else_=0)))
            .where(cs.c.state.is_not(None), cs.c.added_at >= since).group_by(cs.c.state))
    async with engine.connect() as conn:
        rows = (await conn.execute(stmt)).all()
    return {state: dict(zip(FIELDS, (int(v or 0) for v in vals))) for state, *vals in rows}


async def channel_tree(engine: AsyncEngine, channels: ChannelStore, days: int = 30) -> list[dict]:
    """The channels as a forest (roots first, children by state), each with `own` and `total` stats."""
    stats = await node_stats(engine, days)
    nodes = {c.state: {**c.to_json(), "own": stats.get(c.state, dict.fromkeys(FIELDS, 0)), "children": []}
             for c in await channels.list()}
    roots = []
    for state in sorted(nodes):
        n = nodes[state]
        parent = nodes.get(n["parent"]) if n["parent"] else None
        (parent["children"] if parent else roots).append(n)

    def roll(n: dict) -> dict:
        total = {k: n["own"][k] for k in FIELDS}
        for child in n["children"]:
            for k, v in roll(child).items():
                total[k] += v
        n["total"] = dict(total)
        for part in (n["own"], n["total"]):
            part["active_rate"] = round(part["active"] / part["adds"], 4) if part["adds"] else 0.0
        return total

    for r in roots:
        roll(r)
    return roots
