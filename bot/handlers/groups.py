"""change_external_chat: keep the stored group as WeCom has it (bot/groups/store.py)."""
from __future__ import annotations

from bot.gateway.messages import ExternalChatEvent
from bot.gateway.router import Router
from bot.groups.store import GroupStore

router = Router()


@router.on("event:change_external_chat")
async def group_changed(event: ExternalChatEvent, groups: GroupStore) -> None:
    if event.chat_id:
        await groups.changed(event.chat_id, event.change_type, event.update_detail, event.mem_change_cnt)
