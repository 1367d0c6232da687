"""Console sessions, CSRF, WeCom OAuth for the sidebar and the JS-SDK signature."""
from __future__ import annotations

import hashlib


async def test_login_session_csrf_logout(client, admin_headers):
    token = (await (await client.post("/api/v1/tokens", json={"role": "trainer", "name": "t"}, headers=admin_headers)).json())["token"]
    assert (await client.post("/console/login", json={"token": "wrong"})).status == 401
    resp = await client.post("/console/login", json={"token": token})
    body = await resp.json()
    assert body["role"] == "trainer" and body["csrf"]
    cookie = resp.cookies["copilot_session"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict"
    # the cookie authenticates API reads; writes need the CSRF token
    assert (await client.get("/api/v1/scripts")).status == 200
    assert (await client.post("/api/v1/scripts", json={"question": "q", "reply": "r"})).status == 403
    ok = await client.post("/api/v1/scripts", json={"question": "q", "reply": "r"}, headers={"X-CSRF-Token": body["csrf"]})
    assert ok.status == 201
    assert (await client.post("/console/logout")).status == 403
    assert (await client.post("/console/logout", headers={"X-CSRF-Token": body["csrf"]})).status == 200
    assert (await client.get("/api/v1/scripts")).status == 401


async def test_pages_are_served_with_csp(client):
    for path in ("/console", "/sidebar"):
        resp = await client.get(path)
        assert resp.status == 200 and "text/html" in resp.content_type
        assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
        assert "cdn" not in (await resp.text()).lower()
    assert (await client.get("/static/common.js")).status == 200


async def test_sidebar_oauth_and_jsconfig(client, fake_wecom):
    resp = await client.get("/sidebar/oauth", params={"code": "good-code"}, allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"].startswith("/sidebar")
    session = await (await client.get("/console/session")).json()
    assert session["name"] == "zhangsan" and session["role"] == "staff"
    resp = await client.get("/api/v1/sidebar/jsconfig", params={"url": "https://copilot.example.com/sidebar?x=1#frag"})
    cfg = await resp.json()
    expected = hashlib.sha1(f"jsapi_ticket=agent-ticket-1&noncestr={cfg['nonceStr']}&timestamp={cfg['timestamp']}"
                            f"&url=https://copilot.example.com/sidebar?x=1".encode()).hexdigest()
    assert cfg["signature"] == expected and cfg["agentid"] == "1000002"
    await client.get("/api/v1/sidebar/jsconfig", params={"url": "https://copilot.example.com/sidebar"})
    assert len(fake_wecom.bodies("/cgi-bin/ticket/get")) == 1  # cached
    assert (await client.get("/api/v1/sidebar/jsconfig", params={"url": "javascript:x"})).status == 400


async def test_jsconfig_when_wecom_refuses_the_ticket_is_a_clear_502(client, fake_wecom):
    await client.get("/sidebar/oauth", params={"code": "good-code"}, allow_redirects=False)
    fake_wecom.fail_next("/cgi-bin/ticket/get", 48002)  # e.g. the API is not enabled for the app
    resp = await client.get("/api/v1/sidebar/jsconfig", params={"url": "https://copilot.example.com/sidebar"})
    assert resp.status == 502 and (await resp.json())["error"]["code"] == "wecom_unavailable"


async def test_oauth_with_a_bad_code_is_refused(client):
    resp = await client.get("/sidebar/oauth", params={"code": "bad"}, allow_redirects=False)
    assert resp.status == 403 and "login code" in await resp.text()
    assert (await client.get("/console/session")).status == 401


async def test_revoking_a_token_ends_its_sessions(client, admin_headers):
    created = await (await client.post("/api/v1/tokens", json={"role": "qa", "name": "q"}, headers=admin_headers)).json()
    await client.post("/console/login", json={"token": created["token"]})
    assert (await client.get("/api/v1/flags")).status == 200
    await client.delete(f"/api/v1/tokens/{created['id']}", headers=admin_headers)
    assert (await client.get("/api/v1/flags")).status == 401
