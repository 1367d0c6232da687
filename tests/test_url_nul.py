"""A NUL in a path segment or query parameter answers 400 on every API route (found by the
reliability harness, docs/RELIABILITY.md: on PostgreSQL each of these was a 500 from asyncpg)."""
from __future__ import annotations

import pytest

from tests.conftest import ADMIN

H = {"Authorization": f"Bearer {ADMIN}"}

URLS = [
    ("GET", "/api/v1/scripts?cursor=%00"),
    ("GET", "/api/v1/scripts?q=a%00b"),
    ("GET", "/api/v1/scripts?tag=%00"),
    ("GET", "/api/v1/conversations?staff=%00"),
    ("GET", "/api/v1/conversations/%00/messages"),
    ("GET", "/api/v1/flags?reason=%00"),
    ("GET", "/api/v1/flags?conversation_id=%00"),
    ("GET", "/api/v1/relays?chat_id=%00"),
    ("GET", "/api/v1/relays/%00"),
    ("DELETE", "/api/v1/tokens/%00"),
    ("GET", "/api/v1/scripts?%00=1"),
]


@pytest.mark.parametrize("method,url", URLS)
async def test_nul_in_url_is_400(client, method, url):
    r = await client.request(method, url, headers=H)
    assert r.status == 400, await r.text()
    assert (await r.json())["error"]["code"] == "invalid_request"


async def test_service_still_answers_after(client):
    for method, url in URLS:
        await client.request(method, url, headers=H)
    r = await client.get("/api/v1/scripts", headers=H)
    assert r.status == 200
