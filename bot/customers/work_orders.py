"""Work orders: a customer's bad experience that someone owns, with an SLA, alerts, escalation and
an audit trail (docs/EXPERIENCE.md).

Opened automatically as analysed messages are stored — a complaint in a negative mood, or three
negative messages from a customer in one conversation within 24 h — or by hand. At most one
order per customer and cause is active (open, in progress); new evidence is attached to it. The
owner is the staff member's direct leader in WeCom (`user/get`, cached a day), else the
configured team (COPILOT_WORK_ORDER_OWNER), else the staff member: an order always has an owner
and a due time (COPILOT_WORK_ORDER_SLA_HOURS by severity). The owner is alerted by app message
when it opens; past its due time the owner's leader (or the team) is alerted once. Each alert is
claimed in SQL before it is sent and released if sending fails, so a restart neither loses nor
repeats one.
"""
from __future__ import annotations

import logging
import secrets
import time
from typing import Literal, Sequence

import redis.asyncio as aioredis
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import keys
from bot.customers.profiles import staff_of, is_customer_id
from bot.wecom_api import WeComAPIError, WeComClient, WeComUnavailable
from storage.sql import analyses, messages, work_order_events, work_orders

log = logging.getLogger("copilot")

HOUR_MS = 3_600_000
STATUSES = ("open", "in_progress", "resolved", "closed")
ACTIVE = ("open", "in_progress")
TRANSITIONS = {"open": {"in_progress", "resolved", "closed"}, "in_progress": {"resolved", "closed"},
               "resolved": {"closed", "in_progress"}, "closed": set()}
NEGATIVE_RUN = 3  # negative messages from a customer in one conversation within 24 h


class WorkOrderInput(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    customer_id: str = Field(min_length=1, max_length=128)
    cause: str = Field(default="manual", pattern=r"^[a-z_]{1,32}$")
    severity: Literal["high", "medium", "low"] = "medium"
    evidence: list[str] = Field(default_factory=list, max_length=50)
    note: str = Field(default="", max_length=2000)


class Transition(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    to: Literal["open", "in_progress", "resolved", "closed"]
    note: str = Field(default="", max_length=2000)


class WorkOrderError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def order_json(r) -> dict:
    return {k: r[k] for k in ("id", "customer_id", "cause", "status", "severity", "owner", "staff_id",
                              "conversation_id", "evidence", "due_at", "created_at", "updated_at", "resolved_at",
                              "alerted_at", "escalated_to", "escalated_at")}


class WorkOrders:
    def __init__(self, engine: AsyncEngine, redis: aioredis.Redis, wecom: WeComClient | None, default_owner: str = "",
                 sla_hours: dict[str, float] | None = None, console_url: str = "", clock=time.time) -> None:
        self.engine = engine
        self.redis = redis
        self.wecom = wecom
        self.default_owner = default_owner
        self.sla_hours = sla_hours or {"high": 2, "medium": 8, "low": 24}
        self.console_url = console_url
        self.clock = clock

    def _now(self) -> int:
        return int(self.clock() * 1000)

    # --- who owns it -----------------------------------------------------------------------
    async def leader_of(self, userid: str | None) -> str | None:
        """The member's direct leader in WeCom (cached a day); None when unknown."""
        if not userid or self.wecom is None:
            return None
        key = keys.wecom("leader", "user", userid)
        cached = await self.redis.get(key)
        if cached is not None:
            return cached.decode() or None
        try:
            user = await self.wecom.call("GET", "/cgi-bin/user/get", params={"userid": userid})
        except (WeComAPIError, WeComUnavailable) as exc:
            log.info("leader not known", extra={"error": str(exc)})
            return None
        leaders = [x for x in (user.get("direct_leader") or []) if x and x != userid]
        await self.redis.set(key, (leaders[0] if leaders else "").encode(), ex=86_400)
        return leaders[0] if leaders else None

    async def owner_for(self, staff: str | None) -> str:
        return await self.leader_of(staff) or self.default_owner or staff or "unassigned"

    # --- opening ---------------------------------------------------------------------------
    async def open_or_attach(self, customer: str, cause: str, severity: str, evidence: Sequence[str],
                             conversation_id: str | None, staff: str | None, by: str = "auto") -> tuple[dict, bool]:
        now, key = self._now(), f"{customer}|{cause}"
        oid = secrets.token_hex(8)
        owner = await self.owner_for(staff)
        try:
            async with self.engine.begin() as conn:
                await conn.execute(work_orders.insert().values(
                    id=oid, customer_id=customer, cause=cause, status="open", severity=severity, owner=owner,
                    staff_id=staff, conversation_id=conversation_id, evidence=list(dict.fromkeys(evidence)),
                    due_at=now + int(self.sla_hours.get(severity, 24) * HOUR_MS), created_at=now, updated_at=now,
                    active_key=key))
                await self._event(conn, oid, by, "opened", {"cause": cause, "severity": severity, "owner": owner})
            return await self.get(oid), True  # type: ignore[return-value]
        except IntegrityError:
            pass
        async with self.engine.begin() as conn:
            row = (await conn.execute(sa.select(work_orders).where(work_orders.c.active_key == key))).mappings().first()
            if row is None:  # closed in between: open afresh next time
                raise WorkOrderError(409, "conflict", "the order changed meanwhile; try again")
            new = [m for m in evidence if m not in (row["evidence"] or [])]
            if new:
                await conn.execute(work_orders.update().where(work_orders.c.id == row["id"]).values(
                    evidence=[*(row["evidence"] or []), *new], updated_at=now))
                await self._event(conn, row["id"], by, "evidence", {"msgids": new})
        return await self.get(row["id"]), False  # type: ignore[return-value]

    async def from_analysed(self, msgs: Sequence[dict], results: dict) -> int:
        """The pipeline's hook: open or extend orders for what this batch of analysed messages shows."""
        opened = 0
        for m in msgs:
            a = results.get(m["msgid"])
            cid = m["sender_id"]
            if not a or m["role"] != "customer" or not is_customer_id(cid):
                continue
            staff = staff_of(m["conversation_id"], cid)
            if a["intent"]["label"] == "complaint" and a["sentiment"]["label"] == "negative":
                threat = any(h["category"] == "abuse" and h["severity"] == "high" for h in a["sensitive"])
                _, made = await self.open_or_attach(cid, "complaint", "high" if threat else "medium", [m["msgid"]],
                                                    m["conversation_id"], staff)
                opened += made
            elif a["sentiment"]["label"] == "negative" and await self._negative_run(m):
                _, made = await self.open_or_attach(cid, "negative_sentiment", "low", [m["msgid"]],
                                                    m["conversation_id"], staff)
                opened += made
        return opened

    async def _negative_run(self, m: dict) -> bool:
        async with self.engine.connect() as conn:
            n = (await conn.execute(sa.select(sa.func.count()).select_from(
                messages.join(analyses, analyses.c.msgid == messages.c.msgid)).where(
                messages.c.conversation_id == m["conversation_id"], messages.c.sender_id == m["sender_id"],
                analyses.c.sentiment == "negative", messages.c.msgtime > m["msgtime"] - 24 * HOUR_MS,
                messages.c.msgtime <= m["msgtime"]))).scalar_one()
        return n >= NEGATIVE_RUN

    # --- working it ------------------------------------------------------------------------
    async def transition(self, oid: str, to: str, by: str, note: str = "") -> dict:
        now = self._now()
        async with self.engine.begin() as conn:
            row = (await conn.execute(sa.select(work_orders).where(work_orders.c.id == oid))).mappings().first()
            if row is None:
                raise WorkOrderError(404, "not_found", "no such work order")
            if to not in TRANSITIONS[row["status"]]:
                raise WorkOrderError(409, "invalid_transition", f"a {row['status']} order cannot become {to}")
            values: dict = {"status": to, "updated_at": now}
            if to == "resolved":
                values["resolved_at"] = now
            # Resolved or closed: a new complaint from the customer opens a new order.
            values["active_key"] = f"{row['customer_id']}|{row['cause']}" if to in ACTIVE else None
            try:
                await conn.execute(work_orders.update().where(work_orders.c.id == oid).values(**values))
            except IntegrityError:
                raise WorkOrderError(409, "conflict", "another order for this customer and cause is active") from None
            await self._event(conn, oid, by, "transition", {"from": row["status"], "to": to, "note": note})
        return await self.get(oid)  # type: ignore[return-value]

    async def get(self, oid: str) -> dict | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(work_orders).where(work_orders.c.id == oid))).mappings().first()
            if row is None:
                return None
            events = (await conn.execute(sa.select(work_order_events).where(work_order_events.c.order_id == oid)
                                         .order_by(work_order_events.c.id))).mappings().all()
        out = order_json(row)
        out["events"] = [{"at": e["at"], "by": e["by"], "kind": e["kind"], "detail": e["detail"]} for e in events]
        out["outcome"] = await self.outcome(row) if row["resolved_at"] else None
        return out

    async def outcome(self, row) -> dict:
        """What the customer said in the 7 days after the order was resolved."""
        start, end = row["resolved_at"], row["resolved_at"] + 7 * 24 * HOUR_MS
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(analyses.c.sentiment, sa.func.count())
                                       .select_from(messages.join(analyses, analyses.c.msgid == messages.c.msgid))
                                       .where(messages.c.sender_id == row["customer_id"], messages.c.msgtime > start,
                                              messages.c.msgtime <= end).group_by(analyses.c.sentiment))).all()
        counts = {s: int(n) for s, n in rows}
        return {"messages": sum(counts.values()), "sentiment": counts,
                "recontacted": sum(counts.values()) > 0}

    async def list(self, status: str | None = None, customer_id: str | None = None, member: str | None = None,
                   limit: int = 50, cursor: str | None = None) -> tuple[list[dict], str | None]:
        stmt = sa.select(work_orders).order_by(work_orders.c.created_at.desc(), work_orders.c.id.desc()).limit(limit + 1)
        if status:
            stmt = stmt.where(work_orders.c.status == status)
        if customer_id:
            stmt = stmt.where(work_orders.c.customer_id == customer_id)
        if member is not None:  # staff: orders they own or about their own conversations
            stmt = stmt.where(sa.or_(work_orders.c.owner == member, work_orders.c.staff_id == member))
        if cursor:
            try:
                at, oid = cursor.split(".", 1)
                at_ms = int(at)
            except ValueError:
                raise WorkOrderError(400, "invalid_request", "invalid cursor") from None
            stmt = stmt.where(sa.or_(work_orders.c.created_at < at_ms,
                                     sa.and_(work_orders.c.created_at == at_ms, work_orders.c.id < oid)))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).mappings().all()
        nxt = f"{rows[limit - 1]['created_at']}.{rows[limit - 1]['id']}" if len(rows) > limit else None
        return [order_json(r) for r in rows[:limit]], nxt

    # --- alerts ----------------------------------------------------------------------------
    async def alert_and_escalate(self) -> dict[str, int]:
        """Tell owners about new orders and leaders about missed SLAs, each once."""
        if self.wecom is None:
            return {"alerts": 0, "escalations": 0}
        now = self._now()
        async with self.engine.connect() as conn:
            fresh = (await conn.execute(sa.select(work_orders).where(work_orders.c.alerted_at.is_(None))
                                        .limit(100))).mappings().all()
            late = (await conn.execute(sa.select(work_orders).where(
                work_orders.c.status.in_(ACTIVE), work_orders.c.due_at < now,
                work_orders.c.escalated_at.is_(None)).limit(100))).mappings().all()
        alerts = escalations = 0
        for r in fresh:
            if r["owner"] == "unassigned":
                continue  # nobody to tell: configure COPILOT_WORK_ORDER_OWNER (the queue shows it)
            text = (f"新工单 {r['id']}（{r['severity']}，{r['cause']}）：客户 {r['customer_id']}，"
                    f"截止 {time.strftime('%m-%d %H:%M', time.localtime(r['due_at'] / 1000))}。{self._link(r['id'])}")
            if await self._send_once(r["id"], "alerted_at", r["owner"], text, now, "alert"):
                alerts += 1
        for r in late:
            to = await self.leader_of(r["owner"]) or self.default_owner or r["owner"]
            text = f"工单 {r['id']} 已超时未处理（负责人 {r['owner']}，客户 {r['customer_id']}）。{self._link(r['id'])}"
            if await self._send_once(r["id"], "escalated_at", to, text, now, "escalation", escalated_to=to):
                escalations += 1
        return {"alerts": alerts, "escalations": escalations}

    def _link(self, oid: str) -> str:
        return f"{self.console_url.rstrip('/')}/console#work-orders/{oid}" if self.console_url else ""

    async def _send_once(self, oid: str, column: str, to: str, text: str, now: int, kind: str, **extra) -> bool:
        col = work_orders.c[column]
        async with self.engine.begin() as conn:  # claim it: only one process sends
            claimed = await conn.execute(work_orders.update().where(work_orders.c.id == oid, col.is_(None))
                                         .values({column: now, **extra}))
        if claimed.rowcount != 1:
            return False
        try:
            assert self.wecom is not None
            await self.wecom.send_app_text(to, text)
        except (WeComAPIError, WeComUnavailable) as exc:
            async with self.engine.begin() as conn:  # release: the next run tries again
                await conn.execute(work_orders.update().where(work_orders.c.id == oid).values({column: None}))
            log.warning("work order alert not sent", extra={"order": oid, "error": str(exc)})
            return False
        async with self.engine.begin() as conn:
            await self._event(conn, oid, "system", kind, {"to": to})
        return True

    async def _event(self, conn, oid: str, by: str, kind: str, detail: dict) -> None:
        await conn.execute(work_order_events.insert().values(order_id=oid, at=self._now(), by=by[:200], kind=kind,
                                                             detail=detail))
