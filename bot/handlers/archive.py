"""Handler: WeCom's `msgaudit_notify` (new archive records are ready) pulls the archive now
instead of waiting for the minute job (bot/jobs.py)."""
from __future__ import annotations

from bot.conversations.archive_puller import pull_if_free
from bot.gateway.router import Router

router = Router()


@router.on("event:msgaudit_notify")
async def archive_notified(_event, puller, redis) -> None:
    if puller is not None:
        await pull_if_free(puller, redis)
