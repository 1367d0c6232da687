"""Fission campaigns (issue 14): a participant's code brings three new contacts through the
encrypted callback, one deletes within the window, and the leaderboard counts two; self-invites,
old customers and repeated accounts do not count; claims need the tier."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from server import make_worker
from tests.helpers import contact_event_xml, sealed_request


async def token(client, admin_headers, role, userid=None):
    body = {"role": role, "name": f"{role} one", **({"userid": userid} if userid else {})}
    resp = await client.post("/api/v1/tokens", json=body, headers=admin_headers)
    return {"Authorization": f"Bearer {(await resp.json())['token']}"}


async def event(client, **kw):
    q, body = sealed_request(contact_event_xml(**kw))
    assert (await client.post("/wecom/callback", params=q, data=body)).status == 200


async def test_three_adds_one_deleted_in_the_window_the_leaderboard_counts_two(client, admin_headers, parts, fake_wecom):
    trainer = await token(client, admin_headers, "trainer")
    staff = await token(client, admin_headers, "staff", "zhangsan")
    now = datetime.now(timezone.utc)
    resp = await client.post("/api/v1/fission", headers=trainer, json={
        "name": "老带新", "starts_at": (now - timedelta(days=1)).isoformat(), "ends_at": (now + timedelta(days=7)).isoformat(),
        "retain_hours": 1, "staff": ["zhangsan"],
        "reward_tiers": [{"invites": 2, "reward": "小样一份"}, {"invites": 5, "reward": "正装一瓶"}]})
    assert resp.status == 201, await resp.text()
    fid = (await resp.json())["id"]
    # an old customer exists before the campaign
    await event(client, ext="wmOLD", create_time=int(time.time()) - 86400 * 30)
    code = await (await client.post(f"/api/v1/fission/{fid}/participants", json={"customer_id": "wmHOST"},
                                    headers=staff)).json()
    again = await (await client.post(f"/api/v1/fission/{fid}/participants", json={"customer_id": "wmHOST"},
                                     headers=staff)).json()
    assert code == again and len(code["state"]) <= 30 and code["qr_code"].startswith("https://")
    assert fake_wecom.bodies("/cgi-bin/externalcontact/add_contact_way")[-1]["state"] == code["state"]
    t0 = int(time.time()) - 3 * 3600
    for ext in ("wmF1", "wmF2", "wmF3", "wmHOST", "wmOLD"):
        await event(client, ext=ext, state=code["state"], create_time=t0)
    await event(client, ext="wmF1", state=code["state"], user="lisi", create_time=t0 + 60)  # the same friend again
    await event(client, change="del_follow_user", ext="wmF2", create_time=t0 + 1800)      # gone within the hour
    await make_worker(parts).drain()
    board = (await (await client.get(f"/api/v1/fission/{fid}/leaderboard", headers=staff)).json())["items"]
    assert board == [{"participant_id": "wmHOST", "counted": 2, "pending": 0, "rejected": 3,
                      "tier": {"invites": 2, "reward": "小样一份"}, "claimed": []}]
    camp = await (await client.get(f"/api/v1/fission/{fid}", headers=trainer)).json()
    assert camp["funnel"] == {"participants": 1, "adds": 5, "retained": 2, "converted": 0}
    ok = await client.post(f"/api/v1/fission/{fid}/claims", json={"participant_id": "wmHOST", "tier": 2}, headers=trainer)
    assert ok.status == 200
    no = await client.post(f"/api/v1/fission/{fid}/claims", json={"participant_id": "wmHOST", "tier": 5}, headers=trainer)
    assert no.status == 409 and (await no.json())["error"]["code"] == "tier_not_reached"
    board = (await (await client.get(f"/api/v1/fission/{fid}/leaderboard", headers=staff)).json())["items"]
    assert board[0]["claimed"] == [2]


async def test_fission_inputs_are_validated(client, admin_headers):
    trainer = await token(client, admin_headers, "trainer")
    now = datetime.now(timezone.utc)
    good = {"name": "x", "starts_at": now.isoformat(), "ends_at": (now + timedelta(days=1)).isoformat(),
            "staff": ["zhangsan"], "reward_tiers": [{"invites": 1, "reward": "r"}]}
    for bad in ({**good, "ends_at": now.isoformat()}, {**good, "starts_at": "2026-12-01T10:00:00"},
                {**good, "reward_tiers": []}, {**good, "staff": []}, {**good, "retain_hours": -1},
                {**good, "reward_tiers": [{"invites": 1, "reward": "a"}, {"invites": 1, "reward": "b"}]}):
        assert (await client.post("/api/v1/fission", json=bad, headers=trainer)).status == 400, bad
    assert (await client.get("/api/v1/fission/zzzzzzzz", headers=trainer)).status == 404
    assert (await client.get("/api/v1/fission/0123abcd/leaderboard", headers=trainer)).status == 404
    fid = (await (await client.post("/api/v1/fission", json=good, headers=trainer)).json())["id"]
    assert (await client.post(f"/api/v1/fission/{fid}/participants", json={"customer_id": "zhangsan"},
                              headers=trainer)).status == 400
