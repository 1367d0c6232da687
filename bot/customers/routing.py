"""Routing a customer to the nearest open store (docs/GROWTH.md, "Routing to the nearest store").

Where a customer is comes from what they send — a location message in a private chat — or from
how they arrived: a contact way whose state is a store's id (the store's own code). Each fix is
kept with the nearest store open at that time (opening hours "10:00-22:00" in the brand's time
zone; a store without hours counts as open). COPILOT_STORE_ROUTING says what happens next:

- `off`: nothing is kept;
- `suggest` (default): the nearest store is kept on the customer (their profile shows it) and
  nobody is moved;
- `transfer`: once per customer, when the staff member who follows them is not one of that store's
  staff, WeCom hands the customer to the store's first staff member
  (`externalcontact/transfer_customer`, the 在职继承 API: the customer is told and may refuse).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Mapping, Sequence
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.customers.profiles import is_customer_id, staff_of
from bot.customers.stores import StoreDirectory
from storage.sql import customer_locations, dialect_insert

log = logging.getLogger(__name__)
MODES = ("off", "suggest", "transfer")


@dataclass(frozen=True)
class Fix:
    customer_id: str
    staff_id: str | None
    lat: float
    lng: float
    at_ms: int
    source: str  # location | channel


def open_at(hours: str | None, when: datetime) -> bool:
    if not hours:
        return True
    start, _, end = hours.partition("-")
    now = when.strftime("%H:%M")
    return start <= now < end if start <= end else (now >= start or now < end)  # past midnight


def fixes_from_messages(msgs: Sequence[Mapping]) -> list[Fix]:
    """Location messages customers sent in private chats (the archive's `location` body)."""
    out = []
    for m in msgs:
        if m.get("msgtype") != "location" or m.get("role") != "customer" or not is_customer_id(str(m["sender_id"])):
            continue
        body = (m.get("raw") or {}).get("location") or {}
        try:
            lat, lng = float(body["latitude"]), float(body["longitude"])
        except (KeyError, TypeError, ValueError):
            continue
        if -90 <= lat <= 90 and -180 <= lng <= 180:
            out.append(Fix(str(m["sender_id"]), staff_of(str(m["conversation_id"]), str(m["sender_id"])), lat, lng,
                           int(m["msgtime"]), "location"))
    return out


class StoreRouter:
    def __init__(self, engine: AsyncEngine, stores: StoreDirectory, wecom, mode: str = "suggest",
                 tz: str = "Asia/Shanghai", clock=time.time) -> None:
        if mode not in MODES:
            raise ValueError(f"store routing mode must be one of {', '.join(MODES)}")
        self.engine = engine
        self.stores = stores
        self.wecom = wecom
        self.mode = mode
        self.tz = ZoneInfo(tz)
        self.clock = clock

    async def nearest_open(self, lat: float, lng: float) -> dict | None:
        when = datetime.fromtimestamp(self.clock(), self.tz)
        candidates = await self.stores.nearest(lat, lng, 10)
        if not candidates:
            return None
        details = {s["id"]: s for s in await self.stores.list([c["id"] for c in candidates])}
        for c in candidates:
            store = details.get(c["id"])
            if store is not None and open_at(store.get("hours"), when):
                return {**store, "distance_m": c["distance_m"]}
        return None

    async def locate(self, fix: Fix) -> dict | None:
        """Keep the fix and the nearest open store; hand the customer over when so configured."""
        if self.mode == "off":
            return None
        store = await self.nearest_open(fix.lat, fix.lng)
        ins = dialect_insert(self.engine, customer_locations)
        async with self.engine.begin() as conn:
            await conn.execute(ins.on_conflict_do_update(index_elements=["customer_id"], set_={
                k: ins.excluded[k] for k in ("lat", "lng", "source", "at", "store_id")}),
                [{"customer_id": fix.customer_id, "lat": fix.lat, "lng": fix.lng, "source": fix.source,
                  "at": fix.at_ms, "store_id": store["id"] if store else None}])
        if store is None or self.mode != "transfer" or not fix.staff_id or not store.get("staff") \
                or fix.staff_id in store["staff"] or self.wecom is None:
            return store
        takeover = store["staff"][0]
        async with self.engine.begin() as conn:  # claimed before the call: one hand-over per customer
            claimed = await conn.execute(customer_locations.update().where(
                customer_locations.c.customer_id == fix.customer_id, customer_locations.c.routed_at.is_(None))
                .values(routed_to=takeover, routed_at=int(self.clock() * 1000)))
        if not claimed.rowcount:
            return store
        try:
            await self.wecom.call("POST", "/cgi-bin/externalcontact/transfer_customer", {
                "handover_userid": fix.staff_id, "takeover_userid": takeover, "external_userid": [fix.customer_id],
                "transfer_success_msg": f"您好，之后由离您最近的{store['name']}为您服务。"})
        except Exception as exc:  # noqa: BLE001 - release the claim; the next fix tries again
            log.warning("customer not transferred", extra={"error": str(exc), "store": store["id"]})
            async with self.engine.begin() as conn:
                await conn.execute(customer_locations.update().where(customer_locations.c.customer_id == fix.customer_id)
                                   .values(routed_to=None, routed_at=None))
        return store

    async def observe(self, msgs: Sequence[Mapping]) -> int:
        fixes = fixes_from_messages(msgs)
        for fix in fixes:
            await self.locate(fix)
        return len(fixes)

    async def store_channel(self, customer_id: str, staff_id: str, state: str | None, at_ms: int) -> dict | None:
        """A customer who added through a store's own code (state = the store's id) is at that store."""
        if not state or self.mode == "off":
            return None
        found = await self.stores.list([state])
        if not found:
            return None
        store = found[0]
        return await self.locate(Fix(customer_id, staff_id, store["lat"], store["lng"], at_ms, "channel"))

    async def of(self, customer_id: str) -> dict | None:
        async with self.engine.connect() as conn:
            r = (await conn.execute(sa.select(customer_locations).where(customer_locations.c.customer_id == customer_id))
                 ).mappings().first()
        return dict(r) if r else None
