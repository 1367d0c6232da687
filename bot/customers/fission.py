"""Fission (裂变) campaigns: customers invite friends through their own code for rewards.

Each participant gets a personal contact way (`externalcontact/add_contact_way`, state
`f:<campaign>:<n>`, within WeCom's 30-character limit) for the campaign's staff. A new contact
added through that state is an invite, and counts once it is still a contact `retain_hours` after
being added. Anti-fraud: an invite is rejected when the invitee is the participant (self-invite),
was a customer already (an old friend re-adding), was invited in this campaign before (repeated
account), arrived outside the campaign's period, or deleted the staff member within the window.
The leaderboard counts invites per participant and the highest reward tier reached; operators
mark claims fulfilled."""
from __future__ import annotations

import secrets
import time
from datetime import datetime, timezone

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.customers.times import aware_utc
from bot.wecom_api import WeComClient
from storage.sql import (analyses, customer_staff, customers, fission_campaigns, fission_claims, fission_invites,
                         fission_participants, messages, orders)

HOUR_MS = 3_600_000
STATE_PREFIX = "f:"


class Tier(BaseModel):
    model_config = ConfigDict(extra="forbid")
    invites: int = Field(ge=1, le=10_000)
    reward: str = Field(min_length=1, max_length=200)


class FissionInput(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str = Field(min_length=1, max_length=100)
    starts_at: datetime
    ends_at: datetime
    retain_hours: int = Field(default=24, ge=0, le=24 * 90)
    reward_tiers: list[Tier] = Field(min_length=1, max_length=10)
    staff: list[str] = Field(min_length=1, max_length=100)

    @model_validator(mode="after")
    def _period(self):
        self.starts_at, self.ends_at = aware_utc(self.starts_at, "starts_at"), aware_utc(self.ends_at, "ends_at")
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if len({t.invites for t in self.reward_tiers}) != len(self.reward_tiers):
            raise ValueError("reward tiers need different invite counts")
        return self


def _ms(v: datetime) -> int:
    return int(v.timestamp() * 1000)


class FissionError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class Fission:
    def __init__(self, engine: AsyncEngine, wecom: WeComClient | None, clock=time.time) -> None:
        self.engine = engine
        self.wecom = wecom
        self.clock = clock

    async def create(self, c: FissionInput) -> dict:
        cid = secrets.token_hex(4)
        async with self.engine.begin() as conn:
            await conn.execute(fission_campaigns.insert().values(
                id=cid, name=c.name, starts_at=_ms(c.starts_at), ends_at=_ms(c.ends_at), retain_hours=c.retain_hours,
                reward_tiers=sorted((t.model_dump() for t in c.reward_tiers), key=lambda t: t["invites"]),
                staff=c.staff, created_at=datetime.now(timezone.utc)))
        return await self.get(cid)  # type: ignore[return-value]

    async def get(self, cid: str) -> dict | None:
        async with self.engine.connect() as conn:
            r = (await conn.execute(sa.select(fission_campaigns).where(fission_campaigns.c.id == cid))).mappings().first()
        if r is None:
            return None
        return {"id": r["id"], "name": r["name"], "starts_at": r["starts_at"], "ends_at": r["ends_at"],
                "retain_hours": r["retain_hours"], "reward_tiers": r["reward_tiers"], "staff": r["staff"],
                "funnel": await self.funnel(cid)}

    async def list(self, limit: int = 50) -> list[dict]:
        async with self.engine.connect() as conn:
            ids = (await conn.execute(sa.select(fission_campaigns.c.id).order_by(fission_campaigns.c.created_at.desc())
                                      .limit(limit))).scalars().all()
        return [c for c in [await self.get(i) for i in ids] if c]

    async def join(self, cid: str, participant: str) -> dict:
        """The participant's personal code (made once; asking again answers the same one)."""
        camp = await self.get(cid)
        if camp is None:
            raise FissionError(404, "not_found", "no such fission campaign")
        async with self.engine.connect() as conn:
            have = (await conn.execute(sa.select(fission_participants).where(
                fission_participants.c.campaign_id == cid, fission_participants.c.participant_id == participant))
            ).mappings().first()
            n = (await conn.execute(sa.select(sa.func.count()).select_from(fission_participants)
                                    .where(fission_participants.c.campaign_id == cid))).scalar_one()
        if have is not None:
            return {"participant_id": participant, "state": have["state"], "qr_code": have["qr_code"]}
        if self.wecom is None:
            raise FissionError(503, "unavailable", "the outbound WeCom API is not configured (WECOM_SECRET)")
        state = f"{STATE_PREFIX}{cid}:{_base36(n + 1)}"
        way = await self.wecom.add_contact_way(state, camp["staff"])
        async with self.engine.begin() as conn:
            await conn.execute(fission_participants.insert().values(
                campaign_id=cid, participant_id=participant, state=state, config_id=way.get("config_id"),
                qr_code=way.get("qr_code"), created_at=int(self.clock() * 1000)))
        return {"participant_id": participant, "state": state, "qr_code": way.get("qr_code")}

    # --- contact events ---------------------------------------------------------------------
    async def contact_added(self, state: str, invitee: str, staff: str, at_ms: int) -> str | None:
        """Record an add through a participant's code (before the profile is updated, so "was a
        customer already" is knowable); → the invite's status, or None for another state."""
        if not state.startswith(STATE_PREFIX):
            return None
        async with self.engine.begin() as conn:
            p = (await conn.execute(sa.select(fission_participants, fission_campaigns.c.starts_at,
                                              fission_campaigns.c.ends_at)
                                    .join(fission_campaigns, fission_campaigns.c.id == fission_participants.c.campaign_id)
                                    .where(fission_participants.c.state == state))).mappings().first()
            if p is None:
                return None
            cid = p["campaign_id"]
            seen = (await conn.execute(sa.select(customers.c.first_seen_at).where(customers.c.id == invitee))).scalar()
            before = (await conn.execute(sa.select(fission_invites.c.status).where(
                fission_invites.c.campaign_id == cid, fission_invites.c.invitee_id == invitee))).scalar()
            if before is not None:
                return "rejected"  # repeated account: the first invite stands
            reason = ("self-invite" if invitee == p["participant_id"]
                      else "outside the campaign period" if not p["starts_at"] <= at_ms <= p["ends_at"]
                      else "already a customer" if seen is not None and seen < at_ms - 60_000
                      else None)
            await conn.execute(fission_invites.insert().values(
                campaign_id=cid, invitee_id=invitee, state=state, staff_id=staff, added_at=at_ms,
                status="rejected" if reason else "pending", reason=reason))
        return "rejected" if reason else "pending"

    async def contact_deleted(self, invitee: str, at_ms: int) -> None:
        """The invitee deleted the staff member: within the window the invite no longer counts."""
        async with self.engine.begin() as conn:
            rows = (await conn.execute(sa.select(fission_invites.c.campaign_id, fission_invites.c.added_at,
                                                 fission_campaigns.c.retain_hours)
                                       .join(fission_campaigns, fission_campaigns.c.id == fission_invites.c.campaign_id)
                                       .where(fission_invites.c.invitee_id == invitee,
                                              fission_invites.c.status == "pending"))).all()
            for cid, added, hours in rows:
                if at_ms - added <= hours * HOUR_MS:
                    await conn.execute(fission_invites.update().where(
                        fission_invites.c.campaign_id == cid, fission_invites.c.invitee_id == invitee)
                        .values(status="rejected", reason=f"deleted within {hours} h"))

    async def settle(self, cid: str | None = None, now_ms: int | None = None) -> int:
        """Pending invites past their window, still contacts, count; → how many were settled."""
        now_ms = now_ms if now_ms is not None else int(self.clock() * 1000)
        fi = fission_invites
        still = sa.exists().where(customer_staff.c.customer_id == fi.c.invitee_id,
                                  customer_staff.c.staff_id == fi.c.staff_id, customer_staff.c.deleted_at.is_(None))
        due = sa.select(fission_campaigns.c.retain_hours).where(fission_campaigns.c.id == fi.c.campaign_id).scalar_subquery()
        where = [fi.c.status == "pending", fi.c.added_at + due * HOUR_MS <= now_ms]
        if cid:
            where.append(fi.c.campaign_id == cid)
        async with self.engine.begin() as conn:
            counted = await conn.execute(fi.update().where(*where, still).values(status="counted"))
            gone = await conn.execute(fi.update().where(*where, ~still).values(status="rejected",
                                                                               reason="no longer a contact"))
        return counted.rowcount + gone.rowcount

    # --- reading ----------------------------------------------------------------------------
    async def leaderboard(self, cid: str, limit: int = 100) -> list[dict]:
        await self.settle(cid)
        camp = await self.get(cid)
        if camp is None:
            raise FissionError(404, "not_found", "no such fission campaign")
        fi, fp = fission_invites, fission_participants
        count = lambda status: sa.func.sum(sa.case((fi.c.status == status, 1), else_=0))  # noqa: E731
        stmt = (sa.select(fp.c.participant_id, count("counted"), count("pending"), count("rejected"))
                .select_from(fp.outerjoin(fi, fi.c.state == fp.c.state)).where(fp.c.campaign_id == cid)
                .group_by(fp.c.participant_id).order_by(count("counted").desc(), fp.c.participant_id).limit(limit))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
            claims = {(p, t) for p, t in (await conn.execute(sa.select(fission_claims.c.participant_id, fission_claims.c.tier)
                                                              .where(fission_claims.c.campaign_id == cid))).all()}
        out = []
        for pid, counted, pending, rejected in rows:
            counted = int(counted or 0)
            reached = [t for t in camp["reward_tiers"] if counted >= t["invites"]]
            out.append({"participant_id": pid, "counted": counted, "pending": int(pending or 0),
                        "rejected": int(rejected or 0), "tier": reached[-1] if reached else None,
                        "claimed": sorted(t for p, t in claims if p == pid)})
        return out

    async def claim(self, cid: str, participant: str, tier: int, by: str) -> dict:
        board = {r["participant_id"]: r for r in await self.leaderboard(cid, 100_000)}
        row = board.get(participant)
        camp = await self.get(cid)
        if row is None or camp is None:
            raise FissionError(404, "not_found", "no such participant in this campaign")
        if tier not in {t["invites"] for t in camp["reward_tiers"]}:
            raise FissionError(400, "invalid_request", "no such reward tier")
        if row["counted"] < tier:
            raise FissionError(409, "tier_not_reached", f"{row['counted']} counted invites, the tier needs {tier}")
        async with self.engine.begin() as conn:
            exists = (await conn.execute(sa.select(fission_claims.c.tier).where(
                fission_claims.c.campaign_id == cid, fission_claims.c.participant_id == participant,
                fission_claims.c.tier == tier))).first()
            if exists is None:
                await conn.execute(fission_claims.insert().values(campaign_id=cid, participant_id=participant, tier=tier,
                                                                  fulfilled_by=by[:200], at=datetime.now(timezone.utc)))
        return {"participant_id": participant, "tier": tier, "fulfilled": True}

    async def funnel(self, cid: str) -> dict:
        fi = fission_invites
        converted = sa.or_(
            sa.exists().where(messages.c.sender_id == fi.c.invitee_id, analyses.c.msgid == messages.c.msgid,
                              analyses.c.intent == "purchase_intent", messages.c.msgtime >= fi.c.added_at),
            sa.exists().where(orders.c.customer_id == fi.c.invitee_id, orders.c.at >= fi.c.added_at))

        async def count(table, *where) -> int:
            async with self.engine.connect() as conn:
                return int((await conn.execute(sa.select(sa.func.count()).select_from(table).where(*where))).scalar_one())

        return {"participants": await count(fission_participants, fission_participants.c.campaign_id == cid),
                "adds": await count(fi, fi.c.campaign_id == cid),
                "retained": await count(fi, fi.c.campaign_id == cid, fi.c.status == "counted"),
                "converted": await count(fi, fi.c.campaign_id == cid, fi.c.status == "counted", converted)}


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out
