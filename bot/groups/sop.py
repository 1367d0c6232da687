"""Group SOP calendar (docs/GROUPS.md): a weekly plan of posts per group type, its content mix
against a target ratio (e.g. 3:3:3:1), and the posts carried out in every group of that type.

What WeCom lets an app do: it cannot post into a customer group itself. When a post is due the
service creates a group 群发 task (`externalcontact/add_msg_template`, chat_type group) for the
group owner, who must confirm it in the WeCom client, and reminds the owner by app message. A post
is **sent** when `get_groupmsg_send_result` says so for that group (or the owner's own message in
the group after the due time carries the post's text, from the archive), **missed** 24 h after its
due time otherwise. Each (post, group, due time) is one row, so a post is never created twice.
"""
from __future__ import annotations

import logging
import re
import secrets
import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from typing import Literal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.groups.store import GroupStore
from bot.wecom_api import WeComAPIError, WeComClient, WeComUnavailable
from storage.sql import dialect_insert, messages, sop_plans, sop_runs

log = logging.getLogger("copilot")

KINDS = ("practical", "interaction", "activity", "offer")
KIND_NAMES = {"practical": "干货", "interaction": "互动", "activity": "活动", "offer": "福利"}
HOUR_MS = 3_600_000
MISSED_AFTER_MS = 24 * HOUR_MS
CATCH_UP = timedelta(hours=6)  # a post due while the service was down is still created this late


class Post(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    weekday: int = Field(ge=1, le=7)                 # 1 = Monday
    time: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    kind: Literal["practical", "interaction", "activity", "offer"]
    text: str = Field(min_length=1, max_length=4000)


class PlanInput(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str = Field(min_length=1, max_length=100)
    group_type: str = Field(pattern=r"^[a-z0-9_]{1,32}$")
    target_mix: dict[str, int] = Field(default_factory=lambda: {"practical": 3, "interaction": 3, "activity": 3, "offer": 1})
    posts: list[Post] = Field(min_length=1, max_length=200)

    @field_validator("target_mix")
    @classmethod
    def _mix(cls, v: dict[str, int]) -> dict[str, int]:
        if set(v) - set(KINDS) or any(not isinstance(n, int) or n < 0 for n in v.values()) or not sum(v.values()):
            raise ValueError(f"target_mix maps {', '.join(KINDS)} to non-negative whole numbers, not all zero")
        return v


def mix(posts: list[dict], target: dict[str, int]) -> dict:
    """The plan's content mix beside its target: shares of posts per kind."""
    n = len(posts) or 1
    total = sum(target.values()) or 1
    kinds = {}
    for k in KINDS:
        count = sum(1 for p in posts if p["kind"] == k)
        kinds[k] = {"posts": count, "share": round(count / n, 3), "target_share": round(target.get(k, 0) / total, 3)}
    worst = max(abs(v["share"] - v["target_share"]) for v in kinds.values())
    return {"kinds": kinds, "largest_gap": round(worst, 3), "on_target": worst <= 0.1}


class SopCalendar:
    def __init__(self, engine: AsyncEngine, groups: GroupStore, wecom: WeComClient | None, tz: str = "Asia/Shanghai",
                 clock=time.time) -> None:
        self.engine = engine
        self.groups = groups
        self.wecom = wecom
        self.tz = ZoneInfo(tz)
        self.clock = clock

    async def create(self, plan: PlanInput) -> dict:
        pid = secrets.token_hex(8)
        async with self.engine.begin() as conn:
            await conn.execute(sop_plans.insert().values(
                id=pid, name=plan.name, group_type=plan.group_type, target_mix=plan.target_mix,
                posts=[p.model_dump() for p in plan.posts], created_at=datetime.now(timezone.utc)))
        return await self.get(pid)  # type: ignore[return-value]

    async def get(self, pid: str) -> dict | None:
        async with self.engine.connect() as conn:
            r = (await conn.execute(sa.select(sop_plans).where(sop_plans.c.id == pid))).mappings().first()
            if r is None:
                return None
            runs = (await conn.execute(sa.select(sop_runs.c.status, sa.func.count()).where(sop_runs.c.plan_id == pid)
                                       .group_by(sop_runs.c.status))).all()
        return {"id": r["id"], "name": r["name"], "group_type": r["group_type"], "target_mix": r["target_mix"],
                "posts": r["posts"], "mix": mix(r["posts"], r["target_mix"]),
                "runs": {s: int(n) for s, n in runs}}

    async def list(self, limit: int = 100) -> list[dict]:
        async with self.engine.connect() as conn:
            ids = (await conn.execute(sa.select(sop_plans.c.id).order_by(sop_plans.c.created_at.desc())
                                      .limit(limit))).scalars().all()
        return [p for p in [await self.get(i) for i in ids] if p]

    async def runs(self, pid: str) -> list[dict]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(sop_runs).where(sop_runs.c.plan_id == pid)
                                       .order_by(sop_runs.c.due_at.desc(), sop_runs.c.chat_id).limit(500))).mappings().all()
        return [dict(r) for r in rows]

    def _due_times(self, post: dict, now: datetime) -> list[datetime]:
        """This week's and last week's occurrence of the post that fall within the catch-up window."""
        local = now.astimezone(self.tz)
        hh, mm = (int(x) for x in post["time"].split(":"))
        out = []
        for weeks in (0, 1):
            day = local.date() - timedelta(days=(local.isoweekday() - post["weekday"]) % 7 + 7 * weeks)
            at = datetime(day.year, day.month, day.day, hh, mm, tzinfo=self.tz)
            if now - CATCH_UP <= at <= now:
                out.append(at)
        return out

    async def run_due(self) -> int:
        """Create the group 群发 tasks (and owner reminders) of every post now due; → runs created."""
        now = datetime.fromtimestamp(self.clock(), timezone.utc)
        async with self.engine.connect() as conn:
            plans = (await conn.execute(sa.select(sop_plans))).mappings().all()
        made = 0
        for plan in plans:
            chats = [g for g in await self.groups.list(plan["group_type"]) if g["owner"]]
            for i, post in enumerate(plan["posts"]):
                for at in self._due_times(post, now):
                    made += await self._carry_out(plan, i, post, chats, int(at.timestamp() * 1000))
        return made

    async def _carry_out(self, plan, i: int, post: dict, chats: list[dict], due_ms: int) -> int:
        rows = [{"plan_id": plan["id"], "post": i, "chat_id": g["chat_id"], "due_at": due_ms, "owner": g["owner"],
                 "status": "pending"} for g in chats]
        if not rows:
            return 0
        async with self.engine.begin() as conn:  # the row is the once-only guard
            new = (await conn.execute(dialect_insert(self.engine, sop_runs).on_conflict_do_nothing()
                                      .returning(sop_runs.c.chat_id, sop_runs.c.owner), rows)).all()
        by_owner: dict[str, list[str]] = defaultdict(list)
        for chat_id, owner in new:
            by_owner[owner].append(chat_id)
        for owner, chat_ids in by_owner.items():
            status, msgid, error = "pending", None, None
            try:
                assert self.wecom is not None
                out = await self.wecom.add_group_msg_template(owner, chat_ids, post["text"])
                msgid = out.get("msgid")
                await self.wecom.send_app_text(owner, f"群SOP「{plan['name']}」{KIND_NAMES[post['kind']]}内容已推送到"
                                                      f"企业微信群发助手，请确认发送到 {len(chat_ids)} 个群。")
            except (WeComAPIError, WeComUnavailable, AssertionError) as exc:
                status, error = "failed", str(exc)[:500] or "outbound WeCom API not configured"
            async with self.engine.begin() as conn:
                await conn.execute(sop_runs.update().where(
                    sop_runs.c.plan_id == plan["id"], sop_runs.c.post == i, sop_runs.c.due_at == due_ms,
                    sop_runs.c.chat_id.in_(chat_ids)).values(status=status, msgid=msgid, error=error))
        return len(new)

    async def track(self) -> dict[str, int]:
        """Pending runs become sent (WeCom's send result, or the owner's message in the archive) or
        missed (24 h after their due time)."""
        now_ms = int(self.clock() * 1000)
        async with self.engine.connect() as conn:
            pending = (await conn.execute(sa.select(sop_runs, sop_plans.c.posts)
                                          .join(sop_plans, sop_plans.c.id == sop_runs.c.plan_id)
                                          .where(sop_runs.c.status == "pending"))).mappings().all()
        sent: set[tuple] = set()
        for msgid, owner in {(r["msgid"], r["owner"]) for r in pending if r["msgid"]}:
            try:
                assert self.wecom is not None
                out = await self.wecom.call("POST", "/cgi-bin/externalcontact/get_groupmsg_send_result",
                                            {"msgid": msgid, "userid": owner, "limit": 1000})
            except (WeComAPIError, WeComUnavailable, AssertionError):
                continue
            sent |= {(msgid, r.get("chat_id")) for r in out.get("send_list") or [] if r.get("status") == 1}
        done = missed = 0
        for r in pending:
            key = (r["plan_id"], r["post"], r["chat_id"], r["due_at"])
            if (r["msgid"], r["chat_id"]) in sent or await self._in_archive(r):
                await self._set(key, "sent")
                done += 1
            elif now_ms > r["due_at"] + MISSED_AFTER_MS:
                await self._set(key, "missed")
                missed += 1
        return {"sent": done, "missed": missed}

    async def _in_archive(self, r) -> bool:
        text = r["posts"][r["post"]]["text"]
        probe = re.sub(r"\s+", "", text)[:20]
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(messages.c.text).where(
                messages.c.conversation_id == f"g:{r['chat_id']}", messages.c.sender_id == r["owner"],
                messages.c.msgtime >= r["due_at"], messages.c.msgtime <= r["due_at"] + MISSED_AFTER_MS))).scalars().all()
        return any(probe and probe in re.sub(r"\s+", "", t or "") for t in rows)

    async def _set(self, key: tuple, status: str) -> None:
        plan_id, post, chat_id, due_at = key
        async with self.engine.begin() as conn:
            await conn.execute(sop_runs.update().where(
                sop_runs.c.plan_id == plan_id, sop_runs.c.post == post, sop_runs.c.chat_id == chat_id,
                sop_runs.c.due_at == due_at, sop_runs.c.status == "pending").values(status=status))
