"""The material library (issue 14): a material used three times shows three uses and the replies
that followed; images go to WeCom as temporary media once per 2.5 days; search, ranking, bad input."""
from __future__ import annotations

import time

from tests.test_customers import ingest, rec, token

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def test_three_uses_and_the_replies_that_followed(client, admin_headers, parts, fake_wecom):
    trainer = await token(client, admin_headers, "trainer")
    staff = await token(client, admin_headers, "staff", "zhangsan")
    resp = await client.post("/api/v1/materials", headers=trainer, json={
        "kind": "text", "title": "冬季保湿攻略", "content": "早晚各一次，洁面后先上精华再上面霜～", "tags": ["护肤", "冬季"]})
    assert resp.status == 201, await resp.text()
    mat = await resp.json()
    other = await (await client.post("/api/v1/materials", headers=trainer, json={
        "kind": "link", "title": "新品页", "content": "https://shop.example.com/new"})).json()
    conv = "p:wmREAD|zhangsan"
    t0 = int(time.time() * 1000)
    for _ in range(3):
        r = await client.post(f"/api/v1/materials/{mat['id']}/uses", json={"conversation_id": conv}, headers=staff)
        assert r.status == 200, await r.text()
    # the customer answers after the uses (within 24 h), and once asks to buy
    await ingest(client, admin_headers, parts, [rec("m1", "wmREAD", "好的谢谢，我试试", t=t0 + 60_000),
                                                rec("m2", "wmREAD", "那帮我下单一瓶面霜吧", t=t0 + 120_000)])
    got = await (await client.get(f"/api/v1/materials/{mat['id']}", headers=staff)).json()
    assert got["stats"] == {"uses": 3, "replies_24h": 3, "conversions_7d": 3}
    best = (await (await client.get("/api/v1/materials?sort=best", headers=staff)).json())["items"]
    assert [m["id"] for m in best] == [mat["id"], other["id"]]
    found = (await (await client.get("/api/v1/materials?q=保湿&tag=护肤", headers=staff)).json())["items"]
    assert [m["id"] for m in found] == [mat["id"]]


async def test_images_are_uploaded_once_and_again_after_expiry(client, admin_headers, parts, fake_wecom):
    trainer = await token(client, admin_headers, "trainer")
    img = await (await client.post("/api/v1/materials", json={"kind": "image", "title": "海报"}, headers=trainer)).json()
    resp = await client.put(f"/api/v1/materials/{img['id']}/file?name=poster.png", data=PNG,
                            headers={**trainer, "Content-Type": "image/png"})
    assert resp.status == 200 and (await resp.json())["has_file"]
    first = await (await client.post(f"/api/v1/materials/{img['id']}/uses", headers=trainer)).json()
    second = await (await client.post(f"/api/v1/materials/{img['id']}/uses", headers=trainer)).json()
    assert first["media_id"] == second["media_id"] and first["media_id"].startswith("media")
    parts.materials.clock = lambda: time.time() + 3 * 86400
    third = await (await client.post(f"/api/v1/materials/{img['id']}/uses", headers=trainer)).json()
    parts.materials.clock = time.time
    assert third["media_id"] != first["media_id"]
    uploads = [c for c in fake_wecom.calls if c[0] == "/cgi-bin/media/upload"]
    assert len(uploads) == 2 and uploads[0][1]["type"] == "image" and uploads[0][2] == {"filename": "poster.png"}
    bad = await client.put(f"/api/v1/materials/{img['id']}/file", data=b"x", headers={**trainer, "Content-Type": "text/plain"})
    assert bad.status == 415
    text = await (await client.post("/api/v1/materials", json={"kind": "text", "title": "t"}, headers=trainer)).json()
    assert (await client.put(f"/api/v1/materials/{text['id']}/file", data=PNG,
                             headers={**trainer, "Content-Type": "image/png"})).status == 400
    for body in ({"kind": "video", "title": "x"}, {"kind": "text", "title": ""}, {"kind": "text", "title": "x", "tags": ["a b"]}):
        assert (await client.post("/api/v1/materials", json=body, headers=trainer)).status == 400, body
    assert (await client.get("/api/v1/materials?sort=worst", headers=trainer)).status == 400
    assert (await client.post("/api/v1/materials/0123456789abcdef/uses", headers=trainer)).status == 404
