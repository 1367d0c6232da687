"""Relay sign-up throughput and the crash scenario.

    python bench/relay_bench.py [--requests 10000] [--concurrency 64] [--kill]

1. The Lua check-and-reserve step alone (RelayLedger.join, 64 coroutines).
2. Sign-ups through HTTP against a server process on 127.0.0.1 (stock large enough not to sell out).
3. The flash sale of issue 6: 5,000 sign-ups from 2,000 customers, stock 50, limit 2; with --kill the
   server is SIGKILLed after 1,500 answers and restarted, and the invariants are checked at the end.
Uses REDIS_URL / DATABASE_URL when set, else the embedded stores. Prints Markdown tables.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from netutil import free_port, wait_healthy  # noqa: E402
ADMIN = "bench-admin-token-0123456789"


class Server:
    """`env` overrides the benchmark defaults (no workers, NLP in-process), e.g. to run the
    service's own defaults or to point it at other stores."""

    def __init__(self, data_dir: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.data_dir = data_dir
        self.env = env or {}
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        env = {**os.environ, "COPILOT_ADMIN_TOKEN": ADMIN, "COPILOT_NLP_PROCESSES": "0",
               "COPILOT_MODELS_DIR": str(ROOT / "var" / "test-models"), "COPILOT_WORKERS": "0", **self.env}
        self.proc = subprocess.Popen([sys.executable, "server.py", "--host", "127.0.0.1", "--port", str(self.port),
                                      "--data-dir", self.data_dir], cwd=ROOT, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_healthy(self.port)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


async def http_signups(base: str, rid: str, msgs: list[tuple[str, str, str]], concurrency: int,
                       stop_after: int | None = None) -> tuple[list, list[float]]:
    import aiohttp

    headers = {"Authorization": f"Bearer {ADMIN}"}
    answers, lat = [], []
    it = iter(msgs)
    done = asyncio.Event()

    async with aiohttp.ClientSession(headers=headers, connector=aiohttp.TCPConnector(limit=concurrency)) as s:
        async def worker():
            for msgid, sender, text in it:
                if done.is_set():
                    return
                t0 = time.perf_counter()
                try:
                    async with s.post(f"{base}/api/v1/relays/{rid}/messages",
                                      json={"sender_id": sender, "sender_name": sender, "text": text, "msgid": msgid}) as r:
                        if r.status == 200:
                            answers.append((msgid, sender, await r.json()))
                            lat.append(time.perf_counter() - t0)
                except aiohttp.ClientError:
                    pass
                if stop_after and len(answers) >= stop_after:
                    done.set()

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return answers, lat


async def create_relay(base: str, stock: int, limit: int) -> str:
    import aiohttp

    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {ADMIN}"}) as s:
        async with s.post(f"{base}/api/v1/relays", json={"chat_id": "wrBENCH", "title": "bench", "stock": stock,
                                                         "per_user_limit": limit}) as r:
            return (await r.json())["id"]


async def get_state(base: str, rid: str) -> dict:
    import aiohttp

    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {ADMIN}"}) as s:
        async with s.get(f"{base}/api/v1/relays/{rid}") as r:
            return await r.json()


async def lua_only(n: int, concurrency: int) -> float:
    from bot.relay.ledger import RelayLedger
    from storage.redis_store import open_redis

    with tempfile.TemporaryDirectory() as d:
        async with open_redis(os.environ.get("REDIS_URL"), Path(d)) as redis:
            ledger = RelayLedger(redis)
            rid = f"bench{os.getpid()}"
            await ledger.init(rid, n * 10, 1_000_000, True)
            sem = asyncio.Semaphore(concurrency)

            async def one(i):
                async with sem:
                    await ledger.join(rid, f"c{i % 2000}", "n", 1, f"m{i}", time.time())

            t0 = time.perf_counter()
            await asyncio.gather(*(one(i) for i in range(n)))
            rate = n / (time.perf_counter() - t0)
            from bot.relay.ledger import relay_keys

            await redis.delete(*relay_keys(rid))
            return rate


def run_wrk(base: str, concurrency: int) -> str:
    """The same endpoint driven by wrk (C), which leaves the server more of this 2-core machine
    than the Python load generator does."""
    import json
    import shutil
    import urllib.request

    if not shutil.which("wrk"):
        return "| wrk not installed (apt-get install wrk) | | | |"
    req = urllib.request.Request(f"{base}/api/v1/relays", method="POST", data=json.dumps(
        {"chat_id": "wrWRK", "title": "wrk", "stock": 1_000_000, "per_user_limit": 10_000}).encode(),
        headers={"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"})
    rid = json.loads(urllib.request.urlopen(req).read())["id"]
    env = {**os.environ, "COPILOT_ADMIN_TOKEN": ADMIN}
    url = f"{base}/api/v1/relays/{rid}/messages"
    script = str(ROOT / "bench" / "relay_wrk.lua")
    subprocess.run(["wrk", "-t1", f"-c{concurrency}", "-d3s", "-s", script, url], env=env, capture_output=True)
    out = subprocess.run(["wrk", "-t1", f"-c{concurrency}", "-d10s", "--latency", "-s", script, url], env=env,
                         capture_output=True, text=True).stdout
    rps = next(l.split()[-1] for l in out.splitlines() if l.startswith("Requests/sec"))
    lat = {l.split()[0]: l.split()[1] for l in out.splitlines() if l.strip().startswith(("50%", "99%"))}
    return f"| HTTP, driven by wrk (10 s) | {float(rps):,.0f} | {lat.get('50%', '?')} | {lat.get('99%', '?')} |"


def check_invariants(state: dict, answers: list, stock: int, limit: int) -> list[str]:
    problems = []
    total = sum(e["quantity"] for e in state["entries"])
    if total > stock:
        problems.append(f"oversold: {total} > {stock}")
    final = {e["sender_id"]: e["quantity"] for e in state["entries"]}
    if any(q > limit for q in final.values()):
        problems.append("a customer exceeds the per-user limit")
    lost = [(s, a["confirmed_quantity"]) for _m, s, a in answers if a["confirmed_quantity"] > final.get(s, 0)]
    if lost:
        problems.append(f"{len(lost)} acknowledged confirmations missing, e.g. {lost[:3]}")
    return problems


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--requests", type=int, default=10000)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--kill", action="store_true")
    a = p.parse_args()

    lua_rate = asyncio.run(lua_only(a.requests, a.concurrency))
    with tempfile.TemporaryDirectory() as d:
        server = Server(d)
        server.start()
        base = f"http://127.0.0.1:{server.port}"
        try:
            rid = asyncio.run(create_relay(base, a.requests * 10, 10_000))
            msgs = [(f"w{i}", f"c{i % 2000}", "+1") for i in range(1000)]
            asyncio.run(http_signups(base, rid, msgs, a.concurrency))  # warm-up
            msgs = [(f"m{i}", f"c{i % 2000}", "+1") for i in range(a.requests)]
            t0 = time.perf_counter()
            answers, lat = asyncio.run(http_signups(base, rid, msgs, a.concurrency))
            http_rate = len(answers) / (time.perf_counter() - t0)
            lat.sort()

            wrk_line = run_wrk(base, a.concurrency)

            # The flash sale.
            rng = random.Random(7)
            sale = [(f"s{i}", f"c{rng.randrange(2000)}", rng.choice(["+1", "+2", "接龙", "我要两份"])) for i in range(5000)]
            rid2 = asyncio.run(create_relay(base, 50, 2))
            t0 = time.perf_counter()
            if a.kill:
                first, _ = asyncio.run(http_signups(base, rid2, sale, a.concurrency, stop_after=1500))
                server.kill()
                server.start()
                base = f"http://127.0.0.1:{server.port}"
                # Clients retry what was not answered, with the same msgids.
                answered = {m for m, _s, _a in first}
                rest, _ = asyncio.run(http_signups(base, rid2, [m for m in sale if m[0] not in answered], a.concurrency))
                answers2 = first + rest
            else:
                answers2, _ = asyncio.run(http_signups(base, rid2, sale, a.concurrency))
            sale_s = time.perf_counter() - t0
            state = asyncio.run(get_state(base, rid2))
        finally:
            server.stop()

    problems = check_invariants(state, answers2, 50, 2)
    print(f"\nredis={'REDIS_URL' if os.environ.get('REDIS_URL') else 'embedded'}, "
          f"sql={'DATABASE_URL' if os.environ.get('DATABASE_URL') else 'sqlite'}, concurrency {a.concurrency}\n")
    print("| path | sign-ups/s | p50 ms | p99 ms |")
    print("|---|---:|---:|---:|")
    print(f"| Lua check-and-reserve alone ({a.requests}) | {lua_rate:,.0f} | | |")
    print(f"| HTTP POST /relays/{{id}}/messages ({a.requests}) | {http_rate:,.0f} | "
          f"{statistics.median(lat) * 1000:.1f} | {lat[int(len(lat) * 0.99) - 1] * 1000:.1f} |")
    print(wrk_line)
    print(f"\nFlash sale: 5,000 sign-ups, 2,000 customers, stock 50, limit 2{' , server SIGKILLed after 1,500 answers and restarted' if a.kill else ''}: "
          f"{len(answers2)} answered in {sale_s:.1f}s; confirmed {sum(e['quantity'] for e in state['entries'])}, "
          f"max per customer {max((e['quantity'] for e in state['entries']), default=0)}, waitlist {len(state['waitlist'])}; "
          f"invariants: {'OK' if not problems else problems}")


if __name__ == "__main__":
    main()
