"""External-contact events keep customer profiles current: who follows whom, from which channel,
and who left (bot/customers/profiles.py), and count fission invites (bot/customers/fission.py).
The name comes from WeCom once, when known."""
from __future__ import annotations

import logging

from bot.customers.fission import Fission
from bot.customers.profiles import ContactChange, CustomerStore
from bot.customers.routing import StoreRouter
from bot.gateway.messages import ExternalContactEvent
from bot.gateway.router import Router
from bot.wecom_api import WeComAPIError, WeComClient, WeComUnavailable

log = logging.getLogger(__name__)

router = Router()
KINDS = ("add_external_contact", "edit_external_contact", "del_external_contact", "del_follow_user")


async def contact_changed(event: ExternalContactEvent, customers: CustomerStore, wecom: WeComClient | None,
                          fission: Fission | None = None, store_router: StoreRouter | None = None) -> None:
    if not event.external_user_id or not event.user_id:
        return
    at_ms = int(event.create_time) * 1000
    if fission is not None:
        # Before the profile changes: whether the invitee was a customer already decides the invite.
        if event.change_type == "add_external_contact" and event.state:
            await fission.contact_added(event.state, event.external_user_id, event.user_id, at_ms)
        elif event.change_type == "del_follow_user":
            await fission.contact_deleted(event.external_user_id, at_ms)
    await customers.contact_changed(ContactChange(event.change_type, event.user_id, event.external_user_id,
                                                  event.state or None, int(event.create_time) * 1000))
    if event.change_type == "add_external_contact" and store_router is not None and event.state:
        await store_router.store_channel(event.external_user_id, event.user_id, event.state, at_ms)
    if event.change_type == "add_external_contact" and wecom is not None:
        try:
            contact = (await wecom.get_external_contact(event.external_user_id)).get("external_contact") or {}
        except (WeComAPIError, WeComUnavailable) as exc:
            log.info("customer name not fetched", extra={"error": str(exc)})  # the profile keeps its id
            return
        if contact.get("name"):
            await customers.set_name(event.external_user_id, str(contact["name"]))


for _kind in KINDS:
    router.add("event:change_external_contact", contact_changed, _kind)
