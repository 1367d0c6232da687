"""Analytics over a small, known conversation history."""
from __future__ import annotations

from server import make_worker
from tests.test_archive import NOW, ingest, qa, rec  # noqa: F401 - fixtures

MIN = 60_000


async def test_analytics(client, qa, parts):  # noqa: F811
    from bot.relay.service import RelaySpec

    await parts.relays.create(RelaySpec("wrA", "蟹", 10, 2), "t")
    rid = (await parts.relays.list("open"))[0]["id"]
    await parts.relays.handle_message(rid, "wm1", "a", "+2", "x1")
    items = [
        rec("a1", "wm1", "+2", roomid="wrA", t=0), rec("a2", "wm2", "哈哈", roomid="wrA", t=1),
        rec("a3", "lisi", "欢迎", roomid="wrA", t=2), rec("b1", "wm3", "你好", roomid="wrB", t=3),
        rec("p1", "wm1", "面霜多少钱", to="zhangsan", t=0), rec("p2", "zhangsan", "580元", to="wm1", t=2 * MIN),
        rec("p3", "wm1", "好的谢谢，很满意", to="zhangsan", t=3 * MIN), rec("p4", "zhangsan", "不客气", to="wm1", t=13 * MIN),
        rec("q1", "wm9", "质量太差了 我要投诉", to="lisi", t=0),
        {**rec("old", "wm7", "还有货吗", to="zhangsan"), "msgtime": NOW - 40 * 86_400_000},
        {**rec("old2", "zhangsan", "有的", to="wm7"), "msgtime": NOW - 40 * 86_400_000 + 1000},
    ]
    await ingest(client, qa, items)
    await make_worker(parts).drain()

    groups = (await (await client.get("/api/v1/analytics/groups", headers=qa)).json())["items"]
    assert groups[0] == {"roomid": "wrA", "messages": 3, "active_members": 3, "active_customers": 2,
                         "relay_units_confirmed": 2}
    assert groups[1]["roomid"] == "wrB"
    top = (await (await client.get("/api/v1/analytics/customers?limit=2", headers=qa)).json())["items"]
    assert top[0]["customer_id"] == "wm1" and top[0]["messages"] == 3 and top[0]["conversations"] == 2
    rt = {r["staff_id"]: r for r in (await (await client.get("/api/v1/analytics/response-times", headers=qa)).json())["items"]}
    assert rt["zhangsan"]["replies"] == 2 and rt["zhangsan"]["median_seconds"] == 360.0
    dormant = (await (await client.get("/api/v1/analytics/dormant?days=30", headers=qa)).json())["items"]
    reasons = {d["customer_id"]: d["reason"] for d in dormant}
    assert reasons == {"wm7": "silent", "wm9": "unanswered"}
    daily = (await (await client.get("/api/v1/analytics/daily?days=7", headers=qa)).json())["items"]
    assert sum(d["messages"] for d in daily) == 9 and sum(d["negative"] for d in daily) >= 1
    assert sum(d["flags"] for d in daily) >= 1
    assert (await client.get("/api/v1/analytics/daily?days=x", headers=qa)).status == 400
