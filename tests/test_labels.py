"""The learning loop's labels (docs/openapi.yaml /api/v1/labels): validation with per-item errors,
provenance, latest label wins, roles, and the queue of what the model is least sure of."""
from __future__ import annotations

import time

import sqlalchemy as sa

from storage.sql import labels


async def token(client, admin_headers, role, userid=None):
    body = {"role": role, "name": f"{role} one", **({"userid": userid} if userid else {})}
    resp = await client.post("/api/v1/tokens", json=body, headers=admin_headers)
    return {"Authorization": f"Bearer {(await resp.json())['token']}"}


async def test_labels_are_validated_per_item_and_stored_with_provenance(client, admin_headers, parts):
    trainer = await token(client, admin_headers, "trainer")
    items = [
        {"task": "intent", "text": "小金豆还有吗", "label": "product_info", "msgid": "m1"},
        {"task": "intent", "text": "x", "label": "not_an_intent"},
        {"task": "sentiment", "text": "太棒了", "label": "positive"},
        {"task": "sensitive", "text": "加我vx", "label": "diversion"},
        {"task": "sensitive", "text": "杀菌洗衣液", "label": "clean"},
        {"task": "relay", "text": "+2", "label": "join:2"},
        {"task": "relay", "text": "+0", "label": "join:0"},
        {"task": "weather", "text": "晴", "label": "sunny"},
        "not an object",
    ]
    resp = await client.post("/api/v1/labels", json={"items": items}, headers=trainer)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["accepted"] == 5 and [e["index"] for e in body["errors"]] == [1, 6, 7, 8]
    # a second verdict on the same text replaces the first
    resp = await client.post("/api/v1/labels", json={"items": [{"task": "intent", "text": "小金豆还有吗",
                                                               "label": "price_inquiry"}]}, headers=trainer)
    assert (await resp.json())["accepted"] == 1
    async with parts.engine.connect() as conn:
        rows = (await conn.execute(sa.select(labels).where(labels.c.task == "intent"))).mappings().all()
    assert [(r["label"], r["source"], r["created_by"]) for r in rows] == [("price_inquiry", "api", "trainer:trainer one")]


async def test_labels_refuse_bad_bodies_and_roles(client, admin_headers):
    trainer = await token(client, admin_headers, "trainer")
    staff = await token(client, admin_headers, "staff", "xiaowang")
    for body in ({"items": []}, {"items": "x"}, {"items": [{}] * 1001}, [], {"items": [], "extra": 1}):
        resp = await client.post("/api/v1/labels", json=body, headers=trainer)
        assert resp.status == 400, body
    item = {"task": "intent", "text": "你好", "label": "greeting"}
    assert (await client.post("/api/v1/labels", json={"items": [item]}, headers=staff)).status == 403
    assert (await client.post("/api/v1/labels", json={"items": [item]})).status == 401
    assert (await client.get("/api/v1/labels/queue?task=relay", headers=trainer)).status == 400
    assert (await client.get("/api/v1/labels/queue?limit=0", headers=trainer)).status == 400


async def test_queue_offers_the_least_sure_messages_first_and_skips_labelled_ones(client, admin_headers, parts):
    from server import make_worker

    trainer = await token(client, admin_headers, "trainer")
    now = int(time.time() * 1000)
    texts = ["面霜多少钱", "什么时候发货呀", "嗯嗯", "那个东西", "你们几点开门", "好吧行吧随便"]
    records = [{"msgid": f"q{i}", "action": "send", "from": "wmCUST1", "tolist": ["zhangsan"], "msgtime": now + i,
                "msgtype": "text", "text": {"content": t}} for i, t in enumerate(texts)]
    resp = await client.post("/api/v1/archive", json={"items": records}, headers=admin_headers)
    assert resp.status == 200, await resp.text()
    await make_worker(parts).drain()
    queue = (await (await client.get("/api/v1/labels/queue?task=intent&limit=6", headers=trainer)).json())["items"]
    assert {q["msgid"] for q in queue} <= {f"q{i}" for i in range(6)} and len(queue) == 6
    first_scores = sorted(q["score"] for q in queue)
    assert queue[0]["score"] == first_scores[0]  # the least sure comes first
    await client.post("/api/v1/labels", json={"items": [{"task": "intent", "text": queue[0]["text"], "label": "other",
                                                         "msgid": queue[0]["msgid"]}]}, headers=trainer)
    again = (await (await client.get("/api/v1/labels/queue?task=intent&limit=6", headers=trainer)).json())["items"]
    assert queue[0]["msgid"] not in {q["msgid"] for q in again}


async def test_stored_labels_join_the_training_set_with_their_source(client, admin_headers, parts):
    from bot.learning.labels import LabelStore
    from training.trainers import intent_set, sentiment_set

    trainer = await token(client, admin_headers, "trainer")
    items = [{"task": "intent", "text": f"小金豆{i}克还有吗", "label": "product_info"} for i in range(3)]
    items.append({"task": "sentiment", "text": "小金豆太可爱了", "label": "positive"})
    await client.post("/api/v1/labels", json={"items": items}, headers=trainer)
    store = LabelStore(parts.engine)
    extra = [(l.text, l.label, l.source) for l in await store.for_training("intent")]
    ts = intent_set(extra)
    assert ts.counts()["label:api"] == 3 and "小金豆1克还有吗" in ts.texts
    s_extra = [(l.text, l.label, l.source) for l in await store.for_training("sentiment")]
    assert sentiment_set(extra=s_extra).counts()["label:api"] == 1
    assert await store.counts() == {"intent": {"api": 3}, "sentiment": {"api": 1}}


async def test_flag_verdicts_become_labels_and_repeated_dismissals_propose_allow_entries(client, admin_headers, parts):
    from server import make_worker

    qa = await token(client, admin_headers, "qa")
    trainer = await token(client, admin_headers, "trainer")
    now = int(time.time() * 1000)
    texts = ["加我个人微信，私下转账给你便宜"] + [f"门店{i}号分店的微信号是多少{i}" for i in range(3)]
    records = [{"msgid": f"f{i}", "action": "send", "from": "zhangsan", "tolist": [f"wmCUST{i}"], "msgtime": now + i,
                "msgtype": "text", "text": {"content": t}} for i, t in enumerate(texts)]
    assert (await client.post("/api/v1/archive", json={"items": records}, headers=admin_headers)).status == 200
    await make_worker(parts).drain()
    flags = (await (await client.get("/api/v1/flags?status=open&limit=50", headers=qa)).json())["items"]
    by_msg = {f["msgid"]: f for f in flags}
    assert {"f0", "f1", "f2", "f3"} <= set(by_msg), by_msg
    await client.post(f"/api/v1/flags/{by_msg['f0']['id']}/review", json={"verdict": "confirmed"}, headers=qa)
    for m in ("f1", "f2", "f3"):
        resp = await client.post(f"/api/v1/flags/{by_msg[m]['id']}/review", json={"verdict": "dismissed"}, headers=qa)
        assert resp.status == 200
    bad = await client.post(f"/api/v1/flags/{by_msg['f1']['id']}/review", json={"verdict": "dismissed",
                                                                                 "category": "weather"}, headers=qa)
    assert bad.status == 400
    async with parts.engine.connect() as conn:
        rows = (await conn.execute(sa.select(labels.c.msgid, labels.c.label, labels.c.source, labels.c.model_guess)
                                   .order_by(labels.c.msgid))).all()
    assert [tuple(r) for r in rows] == [("f0", "diversion", "flag_review", "diversion")] + \
        [(m, "clean", "flag_review", "diversion") for m in ("f1", "f2", "f3")]
    proposals = (await (await client.get("/api/v1/labels/allow-proposals", headers=trainer)).json())["items"]
    assert proposals and proposals[0]["category"] == "diversion" and proposals[0]["dismissals"] == 3
