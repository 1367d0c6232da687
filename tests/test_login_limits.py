"""/console/login refuses bad bodies with 4xx and no traceback; failed token attempts are limited
per address and globally, in Redis (issue 11, finding 3)."""
from __future__ import annotations

import logging

import aiohttp
import pytest

from bot.auth_limits import FailureLimiter
from bot.web.appkeys import REDIS
from server import create_app


@pytest.mark.parametrize("body,ctype,status,code", [
    (b'{"token": ', "application/json", 400, "bad_json"),
    (b"[" * 50_000 + b"]" * 50_000, "application/json", 413, "too_large"),
    (b'{"token": ' * 40 + b'"x"' + b"}" * 40, "application/json", 400, "bad_json"),
    (b"\xff\xfe", "application/json", 400, "bad_json"),
    (b'["token"]', "application/json", 401, "unauthorized"),
    (b'{"token": 12}', "application/json", 401, "unauthorized"),
    (b"token=%ff%fe", "application/x-www-form-urlencoded", 401, "unauthorized"),
    (b"token=" + b"x" * 100_000, "application/x-www-form-urlencoded", 413, "too_large"),
    (b"--b\r\nContent-Disposition: form-data; name=token\r\n\r\nx\r\n--b--\r\n", "multipart/form-data; boundary=b",
     415, "unsupported_media_type"),
    (b"--b\r\nbroken", "multipart/form-data; boundary=b", 415, "unsupported_media_type"),
    (b"token=x", "text/plain", 415, "unsupported_media_type"),
], ids=["truncated", "oversize", "nested", "not-utf8", "list", "number", "form-bad-escapes", "form-oversize",
        "multipart", "broken-multipart", "text"])
async def test_login_refuses_bad_bodies_without_a_traceback(client, caplog, body, ctype, status, code):
    caplog.set_level(logging.INFO)
    resp = await client.post("/console/login", data=body, headers={"Content-Type": ctype})
    assert resp.status == status, await resp.text()
    assert (await resp.json())["error"]["code"] == code
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_login_with_a_form_still_works(client, admin_headers):
    created = await (await client.post("/api/v1/tokens", json={"role": "qa", "name": "q"}, headers=admin_headers)).json()
    resp = await client.post("/console/login", data={"token": created["token"]})
    assert resp.status == 200 and (await resp.json())["role"] == "qa"


@pytest.fixture
async def limited(aiohttp_client, settings):
    return await aiohttp_client(create_app(settings.with_overrides(auth_failures_per_ip=3, auth_failures_global=1000),
                                           run_workers=False))


async def test_failed_logins_per_address_answer_429_with_retry_after(limited):
    for _ in range(3):
        assert (await limited.post("/console/login", json={"token": "guess"})).status == 401
    resp = await limited.post("/console/login", json={"token": "guess"})
    assert resp.status == 429
    assert 1 <= int(resp.headers["Retry-After"]) <= 60
    assert (await resp.json())["error"]["code"] == "rate_limited"
    # the right token from the same address waits too: the limit is checked before the token
    resp = await limited.post("/console/login", json={"token": "test-admin-token-0123456789"})
    assert resp.status == 429


async def test_failed_bearer_tokens_on_the_api_are_limited_too(limited):
    for _ in range(3):
        assert (await limited.get("/api/v1/scripts", headers={"Authorization": "Bearer nope"})).status == 401
    resp = await limited.get("/api/v1/scripts", headers={"Authorization": "Bearer nope"})
    assert resp.status == 429 and "Retry-After" in resp.headers
    assert (await limited.post("/console/login", json={"token": "guess"})).status == 429  # one budget


async def test_a_known_good_token_is_not_slowed_by_the_limiter(limited, admin_headers):
    assert (await limited.get("/api/v1/scripts", headers=admin_headers)).status == 200
    for _ in range(5):
        await limited.get("/api/v1/scripts", headers={"Authorization": "Bearer nope"})
    assert (await limited.get("/api/v1/scripts", headers=admin_headers)).status == 200  # cached as valid


async def test_the_global_limit_is_shared_through_redis(aiohttp_client, settings):
    app = create_app(settings.with_overrides(auth_failures_per_ip=1000, auth_failures_global=4), run_workers=False)
    client = await aiohttp_client(app)
    for _ in range(4):
        assert (await client.post("/console/login", json={"token": "guess"})).status == 401
    assert (await client.post("/console/login", json={"token": "guess"})).status == 429
    # another process (another limiter on the same Redis) sees the same count
    other = FailureLimiter(client.app[REDIS], per_ip=1000, global_=4, window=60)
    assert await other.retry_after("10.9.9.9") is not None


async def test_login_over_real_http_is_limited(aiohttp_server, settings):
    server = await aiohttp_server(create_app(settings.with_overrides(auth_failures_per_ip=2), run_workers=False))
    async with aiohttp.ClientSession() as s:
        statuses = []
        for _ in range(4):
            async with s.post(str(server.make_url("/console/login")), json={"token": "x"}) as r:
                statuses.append(r.status)
    assert statuses == [401, 401, 429, 429]
