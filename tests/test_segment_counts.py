"""Segment counts from the Redis index (bot/customers/segment_index.py) equal a brute-force count
over the SQL rows after every kind of change: tags added and removed (by rules, the sync's
writes, plain SQL), customers going dormant with time alone, lost and back, new profiles, a lost
index and a backlog large enough to rebuild; pages list exactly the counted customers."""
from __future__ import annotations

import time
from datetime import datetime, timezone

import sqlalchemy as sa

from bot import keys
from bot.customers import segment_index
from bot.customers.profiles import ContactChange
from bot.customers.segments import SegmentFilter
from bot.customers.tag_rules import TagRuleInput
from storage.sql import customer_staff, customer_tags, customers, dialect_insert, segment_changes

DAY = 86_400_000

FILTERS = [
    {},
    {"tags_all": ["高意向"]},
    {"tags_all": ["高意向", "团购达人"]},
    {"tags_any": ["高意向", "团购达人"]},
    {"tags_none": ["高意向"]},
    {"dormant_days": 30, "tags_none": ["高意向"]},
    {"status": "active", "tags_all": ["团购达人"]},
    {"status": "lost"},
    {"channel": "store_1"},
    {"channel": "nowhere"},
    {"staff": "zhangsan"},
    {"staff": "lisi", "tags_any": ["沉睡"]},
    {"active_within_days": 7},
    {"tags_any": ["高意向", "沉睡"], "tags_none": ["团购达人"], "dormant_days": 10},
    {"tags_all": ["没人有"]},
]


async def brute_force(engine, f: SegmentFilter, now_ms: int) -> set[str]:
    """The filter evaluated in Python over every row: what the index must agree with."""
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(customers))).mappings().all()
        tags = (await conn.execute(sa.select(customer_tags.c.customer_id, customer_tags.c.tag))).all()
        staff = (await conn.execute(sa.select(customer_staff.c.customer_id, customer_staff.c.staff_id)
                                    .where(customer_staff.c.deleted_at.is_(None)))).all()
    held: dict[str, set[str]] = {}
    for cid, tag in tags:
        held.setdefault(cid, set()).add(tag)
    out = set()
    for r in rows:
        t, seen = held.get(r["id"], set()), r["last_message_at"] if r["last_message_at"] is not None else r["first_seen_at"]
        if not (set(f.tags_all) <= t and (not f.tags_any or t & set(f.tags_any)) and not t & set(f.tags_none)):
            continue
        if f.dormant_days is not None and not seen < now_ms - f.dormant_days * DAY:
            continue
        if f.active_within_days is not None and not seen >= now_ms - f.active_within_days * DAY:
            continue
        if (f.channel is not None and r["channel"] != f.channel) or (f.status is not None and r["status"] != f.status):
            continue
        if f.staff is not None and (r["id"], f.staff) not in set(staff):
            continue
        out.add(r["id"])
    return out


async def assert_counts_exact(parts, now_ms: int, expect_some: bool = True) -> None:
    nonzero = 0
    for body in FILTERS:
        f = SegmentFilter.model_validate(body)
        want = len(await brute_force(parts.engine, f, now_ms))
        assert await parts.segments.count(f, now_ms) == want, body
        nonzero += want > 0
    assert nonzero >= (5 if expect_some else 0)


async def set_tags(parts, pairs, source="api"):
    async with parts.engine.begin() as conn:
        await conn.execute(dialect_insert(parts.engine, customer_tags).on_conflict_do_nothing(),
                           [{"customer_id": c, "tag": t, "source": source, "added_at": datetime.now(timezone.utc)}
                            for c, t in pairs])


async def add_customers(parts, now: int, ids, first=0) -> None:
    for i, cid in enumerate(ids, first):
        await parts.customers.contact_changed(ContactChange("add_external_contact", ("zhangsan", "lisi", "wangwu")[i % 3],
                                                            cid, f"store_{i % 4}", now - (i % 50) * DAY))


async def test_counts_equal_a_brute_force_count_as_tags_and_profiles_change(parts, monkeypatch):
    now = int(time.time()) * 1000
    ids = [f"wmC{i:03d}" for i in range(60)]
    await add_customers(parts, now, ids)
    # Messages: some customers spoke lately (observe() moves their last-seen time).
    await parts.customers.observe([{"sender_id": c, "role": "customer", "msgtime": now - (i % 9) * DAY,
                                    "conversation_id": f"p:{c}|zhangsan"} for i, c in enumerate(ids[::4])])
    await assert_counts_exact(parts, now)
    # Either side of the 30-day line, to the millisecond (the index keeps seconds; counts are
    # taken at a whole second).
    for cid, at in (("wmEDGE0", now - 30 * DAY - 1), ("wmEDGE1", now - 30 * DAY), ("wmEDGE2", now - 30 * DAY + 999)):
        await parts.customers.contact_changed(ContactChange("add_external_contact", "zhangsan", cid, "edge", at))
    assert await parts.segments.count(SegmentFilter(channel="edge", dormant_days=30), now) == 1
    assert await parts.segments.count(SegmentFilter(channel="edge", active_within_days=30), now) == 2
    await assert_counts_exact(parts, now)

    # Tags added: plain SQL (as the WeCom sync and API write them) and a rule over everyone.
    await set_tags(parts, [(c, "高意向") for c in ids[::2]] + [(c, "团购达人") for c in ids[::3]])
    await parts.tag_rules.create(TagRuleInput.model_validate(
        {"name": "沉睡", "tag": "沉睡", "when": {"dormant_days": 30}, "remove_when_false": True}))
    assert (await parts.tag_rules.evaluate())["added"] > 0
    await assert_counts_exact(parts, now)

    # Tags removed, one by one and in bulk.
    async with parts.engine.begin() as conn:
        await conn.execute(customer_tags.delete().where(customer_tags.c.customer_id == ids[0]))
        await conn.execute(customer_tags.delete().where(customer_tags.c.tag == "团购达人",
                                                        customer_tags.c.customer_id.in_(ids[:30])))
    await assert_counts_exact(parts, now)

    # Time alone: forty days on, the same rows answer differently, with nothing written.
    await assert_counts_exact(parts, now + 40 * DAY)

    # Customers lost (they deleted their only staff member), one of them back again.
    for c in ids[1:12:2]:
        await parts.customers.contact_changed(ContactChange("del_follow_user", ("zhangsan", "lisi", "wangwu")[
            ids.index(c) % 3], c, None, now))
    await parts.customers.contact_changed(ContactChange("add_external_contact", "lisi", ids[1], None, now))
    await assert_counts_exact(parts, now)

    # A tag on a customer the profiles do not know yet counts once the profile arrives.
    await set_tags(parts, [("wmLATE", "高意向"), ("wmLATE", "团购达人")])
    await assert_counts_exact(parts, now)
    await add_customers(parts, now, ["wmLATE"], first=7)
    await assert_counts_exact(parts, now)
    assert await parts.segments.count(SegmentFilter(tags_all=["高意向", "团购达人"], channel="store_3"), now) == \
        len(await brute_force(parts.engine, SegmentFilter(tags_all=["高意向", "团购达人"], channel="store_3"), now)) >= 1

    # A backlog beyond REBUILD_AFTER is rebuilt whole; so is an index Redis lost.
    monkeypatch.setattr(segment_index, "REBUILD_AFTER", 3)
    await add_customers(parts, now, [f"wmN{i:02d}" for i in range(10)])
    await set_tags(parts, [(f"wmN{i:02d}", "沉睡") for i in range(0, 10, 2)])
    await assert_counts_exact(parts, now)
    monkeypatch.setattr(segment_index, "REBUILD_AFTER", 20_000)
    await parts.redis.delete(keys.segment_index("built"), keys.segment_tag_bits("高意向"))
    await set_tags(parts, [(ids[5], "高意向")])
    await assert_counts_exact(parts, now)
    async with parts.engine.connect() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(segment_changes))).scalar_one() == 0


async def test_an_index_built_from_another_store_is_not_trusted(parts):
    """A reset database (or another store on the same Redis db) has another token: rebuilt."""
    now = int(time.time()) * 1000
    await add_customers(parts, now, [f"wmA{i}" for i in range(6)])
    await set_tags(parts, [("wmA1", "高意向"), ("wmA2", "高意向")])
    assert await parts.segments.count(SegmentFilter(tags_all=["高意向"]), now) == 2
    async with parts.engine.begin() as conn:  # as if the SQL store were new, numbers reused
        for t in ("segment_index_state", "customer_numbers", "customer_tags", "customer_staff", "customers"):
            await conn.execute(sa.text(f"DELETE FROM {t}"))
    await add_customers(parts, now, ["wmB1", "wmB2", "wmB3"])
    await set_tags(parts, [("wmB3", "团购达人")])
    assert await parts.segments.count(SegmentFilter(tags_all=["高意向"]), now) == 0
    assert await parts.segments.count(SegmentFilter(), now) == 3
    assert await parts.segments.count(SegmentFilter(tags_any=["高意向", "团购达人"]), now) == 1


async def test_segment_pages_list_exactly_the_counted_customers(client, admin_headers, parts):
    now = int(time.time()) * 1000
    ids = [f"wmP{i:03d}" for i in range(45)]
    await add_customers(parts, now, ids)
    await set_tags(parts, [(c, "高意向") for c in ids[::2]] + [(c, "团购达人") for c in ids[::5]])
    resp = await client.post("/api/v1/tokens", json={"role": "trainer", "name": "t"}, headers=admin_headers)
    trainer = {"Authorization": f"Bearer {(await resp.json())['token']}"}
    for body in ({"tags_any": ["高意向", "团购达人"], "tags_none": ["沉睡"]}, {"dormant_days": 20, "tags_none": ["高意向"]},
                 {"status": "active", "tags_all": ["团购达人"]}):
        seg = await (await client.post("/api/v1/segments", json={"name": "s", "filter": body}, headers=trainer)).json()
        want = await brute_force(parts.engine, SegmentFilter.model_validate(body), int(time.time()) * 1000)
        assert seg["count"] == len(want) > 0, body
        got, cursor = [], None
        while True:
            page = await (await client.get(f"/api/v1/segments/{seg['id']}/customers",
                                           params={"limit": 7, **({"cursor": cursor} if cursor else {})},
                                           headers=trainer)).json()
            assert page["count"] == len(want)
            got += [c["id"] for c in page["items"]]
            cursor = page["next"]
            if not cursor:
                break
        assert got == sorted(want), body
