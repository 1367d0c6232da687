"""The callback endpoint through real HTTP: verification, acceptance, de-duplication, bad input."""
from __future__ import annotations

import time

import pytest

from bot.gateway.crypto import signature
from tests.helpers import TOKEN, contact_event_xml, crypto, sealed_request, text_xml


async def stream_len(parts) -> int:
    return await parts.redis.xlen(parts.settings.stream_name)


def rejected(parts, reason: str) -> float:
    return parts.metrics.callback_rejected.labels(reason)._value.get()


async def test_url_verification_replies_plain_echostr(client):
    c = crypto()
    echostr = c.encrypt("1616140317555161061")
    ts = str(int(time.time()))
    q = {"msg_signature": signature(TOKEN, ts, "n1", echostr), "timestamp": ts, "nonce": "n1", "echostr": echostr}
    resp = await client.get("/wecom/callback", params=q)
    assert resp.status == 200
    assert resp.content_type == "text/plain"
    assert await resp.text() == "1616140317555161061"


async def test_url_verification_bad_signature(client, parts):
    echostr = crypto().encrypt("123")
    ts = str(int(time.time()))
    resp = await client.get("/wecom/callback", params={"msg_signature": "0" * 40, "timestamp": ts, "nonce": "n", "echostr": echostr})
    assert resp.status == 403
    assert rejected(parts, "signature") == 1


async def test_missing_params_is_400(client):
    resp = await client.get("/wecom/callback", params={"timestamp": "1"})
    assert resp.status == 400
    assert "msg_signature" in await resp.text()


async def test_text_message_acked_and_enqueued_once(client, parts):
    q, body = sealed_request(text_xml("你好，想问下价格", msg_id="1234567890"))
    t0 = time.perf_counter()
    resp = await client.post("/wecom/callback", params=q, data=body)
    assert resp.status == 200 and await resp.text() == "success"
    assert time.perf_counter() - t0 < 1.0
    assert await stream_len(parts) == 1
    # WeCom retries the same message (new nonce/timestamp/ciphertext): still acked, not queued again.
    q2, body2 = sealed_request(text_xml("你好，想问下价格", msg_id="1234567890"), nonce="retry")
    resp = await client.post("/wecom/callback", params=q2, data=body2)
    assert resp.status == 200 and await resp.text() == "success"
    assert await stream_len(parts) == 1
    assert parts.metrics.callbacks.labels("duplicate")._value.get() == 1
    entries = await parts.queue.read("t", 10, 1)
    env = entries[0].envelope
    assert env.kind == "text" and env.fields["Content"] == "你好，想问下价格" and env.source == "callback"


async def test_two_events_in_same_second_both_enqueued(client, parts):
    now = int(time.time())
    for ext in ("wmAAA", "wmBBB"):
        q, body = sealed_request(contact_event_xml(ext=ext, create_time=now))
        assert (await client.post("/wecom/callback", params=q, data=body)).status == 200
    assert await stream_len(parts) == 2
    # …while the identical event retried is one.
    q, body = sealed_request(contact_event_xml(ext="wmAAA", create_time=now), nonce="again")
    assert (await client.post("/wecom/callback", params=q, data=body)).status == 200
    assert await stream_len(parts) == 2


async def test_unknown_type_is_acked(client, parts):
    xml = "<xml><ToUserName>x</ToUserName><MsgType>hologram</MsgType><MsgId>99</MsgId><CreateTime>1</CreateTime></xml>"
    q, body = sealed_request(xml)
    resp = await client.post("/wecom/callback", params=q, data=body)
    assert resp.status == 200
    assert await stream_len(parts) == 1


async def test_wrong_signature_403_nothing_enqueued(client, parts):
    q, body = sealed_request(text_xml("hi"))
    q["msg_signature"] = "f" * 40
    resp = await client.post("/wecom/callback", params=q, data=body)
    assert resp.status == 403
    assert await stream_len(parts) == 0
    assert rejected(parts, "signature") == 1


async def test_stale_timestamp_403(client, parts):
    q, body = sealed_request(text_xml("hi"), timestamp=str(int(time.time()) - 3600))
    resp = await client.post("/wecom/callback", params=q, data=body)
    assert resp.status == 403
    assert rejected(parts, "timestamp") == 1
    assert await stream_len(parts) == 0


async def test_receiveid_mismatch_403(client, parts):
    q, body = sealed_request(text_xml("hi"), c=crypto("wwOTHERCORP"))
    resp = await client.post("/wecom/callback", params=q, data=body)
    assert resp.status == 403
    assert rejected(parts, "receiveid") == 1
    assert await stream_len(parts) == 0


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<xml><Encrypt>&lol3;</Encrypt></xml>"""
XXE = """<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><Encrypt>&e;</Encrypt></xml>"""


@pytest.mark.parametrize("body", [BILLION_LAUGHS, XXE, "not xml at all", "<xml><Encrypt>abc", "<html></html>",
                                  "<xml><ToUserName>x</ToUserName></xml>"])
async def test_hostile_or_malformed_outer_xml_400(client, parts, body):
    resp = await client.post("/wecom/callback", params={"msg_signature": "a", "timestamp": "1", "nonce": "n"}, data=body)
    assert resp.status == 400
    assert await stream_len(parts) == 0


async def test_hostile_inner_xml_400(client, parts):
    q, body = sealed_request(BILLION_LAUGHS.replace("<Encrypt>&lol3;</Encrypt>", "<Content>&lol3;</Content>"))
    resp = await client.post("/wecom/callback", params=q, data=body)
    assert resp.status == 400
    assert await stream_len(parts) == 0


async def test_oversized_body_413(client, parts):
    body = "<xml><Encrypt>" + "A" * (1 << 20) + "</Encrypt></xml>"
    resp = await client.post("/wecom/callback", params={"msg_signature": "a", "timestamp": "1", "nonce": "n"}, data=body)
    assert resp.status == 413
    assert await stream_len(parts) == 0


async def test_redis_down_is_503_not_success(client, parts, monkeypatch):
    from redis.exceptions import ConnectionError as RedisConnectionError

    async def boom(*_a, **_k):
        raise RedisConnectionError("down")

    monkeypatch.setattr(parts.queue, "accept", boom)
    q, body = sealed_request(text_xml("hi"))
    resp = await client.post("/wecom/callback", params=q, data=body)
    assert resp.status == 503  # not acknowledged, so WeCom retries


async def test_callback_not_configured_503(aiohttp_client, settings):
    from server import create_app

    app = create_app(settings.with_overrides(wecom_token=None), run_workers=False)
    cl = await aiohttp_client(app)
    resp = await cl.post("/wecom/callback", params={"msg_signature": "a", "timestamp": "1", "nonce": "n"}, data="<xml/>")
    assert resp.status == 503
