"""Work orders (issue 15): an angry customer opens exactly one order for their staff member's
leader, the owner is alerted, a missed SLA escalates once to the next leader, the order is
resolved and the customer's later messages show in its outcome."""
from __future__ import annotations

import time

from tests.test_customers import ingest, rec, token


async def test_an_angry_customer_opens_one_order_alerts_escalates_once_and_the_outcome_shows(
        client, admin_headers, parts, fake_wecom):
    fake_wecom.users.update({"zhangsan": {"direct_leader": ["wangjingli"]}, "wangjingli": {"direct_leader": ["zhaozong"]}})
    now = int(time.time() * 1000)
    await ingest(client, admin_headers, parts, [
        rec("w1", "wmANGRY", "你们这面霜用了过敏，太差劲了，我要投诉！", t=now - 5000),
        rec("w2", "wmANGRY", "到现在都没人理我，服务太烂了，必须给个说法", t=now - 4000),
        rec("w3", "wmANGRY", "再不处理我就去消协投诉你们", t=now - 3000)])
    qa = await token(client, admin_headers, "qa")
    orders = (await (await client.get("/api/v1/work-orders?status=open", headers=qa)).json())["items"]
    assert len(orders) == 1, orders
    order = orders[0]
    assert order["customer_id"] == "wmANGRY" and order["owner"] == "wangjingli" and order["staff_id"] == "zhangsan"
    assert len(order["evidence"]) >= 2 and order["due_at"] > now
    wo = parts.work_orders
    assert await wo.alert_and_escalate() == {"alerts": 1, "escalations": 0}
    assert await wo.alert_and_escalate() == {"alerts": 0, "escalations": 0}
    sent = fake_wecom.bodies("/cgi-bin/message/send")
    assert [m["touser"] for m in sent] == ["wangjingli"] and order["id"] in sent[0]["text"]["content"]
    # the SLA passes: escalated to the owner's leader, once, even when the job runs again
    wo.clock = lambda: time.time() + 9 * 3600
    assert await wo.alert_and_escalate() == {"alerts": 0, "escalations": 1}
    assert await wo.alert_and_escalate() == {"alerts": 0, "escalations": 0}
    assert [m["touser"] for m in fake_wecom.bodies("/cgi-bin/message/send")] == ["wangjingli", "zhaozong"]
    wo.clock = time.time
    staff = await token(client, admin_headers, "staff", "wangjingli")
    for to in ("in_progress", "resolved"):
        resp = await client.post(f"/api/v1/work-orders/{order['id']}/transition", json={"to": to, "note": "已退款"},
                                 headers=staff)
        assert resp.status == 200, await resp.text()
    bad = await client.post(f"/api/v1/work-orders/{order['id']}/transition", json={"to": "open"}, headers=staff)
    assert bad.status == 409
    await ingest(client, admin_headers, parts, [rec("w4", "wmANGRY", "收到退款了，谢谢你们，处理得很快", t=int(time.time() * 1000) + 1000)])
    done = await (await client.get(f"/api/v1/work-orders/{order['id']}", headers=qa)).json()
    assert done["status"] == "resolved" and done["outcome"]["recontacted"] and done["outcome"]["sentiment"].get("positive") == 1
    assert done["events"][0]["kind"] == "opened"
    assert {"alert", "escalation", "transition"} <= {e["kind"] for e in done["events"]}
    # another staff member sees none of it
    other = await token(client, admin_headers, "staff", "lisi")
    assert (await (await client.get("/api/v1/work-orders", headers=other)).json())["items"] == []
    assert (await client.get(f"/api/v1/work-orders/{order['id']}", headers=other)).status == 404


async def test_an_order_always_has_an_owner_and_alerts_are_retried_not_lost(client, admin_headers, parts, fake_wecom):
    qa = await token(client, admin_headers, "qa")
    parts.work_orders.default_owner = "kefu_team"  # COPILOT_WORK_ORDER_OWNER
    resp = await client.post("/api/v1/work-orders", json={"customer_id": "wmX", "severity": "high", "note": "电话投诉"},
                             headers=qa)
    assert resp.status == 201
    order = await resp.json()
    assert order["owner"] == "kefu_team"  # no staff member, no leader: the configured team
    fake_wecom.fail_next("/cgi-bin/message/send", 60020)
    assert (await parts.work_orders.alert_and_escalate())["alerts"] == 0  # refused: released for the next run
    again = await client.post("/api/v1/work-orders", json={"customer_id": "wmX", "severity": "high"}, headers=qa)
    assert again.status == 200 and (await again.json())["id"] == order["id"]  # one active order per customer and cause
    assert (await parts.work_orders.alert_and_escalate())["alerts"] == 1
    for q in ("status=gone", "limit=0", "cursor=zz"):
        assert (await client.get(f"/api/v1/work-orders?{q}", headers=qa)).status == 400, q
    assert (await client.post("/api/v1/work-orders", json={"customer_id": "wmX", "severity": "urgent"},
                              headers=qa)).status == 400
