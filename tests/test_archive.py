"""Archive ingestion → pipeline → flags → QA API, end to end on the real stores."""
from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from storage.sql import analyses, flags, messages
from server import make_worker

NOW = int(time.time() * 1000)


def rec(msgid, sender, text=None, to="zhangsan", roomid="", t=0, msgtype="text", action="send", **extra):
    r = {"msgid": msgid, "action": action, "from": sender, "tolist": [to], "roomid": roomid, "msgtime": NOW + t,
         "msgtype": msgtype, **extra}
    if text is not None:
        r["text"] = {"content": text}
    return r


@pytest.fixture
async def qa(client, admin_headers):
    resp = await client.post("/api/v1/tokens", json={"role": "qa", "name": "质检小李"}, headers=admin_headers)
    return {"Authorization": f"Bearer {(await resp.json())['token']}"}


async def ingest(client, headers, items):
    resp = await client.post("/api/v1/archive", json={"items": items}, headers=headers)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def counts(parts):
    async with parts.engine.connect() as conn:
        m = (await conn.execute(sa.select(sa.func.count()).select_from(messages))).scalar()
        a = (await conn.execute(sa.select(sa.func.count()).select_from(analyses))).scalar()
        f = (await conn.execute(sa.select(sa.func.count()).select_from(flags))).scalar()
    return m, a, f


async def test_ingest_validates_and_is_idempotent(client, qa, parts):
    items = [
        rec("m1", "wmCUST1", "你好，面霜多少钱", t=1),
        rec("m2", "zhangsan", "亲，580元", to="wmCUST1", t=2),
        {"msgid": "", "action": "send"},
        rec("m3", "wmCUST1", t=3, msgtype="hologram", hologram={"x": 1}),  # unknown type: stored raw
        rec("m4", "wmCUST1", t=4, action="teleport"),
        "not an object",
    ]
    result = await ingest(client, qa, items)
    assert result["accepted"] == 3 and result["duplicates"] == 0
    assert [e["index"] for e in result["errors"]] == [2, 4, 5]
    again = await ingest(client, qa, items[:2] + [items[0]])
    assert again == {"accepted": 0, "duplicates": 3, "errors": []}
    resp = await client.post("/api/v1/archive", json={"items": [rec(f"x{i}", "a") for i in range(1001)]}, headers=qa)
    assert resp.status == 400


async def test_pipeline_flags_and_qa_queue(client, qa, parts, admin_headers):
    items = [
        rec("c1", "wmCUST1", "面霜用了过敏，质量太差了，我要投诉", t=1),
        rec("s1", "zhangsan", "加我个人微信，私下转账给你便宜", to="wmCUST1", t=2),
        rec("s2", "zhangsan", "这款是全网最低价，100%有效", to="wmCUST1", t=3),
        rec("c2", "wmCUST1", "你个傻逼", t=4),
        rec("s3", "zhangsan", "加我微信吧", to="wmCUST1", t=5),  # same conversation and reason: deduped
        rec("c3", "wmCUST2", "谢谢，收到了", t=6),
        rec("img", "wmCUST2", t=7, msgtype="image", image={"md5sum": "x"}),
    ]
    await ingest(client, qa, items)
    await make_worker(parts).drain()
    m, a, f = await counts(parts)
    assert (m, a) == (7, 6)  # the image has no text to analyse
    resp = await client.get("/api/v1/flags?status=open", headers=qa)
    body = await resp.json()
    reasons = [(x["reason"], x["severity"], x["msgid"]) for x in body["items"]]
    assert ("staff_diversion", "high", "s1") in reasons and ("staff_ad_law", "high", "s2") in reasons
    assert ("customer_abuse", "high", "c2") in reasons and ("complaint", "medium", "c1") in reasons
    assert not any(msgid == "s3" for _r, _s, msgid in reasons)
    ranks = [{"high": 3, "medium": 2, "low": 1}[x["severity"]] for x in body["items"]]
    assert ranks == sorted(ranks, reverse=True)
    # paginate one by one
    seen, cursor = [], None
    while True:
        page = await (await client.get("/api/v1/flags?limit=1" + (f"&cursor={cursor}" if cursor else ""), headers=qa)).json()
        seen += [x["id"] for x in page["items"]]
        cursor = page["next"]
        if not cursor:
            break
    assert seen == [x["id"] for x in body["items"]]
    # review with an audit trail
    fid = next(x["id"] for x in body["items"] if x["msgid"] == "s1")
    resp = await client.post(f"/api/v1/flags/{fid}/review", json={"verdict": "confirmed", "note": "私下交易"}, headers=qa)
    reviewed = await resp.json()
    assert reviewed["status"] == "confirmed" and reviewed["reviewed_by"] == "质检小李"
    assert reviewed["history"][0]["verdict"] == "confirmed"
    assert (await client.post(f"/api/v1/flags/{fid}/review", json={"verdict": "maybe"}, headers=qa)).status == 400
    assert (await client.post("/api/v1/flags/nope/review", json={"verdict": "dismissed"}, headers=qa)).status == 404
    open_now = await (await client.get("/api/v1/flags?status=open&reason=staff_diversion", headers=qa)).json()
    assert open_now["items"] == []
    # conversations and messages with analyses, and context around a flag
    convs = await (await client.get("/api/v1/conversations?flagged=true", headers=qa)).json()
    assert [c["id"] for c in convs["items"]] == ["p:wmCUST1|zhangsan"]
    conv = convs["items"][0]
    assert conv["flag_count"] == 4 and conv["kind"] == "private"
    assert {p["id"]: p["role"] for p in conv["participants"]} == {"wmCUST1": "customer", "zhangsan": "staff"}
    msgs = await (await client.get(f"/api/v1/conversations/{conv['id']}/messages?around=s2&limit=3", headers=qa)).json()
    assert [x["msgid"] for x in msgs["items"]] == ["s1", "s2", "c2"]
    s1 = msgs["items"][0]
    hit = s1["analysis"]["sensitive"][0]
    assert s1["text"][hit["start"]:hit["end"]] == hit["match"] and s1["role"] == "staff"
    staff_token = (await (await client.post("/api/v1/tokens", json={"role": "staff", "name": "s", "userid": "zhangsan"},
                                            headers=admin_headers)).json())["token"]
    assert (await client.get("/api/v1/flags", headers={"Authorization": f"Bearer {staff_token}"})).status == 403


async def test_recall_in_either_order(client, qa, parts):
    await ingest(client, qa, [rec("r1", "wmC", "发错了", t=1),
                              rec("rv1", "wmC", t=2, msgtype="revoke", action="recall", revoke={"pre_msgid": "r1"}),
                              rec("rv2", "wmC", t=3, msgtype="revoke", action="recall", revoke={"pre_msgid": "r2"})])
    await ingest(client, qa, [rec("r2", "wmC", "这条也撤回", t=0)])  # original after its recall
    msgs = await (await client.get("/api/v1/conversations/p:wmC|zhangsan/messages", headers=qa)).json()
    recalled = {x["msgid"]: x["recalled"] for x in msgs["items"]}
    assert recalled["r1"] and recalled["r2"] and not recalled["rv1"]


async def test_crash_mid_batch_analyses_exactly_once(client, qa, parts, monkeypatch):
    await ingest(client, qa, [rec(f"k{i}", "zhangsan", "加我微信" if i % 2 else "好的", to=f"wm{i}", t=i) for i in range(20)])
    original = parts.conversations.save_analyses
    calls = {"n": 0}

    async def crash_once(results):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("worker killed before marking the batch analysed")
        return await original(results)

    monkeypatch.setattr(parts.conversations, "save_analyses", crash_once)
    worker = make_worker(parts)
    worker.claim_idle_ms = 0
    await worker.drain()
    _m, a, f = await counts(parts)
    assert a == 20 and f == 10 and calls["n"] == 2
    async with parts.engine.connect() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(messages)
                                   .where(messages.c.analyzed.is_(False)))).scalar() == 0
    # a duplicate, out-of-order batch later changes nothing
    await ingest(client, qa, [rec("k3", "zhangsan", "加我微信", to="wm3", t=3), rec("k1", "zhangsan", "x", to="wm1")])
    await make_worker(parts).drain()
    assert (await counts(parts))[1:] == (20, 10)


async def test_group_messages_feed_an_open_relay(client, qa, parts):
    from bot.relay.service import RelaySpec

    rid = (await parts.relays.create(RelaySpec("wrGROUP", "大闸蟹", 3, 2), "t"))["id"]
    await ingest(client, qa, [rec("g1", "wmA", "+2", roomid="wrGROUP", t=1), rec("g2", "wmB", "接龙两份", roomid="wrGROUP", t=2),
                              rec("g3", "wmC", "好吃吗", roomid="wrGROUP", t=3)])
    await make_worker(parts).drain()
    state = await parts.relays.state(rid)
    assert [(e["sender_id"], e["quantity"]) for e in state["entries"]] == [("wmA", 2), ("wmB", 1)]
    assert [(w["sender_id"], w["quantity"]) for w in state["waitlist"]] == [("wmB", 1)]
    convs = await (await client.get("/api/v1/conversations?kind=group", headers=qa)).json()
    assert convs["items"][0]["id"] == "g:wrGROUP" and len(convs["items"][0]["participants"]) == 4


async def test_suggestions_attached_for_customer_questions(client, qa, parts):
    from knowledge.scripts import ScriptInput

    await parts.knowledge.upsert([ScriptInput(id="ship", question="什么时候发货", reply="下午4点前付款当天发")])
    await ingest(client, qa, [rec("q1", "wmQ", "请问今天能发货吗", t=1)])
    await make_worker(parts).drain()
    body = await (await client.get("/api/v1/conversations/p:wmQ|zhangsan/messages", headers=qa)).json()
    assert body["suggestions"]["msgid"] == "q1" and body["suggestions"]["suggestions"][0]["script_id"] == "ship"


async def test_unanswered_sweep_and_requeue(client, qa, parts):
    old = NOW - 2 * 3600 * 1000
    await ingest(client, qa, [{**rec("u1", "wmU", "我的快递什么时候到"), "msgtime": old},
                              {**rec("u2", "wmV", "面霜多少钱"), "msgtime": old},
                              {**rec("u3", "zhangsan", "明天到", to="wmV"), "msgtime": old + 1000}])
    # Redis lost the queued batch: the sweep finds the stored, unanalysed messages
    await parts.redis.delete(parts.settings.stream_name)
    await parts.queue.ensure_group()
    assert await parts.pipeline.requeue_stale(parts.queue, older_than_ms=0) == 3
    await make_worker(parts).drain()
    assert await parts.pipeline.sweep_unanswered() == 1
    body = await (await client.get("/api/v1/flags?reason=unanswered", headers=qa)).json()
    assert [(x["conversation_id"], x["severity"]) for x in body["items"]] == [("p:wmU|zhangsan", "low")]
    assert await parts.pipeline.sweep_unanswered() == 0  # once per message
