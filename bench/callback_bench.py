"""Callback ack-path benchmark: encrypted POSTs through verify + decrypt + dedupe + XADD,
side by side with a bare aiohttp handler returning "success" (the ceiling).

    python bench/callback_bench.py [--requests 20000] [--concurrency 64] [--training]

--training adds a run of the full handler while the service's own runner trains a model in its
child process (issue 12: training must not slow the ack path).

Server and load generator run as separate processes on 127.0.0.1. Uses REDIS_URL when set,
otherwise the embedded Redis. Prints a Markdown table.
"""
from __future__ import annotations

import argparse
import asyncio
import os
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

CORP_ID = "ww0123456789abcdef"
TOKEN = "QDG6eK"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"


def serve(mode: str, port: int, data_dir: str) -> None:
    from aiohttp import web

    if mode == "bare":
        async def ok(request: web.Request) -> web.Response:
            await request.read()
            return web.Response(text="success")

        app = web.Application()
        app.router.add_post("/wecom/callback", ok)
        app.router.add_get("/healthz", ok)
    else:
        from bot.settings import Settings
        from server import create_app

        env = {"COPILOT_DATA_DIR": data_dir, "WECOM_CORP_ID": CORP_ID, "WECOM_TOKEN": TOKEN,
               "WECOM_ENCODING_AES_KEY": AES_KEY, "COPILOT_ADMIN_TOKEN": "bench-admin-token",
               "COPILOT_NLP_PROCESSES": "0", "COPILOT_MODELS_DIR": str(ROOT / "var" / "test-models")}
        if os.environ.get("REDIS_URL"):
            env["REDIS_URL"] = os.environ["REDIS_URL"]
        settings = Settings.from_env(env).with_overrides(stream_name=f"bench:{os.getpid()}")
        app = create_app(settings, run_workers=False)
        if mode == "training":
            app.cleanup_ctx.append(training_job)
    from server import new_event_loop

    # Both handlers run on the same loop implementation the service uses (uvloop).
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=lambda *_: None, loop=new_event_loop())


async def training_job(app):
    """A sensitive-model training job (the longest) run by the service's own runner, as the
    schedule would, for the whole of the measurement."""
    from bot.web.appkeys import COMPONENTS

    parts = app[COMPONENTS]
    await parts.models.enqueue("sensitive", "bench")

    async def ticks():
        while True:
            await parts.trainer.tick()
            await asyncio.sleep(1.0)

    task = asyncio.create_task(ticks())
    yield
    task.cancel()


def training_state(port: int) -> str:
    """The bench job's status, through the API."""
    import json
    import urllib.request

    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/models?task=sensitive",
                                 headers={"Authorization": "Bearer bench-admin-token"})
    with urllib.request.urlopen(req, timeout=5) as r:
        trained = [v for v in json.loads(r.read())["items"] if v["kind"] == "trained"]
    return "done" if trained else "running"


def make_requests(n: int) -> list[tuple[str, bytes]]:
    from bot.gateway.crypto import WeComCrypto, signature

    c = WeComCrypto(TOKEN, AES_KEY, CORP_ID)
    base = time.time_ns()
    out = []
    for i in range(n):
        ts = str(int(time.time()))
        xml = (f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[user{i % 1000}]]></FromUserName>"
               f"<CreateTime>{ts}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
               f"<Content><![CDATA[你好，请问这款面霜还有货吗？第{i}条]]></Content><MsgId>{base + i}</MsgId><AgentID>1000002</AgentID></xml>")
        enc = c.encrypt(xml)
        q = f"msg_signature={signature(TOKEN, ts, 'n', enc)}&timestamp={ts}&nonce=n"
        body = f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><Encrypt><![CDATA[{enc}]]></Encrypt><AgentID>1000002</AgentID></xml>"
        out.append((q, body.encode()))
    return out


async def load(port: int, reqs: list[tuple[str, bytes]], concurrency: int) -> dict:
    import aiohttp

    lat: list[float] = []
    statuses: dict[int, int] = {}
    it = iter(reqs)
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn) as s:
        async def one_worker() -> None:
            for q, body in it:
                t0 = time.perf_counter()
                async with s.post(f"http://127.0.0.1:{port}/wecom/callback?{q}", data=body) as r:
                    await r.read()
                    statuses[r.status] = statuses.get(r.status, 0) + 1
                lat.append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        await asyncio.gather(*(one_worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    lat.sort()
    return {"rps": len(lat) / elapsed, "p50": statistics.median(lat) * 1000,
            "p99": lat[int(len(lat) * 0.99) - 1] * 1000, "statuses": statuses}


def run_mode(mode: str, n: int, concurrency: int) -> dict:
    port = free_port()
    with tempfile.TemporaryDirectory() as d:
        proc = subprocess.Popen([sys.executable, __file__, "--serve", mode, "--port", str(port), "--data-dir", d], cwd=ROOT)
        try:
            wait_healthy(port)
            reqs = make_requests(n)
            asyncio.run(load(port, reqs[: min(1000, n)], concurrency))  # warm-up (distinct MsgIds below)
            if mode == "training":
                time.sleep(3.0)  # the child is importing and loading data by now
            out = asyncio.run(load(port, make_requests(n), concurrency))
            if mode == "training":
                out["training"] = training_state(port)
            return out
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--requests", type=int, default=20000)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--training", action="store_true",
                   help="also measure the full handler while a training job runs (docs/BENCHMARKS.md)")
    p.add_argument("--serve")
    p.add_argument("--port", type=int)
    p.add_argument("--data-dir")
    a = p.parse_args()
    if a.serve:
        serve(a.serve, a.port, a.data_dir)
        return
    results = {m: run_mode(m, a.requests, a.concurrency) for m in ("bare", "full", *(("training",) if a.training else ()))}
    print(f"\n{a.requests} POSTs, {a.concurrency} connections, redis={'REDIS_URL' if os.environ.get('REDIS_URL') else 'embedded'}\n")
    print("| handler | req/s | p50 ms | p99 ms | statuses |")
    print("|---|---:|---:|---:|---|")
    for m, r in results.items():
        label = m if m != "training" else f"full, training job {'still running at the end' if r['training'] == 'running' else 'finished during the run'}"
        print(f"| {label} | {r['rps']:.0f} | {r['p50']:.1f} | {r['p99']:.1f} | {r['statuses']} |")
    print(f"\nfull / bare = {results['full']['rps'] / results['bare']['rps']:.0%}")
    if "training" in results:
        print(f"during training / full = {results['training']['rps'] / results['full']['rps']:.0%}")


if __name__ == "__main__":
    main()
