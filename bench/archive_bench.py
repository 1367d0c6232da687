"""Archive ingestion end to end: records POSTed to /api/v1/archive in batches of 500, analysed by
worker processes; records/s accepted, records/s analysed end to end, and backlog drain time.

    python bench/archive_bench.py [--records 200000] [--workers 1]

Uses REDIS_URL / DATABASE_URL when set (the issue's target is PostgreSQL), else embedded stores.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
ADMIN = "bench-admin-token-0123456789"


def make_records(n: int, run: str) -> list[dict]:
    from training.datasets import intent_examples, sentiment_chat_examples

    texts = [e.text for e in intent_examples()] + [e.text for e in sentiment_chat_examples()]
    rng = random.Random(11)
    base = int(time.time() * 1000) - n * 10
    out = []
    for i in range(n):
        customer = f"wm{rng.randrange(20000)}"
        staff = f"staff{rng.randrange(200)}"
        is_group = rng.random() < 0.3
        sender = customer if rng.random() < 0.6 else staff
        rec = {"msgid": f"{run}-{i}", "action": "send", "from": sender,
               "tolist": [staff if sender == customer else customer], "roomid": f"wr{rng.randrange(300)}" if is_group else "",
               "msgtime": base + i * 10}
        if rng.random() < 0.9:
            rec["msgtype"], rec["text"] = "text", {"content": rng.choice(texts)}
        else:
            rec["msgtype"], rec["image"] = "image", {"md5sum": "x", "sdkfileid": "f"}
        out.append(rec)
    return out


async def post_all(base: str, records: list[dict], batch: int, concurrency: int) -> float:
    import aiohttp

    chunks = [records[i:i + batch] for i in range(0, len(records), batch)]
    it = iter(chunks)
    t0 = time.perf_counter()
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {ADMIN}"}) as s:
        async def worker():
            for chunk in it:
                async with s.post(f"{base}/api/v1/archive", json={"items": chunk}) as r:
                    body = await r.json()
                    assert r.status == 200 and not body["errors"], body

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - t0


async def pending(settings, run: str) -> int:
    import sqlalchemy as sa

    from storage.sql import make_engine, messages

    engine = make_engine(settings.sql_url)
    async with engine.connect() as conn:
        n = (await conn.execute(sa.select(sa.func.count()).select_from(messages)
                                .where(messages.c.analyzed.is_(False), messages.c.msgid.like(f"{run}-%")))).scalar()
    await engine.dispose()
    return n


def main() -> None:
    from relay_bench import Server

    p = argparse.ArgumentParser()
    p.add_argument("--records", type=int, default=200_000)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--batch", type=int, default=500)
    a = p.parse_args()
    from bot.settings import Settings

    with tempfile.TemporaryDirectory() as d:
        server = Server(d)
        server.start()
        env = {**os.environ, "COPILOT_ADMIN_TOKEN": ADMIN, "COPILOT_MODELS_DIR": str(ROOT / "var" / "test-models"),
               "COPILOT_NLP_PROCESSES": "0"}
        workers = [subprocess.Popen([sys.executable, "server.py", "worker", "--data-dir", d], cwd=ROOT, env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(a.workers)]
        settings = Settings.from_env({**os.environ, "COPILOT_DATA_DIR": d})
        try:
            run = f"b{int(time.time())}"
            records = make_records(a.records, run)
            t0 = time.perf_counter()
            post_s = asyncio.run(post_all(f"http://127.0.0.1:{server.port}", records, a.batch, 4))
            backlog_at_end = asyncio.run(pending(settings, run))
            while asyncio.run(pending(settings, run)) > 0:
                time.sleep(1.0)
            total_s = time.perf_counter() - t0
        finally:
            for w in workers:
                w.terminate()
                w.wait(timeout=30)
            server.stop()
    print(f"\n{a.records:,} records in batches of {a.batch}, {a.workers} worker process(es), "
          f"redis={'REDIS_URL' if os.environ.get('REDIS_URL') else 'embedded'}, "
          f"sql={'PostgreSQL' if os.environ.get('DATABASE_URL') else 'SQLite'}\n")
    print("| measure | value |")
    print("|---|---:|")
    print(f"| ingestion (POST /api/v1/archive, stored + queued) | {a.records / post_s:,.0f} records/s |")
    print(f"| backlog when the last batch was accepted | {backlog_at_end:,} records |")
    print(f"| end to end (ingested and analysed) | {a.records / total_s:,.0f} records/s |")
    print(f"| backlog drain after ingestion ended | {total_s - post_s:.1f} s |")


if __name__ == "__main__":
    main()
