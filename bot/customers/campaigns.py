"""Campaigns: a message to a segment's customers through WeCom's 企业群发 (docs/CUSTOMERS.md).

Creating a campaign snapshots its targets: each customer of the segment with the staff member
who follows them (the earliest, as for tags); customers nobody follows are counted unreachable.
When due, one `externalcontact/add_msg_template` (chat_type single) per staff member creates the
task the staff member confirms in WeCom. A task is marked `creating` before the call and
`created` with WeCom's msgid after it, so a crash in between is never re-sent (a customer would
get the message twice): it becomes `uncertain` for an operator to check. Results come from
`get_groupmsg_task` (who confirmed) and `get_groupmsg_send_result` (who received it), paged.

The funnel: targeted → task created → sent by staff → delivered → replied within 48 h (a message
of theirs in a private conversation after delivery) → converted within 7 days (a purchase-intent
message, a relay sign-up or an imported order after delivery).
"""
from __future__ import annotations

import logging
import secrets
from datetime import datetime, timezone

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.customers.segments import SegmentFilter, Segments
from bot.customers.times import aware_utc
from bot.wecom_api import WeComAPIError, WeComClient, WeComUnavailable
from storage.sql import (analyses, campaign_targets, campaign_tasks, campaigns, customer_staff, messages, orders,
                         relay_events)

log = logging.getLogger("copilot")

HOUR_MS = 3_600_000
MAX_PER_TEMPLATE = 10_000  # external_userid per add_msg_template call
SEND_STATUS = {1: "delivered", 2: "not_friend", 3: "limited"}  # get_groupmsg_send_result status


class CampaignInput(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str = Field(min_length=1, max_length=100)
    segment_id: str = Field(pattern=r"^[0-9a-f]{16}$")
    text: str = Field(min_length=1, max_length=4000)
    scheduled_at: datetime | None = None

    @field_validator("scheduled_at")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        return aware_utc(v, "scheduled_at") if v is not None else None


def _iso(v: datetime) -> str:
    return (v if v.tzinfo else v.replace(tzinfo=timezone.utc)).isoformat()


class Campaigns:
    def __init__(self, engine: AsyncEngine, segments: Segments, wecom: WeComClient | None) -> None:
        self.engine = engine
        self.segments = segments
        self.wecom = wecom

    async def create(self, c: CampaignInput, by: str) -> dict | None:
        seg = await self.segments.get(c.segment_id)
        if seg is None:
            return None
        flt = SegmentFilter.model_validate(seg["filter"])
        cid, now = secrets.token_hex(8), datetime.now(timezone.utc)
        targets: list[dict] = []
        unreachable, cursor = 0, None
        while True:
            rows, cursor = await self.segments.page(flt, 1000, cursor)
            ids = [r["id"] for r in rows]
            async with self.engine.connect() as conn:
                follow = dict((await conn.execute(
                    sa.select(customer_staff.c.customer_id, sa.func.min(customer_staff.c.staff_id))
                    .where(customer_staff.c.customer_id.in_(ids), customer_staff.c.deleted_at.is_(None))
                    .group_by(customer_staff.c.customer_id))).all()) if ids else {}
            for i in ids:
                if i in follow:
                    targets.append({"campaign_id": cid, "customer_id": i, "staff_id": follow[i], "status": "targeted"})
                else:
                    unreachable += 1
            if cursor is None:
                break
        staff = sorted({t["staff_id"] for t in targets})
        async with self.engine.begin() as conn:
            await conn.execute(campaigns.insert().values(
                id=cid, name=c.name, segment_id=c.segment_id, text=c.text, status="scheduled",
                scheduled_at=c.scheduled_at or now, created_by=by[:200], created_at=now, unreachable=unreachable))
            for i in range(0, len(targets), 1000):
                await conn.execute(campaign_targets.insert(), targets[i:i + 1000])
            if staff:
                await conn.execute(campaign_tasks.insert(), [{"campaign_id": cid, "staff_id": s, "status": "pending"}
                                                            for s in staff])
        return await self.get(cid)

    async def get(self, cid: str) -> dict | None:
        async with self.engine.connect() as conn:
            r = (await conn.execute(sa.select(campaigns).where(campaigns.c.id == cid))).mappings().first()
            if r is None:
                return None
            tasks = (await conn.execute(sa.select(campaign_tasks).where(campaign_tasks.c.campaign_id == cid)
                                        .order_by(campaign_tasks.c.staff_id))).mappings().all()
        return {"id": r["id"], "name": r["name"], "segment_id": r["segment_id"], "text": r["text"],
                "status": r["status"], "scheduled_at": _iso(r["scheduled_at"]), "created_at": _iso(r["created_at"]),
                "unreachable": r["unreachable"],
                "tasks": [{"staff_id": t["staff_id"], "status": t["status"], "msgid": t["msgid"],
                           "staff_sent_at": t["staff_sent_at"], "error": t["error"]} for t in tasks],
                "funnel": await self.funnel(cid)}

    async def list(self, limit: int = 50) -> list[dict]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(campaigns.c.id).order_by(campaigns.c.created_at.desc())
                                       .limit(limit))).scalars().all()
        return [await self.get(i) for i in rows]  # type: ignore[misc]

    # --- sending --------------------------------------------------------------------------
    async def send_due(self, now: datetime | None = None) -> int:
        """Create the WeCom tasks of every campaign that is due; → tasks created."""
        if self.wecom is None:
            return 0
        now = now or datetime.now(timezone.utc)
        async with self.engine.begin() as conn:
            # A crash between 'creating' and 'created' leaves a task WeCom may hold: never resend it.
            await conn.execute(campaign_tasks.update().where(campaign_tasks.c.status == "creating")
                               .values(status="uncertain", error="interrupted while WeCom was creating it; check in WeCom"))
            due = (await conn.execute(sa.select(campaigns.c.id, campaigns.c.text).where(
                campaigns.c.status.in_(("scheduled", "sending")), campaigns.c.scheduled_at <= now))).all()
        made = 0
        for cid, text in due:
            made += await self._send(cid, text)
        return made

    async def _send(self, cid: str, text: str) -> int:
        assert self.wecom is not None
        async with self.engine.begin() as conn:
            await conn.execute(campaigns.update().where(campaigns.c.id == cid).values(status="sending"))
            pending = (await conn.execute(sa.select(campaign_tasks.c.staff_id).where(
                campaign_tasks.c.campaign_id == cid, campaign_tasks.c.status == "pending"))).scalars().all()
        made = 0
        for staff in pending:
            async with self.engine.connect() as conn:
                ids = (await conn.execute(sa.select(campaign_targets.c.customer_id).where(
                    campaign_targets.c.campaign_id == cid, campaign_targets.c.staff_id == staff)
                    .order_by(campaign_targets.c.customer_id))).scalars().all()
            await self._task(cid, staff, status="creating")
            try:
                msgids, failed = [], []
                for i in range(0, len(ids), MAX_PER_TEMPLATE):
                    out = await self.wecom.call("POST", "/cgi-bin/externalcontact/add_msg_template", {
                        "chat_type": "single", "external_userid": list(ids[i:i + MAX_PER_TEMPLATE]), "sender": staff,
                        "text": {"content": text}})
                    msgids.append(out.get("msgid") or "")
                    failed += list(out.get("fail_list") or [])
            except WeComUnavailable:
                await self._task(cid, staff, status="pending")  # nothing was created: try again next run
                continue
            except WeComAPIError as exc:
                await self._task(cid, staff, status="failed", error=str(exc)[:500])
                continue
            await self._task(cid, staff, status="created", msgid=",".join(msgids))
            if failed:
                async with self.engine.begin() as conn:
                    await conn.execute(campaign_targets.update().where(
                        campaign_targets.c.campaign_id == cid, campaign_targets.c.customer_id.in_(failed))
                        .values(status="failed"))
            made += 1
        async with self.engine.begin() as conn:
            left = (await conn.execute(sa.select(sa.func.count()).select_from(campaign_tasks).where(
                campaign_tasks.c.campaign_id == cid, campaign_tasks.c.status == "pending"))).scalar_one()
            if not left:
                await conn.execute(campaigns.update().where(campaigns.c.id == cid).values(status="sent"))
        return made

    async def _task(self, cid: str, staff: str, **values) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(campaign_tasks.update().where(campaign_tasks.c.campaign_id == cid,
                                                             campaign_tasks.c.staff_id == staff).values(**values))

    async def refresh(self, cid: str) -> None:
        """Pull who confirmed and who received it from WeCom."""
        if self.wecom is None:
            return
        async with self.engine.connect() as conn:
            tasks = (await conn.execute(sa.select(campaign_tasks.c.staff_id, campaign_tasks.c.msgid).where(
                campaign_tasks.c.campaign_id == cid, campaign_tasks.c.status == "created"))).all()
        for staff, joined in tasks:
            for msgid in [m for m in (joined or "").split(",") if m]:
                cursor = ""
                while True:
                    out = await self.wecom.call("POST", "/cgi-bin/externalcontact/get_groupmsg_task",
                                                {"msgid": msgid, "limit": 1000, "cursor": cursor})
                    for t in out.get("task_list") or []:
                        if t.get("userid") == staff and t.get("status") == 2:
                            await self._task(cid, staff, staff_sent_at=int(t.get("send_time") or 0) * 1000)
                    cursor = out.get("next_cursor") or ""
                    if not cursor:
                        break
                cursor = ""
                while True:
                    out = await self.wecom.call("POST", "/cgi-bin/externalcontact/get_groupmsg_send_result",
                                                {"msgid": msgid, "userid": staff, "limit": 1000, "cursor": cursor})
                    async with self.engine.begin() as conn:
                        for r in out.get("send_list") or []:
                            status = SEND_STATUS.get(r.get("status"))
                            if status and r.get("external_userid"):
                                await conn.execute(campaign_targets.update().where(
                                    campaign_targets.c.campaign_id == cid,
                                    campaign_targets.c.customer_id == r["external_userid"]).values(
                                    status=status, delivered_at=int(r.get("send_time") or 0) * 1000 or None))
                    cursor = out.get("next_cursor") or ""
                    if not cursor:
                        break

    # --- the funnel -----------------------------------------------------------------------
    async def funnel(self, cid: str) -> dict:
        t = campaign_targets
        delivered = (t.c.campaign_id == cid) & (t.c.status == "delivered")
        replied = sa.exists().where(
            messages.c.sender_id == t.c.customer_id, messages.c.conversation_id.like("p:%"),
            messages.c.msgtime > t.c.delivered_at, messages.c.msgtime <= t.c.delivered_at + 48 * HOUR_MS)
        bought = sa.exists().where(
            messages.c.sender_id == t.c.customer_id, analyses.c.msgid == messages.c.msgid,
            analyses.c.intent == "purchase_intent",
            messages.c.msgtime > t.c.delivered_at, messages.c.msgtime <= t.c.delivered_at + 7 * 24 * HOUR_MS)
        joined = sa.exists().where(
            relay_events.c.sender_id == t.c.customer_id, relay_events.c.kind == "join",
            relay_events.c.at * 1000 > t.c.delivered_at, relay_events.c.at * 1000 <= t.c.delivered_at + 7 * 24 * HOUR_MS)

        ordered = sa.exists().where(
            orders.c.customer_id == t.c.customer_id,
            orders.c.at > t.c.delivered_at, orders.c.at <= t.c.delivered_at + 7 * 24 * HOUR_MS)

        async def count(*where) -> int:
            async with self.engine.connect() as conn:
                return int((await conn.execute(sa.select(sa.func.count()).select_from(t).where(*where))).scalar_one())

        created = sa.exists().where(campaign_tasks.c.campaign_id == cid, campaign_tasks.c.staff_id == t.c.staff_id,
                                    campaign_tasks.c.status == "created")
        confirmed = sa.exists().where(campaign_tasks.c.campaign_id == cid, campaign_tasks.c.staff_id == t.c.staff_id,
                                      campaign_tasks.c.staff_sent_at.is_not(None))
        return {"targeted": await count(t.c.campaign_id == cid),
                "task_created": await count(t.c.campaign_id == cid, created, t.c.status != "failed"),
                "sent_by_staff": await count(t.c.campaign_id == cid, confirmed, t.c.status != "failed"),
                "delivered": await count(delivered),
                "replied_48h": await count(delivered, replied),
                "converted_7d": await count(delivered, sa.or_(bought, joined, ordered))}
