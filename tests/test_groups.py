"""Groups and the SOP calendar (issue 14): groups from the encrypted callback, a due post makes
one group 群发 task per owner and one reminder, never twice; sent when WeCom says so, missed
otherwise; the plan's content mix against its target."""
from __future__ import annotations

import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from server import make_worker
from tests.helpers import CORP_ID, sealed_request
from tests.test_customers import token


def chat_event(chat_id: str, change: str = "create", detail: str = "", count: int = 0) -> str:
    return (f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
            f"<Event><![CDATA[change_external_chat]]></Event><ChatId><![CDATA[{chat_id}]]></ChatId>"
            f"<ChangeType><![CDATA[{change}]]></ChangeType><UpdateDetail><![CDATA[{detail}]]></UpdateDetail>"
            f"<MemChangeCnt>{count}</MemChangeCnt></xml>")


async def post(client, xml):
    q, body = sealed_request(xml)
    assert (await client.post("/wecom/callback", params=q, data=body)).status == 200


def plan_body(posts):
    return {"name": "门店群周计划", "group_type": "store", "posts": posts}


async def test_a_due_post_makes_one_task_per_owner_and_one_reminder_then_sent_or_missed(
        client, admin_headers, parts, fake_wecom):
    fake_wecom.group_chats.update({
        "wrA1": {"name": "徐汇店1群", "owner": "zhangsan", "member_list": [{"userid": "wm1"}, {"userid": "wm2"}]},
        "wrA2": {"name": "徐汇店2群", "owner": "zhangsan", "member_list": [{"userid": "wm3"}]},
        "wrB1": {"name": "浦东店群", "owner": "lisi", "member_list": []}})
    for chat in ("wrA1", "wrA2", "wrB1"):
        await post(client, chat_event(chat))
    await post(client, chat_event("wrA1", "update", "add_member", 2))
    await make_worker(parts).drain()
    trainer = await token(client, admin_headers, "trainer")
    for chat in ("wrA1", "wrA2", "wrB1"):
        assert (await client.put(f"/api/v1/groups/{chat}/type", json={"type": "store"}, headers=trainer)).status == 200
    groups = {g["chat_id"]: g for g in (await (await client.get("/api/v1/groups?type=store", headers=trainer)).json())["items"]}
    assert groups["wrA1"]["name"] == "徐汇店1群" and groups["wrA1"]["member_count"] == 2 and groups["wrA1"]["joins"] == 2

    now = datetime.now(ZoneInfo("Asia/Shanghai")) - timedelta(minutes=1)
    due = {"weekday": now.isoweekday(), "time": now.strftime("%H:%M"), "kind": "practical", "text": "冬季护肤三步走：清洁、保湿、防晒"}
    later = {**due, "weekday": (now.isoweekday() % 7) + 1, "kind": "offer", "text": "周末福利"}
    resp = await client.post("/api/v1/sop/plans", json=plan_body([due, later]), headers=trainer)
    assert resp.status == 201, await resp.text()
    plan = await resp.json()
    assert plan["mix"]["on_target"] is False and plan["mix"]["kinds"]["practical"]["posts"] == 1
    assert await parts.sop.run_due() == 3
    assert await parts.sop.run_due() == 0  # never twice
    tasks = fake_wecom.bodies("/cgi-bin/externalcontact/add_msg_template")
    assert sorted((t["sender"], tuple(sorted(t["chat_id_list"]))) for t in tasks) == [
        ("lisi", ("wrB1",)), ("zhangsan", ("wrA1", "wrA2"))]
    assert all(t["chat_type"] == "group" and t["text"]["content"] == due["text"] for t in tasks)
    assert sorted(m["touser"] for m in fake_wecom.bodies("/cgi-bin/message/send")) == ["lisi", "zhangsan"]

    fake_wecom.confirm("zhangsan", int(time.time()))
    assert await parts.sop.track() == {"sent": 2, "missed": 0}
    parts.sop.clock = lambda: time.time() + 25 * 3600
    assert await parts.sop.track() == {"sent": 0, "missed": 1}
    parts.sop.clock = time.time
    runs = {r["chat_id"]: r["status"] for r in (await (await client.get(f"/api/v1/sop/plans/{plan['id']}/runs",
                                                                        headers=trainer)).json())["items"]}
    assert runs == {"wrA1": "sent", "wrA2": "sent", "wrB1": "missed"}
    got = await (await client.get(f"/api/v1/sop/plans/{plan['id']}", headers=trainer)).json()
    assert got["runs"] == {"sent": 2, "missed": 1}
    await post(client, chat_event("wrB1", "dismiss"))
    await make_worker(parts).drain()
    assert "wrB1" not in {g["chat_id"] for g in (await (await client.get("/api/v1/groups", headers=trainer)).json())["items"]}


async def test_a_plan_shows_its_mix_and_inputs_are_validated(client, admin_headers):
    trainer = await token(client, admin_headers, "trainer")
    kinds = ["practical"] * 3 + ["interaction"] * 3 + ["activity"] * 3 + ["offer"]
    posts = [{"weekday": 1 + i % 7, "time": "20:00", "kind": k, "text": f"第{i}条"} for i, k in enumerate(kinds)]
    plan = await (await client.post("/api/v1/sop/plans", json=plan_body(posts), headers=trainer)).json()
    assert plan["mix"]["on_target"] and plan["mix"]["kinds"]["offer"]["target_share"] == 0.1
    bad = [plan_body([{**posts[0], "time": "25:00"}]), plan_body([{**posts[0], "kind": "spam"}]), plan_body([]),
           {**plan_body(posts), "target_mix": {"practical": -1}}, {**plan_body(posts), "group_type": "Store Group"}]
    for body in bad:
        assert (await client.post("/api/v1/sop/plans", json=body, headers=trainer)).status == 400, body
    assert (await client.put("/api/v1/groups/nope/type", json={"type": "store"}, headers=trainer)).status == 404
    assert (await client.get("/api/v1/sop/plans/0123456789abcdef", headers=trainer)).status == 404
