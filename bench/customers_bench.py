"""Customer operations: segment counts over many profiles, and tag-rule evaluation throughput.

    python bench/customers_bench.py [--profiles 1000000] [--messages 20000]
        [--database postgresql://postgres@127.0.0.1:5432/bench_customers] [--redis redis://127.0.0.1:6379/7]

1. Segment counts: `--profiles` customers (30 % tagged 高意向, 10 % 团购达人, 20 % silent for 60
   days, 5 % lost) in the given database (created if missing; default: a temporary SQLite file)
   and Redis db (its segment index keys are replaced; default: an embedded Redis in a temporary
   directory), each filter counted 40 times through `Segments.count` after one change to a tag
   (so every timed count first brings the index up to date); the first count, which builds the
   index from SQL, is timed on its own. Baseline: the same filter as a numpy boolean mask over
   in-memory arrays (what an in-process bitmap index would cost).
2. Tag rules: `--messages` analysed customer messages (2,000 customers) in batches of 100 through
   what the pipeline runs after storing a batch (`CustomerStore.observe` + `TagRules.evaluate`
   for the touched customers, three rules); messages/s.
Prints Markdown tables. Never run against a database that holds real data: it is wiped.
"""
from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DAY = 86_400_000


async def ensure_database(url: str) -> None:
    if not url.startswith("postgresql"):
        return
    import asyncpg

    base, name = url.rsplit("/", 1)
    conn = await asyncpg.connect(base.replace("postgresql+asyncpg", "postgresql") + "/postgres")
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def fill_profiles(engine, n: int, rng: random.Random):
    import numpy as np
    import sqlalchemy as sa

    from storage.sql import customer_tags, customers

    now = int(time.time() * 1000)
    async with engine.begin() as conn:
        await conn.execute(sa.text("DELETE FROM customer_tags"))
        await conn.execute(sa.text("DELETE FROM customers"))
    hot = np.zeros(n, bool)
    group = np.zeros(n, bool)
    seen = np.zeros(n, np.int64)
    lost = np.zeros(n, bool)
    stamp = datetime.now(timezone.utc)
    batch = 20_000
    for start in range(0, n, batch):
        rows, tags = [], []
        for i in range(start, min(n, start + batch)):
            hot[i], group[i], lost[i] = rng.random() < 0.3, rng.random() < 0.1, rng.random() < 0.05
            seen[i] = now - (60 if rng.random() < 0.2 else rng.randint(0, 20)) * DAY
            rows.append({"id": f"wm{i:09d}", "first_seen_at": int(seen[i]), "last_message_at": int(seen[i]),
                         "status": "lost" if lost[i] else "active", "updated_at": stamp})
            if hot[i]:
                tags.append({"customer_id": f"wm{i:09d}", "tag": "高意向", "source": "bench", "added_at": stamp})
            if group[i]:
                tags.append({"customer_id": f"wm{i:09d}", "tag": "团购达人", "source": "bench", "added_at": stamp})
        async with engine.begin() as conn:
            await conn.execute(customers.insert(), rows)
            if tags:
                await conn.execute(customer_tags.insert(), tags)
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:
            await conn.execute(sa.text("ANALYZE customers"))
            await conn.execute(sa.text("ANALYZE customer_tags"))
    return {"hot": hot, "group": group, "seen": seen, "lost": lost, "now": now}


def timed(samples: list[float]) -> tuple[float, float]:
    s = sorted(samples)
    return statistics.median(s) * 1000, s[max(0, int(len(s) * 0.95) - 1)] * 1000


async def bench_segments(url: str, redis_url: str | None, n: int) -> list[tuple]:
    from storage.redis_store import open_redis
    from storage.sql import open_database

    await ensure_database(url)
    with tempfile.TemporaryDirectory() as redis_dir:
        async with open_database(url) as engine, open_redis(redis_url, Path(redis_dir)) as redis:
            return await _bench_segments(engine, redis, n)


async def _bench_segments(engine, redis, n: int) -> list[tuple]:
    from bot.customers.segment_index import SegmentIndex
    from bot.customers.segments import SegmentFilter, Segments
    from storage.sql import customer_tags

    t0 = time.perf_counter()
    arr = await fill_profiles(engine, n, random.Random(7))
    fill_s = time.perf_counter() - t0
    seg = Segments(engine, SegmentIndex(engine, redis))
    t0 = time.perf_counter()
    await seg.index.refresh()
    build_s = time.perf_counter() - t0
    touched = False

    async def touch() -> None:
        """One tag change outside every filter: each timed count applies one change note."""
        nonlocal touched
        async with engine.begin() as conn:
            if touched:
                await conn.execute(customer_tags.delete().where(customer_tags.c.tag == "bench-touch"))
            else:
                await conn.execute(customer_tags.insert().values(customer_id="wm000000000", tag="bench-touch",
                                                                 source="bench", added_at=datetime.now(timezone.utc)))
        touched = not touched

    cut = arr["now"] - 30 * DAY
    cases = [
        ("tags_all [高意向]", SegmentFilter(tags_all=["高意向"]), lambda: arr["hot"]),
        ("tags_all [高意向, 团购达人]", SegmentFilter(tags_all=["高意向", "团购达人"]), lambda: arr["hot"] & arr["group"]),
        ("tags_any [高意向, 团购达人]", SegmentFilter(tags_any=["高意向", "团购达人"]), lambda: arr["hot"] | arr["group"]),
        ("dormant_days 30, tags_none [高意向]", SegmentFilter(dormant_days=30, tags_none=["高意向"]),
         lambda: (arr["seen"] < cut) & ~arr["hot"]),
        ("status active, tags_all [团购达人]", SegmentFilter(status="active", tags_all=["团购达人"]),
         lambda: ~arr["lost"] & arr["group"]),
    ]
    out = []
    for name, f, mask in cases:
        got = await seg.count(f)
        want = int(mask().sum())
        assert got == want, (name, got, want)
        sql, base = [], []
        for _ in range(40):
            await touch()
            t = time.perf_counter()
            await seg.count(f)
            sql.append(time.perf_counter() - t)
            t = time.perf_counter()
            int(mask().sum())
            base.append(time.perf_counter() - t)
        out.append((name, got, *timed(sql), *timed(base)))
    return [(engine.dialect.name, n, fill_s, build_s, out)]


async def bench_rules(url: str, n_messages: int) -> tuple[float, int]:
    import sqlalchemy as sa

    from bot.customers.profiles import CustomerStore
    from bot.customers.tag_rules import TagRuleInput, TagRules
    from storage.sql import analyses, customer_daily, customer_staff, customer_tags, customers, messages, open_database, \
        tag_pushes, tag_rules

    await ensure_database(url)
    rng = random.Random(3)
    async with open_database(url) as engine:
        async with engine.begin() as conn:
            for t in (tag_pushes, customer_tags, customer_daily, customer_staff, customers, tag_rules, analyses, messages):
                await conn.execute(t.delete())
        store = CustomerStore(engine)
        rules = TagRules(engine, store)
        for body in ({"name": "a", "tag": "高意向", "when": {"intent": "price_inquiry", "min_count": 2, "days": 7}},
                     {"name": "b", "tag": "需关怀", "when": {"sentiment": "negative", "min_count": 2, "days": 3}},
                     {"name": "c", "tag": "沉睡", "when": {"dormant_days": 30}}):
            await rules.create(TagRuleInput.model_validate(body))
        now = int(time.time() * 1000)
        intents = ["price_inquiry", "product_info", "shipping", "greeting", "complaint"]
        msgs = []
        for i in range(n_messages):
            c = f"wm{rng.randrange(2000):06d}"
            msgs.append({"msgid": f"m{i}", "conversation_id": f"p:{c}|staff{rng.randrange(50)}", "sender_id": c,
                         "role": "customer", "action": "send", "msgtime": now - rng.randrange(5 * DAY), "msgtype": "text",
                         "text": "x", "raw": {}, "intent": rng.choice(intents),
                         "sentiment": rng.choice(["positive", "neutral", "negative"])})
        stamp = datetime.now(timezone.utc)
        elapsed = 0.0
        for i in range(0, len(msgs), 100):
            batch = msgs[i:i + 100]
            async with engine.begin() as conn:  # what the pipeline has stored before the hook runs
                await conn.execute(messages.insert(), [{k: m[k] for k in ("msgid", "conversation_id", "sender_id", "role",
                                                                            "action", "msgtime", "msgtype", "text", "raw")}
                                                       for m in batch])
                await conn.execute(analyses.insert(), [{"msgid": m["msgid"], "intent": m["intent"], "intent_score": 0.9,
                                                        "sentiment": m["sentiment"], "sentiment_score": 0.9,
                                                        "sensitive": [], "flagged": False, "analyzed_at": stamp}
                                                       for m in batch])
            t = time.perf_counter()
            touched = await store.observe(batch)
            await rules.evaluate(sorted(touched))
            elapsed += time.perf_counter() - t
        async with engine.connect() as conn:
            tagged = (await conn.execute(sa.select(sa.func.count()).select_from(customer_tags))).scalar_one()
        return n_messages / elapsed, tagged


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--profiles", type=int, default=1_000_000)
    p.add_argument("--messages", type=int, default=20_000)
    p.add_argument("--database", help="SQLAlchemy URL (default: a temporary SQLite file)")
    p.add_argument("--redis", help="Redis URL for the segment index (default: an embedded Redis)")
    p.add_argument("--only", choices=("segments", "rules"))
    a = p.parse_args()
    from bot.settings import normalise_database_url

    with tempfile.TemporaryDirectory() as d:
        url = normalise_database_url(a.database) if a.database else f"sqlite+aiosqlite:///{d}/bench.db"
        if a.only != "rules":
            [(dialect, n, fill_s, build_s, rows)] = asyncio.run(bench_segments(url, a.redis, a.profiles))
            print(f"\n## segment counts over {n:,} profiles ({dialect}; filled in {fill_s:.0f}s, "
                  f"index built in {build_s:.1f}s)\n")
            print("| filter | count | count p50 ms | count p95 ms | numpy mask p50 ms | numpy p95 ms |")
            print("|---|---:|---:|---:|---:|---:|")
            for name, count, p50, p95, b50, b95 in rows:
                print(f"| {name} | {count:,} | {p50:.1f} | {p95:.1f} | {b50:.2f} | {b95:.2f} |")
        if a.only == "segments":
            return
        dialect = url.split(":", 1)[0].split("+", 1)[0]
        rate, tagged = asyncio.run(bench_rules(url, a.messages))
        print(f"\n## tag rules after analysis ({dialect}): {a.messages:,} messages from 2,000 customers, batches of 100, "
              f"3 rules: **{rate:,.0f} messages/s** ({tagged} tags held at the end)")


if __name__ == "__main__":
    main()
