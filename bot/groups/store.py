"""Customer groups kept current from `change_external_chat` callbacks: each event is answered by
reading the group from WeCom (`externalcontact/groupchat/get`), so the stored name, owner and
member count are WeCom's; joins and leaves are counted from the events' member changes."""
from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.wecom_api import WeComClient
from storage.sql import dialect_insert, groups


def group_json(r) -> dict:
    return {k: r[k] for k in ("chat_id", "name", "owner", "type", "status", "member_count", "joins", "leaves",
                              "updated_at")}


class GroupStore:
    def __init__(self, engine: AsyncEngine, wecom: WeComClient | None, clock=time.time) -> None:
        self.engine = engine
        self.wecom = wecom
        self.clock = clock

    async def changed(self, chat_id: str, change: str, detail: str = "", count: int = 0) -> None:
        now = int(self.clock() * 1000)
        values: dict[str, Any] = {"updated_at": now}
        if change == "dismiss":
            values["status"] = "dismissed"
        elif self.wecom is not None:
            chat = (await self.wecom.call("POST", "/cgi-bin/externalcontact/groupchat/get",
                                          {"chat_id": chat_id, "need_name": 1})).get("group_chat") or {}
            values.update(name=chat.get("name"), owner=chat.get("owner"), member_count=len(chat.get("member_list") or []),
                          status="active")
        ins = dialect_insert(self.engine, groups)
        joins = count if detail == "add_member" else 0
        leaves = count if detail == "del_member" else 0
        async with self.engine.begin() as conn:
            await conn.execute(ins.on_conflict_do_update(index_elements=["chat_id"], set_={
                **{k: ins.excluded[k] for k in values},
                "joins": groups.c.joins + joins, "leaves": groups.c.leaves + leaves}),
                [{"chat_id": chat_id, "status": values.get("status", "active"), "joins": joins, "leaves": leaves,
                  **values}])

    async def sync(self, owners: list[str]) -> dict[str, int]:
        """Every customer group of these owners (externalcontact/groupchat/list, 100 owners and up to
        1,000 groups a call — without an owner filter WeCom refuses corps of over 1,000 members),
        each read with groupchat/get; an active group WeCom no longer lists was dismissed."""
        if self.wecom is None:
            return {"groups": 0, "dismissed": 0}
        listed: list[str] = []
        for i in range(0, len(owners), 100):
            cursor = ""
            while True:
                page = await self.wecom.call("POST", "/cgi-bin/externalcontact/groupchat/list", {
                    "status_filter": 0, "owner_filter": {"userid_list": owners[i:i + 100]}, "cursor": cursor,
                    "limit": 1000})
                listed += [str(g["chat_id"]) for g in page.get("group_chat_list") or [] if g.get("chat_id")]
                cursor = str(page.get("next_cursor") or "")
                if not cursor:
                    break
        for chat_id in listed:
            await self.changed(chat_id, "update")
        dismissed = 0
        if owners:
            async with self.engine.begin() as conn:
                stale = groups.update().where(groups.c.status == "active", groups.c.owner.in_(owners))
                if listed:
                    stale = stale.where(groups.c.chat_id.not_in(listed))
                dismissed = (await conn.execute(stale.values(status="dismissed",
                                                             updated_at=int(self.clock() * 1000)))).rowcount or 0
        return {"groups": len(listed), "dismissed": dismissed}

    async def set_type(self, chat_id: str, group_type: str | None) -> dict | None:
        async with self.engine.begin() as conn:
            done = await conn.execute(groups.update().where(groups.c.chat_id == chat_id).values(type=group_type))
        return await self.get(chat_id) if done.rowcount else None

    async def get(self, chat_id: str) -> dict | None:
        async with self.engine.connect() as conn:
            r = (await conn.execute(sa.select(groups).where(groups.c.chat_id == chat_id))).mappings().first()
        return group_json(r) if r else None

    async def list(self, group_type: str | None = None, status: str | None = "active") -> list[dict]:
        stmt = sa.select(groups).order_by(groups.c.chat_id)
        if group_type:
            stmt = stmt.where(groups.c.type == group_type)
        if status:
            stmt = stmt.where(groups.c.status == status)
        async with self.engine.connect() as conn:
            return [group_json(r) for r in (await conn.execute(stmt)).mappings().all()]
