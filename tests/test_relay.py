"""Relays through the API and the service: the invariants of docs/RELAYS.md ("Exactness and durability"),
recovery, group feedback."""
from __future__ import annotations

import asyncio
import csv
import io
import random

import pytest

from bot import keys
from bot.relay.ledger import relay_keys


@pytest.fixture
async def staff(client, admin_headers):
    resp = await client.post("/api/v1/tokens", json={"role": "staff", "name": "导购小王", "userid": "xiaowang"}, headers=admin_headers)
    return {"Authorization": f"Bearer {(await resp.json())['token']}"}


async def create(client, staff, **kw):
    body = {"chat_id": "wrGROUP1", "title": "大闸蟹", "stock": 5, "per_user_limit": 2, **kw}
    resp = await client.post("/api/v1/relays", json=body, headers=staff)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def say(client, staff, rid, sender, text, msgid=None, name=None):
    body = {"sender_id": sender, "sender_name": name or sender, "text": text}
    if msgid:
        body["msgid"] = msgid
    resp = await client.post(f"/api/v1/relays/{rid}/messages", json=body, headers=staff)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def state(client, staff, rid):
    return await (await client.get(f"/api/v1/relays/{rid}", headers=staff)).json()


async def test_full_flow(client, staff):
    r = await create(client, staff, stock=3)
    assert r["status"] == "open" and r["remaining"] == 3 and r["entries"] == []
    rid = r["id"]
    assert await say(client, staff, rid, "c1", "+1") == {
        "action": "join", "quantity": 1, "status": "confirmed", "confirmed_quantity": 1, "remaining": 2}
    got = await say(client, staff, rid, "c2", "我要三份")  # limit 2: asks 3, capped at 2
    assert (got["status"], got["confirmed_quantity"], got["remaining"]) == ("confirmed", 2, 0)
    got = await say(client, staff, rid, "c3", "接龙两份")
    assert (got["status"], got["confirmed_quantity"]) == ("waitlisted", 0)
    got = await say(client, staff, rid, "c4", "+1")
    assert got["status"] == "waitlisted"
    st = await state(client, staff, rid)
    assert st["status"] == "sold_out"
    assert [(e["position"], e["sender_id"], e["quantity"]) for e in st["entries"]] == [(1, "c1", 1), (2, "c2", 2)]
    assert [(w["sender_id"], w["quantity"]) for w in st["waitlist"]] == [("c3", 2), ("c4", 1)]
    # c2 cancels one: c3 (first in the waitlist) gets it; c3 still waits for one more
    got = await say(client, staff, rid, "c2", "-1")
    assert (got["action"], got["status"], got["quantity"], got["confirmed_quantity"]) == ("cancel", "cancelled", 1, 1)
    st = await state(client, staff, rid)
    assert [(e["sender_id"], e["quantity"]) for e in st["entries"]] == [("c1", 1), ("c2", 1), ("c3", 1)]
    assert [(w["sender_id"], w["quantity"]) for w in st["waitlist"]] == [("c3", 1), ("c4", 1)]
    # c1 cancels everything: c3 is now complete, c4 still waits
    await say(client, staff, rid, "c1", "不要了")
    st = await state(client, staff, rid)
    assert sorted((e["sender_id"], e["quantity"]) for e in st["entries"]) == [("c2", 1), ("c3", 2)]
    assert [(w["sender_id"], w["quantity"]) for w in st["waitlist"]] == [("c4", 1)]
    assert "#接龙 大闸蟹" in st["list_text"] and "候补" in st["list_text"]
    # chatter does nothing
    got = await say(client, staff, rid, "c5", "这个好吃吗")
    assert got["action"] == "none" and got["status"] == "ignored"


async def test_partial_and_no_waitlist(client, staff):
    rid = (await create(client, staff, stock=3, per_user_limit=5, waitlist=False))["id"]
    await say(client, staff, rid, "a", "+2")
    got = await say(client, staff, rid, "b", "+2")
    assert (got["status"], got["confirmed_quantity"], got["remaining"]) == ("partial", 1, 0)
    got = await say(client, staff, rid, "c", "+1")
    assert got["status"] == "rejected"
    assert (await state(client, staff, rid))["waitlist"] == []


async def test_per_user_limit_across_messages(client, staff):
    rid = (await create(client, staff, stock=10, per_user_limit=2))["id"]
    await say(client, staff, rid, "a", "+1")
    await say(client, staff, rid, "a", "再来一份")
    got = await say(client, staff, rid, "a", "+1")
    assert (got["status"], got["confirmed_quantity"]) == ("rejected", 2)


async def test_repeated_msgid_changes_nothing(client, staff):
    rid = (await create(client, staff, stock=5))["id"]
    first = await say(client, staff, rid, "a", "+1", msgid="m1")
    again = await say(client, staff, rid, "a", "+1", msgid="m1")
    assert first == again
    st = await state(client, staff, rid)
    assert st["remaining"] == 4 and st["entries"][0]["quantity"] == 1


async def test_close_and_export(client, staff):
    rid = (await create(client, staff, stock=5))["id"]
    await say(client, staff, rid, "a", "+2", name="=HYPERLINK(\"x\")")
    await say(client, staff, rid, "b", "+1", name="李四")
    resp = await client.post(f"/api/v1/relays/{rid}/close", headers=staff)
    assert (await resp.json())["status"] == "closed"
    got = await say(client, staff, rid, "c", "+1")
    assert got["status"] == "rejected"
    resp = await client.get(f"/api/v1/relays/{rid}/export.csv", headers=staff)
    assert resp.status == 200 and resp.content_type == "text/csv"
    rows = list(csv.reader(io.StringIO((await resp.text()).lstrip("\ufeff"))))
    assert rows[0] == ["list", "position", "sender_id", "sender_name", "quantity", "at"]
    assert [(r[0], r[2], r[3], r[4]) for r in rows[1:]] == [
        ("confirmed", "a", "'=HYPERLINK(\"x\")", "2"), ("confirmed", "b", "李四", "1")]


async def test_ends_at_closes(client, staff, parts):
    rid = (await create(client, staff, stock=5, ends_at="2020-01-01T00:00:00+08:00"))["id"]
    got = await say(client, staff, rid, "a", "+1")
    assert got["status"] == "rejected" and (await state(client, staff, rid))["status"] == "closed"


async def test_validation_and_errors(client, staff, admin_headers):
    for body in ({"chat_id": "x", "title": "t", "stock": 0}, {"chat_id": "x", "title": "t", "stock": 1, "per_user_limit": 0},
                 {"chat_id": "x", "title": "t", "stock": 1, "ends_at": "2026-11-22T20:00:00"},
                 {"chat_id": "x", "title": "t", "stock": 1, "chat_kind": "wechat"}, {"title": "t", "stock": 1}):
        resp = await client.post("/api/v1/relays", json=body, headers=staff)
        assert resp.status == 400, body
    assert (await client.get("/api/v1/relays/nope", headers=staff)).status == 404
    resp = await client.post("/api/v1/relays/nope/messages", json={"sender_id": "a", "text": "+1"}, headers=staff)
    assert resp.status == 404
    qa = (await (await client.post("/api/v1/tokens", json={"role": "qa", "name": "q"}, headers=admin_headers)).json())["token"]
    resp = await client.post("/api/v1/relays", json={"chat_id": "x", "title": "t", "stock": 1},
                             headers={"Authorization": f"Bearer {qa}"})
    assert resp.status == 403
    listing = await (await client.get("/api/v1/relays?status=open", headers=staff)).json()
    assert listing["items"] == []


async def test_concurrent_signups_never_oversell(parts):
    """5,000 concurrent sign-ups from 2,000 customers against stock 50, limit 2."""
    from bot.relay.service import RelaySpec

    svc = parts.relays
    rid = (await svc.create(RelaySpec("wrLOAD", "秒杀", 50, 2), "test"))["id"]
    rng = random.Random(5)
    msgs = [(f"c{rng.randrange(2000)}", rng.choice(["+1", "+2", "接龙", "我要两份", "+1"])) for _ in range(5000)]
    sem = asyncio.Semaphore(200)

    async def one(i, sender, text):
        async with sem:
            return sender, await svc.handle_message(rid, sender, sender, text, f"m{i}")

    results = await asyncio.gather(*(one(i, s, t) for i, (s, t) in enumerate(msgs)))
    st = await svc.state(rid)
    assert sum(e["quantity"] for e in st["entries"]) == 50 and st["remaining"] == 0
    assert all(e["quantity"] <= 2 for e in st["entries"])
    per_sender: dict[str, int] = {}
    for e in st["entries"]:
        per_sender[e["sender_id"]] = e["quantity"]
    for sender, resp in results:  # every answer is consistent with the final state
        assert resp["confirmed_quantity"] <= per_sender.get(sender, 0)
    assert sum(w["quantity"] for w in st["waitlist"]) + 50 <= 2 * len({s for s, _ in msgs})
    # The waitlist is in arrival order: replay the durable log (ordered by the atomic step's
    # sequence number) with a plain FIFO and compare.
    import sqlalchemy as sa

    from storage.sql import relay_events

    async with parts.engine.connect() as conn:
        events = (await conn.execute(sa.select(relay_events).where(relay_events.c.relay_id == rid)
                                     .order_by(relay_events.c.seq))).mappings().all()
    assert len(events) == 5000 and [e["seq"] for e in events] == list(range(1, 5001))
    queue, waiting = [], {}
    for e in events:
        for who, _dconf, dwait in e["changes"]:
            if dwait > 0 and waiting.get(who, 0) == 0:
                queue.append(who)
            waiting[who] = waiting.get(who, 0) + dwait
            if dwait < 0 and waiting[who] == 0:
                queue.remove(who)
    assert [w["sender_id"] for w in st["waitlist"]] == queue


async def test_redis_loss_rebuilds_from_sql(parts):
    from bot.relay.service import RelaySpec

    svc = parts.relays
    rid = (await svc.create(RelaySpec("wrX", "t", 3, 2), "test"))["id"]
    for i, (s, t) in enumerate([("a", "+2"), ("b", "+2"), ("c", "+1"), ("a", "-1"), ("d", "+1")]):
        await svc.handle_message(rid, s, s.upper(), t, f"m{i}")
    before = await svc.state(rid)
    await parts.redis.delete(*relay_keys(rid))  # Redis lost everything about this relay
    after = await svc.state(rid)
    assert after["entries"] == before["entries"] and after["waitlist"] == before["waitlist"]
    assert after["remaining"] == before["remaining"] and after["status"] == before["status"]
    # idempotency survives the rebuild too
    again = await svc.handle_message(rid, "d", "D", "+1", "m4")
    assert again["remaining"] == before["remaining"]
    assert (await svc.state(rid))["entries"] == before["entries"]


async def test_sql_caught_up_after_crash_between_writes(parts):
    """A crash after the Lua call but before the SQL write: start-up recovery copies the event."""
    import sqlalchemy as sa

    from bot.relay.service import RelaySpec
    from storage.sql import relay_events

    svc = parts.relays
    rid = (await svc.create(RelaySpec("wrY", "t", 3, 2), "test"))["id"]
    await svc.ledger.join(rid, "a", "A", 1, "m1", 1.0)  # Redis only, as if the process died here
    await svc.recover_all()
    async with parts.engine.connect() as conn:
        n = (await conn.execute(sa.select(sa.func.count()).select_from(relay_events)
                                .where(relay_events.c.relay_id == rid))).scalar()
    assert n == 1


async def test_appchat_list_posts_are_coalesced(parts, fake_wecom):
    from bot.relay.service import RelaySpec

    parts.announcer.interval = 0.3
    svc = parts.relays
    rid = (await svc.create(RelaySpec("chatINTERNAL", "内购", 3, 3, chat_kind="appchat"), "test"))["id"]
    for i in range(2):
        await svc.handle_message(rid, f"u{i}", f"员工{i}", "+1", f"m{i}")
    await asyncio.sleep(0.5)
    await parts.announcer.drain()
    posts = fake_wecom.bodies("/cgi-bin/appchat/send")
    assert len(posts) == 1 and posts[0]["chatid"] == "chatINTERNAL"
    assert "1. 员工0 1份" in posts[0]["text"]["content"] and "2. 员工1 1份" in posts[0]["text"]["content"]
    await svc.handle_message(rid, "u9", "员工9", "+1", "m9")  # sells out: announced once more at once
    await parts.announcer.drain()
    assert any("已售罄" in p["text"]["content"] for p in fake_wecom.bodies("/cgi-bin/appchat/send"))


async def test_customer_group_sold_out_goes_through_group_msg_template(parts, fake_wecom):
    from bot.relay.service import RelaySpec

    svc = parts.relays
    rid = (await svc.create(RelaySpec("wrCUSTOMER", "月饼", 1, 1, owner_userid="zhangsan"), "test"))["id"]
    await svc.handle_message(rid, "wmA", "顾客A", "+1", "m1")
    await parts.announcer.drain()
    [task] = fake_wecom.bodies("/cgi-bin/externalcontact/add_msg_template")
    assert task["chat_type"] == "group" and task["chat_id_list"] == ["wrCUSTOMER"] and task["sender"] == "zhangsan"
    assert "已售罄" in task["text"]["content"]
    assert fake_wecom.bodies("/cgi-bin/appchat/send") == []  # customer groups get no list posts


async def test_staff_open_command_through_callback(client, parts, fake_wecom):
    from server import make_worker
    from tests.helpers import sealed_request, text_xml

    q, body = sealed_request(text_xml("开团 大闸蟹 五十份 每人限2 群wrABC12345", user="lisi"))
    assert (await client.post("/wecom/callback", params=q, data=body)).status == 200
    await make_worker(parts).drain()
    [reply] = fake_wecom.bodies("/cgi-bin/message/send")
    assert reply["touser"] == "lisi" and "已开团" in reply["text"]["content"]
    [relay] = await parts.relays.list("open")
    assert (relay["chat_id"], relay["stock"], relay["per_user_limit"], relay["owner_userid"]) == ("wrABC12345", 50, 2, "lisi")


async def test_reposted_native_list_credits_each_line_to_its_name(client, staff):
    """WeChat's own list re-posted with one more line: the sender gets their line, the others the
    lines with their names, and a repost that adds nothing changes nothing."""
    relay = await create(client, staff, stock=20, per_user_limit=5)
    listing = "#接龙\n大闸蟹\n1. 张三 2份\n2. 李四 1份"
    await say(client, staff, relay["id"], "u_li", listing, "m1", name="李四")
    mine = await say(client, staff, relay["id"], "u_wang", listing + "\n3. 王五 3份", "m2", name="王五")
    assert (mine["action"], mine["quantity"], mine["confirmed_quantity"]) == ("join", 3, 3)
    again = await say(client, staff, relay["id"], "u_zhao", listing + "\n3. 王五 3份", "m3", name="赵六")
    assert again["action"] == "none"
    st = await state(client, staff, relay["id"])
    by_name = {e["sender_name"]: e["quantity"] for e in st["entries"]}
    assert by_name == {"张三": 2, "李四": 1, "王五": 3}
    assert st["remaining"] == 20 - 6


async def test_text_sign_ups_copied_into_a_list_are_not_counted_twice(client, staff):
    """Members who signed up by text appear in the next person's native list: only the new line
    counts; an edited own line and "改成" move the member to the stated total, not on top of it."""
    relay = await create(client, staff, stock=20, per_user_limit=5)
    rid = relay["id"]
    assert (await say(client, staff, rid, "u_mei", "接龙 两箱", "m1", name="梅姐"))["quantity"] == 2
    lin = await say(client, staff, rid, "u_lin", "#接龙\n妃子笑\n\n1. 梅姐 2箱\n2. 林师傅 1箱", "m2", name="3栋林师傅")
    assert (lin["action"], lin["quantity"], lin["confirmed_quantity"]) == ("join", 1, 1)
    # 林师傅 edits his own line from 1 to 2 boxes: one more box, two in all.
    edit = await say(client, staff, rid, "u_lin", "#接龙\n妃子笑\n\n1. 梅姐 2箱\n2. 林师傅 2箱", "m3", name="3栋林师傅")
    assert (edit["action"], edit["confirmed_quantity"]) == ("join", 2)
    less = await say(client, staff, rid, "u_mei", "不好意思 我那两箱改成一箱吧", "m4", name="梅姐")
    assert (less["action"], less["confirmed_quantity"]) == ("cancel", 1)
    st = await state(client, staff, rid)
    assert {e["sender_name"]: e["quantity"] for e in st["entries"]} == {"梅姐": 1, "3栋林师傅": 2}
    assert st["remaining"] == 20 - 3


async def test_a_member_who_cancelled_by_text_is_not_signed_up_again_by_a_copied_list(client, staff):
    """WeChat keeps a text-cancelled member's line in the list others copy: that stale line takes
    no stock; the member can still join again themselves."""
    rid = (await create(client, staff, stock=10, per_user_limit=5))["id"]
    await say(client, staff, rid, "u_zhao", "2张", "m1", name="小赵")
    await say(client, staff, rid, "u_lan", "接龙", "m2", name="阿兰")
    gone = await say(client, staff, rid, "u_lan", "我那张不要了 月底不在家", "m3", name="阿兰")
    assert (gone["action"], gone["confirmed_quantity"]) == ("cancel", 0)
    mine = await say(client, staff, rid, "u_qian", "#接龙\n美食券69\n1. 小赵 2\n2. 阿兰 1\n3. 小钱 2", "m4", name="小钱")
    assert (mine["action"], mine["quantity"], mine["confirmed_quantity"]) == ("join", 2, 2)
    st = await state(client, staff, rid)
    assert {e["sender_name"]: e["quantity"] for e in st["entries"]} == {"小赵": 2, "小钱": 2}
    back = await say(client, staff, rid, "u_lan", "+1", "m5", name="阿兰")
    assert back["confirmed_quantity"] == 1
    assert (await state(client, staff, rid))["remaining"] == 10 - 5

async def test_an_operator_correction_fixes_the_entry_and_becomes_a_relay_label(client, staff, parts):
    import sqlalchemy as sa

    from storage.sql import labels

    rid = (await create(client, staff, stock=3, per_user_limit=5))["id"]
    await say(client, staff, rid, "u1", "接龙+1", msgid="m1")
    body = {"text": "我和我姐各一份", "label": "join:2", "msgid": "m2", "sender_id": "u2", "sender_name": "阿May",
            "quantity": 2}
    resp = await client.post(f"/api/v1/relays/{rid}/corrections", json=body, headers=staff)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["result"]["status"] == "confirmed"
    again = await client.post(f"/api/v1/relays/{rid}/corrections", json=body, headers=staff)
    assert again.status == 200  # a retried fix changes nothing
    s = await state(client, staff, rid)
    assert {e["sender_id"]: e["quantity"] for e in s["entries"]} == {"u1": 1, "u2": 2} and s["remaining"] == 0
    # lowering u1 to 0 frees a unit; a fix beyond stock waits like anyone else
    await client.post(f"/api/v1/relays/{rid}/corrections", headers=staff, json={
        "text": "接龙+1", "label": "none", "msgid": "m1", "sender_id": "u1", "quantity": 0})
    await client.post(f"/api/v1/relays/{rid}/corrections", headers=staff, json={
        "text": "三份", "label": "join:3", "msgid": "m3", "sender_id": "u3", "quantity": 3})
    s = await state(client, staff, rid)
    assert sum(e["quantity"] for e in s["entries"]) == 3 and s["remaining"] == 0
    assert {w["sender_id"]: w["quantity"] for w in s["waitlist"]} == {"u3": 2}
    async with parts.engine.connect() as conn:
        rows = (await conn.execute(sa.select(labels.c.text, labels.c.label, labels.c.source)
                                   .where(labels.c.task == "relay"))).all()
    assert sorted(rows) == sorted([("我和我姐各一份", "join:2", "relay_correction"), ("接龙+1", "none", "relay_correction"),
                                   ("三份", "join:3", "relay_correction")])
    for bad in ({**body, "label": "join:0"}, {**body, "quantity": -1}, {**body, "quantity": None},
                {"text": "x", "label": "maybe"}, {**body, "extra": 1}):
        assert (await client.post(f"/api/v1/relays/{rid}/corrections", json=bad, headers=staff)).status == 400
    assert (await client.post("/api/v1/relays/nope/corrections", json={"text": "x", "label": "none"},
                              headers=staff)).status == 404


async def test_staff_answers_and_the_openers_reminders_take_no_stock(client, staff, parts):
    """A staff account explaining the relay ("对的 +1就是一箱", "可以 写+2就行") is not signing up; an
    explicit sign-up of their own still is. The relay's opener (owner_userid) counts as staff."""
    relay = await create(client, staff, stock=10, per_user_limit=3, owner_userid="boss")
    rid = relay["id"]
    asked = await say(client, staff, rid, "wm_cust", "+1是一箱的意思不 问一下")
    assert asked["action"] == "none"
    for text in ("对的 +1就是一箱", "可以 写+2就行", "收到 给你记上两份"):
        resp = await client.post(f"/api/v1/relays/{rid}/messages", headers=staff,
                                 json={"sender_id": "xiaowang", "sender_name": "导购小王", "text": text, "role": "staff"})
        assert resp.status == 200 and (await resp.json())["action"] == "none", text
    opener = await say(client, staff, rid, "boss", "还剩不多了 要的抓紧 +1就行", name="店长")
    assert opener["action"] == "none"
    own = await client.post(f"/api/v1/relays/{rid}/messages", headers=staff,
                            json={"sender_id": "xiaowang", "sender_name": "导购小王", "text": "我自己也要一箱", "role": "staff"})
    assert (await own.json())["confirmed_quantity"] == 1
    # the same text from a customer is a sign-up
    assert (await say(client, staff, rid, "wm_cust", "可以 写+2就行"))["quantity"] == 2
    bad = await client.post(f"/api/v1/relays/{rid}/messages", headers=staff,
                            json={"sender_id": "x", "text": "+1", "role": "boss"})
    assert bad.status == 400
    st = await state(client, staff, rid)
    assert st["remaining"] == 10 - 3
    # the opener's own native list: their heading line buys nothing, a member's line written for them counts
    await say(client, staff, rid, "boss", "#接龙\n冻干团购\n\n1. 店长\n2. 阿花 2", name="店长")
    st = await state(client, staff, rid)
    assert st["remaining"] == 10 - 5
    assert not any(e["sender_id"] == "boss" for e in st["entries"])
