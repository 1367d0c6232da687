"""Group feedback for relays, through what WeCom allows for each kind of group.

- Internal app group chats (`appchat`, created with appchat/create): the bot may post freely, so the
  canonical numbered list is posted after changes, coalesced to at most one post per `interval`
  seconds per relay, plus sold-out and closing announcements.
- Customer groups (客户群, roomid `wr…`): an app cannot post into them directly. The only server-side
  path is a 企业群发 task (externalcontact/add_msg_template, chat_type=group, chat_id_list) that the
  group owner must confirm, and WeCom caps how many a group receives per month — so only the
  sold-out and closing announcements go that way; the running list is offered to staff in the
  sidebar for one-click sending (JS-SDK sendChatMessage).
"""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

import redis.asyncio as aioredis

from bot import keys

log = logging.getLogger(__name__)

Poster = Callable[[str, str], Awaitable[None]]  # (relay_id, reason) → post


class RelayAnnouncer:
    def __init__(self, redis: aioredis.Redis, post: Poster, interval: float = 3.0) -> None:
        self.redis = redis
        self.post = post
        self.interval = interval
        self._tasks: set[asyncio.Task] = set()
        self._local_pending: set[str] = set()  # relays with a list post already scheduled here

    def schedule(self, relay_id: str, reason: str) -> None:
        if reason == "change":
            # Coalesce inside the process first: a burst of sign-ups costs one Redis call, not one each.
            if relay_id in self._local_pending:
                return
            self._local_pending.add(relay_id)
        task = asyncio.ensure_future(self._maybe_post(relay_id, reason))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _maybe_post(self, relay_id: str, reason: str) -> None:
        try:
            if reason in ("sold_out", "closed"):
                # Once per relay and reason, across all processes.
                if await self.redis.set(keys.relay(relay_id, f"announced:{reason}"), b"1", nx=True, ex=7 * 86400):
                    await self.post(relay_id, reason)
                return
            # Coalesce across processes: the first change in a window schedules one post at its end.
            try:
                if await self.redis.set(keys.relay(relay_id, "announce"), b"1", nx=True, px=int(self.interval * 1000)):
                    await asyncio.sleep(self.interval)
                    self._local_pending.discard(relay_id)
                    await self.post(relay_id, "list")
            finally:
                self._local_pending.discard(relay_id)
        except Exception:  # noqa: BLE001 - feedback is best effort; the relay itself is unaffected
            log.exception("relay announcement failed", extra={"relay": relay_id, "reason": reason})

    async def drain(self, timeout: float = 10.0) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)


def make_poster(service, wecom) -> Poster:
    """Posts through the outbound client according to the relay's chat kind (see module doc)."""
    from bot.relay.service import canonical_list_text

    async def post(relay_id: str, reason: str) -> None:
        if wecom is None:
            return
        state = await service.state(relay_id)
        text = canonical_list_text(state)
        if state["chat_kind"] == "appchat":
            await wecom.appchat_send(state["chat_id"], text)
        elif reason in ("sold_out", "closed") and state.get("owner_userid"):
            headline = f"【{state['title']}】" + ("已售罄，感谢大家！" if reason == "sold_out" else "接龙已结束，感谢参与！")
            await wecom.add_group_msg_template(state["owner_userid"], [state["chat_id"]], headline + "\n" + text)

    return post
