"""First handler: greet a new external contact for its channel and tag it.

WeCom's WelcomeCode is valid for 20 seconds after the event and single-use, so a welcome that
cannot go out in time is recorded, not retried; tags have no deadline and are retried by the
worker when WeCom is unreachable.
"""
from __future__ import annotations

import logging
import time
from typing import Callable

from bot.channels import ChannelStore
from bot.gateway.messages import ExternalContactEvent
from bot.gateway.router import Router
from bot.wecom_api import WeComAPIError, WeComClient, WeComUnavailable

log = logging.getLogger(__name__)

WELCOME_WINDOW_SECONDS = 20

router = Router()


@router.on("event:change_external_contact", "add_external_contact")
async def welcome_new_contact(
    event: ExternalContactEvent,
    channels: ChannelStore,
    wecom: WeComClient | None,
    clock: Callable[[], float] = time.time,
) -> None:
    channel = await channels.for_state(event.state)
    if channel is None:
        log.info("no channel configured for contact", extra={"state": event.state})
        return
    if wecom is None:
        await channels.record_welcome(event.user_id, event.external_user_id, event.state, False, False,
                                      "outbound API not configured (WECOM_SECRET)")
        return

    welcome_sent, details = False, []
    if event.welcome_code and channel.welcome_text:
        age = clock() - event.create_time
        if age > WELCOME_WINDOW_SECONDS:
            details.append(f"welcome skipped: code expired ({age:.0f}s old)")
        else:
            try:
                await wecom.send_welcome_msg(event.welcome_code, channel.welcome_text)
                welcome_sent = True
            except (WeComAPIError, WeComUnavailable) as exc:
                details.append(f"welcome failed: {exc}")
    elif not event.welcome_code:
        details.append("no WelcomeCode (contact already has a welcome from another member)")

    tags_marked = False
    if channel.tag_ids:
        try:
            await wecom.mark_tag(event.user_id, event.external_user_id, list(channel.tag_ids))
            tags_marked = True
        except WeComAPIError as exc:
            details.append(f"mark_tag failed: {exc}")
        # WeComUnavailable propagates: the worker retries, and the used welcome code is then
        # refused by WeCom and recorded, so the customer is never greeted twice.
    await channels.record_welcome(event.user_id, event.external_user_id, event.state, welcome_sent, tags_marked,
                                  "; ".join(details))
