"""The outbound client against the local fake WeCom server."""
from __future__ import annotations

import asyncio

import aiohttp
import pytest

from bot.wecom_api import WeComAPIError, WeComClient, WeComUnavailable
from tests.wecom_fake import CORP_ID


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as s:
        yield s


def make(fake, parts, session, **kw) -> WeComClient:
    return WeComClient(session, parts.redis, fake.base_url, CORP_ID, kw.pop("secret", "app-secret"),
                       agent_id="1000002", retries=kw.pop("retries", 2), backoff_base=0.01, timeout=2, **kw)


async def test_token_fetched_once_and_shared_across_clients(fake_wecom, parts, session):
    a, b = make(fake_wecom, parts, session), make(fake_wecom, parts, session)
    await asyncio.gather(*(c.send_app_text("zhangsan", "hi") for c in (a, b) for _ in range(5)))
    assert fake_wecom.token_requests == 1
    sent = fake_wecom.bodies("/cgi-bin/message/send")
    assert len(sent) == 10 and sent[0] == {"touser": "zhangsan", "msgtype": "text", "agentid": 1000002, "text": {"content": "hi"}}


async def test_token_cached_with_margin_before_expiry(fake_wecom, parts, session):
    await make(fake_wecom, parts, session).send_app_text("u", "x")
    ttl = await parts.redis.ttl(f"copilot:wecom:access_token:{CORP_ID}:1000002")
    assert 6800 < ttl <= 6900


async def test_expired_token_refreshed_once_and_call_retried(fake_wecom, parts, session):
    client = make(fake_wecom, parts, session)
    await client.send_app_text("u", "first")
    fake_wecom.expire_all()  # WeCom invalidated it early (42001 on the next call)
    await client.send_app_text("u", "second")
    assert fake_wecom.token_requests == 2
    calls = [(q["access_token"], b["text"]["content"]) for p, q, b in fake_wecom.calls if p == "/cgi-bin/message/send"]
    # the rejected attempt with the old token, then the retry with the new one
    assert calls == [("tok1", "first"), ("tok1", "second"), ("tok2", "second")]


@pytest.mark.parametrize("errcode", [40014, 40001])
async def test_invalid_token_errcodes_refresh(fake_wecom, parts, session, errcode):
    client = make(fake_wecom, parts, session)
    await client.access_token()
    fake_wecom.fail_next("/cgi-bin/externalcontact/mark_tag", errcode)
    await client.mark_tag("zhangsan", "wmX", ["et1"])
    assert fake_wecom.token_requests == 2
    assert fake_wecom.bodies("/cgi-bin/externalcontact/mark_tag")[-1]["add_tag"] == ["et1"]


async def test_only_one_refresh_per_call(fake_wecom, parts, session):
    client = make(fake_wecom, parts, session)
    fake_wecom.fail_next("/cgi-bin/message/send", 42001, 42001)
    with pytest.raises(WeComAPIError) as err:
        await client.send_app_text("u", "x")
    assert err.value.errcode == 42001


async def test_busy_and_network_errors_retried(fake_wecom, parts, session):
    client = make(fake_wecom, parts, session)
    fake_wecom.fail_next("/cgi-bin/externalcontact/send_welcome_msg", -1, "http500")
    await client.send_welcome_msg("CODE1", "欢迎")
    assert len(fake_wecom.bodies("/cgi-bin/externalcontact/send_welcome_msg")) == 3


async def test_gives_up_after_retries(fake_wecom, parts, session):
    client = make(fake_wecom, parts, session, retries=1)
    fake_wecom.fail_next("/cgi-bin/message/send", "drop", "drop", "drop")
    with pytest.raises(WeComUnavailable):
        await client.send_app_text("u", "x")


async def test_other_errcode_is_typed_error(fake_wecom, parts, session):
    client = make(fake_wecom, parts, session)
    with pytest.raises(WeComAPIError) as err:
        await client.get_external_contact("not-external")
    assert err.value.errcode == 84061 and "externalcontact/get" in err.value.path
    ok = await client.get_external_contact("wmABC")
    assert ok["external_contact"]["external_userid"] == "wmABC"


async def test_bad_secret_surfaces(fake_wecom, parts, session):
    client = make(fake_wecom, parts, session, secret="wrong")
    with pytest.raises(WeComAPIError) as err:
        await client.send_app_text("u", "x")
    assert err.value.errcode == 40001


async def test_unreachable_server(parts, session):
    client = WeComClient(session, parts.redis, "http://127.0.0.1:9", CORP_ID, "s", agent_id="1", retries=1,
                         backoff_base=0.01, timeout=1)
    with pytest.raises(WeComUnavailable):
        await client.send_app_text("u", "x")
