"""Relay handlers on the callback pipeline: the staff `开团` command, and group messages for a chat
with an open relay (the archive pipeline calls `route_group_message` the same way)."""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from bot.conversations.records import role_of
from bot.gateway.messages import TextMessage
from bot.relay.command import parse_open_command
from bot.relay.service import RelayService, RelaySpec, canonical_list_text
from bot.gateway.router import Router
from bot.wecom_api import WeComAPIError, WeComUnavailable

log = logging.getLogger(__name__)

router = Router()

USAGE = "开团格式：开团 商品名 50份 每人限2 今晚20点截止 群<群ID>"


async def route_group_message(relays: RelayService, chat_id: str, sender_id: str, sender_name: str, text: str,
                              msgid: str) -> dict | None:
    """If `chat_id` has an open relay, let it take the message; returns the relay's answer."""
    relay_id = await relays.open_relay_for_chat(chat_id)
    if relay_id is None:
        return None
    return await relays.handle_message(relay_id, sender_id, sender_name, text, msgid, role=role_of(sender_id))


@router.on("text")
async def relay_text(message: TextMessage, relays: RelayService, wecom, settings) -> None:
    chat_id = message.raw.get("ChatId", "")
    if chat_id:
        await route_group_message(relays, chat_id, message.from_user, message.raw.get("FromUserName", ""),
                                  message.content, f"cb:{message.msg_id}")
        return
    cmd = parse_open_command(message.content, datetime.now(timezone.utc), ZoneInfo(settings.timezone))
    if cmd is None:
        if message.content.strip().startswith(("开团", "开接龙")):
            await _reply(wecom, message.from_user, USAGE)
        return
    if not cmd.chat_id:
        await _reply(wecom, message.from_user, "请在命令里写上群ID，例如：群wrAbc123。\n" + USAGE)
        return
    state = await relays.create(RelaySpec(cmd.chat_id, cmd.title, cmd.stock, cmd.per_user_limit, cmd.ends_at,
                                          owner_userid=message.from_user), created_by=message.from_user)
    await _reply(wecom, message.from_user, f"已开团（编号 {state['id']}）\n" + canonical_list_text(state))


async def _reply(wecom, user: str, text: str) -> None:
    if wecom is None:
        log.info("no outbound client; relay reply not sent", extra={"user": user})
        return
    try:
        await wecom.send_app_text(user, text)
    except (WeComAPIError, WeComUnavailable) as exc:
        log.warning("relay reply failed", extra={"user": user, "error": str(exc)})
