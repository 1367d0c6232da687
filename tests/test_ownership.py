"""Staff see only their own customers' conversations, and personal numbers in message texts are
masked for roles that do not need them (issue 11, finding 2)."""
from __future__ import annotations

import pytest

from bot.web.appkeys import COMPONENTS
from server import create_app, make_worker
from tests.test_archive import rec

PHONE, ID_CARD, CARD = "13812345678", "110101199003071234", "6222020200112233445"
PII_TEXT = f"我的电话{PHONE}，身份证{ID_CARD}，卡号{CARD}"
MINE, THEIRS, GROUP = "p:wmC1|zhangsan", "p:lisi|wmC2", "g:room1"


async def bearer(client, admin_headers, role, userid=None):
    body = {"role": role, "name": f"{role}-{userid}"}
    if userid:
        body["userid"] = userid
    resp = await client.post("/api/v1/tokens", json=body, headers=admin_headers)
    assert resp.status == 201, await resp.text()
    return {"Authorization": f"Bearer {(await resp.json())['token']}"}


async def seed(client, admin_headers, parts):
    items = [rec("a1", "wmC1", PII_TEXT, to="zhangsan", t=-40 * 86_400_000),
             rec("a2", "zhangsan", "好的收到", to="wmC1", t=-40 * 86_400_000 + 1),
             rec("b1", "wmC2", f"加我 {PHONE}", to="lisi", t=-40 * 86_400_000),
             rec("g1", "wmC3", "群里问一下", to="zhangsan", roomid="room1")]
    resp = await client.post("/api/v1/archive", json={"items": items}, headers=admin_headers)
    assert (await resp.json())["accepted"] == 4
    await make_worker(parts).drain()


async def test_a_staff_token_needs_its_userid(client, admin_headers):
    resp = await client.post("/api/v1/tokens", json={"role": "staff", "name": "s"}, headers=admin_headers)
    assert resp.status == 400 and "userid" in (await resp.json())["error"]["message"]
    listed = await (await client.get("/api/v1/tokens", headers=admin_headers)).json()
    assert listed["items"] == []
    await bearer(client, admin_headers, "staff", "zhangsan")
    listed = await (await client.get("/api/v1/tokens", headers=admin_headers)).json()
    assert listed["items"][0]["userid"] == "zhangsan"


async def test_staff_see_only_their_conversations(client, admin_headers, parts):
    await seed(client, admin_headers, parts)
    staff = await bearer(client, admin_headers, "staff", "zhangsan")
    resp = await client.get("/api/v1/conversations", headers=staff)
    assert resp.status == 200, await resp.text()
    assert {c["id"] for c in (await resp.json())["items"]} == {MINE, GROUP}
    assert (await client.get(f"/api/v1/conversations/{MINE}/messages", headers=staff)).status == 200
    assert (await client.get(f"/api/v1/conversations/{GROUP}/messages", headers=staff)).status == 200
    # someone else's conversation looks exactly like one that does not exist
    theirs = await client.get(f"/api/v1/conversations/{THEIRS}/messages", headers=staff)
    missing = await client.get("/api/v1/conversations/p:nobody|wmX/messages", headers=staff)
    assert theirs.status == missing.status == 404
    assert await theirs.json() == await missing.json()
    qa = await bearer(client, admin_headers, "qa")
    resp = await client.get("/api/v1/conversations", headers=qa)
    assert {c["id"] for c in (await resp.json())["items"]} == {MINE, THEIRS, GROUP}


async def test_dormant_analytics_respect_the_scope(client, admin_headers, parts):
    await seed(client, admin_headers, parts)
    staff = await bearer(client, admin_headers, "staff", "zhangsan")
    items = (await (await client.get("/api/v1/analytics/dormant?days=14", headers=staff)).json())["items"]
    assert {i["conversation_id"] for i in items} == {MINE}
    qa = await bearer(client, admin_headers, "qa")
    items = (await (await client.get("/api/v1/analytics/dormant?days=14", headers=qa)).json())["items"]
    assert {i["conversation_id"] for i in items} == {MINE, THEIRS}


async def test_personal_numbers_are_masked_for_staff_not_for_qa(client, admin_headers, parts):
    await seed(client, admin_headers, parts)
    staff = await bearer(client, admin_headers, "staff", "zhangsan")
    raw = await (await client.get(f"/api/v1/conversations/{MINE}/messages", headers=staff)).text()
    for number in (PHONE, ID_CARD, CARD):
        assert number not in raw
    body = await (await client.get(f"/api/v1/conversations/{MINE}/messages", headers=staff)).json()
    msg = next(m for m in body["items"] if m["msgid"] == "a1")
    assert msg["text"].startswith("我的电话") and "5678" in msg["text"] and "*" in msg["text"]
    assert len(msg["text"]) == len(PII_TEXT)  # same length: analysis offsets still point at the right place
    for hit in msg["analysis"]["sensitive"]:
        assert msg["text"][hit["start"]:hit["end"]] == hit["match"]
    qa = await bearer(client, admin_headers, "qa")
    body = await (await client.get(f"/api/v1/conversations/{MINE}/messages", headers=qa)).json()
    assert next(m for m in body["items"] if m["msgid"] == "a1")["text"] == PII_TEXT


async def test_unmasked_roles_are_configurable(aiohttp_client, settings, admin_headers):
    client = await aiohttp_client(create_app(settings.with_overrides(unmasked_roles=("admin",)), run_workers=False))
    await seed(client, admin_headers, client.app[COMPONENTS])
    qa = await bearer(client, admin_headers, "qa")
    raw = await (await client.get(f"/api/v1/conversations/{MINE}/messages", headers=qa)).text()
    assert PHONE not in raw
    flags = await (await client.get("/api/v1/flags", headers=qa)).text()
    assert PHONE not in flags and ID_CARD not in flags
    assert PHONE in await (await client.get(f"/api/v1/conversations/{MINE}/messages", headers=admin_headers)).text()


async def test_a_sidebar_session_from_wecom_oauth_is_that_staff_member(client, admin_headers, parts):
    await seed(client, admin_headers, parts)
    resp = await client.get("/sidebar/oauth", params={"code": "good-code"}, allow_redirects=False)
    assert resp.status == 302
    resp = await client.get("/api/v1/conversations")
    assert {c["id"] for c in (await resp.json())["items"]} == {MINE, GROUP}
    assert (await client.get(f"/api/v1/conversations/{THEIRS}/messages")).status == 404
    assert PHONE not in await (await client.get(f"/api/v1/conversations/{MINE}/messages")).text()


@pytest.mark.parametrize("role", ["staff"])
async def test_a_staff_session_without_userid_sees_nothing(client, parts, role):
    from bot.auth import Principal
    from bot.web.appkeys import SESSIONS
    from bot.web.sessions import COOKIE

    await parts.conversations.ingest([])
    sid, _ = await client.app[SESSIONS].create(Principal("wecom:old", "old session", role))
    client.session.cookie_jar.update_cookies({COOKIE: sid})
    resp = await client.get("/api/v1/conversations")
    assert resp.status == 200 and (await resp.json())["items"] == []


async def test_an_older_database_gets_the_userid_column(settings):
    import sqlalchemy as sa

    from storage.sql import create_schema, make_engine

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.sql_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("DROP TABLE IF EXISTS api_tokens"))
            await conn.execute(sa.text("CREATE TABLE api_tokens (id VARCHAR(32) PRIMARY KEY, name VARCHAR(200) NOT NULL, "
                                       "role VARCHAR(20) NOT NULL, token_hash VARCHAR(64) NOT NULL UNIQUE, "
                                       "created_at TIMESTAMP NOT NULL, created_by VARCHAR(200), revoked_at TIMESTAMP)"))
        await create_schema(engine)
        await create_schema(engine)  # idempotent
        async with engine.connect() as conn:
            cols = await conn.run_sync(lambda c: {col["name"] for col in sa.inspect(c).get_columns("api_tokens")})
        assert "userid" in cols
    finally:
        await engine.dispose()
