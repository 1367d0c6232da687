"""WeCom Customer Service auto-reply against the fake WeCom server."""
from __future__ import annotations

import time

from server import make_worker
from tests.helpers import sealed_request
from tests.wecom_fake import CORP_ID


def kf_event_xml(token: str = "ENC_TOKEN") -> str:
    return (f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><CreateTime>{int(time.time())}</CreateTime>"
            f"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[kf_msg_or_event]]></Event>"
            f"<Token><![CDATA[{token}]]></Token><OpenKfId><![CDATA[wkKF1]]></OpenKfId></xml>")


def kf_msg(i: int, text: str, origin: int = 3) -> dict:
    return {"msgid": f"kfm{i}", "open_kfid": "wkKF1", "external_userid": f"wmK{i}", "send_time": int(time.time()),
            "origin": origin, "msgtype": "text", "text": {"content": text}}


async def test_auto_reply_or_hand_over(aiohttp_client, settings, fake_wecom):
    from knowledge.scripts import ScriptInput
    from server import create_app
    from bot.web.appkeys import COMPONENTS

    client = await aiohttp_client(create_app(settings.with_overrides(kf_autoreply=True), run_workers=False))
    parts = client.app[COMPONENTS]
    await parts.knowledge.upsert([ScriptInput(id="ship", question="什么时候发货", reply="下午4点前付款当天发出")])
    fake_wecom.kf_messages = [kf_msg(1, "什么时候发货呀"), kf_msg(2, "质量太差了，我要投诉你们"),
                              kf_msg(3, "欢迎语", origin=5), kf_msg(4, "今天天气怎么样")]
    q, body = sealed_request(kf_event_xml())
    assert (await client.post("/wecom/callback", params=q, data=body)).status == 200
    await make_worker(parts).drain()
    sent = fake_wecom.bodies("/cgi-bin/kf/send_msg")
    assert sent == [{"touser": "wmK1", "open_kfid": "wkKF1", "msgtype": "text", "text": {"content": "下午4点前付款当天发出"}}]
    handed = [b["external_userid"] for b in fake_wecom.bodies("/cgi-bin/kf/service_state/trans")]
    assert handed == ["wmK2", "wmK4"]  # upset customer; nothing good enough to say
    assert await parts.redis.get("copilot:kf:cursor:wkKF1") == b"4"
    # recorded for QA, and the same event again handles nothing twice
    msgs, _ = await parts.conversations.list_messages("p:wkKF1|wmK1", None, 10)
    assert [m["text"] for m in msgs] == ["什么时候发货呀", "下午4点前付款当天发出"]
    await parts.redis.delete("copilot:kf:cursor:wkKF1")
    q, body = sealed_request(kf_event_xml(), nonce="again")
    await client.post("/wecom/callback", params=q, data=body)
    await make_worker(parts).drain()
    assert len(fake_wecom.bodies("/cgi-bin/kf/send_msg")) == 1


async def test_disabled_by_default(client, parts, fake_wecom):
    fake_wecom.kf_messages = [kf_msg(1, "什么时候发货呀")]
    q, body = sealed_request(kf_event_xml())
    await client.post("/wecom/callback", params=q, data=body)
    await make_worker(parts).drain()
    assert fake_wecom.bodies("/cgi-bin/kf/sync_msg") == []


async def test_kf_messages_are_stored_queued_and_analysed_once(aiohttp_client, settings, fake_wecom):
    """客服 records go through the one intake: stored AND queued, so the workers analyse them at
    once (no wait for the requeue job), and the customer's message is not analysed a second time."""
    import sqlalchemy as sa

    from bot.web.appkeys import COMPONENTS
    from server import create_app
    from storage.sql import analyses, messages

    client = await aiohttp_client(create_app(settings.with_overrides(kf_autoreply=True), run_workers=False))
    parts = client.app[COMPONENTS]
    analysed: list[str] = []
    analyze = parts.nlp.analyze

    async def counting(items):
        analysed.extend(i.text for i in items)
        return await analyze(items)

    parts.nlp.analyze = counting
    fake_wecom.kf_messages = [kf_msg(7, "质量太差了，我要投诉你们")]
    q, body = sealed_request(kf_event_xml())
    assert (await client.post("/wecom/callback", params=q, data=body)).status == 200
    await make_worker(parts).drain()
    async with parts.engine.connect() as conn:
        rows = (await conn.execute(sa.select(messages.c.msgid, messages.c.analyzed, messages.c.source))).all()
        stored_analyses = (await conn.execute(sa.select(analyses.c.msgid, analyses.c.intent))).all()
    assert [(r.msgid, r.analyzed, r.source) for r in rows] == [("kf:kfm7", True, "kf")]
    assert [(a.msgid, a.intent) for a in stored_analyses] == [("kf:kfm7", "complaint")]
    assert analysed == ["质量太差了，我要投诉你们"]  # once: the reply decision's analysis is the stored one
    assert await parts.pipeline.requeue_stale(parts.queue, older_than_ms=0) == 0
    assert await parts.queue.depth() == {"length": 0, "pending": 0, "dead": 0}
