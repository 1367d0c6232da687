"""Nearest stores: the k-d tree (`StoreDirectory.nearest`) against brute-force numpy haversine.

    python bench/stores_bench.py [--stores 10000] [--queries 2000] [--k 5]

Embedded Redis and SQLite in a temporary directory; prints a Markdown table (and checks that both
answer the same stores)."""
from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


async def run(n: int, queries: int, k: int) -> list[tuple]:
    import numpy as np

    from bot.customers.stores import StoreDirectory, StoreInput, haversine_m
    from storage.redis_store import open_redis
    from storage.sql import open_database

    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as d:
        async with open_redis(None, Path(d)) as redis, open_database(f"sqlite+aiosqlite:///{d}/s.db") as engine:
            directory = StoreDirectory(engine, redis)
            items = [StoreInput(id=f"s{i}", name=f"s{i}", lat=rng.uniform(18, 53), lng=rng.uniform(73, 135))
                     for i in range(n)]
            await directory.add(items)
            lat, lng = np.array([s.lat for s in items]), np.array([s.lng for s in items])
            await directory.nearest(30, 120, k)  # builds the tree
            tree, brute = [], []
            for _ in range(queries):
                q = (rng.uniform(18, 53), rng.uniform(73, 135))
                t0 = time.perf_counter()
                got = await directory.nearest(*q, k)
                tree.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                want = np.argsort(haversine_m(*q, lat, lng))[:k]
                brute.append(time.perf_counter() - t0)
                assert [g["id"] for g in got] == [f"s{i}" for i in want]

    def pct(xs):
        xs = sorted(xs)
        return statistics.median(xs) * 1000, xs[int(len(xs) * 0.95) - 1] * 1000

    return [("k-d tree (StoreDirectory.nearest, async, with its Redis version check)", *pct(tree)),
            ("brute-force numpy haversine + argsort", *pct(brute))]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--stores", type=int, default=10_000)
    p.add_argument("--queries", type=int, default=2000)
    p.add_argument("--k", type=int, default=5)
    a = p.parse_args()
    rows = asyncio.run(run(a.stores, a.queries, a.k))
    print(f"\n{a.stores:,} stores, {a.queries:,} queries, k={a.k}; both answered the same stores\n")
    print("| method | p50 ms | p95 ms |\n|---|---:|---:|")
    for name, p50, p95 in rows:
        print(f"| {name} | {p50:.3f} | {p95:.3f} |")


if __name__ == "__main__":
    main()
