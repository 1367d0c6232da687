"""Bearer tokens and roles (docs/CONSOLE.md, "Who sees what")."""
from __future__ import annotations

import sqlalchemy as sa

from storage.sql import api_tokens


async def test_api_requires_token(client):
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer "}, {"Authorization": "Bearer nope"}):
        resp = await client.get("/api/v1/tokens", headers=headers)
        assert resp.status == 401
        assert (await resp.json())["error"]["code"] == "unauthorized"


async def test_admin_creates_role_tokens_stored_hashed(client, parts, admin_headers):
    resp = await client.post("/api/v1/tokens", json={"role": "staff", "name": "小王", "userid": "xiaowang"}, headers=admin_headers)
    assert resp.status == 201
    created = await resp.json()
    token = created["token"]
    assert created["role"] == "staff" and token.startswith("wcp_")
    async with parts.engine.connect() as conn:
        stored = (await conn.execute(sa.select(api_tokens.c.token_hash))).scalars().all()
    assert token not in stored and len(stored) == 1 and len(stored[0]) == 64
    # A staff token authenticates but may not manage tokens or channels.
    staff = {"Authorization": f"Bearer {token}"}
    for method, path in (("GET", "/api/v1/tokens"), ("POST", "/api/v1/tokens"), ("GET", "/api/v1/channels")):
        resp = await client.request(method, path, headers=staff, json={"role": "admin", "name": "x"})
        assert resp.status == 403, path
        assert (await resp.json())["error"]["code"] == "forbidden"


async def test_revoked_token_refused(client, parts, admin_headers):
    created = await (await client.post("/api/v1/tokens", json={"role": "qa", "name": "q"}, headers=admin_headers)).json()
    resp = await client.delete(f"/api/v1/tokens/{created['id']}", headers=admin_headers)
    assert resp.status == 200
    resp = await client.get("/api/v1/channels", headers={"Authorization": f"Bearer {created['token']}"})
    assert resp.status == 401
    assert (await client.delete(f"/api/v1/tokens/{created['id']}", headers=admin_headers)).status == 404


async def test_bad_token_requests(client, admin_headers):
    resp = await client.post("/api/v1/tokens", json={"role": "boss", "name": "x"}, headers=admin_headers)
    assert resp.status == 400 and "role" in (await resp.json())["error"]["message"]
    resp = await client.post("/api/v1/tokens", data="{not json", headers={**admin_headers, "Content-Type": "application/json"})
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "bad_json"
    resp = await client.post("/api/v1/tokens", data="x", headers={**admin_headers, "Content-Type": "text/plain"})
    assert resp.status == 415


async def test_unknown_api_path_is_json_404(client, admin_headers):
    resp = await client.get("/api/v1/nothing-here", headers=admin_headers)
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "not_found"


async def test_healthz_and_metrics_need_no_auth(client):
    resp = await client.get("/healthz")
    assert resp.status == 200 and (await resp.json())["status"] == "ok"
    resp = await client.get("/metrics")
    text = await resp.text()
    assert resp.status == 200
    assert 'copilot_http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in text
    assert 'copilot_queue_depth{state="length"}' in text


async def test_healthz_503_when_redis_down(client, parts, monkeypatch):
    async def down():
        raise ConnectionError("gone")

    monkeypatch.setattr(parts.redis, "ping", down)
    resp = await client.get("/healthz")
    assert resp.status == 503
    assert (await resp.json())["checks"]["redis"] == "ConnectionError"


def test_admin_token_generated_once(tmp_path):
    from bot.auth import load_or_create_admin_token

    token, created = load_or_create_admin_token(None, tmp_path)
    assert created and (tmp_path / "admin_token").stat().st_mode & 0o777 == 0o600
    assert load_or_create_admin_token(None, tmp_path) == (token, False)
    assert load_or_create_admin_token("from-env", tmp_path) == ("from-env", False)
