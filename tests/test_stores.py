"""Nearest stores (issue 14, SPEC §3.7): exact against a brute-force haversine over 10,000 stores
(speed: bench/stores_bench.py), refreshed in every process when stores change, and validated at the boundary."""
from __future__ import annotations

import asyncio
import random

import numpy as np

from bot.customers.stores import StoreDirectory, haversine_m


async def token(client, admin_headers, role, userid=None):
    body = {"role": role, "name": f"{role} one", **({"userid": userid} if userid else {})}
    resp = await client.post("/api/v1/tokens", json=body, headers=admin_headers)
    return {"Authorization": f"Bearer {(await resp.json())['token']}"}


async def test_nearest_matches_brute_force_over_10000_stores(client, admin_headers, parts):
    rng = random.Random(5)
    trainer = await token(client, admin_headers, "trainer")
    stores = [{"id": f"s{i}", "name": f"门店{i}", "lat": rng.uniform(18, 53), "lng": rng.uniform(73, 135)}
              for i in range(10_000)]
    resp = await client.post("/api/v1/stores", json={"items": stores}, headers=trainer)
    assert (await resp.json()) == {"accepted": 10_000, "errors": []}
    lat = np.array([s["lat"] for s in stores])
    lng = np.array([s["lng"] for s in stores])
    for _ in range(200):
        qlat, qlng = rng.uniform(18, 53), rng.uniform(73, 135)
        got = await parts.stores.nearest(qlat, qlng, 5)
        d = haversine_m(qlat, qlng, lat, lng)
        want = np.argsort(d)[:5]
        assert [g["id"] for g in got] == [f"s{i}" for i in want]
        assert all(abs(g["distance_m"] - d[i]) < 1.0 for g, i in zip(got, want))
    staff = await token(client, admin_headers, "staff", "zhangsan")
    body = await (await client.get("/api/v1/stores/nearest?lat=31.23&lng=121.47&k=2", headers=staff)).json()
    assert len(body["items"]) == 2 and body["items"][0]["distance_m"] <= body["items"][1]["distance_m"]


async def test_another_process_sees_new_stores_and_bad_input_is_refused(client, admin_headers, parts):
    trainer = await token(client, admin_headers, "trainer")
    other = StoreDirectory(parts.engine, parts.redis)  # as another process would hold it
    assert await other.nearest(31.2, 121.4) == []
    await client.post("/api/v1/stores", json={"items": [{"id": "sh1", "name": "南京西路店", "lat": 31.229, "lng": 121.455,
                                                         "hours": "10:00-22:00", "staff": ["zhangsan"]}]}, headers=trainer)
    await asyncio.sleep(1.05)  # another process looks at the version at most once a second
    assert [s["id"] for s in await other.nearest(31.2, 121.4)] == ["sh1"]
    bad = [{"id": "x", "name": "x", "lat": 91, "lng": 0}, {"id": "x", "name": "x", "lat": 0, "lng": "east"},
           {"id": "x y", "name": "x", "lat": 0, "lng": 0}, {"id": "x", "name": "x", "lat": 0, "lng": 0, "hours": "all day"}]
    body = await (await client.post("/api/v1/stores", json={"items": bad}, headers=trainer)).json()
    assert body["accepted"] == 0 and len(body["errors"]) == 4
    for q in ("lat=x&lng=1", "lat=1", "lat=nan&lng=1", "lat=1&lng=181", "lat=1&lng=1&k=0", "lat=1&lng=1&k=51"):
        assert (await client.get(f"/api/v1/stores/nearest?{q}", headers=trainer)).status == 400, q
    staff = await token(client, admin_headers, "staff", "zhangsan")
    assert (await client.post("/api/v1/stores", json={"items": bad[:1]}, headers=staff)).status == 403


async def test_a_location_message_finds_the_nearest_open_store_and_hands_the_customer_over_once(
        client, admin_headers, parts, fake_wecom):
    """COPILOT_STORE_ROUTING=transfer: a customer of zhangsan sends their location; the nearest store
    that is open is lisi's, so WeCom is asked once to hand the customer to lisi; a closed store
    nearer still is passed over; a store's own code (contact way state) places a new customer."""
    import time

    from bot.customers.stores import StoreInput
    from tests.helpers import contact_event_xml, sealed_request
    from tests.test_customers import ingest, token
    from server import make_worker

    await parts.stores.add([
        StoreInput(id="closed", name="夜里不开的店", lat=31.2301, lng=121.4451, hours="00:00-00:01", staff=["wangwu"]),
        StoreInput(id="jingan", name="静安店", lat=31.2245, lng=121.4460, hours="00:00-23:59", staff=["lisi"]),
        StoreInput(id="xuhui", name="徐汇店", lat=31.1880, lng=121.4365, staff=["zhaoliu"])])
    parts.store_router.mode = "transfer"
    now = int(time.time() * 1000)
    loc = {"msgid": "loc1", "action": "send", "from": "wmWALK", "tolist": ["zhangsan"], "msgtime": now,
           "msgtype": "location", "location": {"latitude": 31.2300, "longitude": 121.4450, "title": "静安寺", "address": "南京西路"}}
    await ingest(client, admin_headers, parts, [loc, {**loc, "msgid": "loc2", "msgtime": now + 1000}])
    calls = fake_wecom.bodies("/cgi-bin/externalcontact/transfer_customer")
    assert len(calls) == 1 and calls[0]["handover_userid"] == "zhangsan" and calls[0]["takeover_userid"] == "lisi"
    assert calls[0]["external_userid"] == ["wmWALK"]
    qa = await token(client, admin_headers, "qa")
    c = await (await client.get("/api/v1/customers/wmWALK", headers=qa)).json()
    assert c["nearest_store"]["store_id"] == "jingan" and c["nearest_store"]["routed_to"] == "lisi"
    # A new contact through the 徐汇店 code: placed there, and nobody is moved (already that store's staff).
    q, body = sealed_request(contact_event_xml(ext="wmXUHUI", state="xuhui", user="zhaoliu"))
    assert (await client.post("/wecom/callback", params=q, data=body)).status == 200
    await make_worker(parts).drain()
    c = await (await client.get("/api/v1/customers/wmXUHUI", headers=qa)).json()
    assert c["nearest_store"]["store_id"] == "xuhui" and c["nearest_store"]["source"] == "channel"
    assert c["nearest_store"]["routed_to"] is None and len(fake_wecom.bodies("/cgi-bin/externalcontact/transfer_customer")) == 1
