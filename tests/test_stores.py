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
