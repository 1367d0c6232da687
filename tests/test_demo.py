"""`--demo` (issue 17): the sample brand on every page, through the real intake; idempotent;
refuses to mix with other data."""
from __future__ import annotations

import pytest

from bot.demo import DemoRefused, load_demo
from server import make_worker


async def counts(client, headers):
    async def n(path):
        return len((await (await client.get(path, headers=headers)).json())["items"])

    days = (await (await client.get("/api/v1/analytics/daily?days=14", headers=headers)).json())["items"]
    relays = (await (await client.get("/api/v1/relays?status=open", headers=headers)).json())["items"]
    return {"scripts": await n("/api/v1/scripts?limit=200"), "conversations": await n("/api/v1/conversations?limit=200"),
            "flags": await n("/api/v1/flags?status=open&limit=200"),
            "days": sum(1 for d in days if d.get("messages")), "open_relays": len(relays)}


async def test_demo_loads_every_page_once_and_refuses_foreign_data(client, parts, admin_headers):
    summary = await load_demo(parts)
    assert summary is not None and summary["scripts"] >= 60
    await make_worker(parts).drain()
    got = await counts(client, admin_headers)
    assert got["scripts"] >= 60 and got["conversations"] >= 100 and got["flags"] >= 5, got
    assert got["days"] >= 7 and got["open_relays"] >= 1, got
    relay = (await (await client.get("/api/v1/relays?status=open", headers=admin_headers)).json())["items"][0]
    state = await (await client.get(f"/api/v1/relays/{relay['id']}", headers=admin_headers)).json()
    assert state["entries"] and state["waitlist"]
    for q in ("我买的东西怎么还没到", "收到的是坏的 能退吗"):
        body = await (await client.post("/api/v1/suggestions", json={"text": q}, headers=admin_headers)).json()
        assert body["suggestions"], q
    assert await load_demo(parts) is None  # a second start adds nothing
    assert await counts(client, admin_headers) == got
    info = await (await client.get("/api/v1/demo", headers=admin_headers)).json()
    assert info["demo"] and set(info["tokens"]) == {"qa", "trainer", "staff"}


async def test_demo_refuses_a_store_with_other_data(client, parts, admin_headers):
    resp = await client.post("/api/v1/scripts", json={"question": "q", "reply": "r"}, headers=admin_headers)
    assert resp.status == 201
    with pytest.raises(DemoRefused):
        await load_demo(parts)
