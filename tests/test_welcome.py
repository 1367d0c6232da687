"""End to end: channel configured over the API, add_external_contact through the encrypted
callback, the worker sends the welcome and marks tags on the fake WeCom server."""
from __future__ import annotations

import time

from server import make_worker
from tests.helpers import contact_event_xml, sealed_request


async def add_channel(client, admin_headers, **body):
    resp = await client.post("/api/v1/channels", json=body, headers=admin_headers)
    assert resp.status in (200, 201), await resp.text()
    return await resp.json()


async def post_event(client, xml):
    q, body = sealed_request(xml)
    resp = await client.post("/wecom/callback", params=q, data=body)
    assert resp.status == 200


async def test_welcome_and_tags_for_channel(client, parts, fake_wecom, admin_headers):
    await add_channel(client, admin_headers, state="mall_2f", name="商场二楼活码", welcome_text="欢迎光临！", tag_ids=["etMALL", "et2F"])
    await post_event(client, contact_event_xml(state="mall_2f", welcome_code="WC123", ext="wmNEW"))
    await make_worker(parts).drain()
    assert fake_wecom.bodies("/cgi-bin/externalcontact/send_welcome_msg") == [
        {"welcome_code": "WC123", "text": {"content": "欢迎光临！"}}]
    assert fake_wecom.bodies("/cgi-bin/externalcontact/mark_tag") == [
        {"userid": "zhangsan", "external_userid": "wmNEW", "add_tag": ["etMALL", "et2F"], "remove_tag": []}]
    [log] = await parts.channels.welcome_history("wmNEW")
    assert log["welcome_sent"] and log["tags_marked"]


async def test_unknown_state_falls_back_to_default_channel(client, parts, fake_wecom, admin_headers):
    await add_channel(client, admin_headers, state="default", name="默认", welcome_text="你好", tag_ids=[])
    await post_event(client, contact_event_xml(state="nope", welcome_code="WC9", ext="wmD"))
    await make_worker(parts).drain()
    assert fake_wecom.bodies("/cgi-bin/externalcontact/send_welcome_msg")[0]["text"]["content"] == "你好"
    assert fake_wecom.bodies("/cgi-bin/externalcontact/mark_tag") == []


async def test_expired_welcome_code_skips_welcome_but_tags(client, parts, fake_wecom, admin_headers, settings):
    # The event is accepted (clock-skew applies to the callback's timestamp, not CreateTime) …
    await add_channel(client, admin_headers, state="s1", name="n", welcome_text="hi", tag_ids=["et1"])
    await post_event(client, contact_event_xml(state="s1", welcome_code="OLD", ext="wmOLD", create_time=int(time.time()) - 60))
    await make_worker(parts).drain()
    # … but its welcome code is past WeCom's 20-second window.
    assert fake_wecom.bodies("/cgi-bin/externalcontact/send_welcome_msg") == []
    assert len(fake_wecom.bodies("/cgi-bin/externalcontact/mark_tag")) == 1
    [log] = await parts.channels.welcome_history("wmOLD")
    assert not log["welcome_sent"] and "expired" in log["detail"]


async def test_wecom_down_for_tags_is_retried_without_double_welcome(client, parts, fake_wecom, admin_headers):
    await add_channel(client, admin_headers, state="s2", name="n", welcome_text="hi", tag_ids=["et1"])
    fake_wecom.fail_next("/cgi-bin/externalcontact/mark_tag", "http500", "http500", "http500")
    await post_event(client, contact_event_xml(state="s2", welcome_code="WC2", ext="wmR"))
    worker = make_worker(parts)
    worker.claim_idle_ms = 0
    await worker.drain()
    marked = [b for b in fake_wecom.bodies("/cgi-bin/externalcontact/mark_tag")]
    assert len(marked) == 4  # 3 failures (1 try + 2 retries), then the worker's retry succeeded
    welcomes = fake_wecom.bodies("/cgi-bin/externalcontact/send_welcome_msg")
    assert len(welcomes) == 2  # the retry's second send was refused by WeCom (code used): one greeting
    history = await parts.channels.welcome_history("wmR")
    assert history[-1]["tags_marked"] and not history[-1]["welcome_sent"]


async def test_channel_api_validation(client, admin_headers):
    resp = await client.post("/api/v1/channels", json={"state": "x" * 31, "name": "n"}, headers=admin_headers)
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "invalid_request"
    resp = await client.post("/api/v1/channels", json={"state": "ok", "name": "n", "bogus": 1}, headers=admin_headers)
    assert resp.status == 400
    await add_channel(client, admin_headers, state="ok", name="v1", tag_ids=["a"])
    updated = await add_channel(client, admin_headers, state="ok", name="v2", tag_ids=["b"])
    assert updated["name"] == "v2"
    items = (await (await client.get("/api/v1/channels", headers=admin_headers)).json())["items"]
    assert [(c["state"], c["name"], c["tag_ids"]) for c in items] == [("ok", "v2", ["b"])]
