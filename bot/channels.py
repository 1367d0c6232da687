"""Acquisition channels (渠道活码): each `State` value gets a welcome text and tags, and may sit
under a parent channel (layered codes: city → store → staff; bot/customers/channel_tree.py)."""
from __future__ import annotations

from dataclasses import dataclass, asdict
from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.sql import channels, welcome_log

DEFAULT_STATE = "default"


@dataclass(frozen=True)
class Channel:
    state: str
    name: str
    welcome_text: str
    tag_ids: tuple[str, ...]
    parent: str | None = None          # the node above in a layered code tree
    config_id: str | None = None       # WeCom contact way (externalcontact/add_contact_way)
    qr_code: str | None = None

    def to_json(self) -> dict:
        d = asdict(self)
        d["tag_ids"] = list(self.tag_ids)
        return d


class ChannelStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def upsert(self, channel: Channel) -> bool:
        """Insert or replace; returns True when it was new."""
        values = {
            "name": channel.name, "welcome_text": channel.welcome_text, "parent": channel.parent,
            "tag_ids": list(channel.tag_ids), "updated_at": datetime.now(timezone.utc),
        }
        if channel.config_id:
            values.update(config_id=channel.config_id, qr_code=channel.qr_code)
        async with self._engine.begin() as conn:
            res = await conn.execute(channels.update().where(channels.c.state == channel.state).values(**values))
            if res.rowcount:
                return False
            await conn.execute(channels.insert().values(state=channel.state, **values))
            return True

    async def get(self, state: str) -> Channel | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(channels).where(channels.c.state == state))).mappings().first()
        return self._from_row(row) if row else None

    async def for_state(self, state: str) -> Channel | None:
        """The channel a contact came through, falling back to the `default` channel."""
        return (await self.get(state) if state else None) or await self.get(DEFAULT_STATE)

    async def list(self) -> list[Channel]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(sa.select(channels).order_by(channels.c.state))).mappings().all()
        return [self._from_row(r) for r in rows]

    async def record_welcome(self, user_id: str, external_user_id: str, state: str,
                             welcome_sent: bool, tags_marked: bool, detail: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(welcome_log.insert().values(
                user_id=user_id, external_user_id=external_user_id, state=state, welcome_sent=welcome_sent,
                tags_marked=tags_marked, detail=detail[:2000], at=datetime.now(timezone.utc),
            ))

    async def welcome_history(self, external_user_id: str) -> list[dict]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(
                sa.select(welcome_log).where(welcome_log.c.external_user_id == external_user_id).order_by(welcome_log.c.id)
            )).mappings().all()
        return [dict(r) for r in rows]

    @staticmethod
    def _from_row(row) -> Channel:
        return Channel(row["state"], row["name"], row["welcome_text"], tuple(row["tag_ids"] or ()),
                       row["parent"], row["config_id"], row["qr_code"])
