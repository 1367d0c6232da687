"""Customer operations (issue 13): profiles from the archive and contact events, automatic tags
pushed to (fake) WeCom once, segments, the dormant filter, and who sees what."""
from __future__ import annotations

import time

from server import make_worker
from tests.helpers import contact_event_xml, sealed_request

DAY = 86_400_000


async def token(client, admin_headers, role, userid=None):
    body = {"role": role, "name": f"{role} one", **({"userid": userid} if userid else {})}
    resp = await client.post("/api/v1/tokens", json=body, headers=admin_headers)
    return {"Authorization": f"Bearer {(await resp.json())['token']}"}


def rec(msgid, sender, text, to="zhangsan", t=0):
    return {"msgid": msgid, "action": "send", "from": sender, "tolist": [to], "msgtime": t, "msgtype": "text",
            "text": {"content": text}}


async def ingest(client, admin_headers, parts, records):
    resp = await client.post("/api/v1/archive", json={"items": records}, headers=admin_headers)
    assert resp.status == 200, await resp.text()
    await make_worker(parts).drain()


async def test_profiles_tags_pushed_once_segments_and_dormancy(client, admin_headers, parts, fake_wecom):
    fake_wecom.strict_tags = True
    now = int(time.time() * 1000)
    trainer = await token(client, admin_headers, "trainer")
    await ingest(client, admin_headers, parts, [
        rec("c1", "wmAMY", "这款面霜多少钱", t=now - 3 * DAY),
        rec("c2", "zhangsan", "您好，这款 299 元", to="wmAMY", t=now - 3 * DAY + 1000),
        rec("c3", "wmAMY", "那大瓶的多少钱呀", t=now - DAY),
        rec("c4", "wmBOB", "这个多少钱", to="lisi", t=now - DAY),
        rec("c5", "wmCAT", "你好", t=now - 40 * DAY),
    ])
    amy = await (await client.get("/api/v1/customers/wmAMY", headers=trainer)).json()
    assert amy["intents"].get("price_inquiry") == 2 and amy["staff"] == ["zhangsan"]
    assert [e["kind"] for e in amy["timeline"]].count("message") == 2
    # the staff reply is not part of the customer's own timeline (its "299" could also sit inside a
    # millisecond timestamp, so the reply's text is what is looked for)
    assert "这款 299 元" not in str(amy) and amy["last_message_at"] == now - DAY

    rule = {"name": "问价两次", "tag": "高意向", "when": {"intent": "price_inquiry", "min_count": 2, "days": 7}}
    resp = await client.post("/api/v1/tag-rules", json=rule, headers=trainer)
    assert resp.status == 201, await resp.text()
    assert (await (await client.post("/api/v1/tag-rules/run", headers=trainer)).json()) == {"added": 1, "removed": 0}
    assert (await (await client.post("/api/v1/tag-rules/run", headers=trainer)).json()) == {"added": 0, "removed": 0}
    await parts.tag_pusher.run_once()
    await parts.tag_pusher.run_once()
    await client.post("/api/v1/tag-rules/run", headers=trainer)
    await parts.tag_pusher.run_once()
    marks = fake_wecom.bodies("/cgi-bin/externalcontact/mark_tag")
    [group] = fake_wecom.corp_tags.values()
    assert group["name"] == "WeCom Copilot" and list(group["tags"]) == ["高意向"]
    assert marks == [{"userid": "zhangsan", "external_userid": "wmAMY", "add_tag": [group["tags"]["高意向"]],
                      "remove_tag": []}]

    resp = await client.post("/api/v1/segments", json={"name": "高意向客户", "filter": {"tags_all": ["高意向"]}},
                             headers=trainer)
    seg = await resp.json()
    assert resp.status == 201 and seg["count"] == 1
    page = await (await client.get(f"/api/v1/segments/{seg['id']}/customers", headers=trainer)).json()
    assert [c["id"] for c in page["items"]] == ["wmAMY"] and page["items"][0]["tags"] == ["高意向"]
    none = await client.post("/api/v1/segments", json={"name": "x", "filter": {"tags_none": ["高意向"]}}, headers=trainer)
    assert (await none.json())["count"] == 2

    dormant = await (await client.get("/api/v1/customers?dormant_days=30", headers=trainer)).json()
    assert [c["id"] for c in dormant["items"]] == ["wmCAT"]
    # a dormancy rule tags the silent one and, when she speaks again, takes the tag back (in WeCom too)
    await client.post("/api/v1/tag-rules", json={"name": "沉睡", "tag": "沉睡", "when": {"dormant_days": 30}},
                      headers=trainer)
    assert (await (await client.post("/api/v1/tag-rules/run", headers=trainer)).json())["added"] == 1
    await parts.tag_pusher.run_once()
    await ingest(client, admin_headers, parts, [rec("c6", "wmCAT", "在吗 上次那个还有吗", t=now)])
    cat = await (await client.get("/api/v1/customers/wmCAT", headers=trainer)).json()
    assert cat["tags"] == []
    await parts.tag_pusher.run_once()
    sleepy = fake_wecom.corp_tags[next(iter(fake_wecom.corp_tags))]["tags"]["沉睡"]
    assert fake_wecom.customer_tags[("zhangsan", "wmCAT")] == set()
    assert [m["remove_tag"] for m in fake_wecom.bodies("/cgi-bin/externalcontact/mark_tag")
            if m["external_userid"] == "wmCAT"] == [[], [sleepy]]

    # who sees what: staff their own customers only
    zhang = await token(client, admin_headers, "staff", "zhangsan")
    li = await token(client, admin_headers, "staff", "lisi")
    mine = await (await client.get("/api/v1/customers", headers=zhang)).json()
    assert {c["id"] for c in mine["items"]} == {"wmAMY", "wmCAT"}
    assert [c["id"] for c in (await (await client.get("/api/v1/customers", headers=li)).json())["items"]] == ["wmBOB"]
    assert (await client.get("/api/v1/customers/wmAMY", headers=li)).status == 404
    assert (await client.get("/api/v1/customers?staff=zhangsan", headers=li)).status == 403
    assert (await client.post("/api/v1/tag-rules", json=rule, headers=zhang)).status == 403


async def test_contact_events_keep_profiles_and_losses(client, admin_headers, parts, fake_wecom):
    trainer = await token(client, admin_headers, "trainer")
    for xml in (contact_event_xml(ext="wmNEW", state="store_12"),
                contact_event_xml(change="del_follow_user", ext="wmNEW")):
        q, body = sealed_request(xml)
        assert (await client.post("/wecom/callback", params=q, data=body)).status == 200
        await make_worker(parts).drain()
    c = await (await client.get("/api/v1/customers/wmNEW", headers=trainer)).json()
    assert c["channel"] == "store_12" and c["name"] == "客户" and c["status"] == "lost" and c["staff"] == []
    lost = await (await client.get("/api/v1/customers?status=lost&channel=store_12", headers=trainer)).json()
    assert [x["id"] for x in lost["items"]] == ["wmNEW"]


async def test_rule_and_segment_inputs_are_validated(client, admin_headers):
    trainer = await token(client, admin_headers, "trainer")
    bad_rules = [
        {"name": "x", "tag": "t", "when": {}},
        {"name": "x", "tag": "t", "when": {"intent": "price_inquiry"}},
        {"name": "x", "tag": "t", "when": {"intent": "weather", "min_count": 1, "days": 1}},
        {"name": "x", "tag": "t", "when": {"dormant_days": 30, "intent": "greeting", "min_count": 1, "days": 1}},
        {"name": "x", "tag": "has space", "when": {"dormant_days": 3}},
        {"name": "x", "tag": "t" * 31, "when": {"dormant_days": 3}},
        {"name": "x", "tag": "t", "when": {"dormant_days": 0}},
        {"name": "x", "tag": "t", "when": {"dormant_days": 3}, "extra": 1},
    ]
    for body in bad_rules:
        assert (await client.post("/api/v1/tag-rules", json=body, headers=trainer)).status == 400, body
    r = await (await client.post("/api/v1/tag-rules", json={"name": "x", "tag": "t", "when": {"dormant_days": 3}},
                                 headers=trainer)).json()
    upd = await client.put(f"/api/v1/tag-rules/{r['id']}", json={"name": "y", "tag": "t2", "when": {"relays_min": 2, "days": 30}},
                           headers=trainer)
    assert upd.status == 200 and (await upd.json())["when"] == {"relays_min": 2, "days": 30}
    assert (await client.delete(f"/api/v1/tag-rules/{r['id']}", headers=trainer)).status == 200
    assert (await client.get(f"/api/v1/tag-rules/{r['id']}", headers=trainer)).status == 404
    for f in ({"tags_all": ["a b"]}, {"dormant_days": -1}, {"nope": 1}, {"tags_any": "x"}):
        assert (await client.post("/api/v1/segments", json={"name": "s", "filter": f}, headers=trainer)).status == 400, f
    for q in ("dormant_days=x", "limit=0", "cursor=%%%", "segment=nope", "status=gone"):
        assert (await client.get(f"/api/v1/customers?{q}", headers=trainer)).status == 400, q


async def test_a_campaign_to_a_segment_makes_one_task_per_staff_member_and_its_funnel_fills(
        client, admin_headers, parts, fake_wecom):
    now = int(time.time() * 1000)
    trainer = await token(client, admin_headers, "trainer")
    await ingest(client, admin_headers, parts, [
        rec("k1", "wmA1", "这个多少钱", t=now - 20 * DAY), rec("k2", "wmA2", "在吗", t=now - 20 * DAY),
        rec("k3", "wmB1", "你好", to="lisi", t=now - 20 * DAY), rec("k4", "wmX", "刚买的", t=now - DAY)])
    seg = await (await client.post("/api/v1/segments", json={"name": "两周没说话", "filter": {"dormant_days": 14}},
                                   headers=trainer)).json()
    assert seg["count"] == 3
    fake_wecom.not_friends.add("wmA2")
    resp = await client.post("/api/v1/campaigns", headers=trainer, json={
        "name": "唤醒", "segment_id": seg["id"], "text": "好久不见，新品到店，回复 1 领券～"})
    assert resp.status == 201, await resp.text()
    camp = await resp.json()
    assert camp["funnel"]["targeted"] == 3 and [t["staff_id"] for t in camp["tasks"]] == ["lisi", "zhangsan"]
    assert await parts.campaigns.send_due() == 2
    assert await parts.campaigns.send_due() == 0  # never twice
    templates = fake_wecom.bodies("/cgi-bin/externalcontact/add_msg_template")
    assert sorted((t["sender"], tuple(t["external_userid"])) for t in templates) == [
        ("lisi", ("wmB1",)), ("zhangsan", ("wmA1", "wmA2"))]
    assert all(t["chat_type"] == "single" and t["text"]["content"].startswith("好久不见") for t in templates)

    sent_at = int(time.time()) - 3600
    fake_wecom.confirm("zhangsan", sent_at)
    resp = await client.post(f"/api/v1/campaigns/{camp['id']}/refresh", headers=trainer)
    funnel = (await resp.json())["funnel"]
    assert funnel == {"targeted": 3, "task_created": 2, "sent_by_staff": 1, "delivered": 1, "replied_48h": 0,
                      "converted_7d": 0}
    # wmA1 answers and orders; the funnel fills from the archive
    await ingest(client, admin_headers, parts, [rec("k5", "wmA1", "1", t=now - 1800_000),
                                                rec("k6", "wmA1", "给我下单两盒，地址不变", t=now - 1000_000)])
    funnel = (await (await client.get(f"/api/v1/campaigns/{camp['id']}", headers=trainer)).json())["funnel"]
    assert funnel["replied_48h"] == 1 and funnel["converted_7d"] == 1
    bad = [{"name": "x", "segment_id": "nope", "text": "t"}, {"name": "x", "segment_id": seg["id"], "text": ""},
           {"name": "x", "segment_id": seg["id"], "text": "t", "scheduled_at": "2026-12-01T10:00:00"},
           {"name": "x", "segment_id": "0123456789abcdef", "text": "t"}]
    for body in bad:
        assert (await client.post("/api/v1/campaigns", json=body, headers=trainer)).status == 400, body
    assert (await client.get("/api/v1/campaigns/0123456789abcdef", headers=trainer)).status == 404


async def test_a_three_level_channel_tree_reports_adds_and_losses_per_node_and_rolled_up(
        client, admin_headers, parts, fake_wecom):
    trainer = await token(client, admin_headers, "trainer")
    for body in ({"state": "sh", "name": "上海"}, {"state": "sh_xt", "name": "徐汇店", "parent": "sh"},
                 {"state": "sh_xt_wang", "name": "小王的码", "parent": "sh_xt", "contact_way_users": ["zhangsan"]},
                 {"state": "sh_pd", "name": "浦东店", "parent": "sh"}):
        resp = await client.post("/api/v1/channels", json=body, headers=admin_headers)
        assert resp.status == 201, await resp.text()
    made = await (await client.get("/api/v1/channels", headers=admin_headers)).json()
    wang = next(c for c in made["items"] if c["state"] == "sh_xt_wang")
    assert wang["qr_code"].startswith("https://") and fake_wecom.bodies("/cgi-bin/externalcontact/add_contact_way") == [
        {"type": 1, "scene": 2, "state": "sh_xt_wang", "user": ["zhangsan"]}]
    now = int(time.time())
    events = [("add_external_contact", "wmT1", "sh_xt_wang", now - 86400 * 3),
              ("add_external_contact", "wmT2", "sh_xt_wang", now - 86400 * 3),
              ("add_external_contact", "wmT3", "sh_xt", now - 86400 * 2),
              ("add_external_contact", "wmT4", "sh_pd", now - 86400),
              ("del_follow_user", "wmT2", "", now - 86400 * 2)]
    for change, ext, state, at in events:
        q, body = sealed_request(contact_event_xml(change=change, ext=ext, state=state, create_time=at))
        assert (await client.post("/wecom/callback", params=q, data=body)).status == 200
    await make_worker(parts).drain()
    await ingest(client, admin_headers, parts, [rec("t1", "wmT1", "给我下单一瓶", t=int(time.time() * 1000) - 3600_000)])
    tree = (await (await client.get("/api/v1/channels/tree?days=30", headers=trainer)).json())["items"]
    [sh] = tree
    xt = next(n for n in sh["children"] if n["state"] == "sh_xt")
    [wang] = xt["children"]
    assert (wang["own"]["adds"], wang["own"]["losses_7d"], wang["own"]["conversions"]) == (2, 1, 1)
    assert (xt["own"]["adds"], xt["total"]["adds"], xt["total"]["losses_7d"]) == (1, 3, 1)
    assert (sh["own"]["adds"], sh["total"]["adds"], sh["total"]["losses_7d"], sh["total"]["conversions"]) == (0, 4, 1, 1)
    assert sh["total"]["active_rate"] == 0.25
    for body in ({"state": "x", "name": "x", "parent": "nope"}, {"state": "sh", "name": "x", "parent": "sh_xt_wang"}):
        assert (await client.post("/api/v1/channels", json=body, headers=admin_headers)).status == 400, body
    assert (await client.get("/api/v1/channels/tree?days=0", headers=trainer)).status == 400


async def test_orders_are_idempotent_and_attributed_to_channel_staff_and_campaign(client, admin_headers, parts, fake_wecom):
    from datetime import datetime, timedelta, timezone

    trainer = await token(client, admin_headers, "trainer")
    now = datetime.now(timezone.utc)
    for xml in (contact_event_xml(ext="wmO1", state="mall"), contact_event_xml(ext="wmO2", state="web", user="lisi")):
        q, body = sealed_request(xml)
        await client.post("/wecom/callback", params=q, data=body)
    await make_worker(parts).drain()
    seg = await (await client.post("/api/v1/segments", json={"name": "mall", "filter": {"channel": "mall"}},
                                   headers=trainer)).json()
    camp = await (await client.post("/api/v1/campaigns", json={"name": "双十二", "segment_id": seg["id"], "text": "上新"},
                                    headers=trainer)).json()
    await parts.campaigns.send_due()
    fake_wecom.confirm("zhangsan", int(now.timestamp()) - 7200)
    await client.post(f"/api/v1/campaigns/{camp['id']}/refresh", headers=trainer)
    items = [{"id": "o1", "customer_id": "wmO1", "amount": 199.0, "at": (now - timedelta(hours=1)).isoformat()},
             {"id": "o2", "customer_id": "wmO2", "amount": 50.5, "at": (now - timedelta(days=2)).isoformat()},
             {"id": "o3", "customer_id": "wmO2", "amount": 10, "at": "2026-12-01T10:00:00"},
             {"id": "bad id", "customer_id": "wmO2", "amount": 1, "at": now.isoformat()}]
    resp = await client.post("/api/v1/orders", json={"items": items}, headers=trainer)
    body = await resp.json()
    assert body["accepted"] == 2 and [e["index"] for e in body["errors"]] == [2, 3]
    again = await (await client.post("/api/v1/orders", json={"items": items[:2]}, headers=trainer)).json()
    assert (again["accepted"], again["duplicates"]) == (0, 2)
    roi = await (await client.get("/api/v1/analytics/touchpoints?days=30", headers=trainer)).json()
    assert {c["key"]: c["revenue"] for c in roi["channels"]} == {"mall": 199.0, "web": 50.5}
    assert {c["key"]: c["revenue"] for c in roi["staff"]} == {"zhangsan": 199.0, "lisi": 50.5}
    assert [(c["name"], c["orders"], c["revenue"]) for c in roi["campaigns"]] == [("双十二", 1, 199.0)]
    funnel = (await (await client.get(f"/api/v1/campaigns/{camp['id']}", headers=trainer)).json())["funnel"]
    assert funnel["delivered"] == 1 and funnel["converted_7d"] == 1
    staff = await token(client, admin_headers, "staff", "zhangsan")
    assert (await client.post("/api/v1/orders", json={"items": items[:1]}, headers=staff)).status == 403


async def test_existing_customers_and_wecom_tags_come_in_through_the_sync(client, admin_headers, parts, fake_wecom):
    """Customers added before the service ran arrive page by page (batch/get_by_user, 100 a page);
    WeCom's own tags are named from the tag library; a second run changes nothing; a tag removed
    in WeCom goes on the next complete run; tags from rules stay."""
    import asyncio

    from bot.customers.sync import CustomerSync

    trainer = await token(client, admin_headers, "trainer")
    fake_wecom.corp_tags["g1"] = {"name": "会员等级", "tags": {"金卡": "etGOLD", "银卡": "etSILVER"}}
    for i in range(150):  # two pages for zhangsan
        fake_wecom.contacts[("zhangsan", f"wmOLD{i:03d}")] = {"name": f"老客{i}", "createtime": 1_600_000_000 + i,
                                                             "state": "store_1" if i % 2 else ""}
    fake_wecom.contacts[("lisi", "wmOLD000")] = {"name": "老客0", "createtime": 1_500_000_000}
    fake_wecom.customer_tags[("zhangsan", "wmOLD001")] = {"etGOLD"}
    fake_wecom.customer_tags[("lisi", "wmOLD000")] = {"etSILVER"}

    # Groups too: one WeCom still lists, one we had that was dismissed while nobody listened.
    fake_wecom.group_chats["wrLIVE"] = {"name": "老客福利群", "owner": "zhangsan",
                                        "member_list": [{"userid": "wmOLD001"}, {"userid": "zhangsan"}]}
    from storage.sql import groups as groups_table
    async with parts.engine.begin() as conn:
        await conn.execute(groups_table.insert().values(chat_id="wrGONE", name="旧群", owner="zhangsan", status="active",
                                                        member_count=3, joins=0, leaves=0, updated_at=1))
    resp = await client.post("/api/v1/customers/sync", headers=trainer)
    assert resp.status == 202
    for _ in range(100):
        status = await (await client.get("/api/v1/customers/sync", headers=trainer)).json()
        if status["status"] != "running":
            break
        await asyncio.sleep(0.05)
    assert status["status"] == "done" and status["customers"] == 150 and status["relations"] == 151
    assert status["groups"] == 1 and status["dismissed"] == 1
    assert (await parts.groups.get("wrLIVE"))["member_count"] == 2 and (await parts.groups.get("wrGONE"))["status"] == "dismissed"
    calls = fake_wecom.bodies("/cgi-bin/externalcontact/batch/get_by_user")
    assert [c["cursor"] for c in calls] == ["", "100"] and calls[0]["userid_list"] == ["lisi", "zhangsan"]
    both = await (await client.get("/api/v1/customers/wmOLD000", headers=trainer)).json()
    assert both["name"] == "老客0" and sorted(both["staff"]) == ["lisi", "zhangsan"] and both["tags"] == ["银卡"]
    assert both["first_seen_at"] == 1_500_000_000_000
    gold = await (await client.get("/api/v1/customers?tag=金卡", headers=trainer)).json()
    assert [c["id"] for c in gold["items"]] == ["wmOLD001"]
    by_channel = await (await client.get("/api/v1/customers?channel=store_1&limit=200", headers=trainer)).json()
    assert len(by_channel["items"]) == 75

    # A rule's tag on the same customer, then the gold tag removed in WeCom: the next run drops only it.
    from datetime import datetime, timezone

    from storage.sql import customer_tags, dialect_insert
    async with parts.engine.begin() as conn:
        await conn.execute(dialect_insert(parts.engine, customer_tags).values(
            customer_id="wmOLD001", tag="高意向", source="rule:abc", added_at=datetime.now(timezone.utc)))
    fake_wecom.customer_tags[("zhangsan", "wmOLD001")] = set()
    report = await CustomerSync(parts.engine, parts.wecom).run()
    assert report.complete and report.tags_removed == 1
    one = await (await client.get("/api/v1/customers/wmOLD001", headers=trainer)).json()
    assert one["tags"] == ["高意向"]
    assert (await client.post("/api/v1/customers/sync", headers=await token(client, admin_headers, "qa"))).status == 403
