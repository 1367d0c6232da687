"""Mining best-seller replies into draft scripts."""
from __future__ import annotations

from knowledge.mining import draft_id, mine
from server import make_worker
from tests.test_archive import NOW, ingest, qa, rec  # noqa: F401 - fixture

H = 3600 * 1000


async def test_mined_drafts_rank_by_conversion(client, qa, parts):  # noqa: F811
    good = "这款面霜今天会员价522元，还送两支小样，现在下单最划算哦"
    meh = "价格在详情页哦"
    items = []
    for i in range(4):  # the good reply converts 3 times out of 4
        c = f"wmG{i}"
        items += [rec(f"g{i}a", c, "这个面霜多少钱", to="zhangsan", t=i * 10 * H),
                  rec(f"g{i}b", "zhangsan", good, to=c, t=i * 10 * H + 60_000)]
        if i < 3:
            items.append(rec(f"g{i}c", c, "好的我要两瓶，怎么下单", to="zhangsan", t=i * 10 * H + 120_000))
    for i in range(4):  # the weak one never does
        c = f"wmM{i}"
        items += [rec(f"m{i}a", c, "面霜什么价格", to="lisi", t=i * 10 * H),
                  rec(f"m{i}b", "lisi", meh, to=c, t=i * 10 * H + 60_000)]
    await ingest(client, qa, items)
    await make_worker(parts).drain()
    proposals = await mine(parts.engine, parts.knowledge, NOW - H, min_uses=3)
    assert [p["reply"] for p in proposals] == [good]
    p = proposals[0]
    assert (p["uses"], p["conversions"], p["staff"], p["status"]) == (4, 3, ["zhangsan"], "draft")
    script = await parts.knowledge.store.get(draft_id(good))
    assert script.status == "draft" and script.stats["mined"]["conversion_rate"] == 0.75
    # drafts are never suggested; once a trainer approves, re-mining keeps it approved
    assert not await parts.knowledge.suggest("面霜多少钱")
    from knowledge.scripts import ScriptInput

    await parts.knowledge.upsert([ScriptInput(id=script.id, question=script.question, reply=script.reply, status="approved")])
    again = await mine(parts.engine, parts.knowledge, NOW - H, min_uses=3)
    assert again[0]["status"] == "approved"
    assert (await parts.knowledge.suggest("面霜多少钱"))[0].script.id == script.id
