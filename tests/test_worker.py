"""Workers: routing with injected dependencies, retries, dead letters, and crash recovery."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bot.gateway.event_queue import Envelope, EventQueue
from bot.gateway.messages import parse_xml_fields
from bot.gateway.router import Router
from bot.gateway.worker import StreamWorker
from tests.helpers import text_xml

ROOT = Path(__file__).resolve().parent.parent


def env_for(content: str, msg_id: str) -> Envelope:
    return Envelope("callback", "text", parse_xml_fields(text_xml(content, msg_id=msg_id)), time.time())


async def test_router_injects_named_dependencies(parts):
    seen = []
    router = Router()

    @router.on("text")
    async def h(msg, channels, settings):
        seen.append((msg.raw["Content"], channels is parts.channels, settings is parts.settings))

    await parts.queue.accept("msg:1", env_for("你好", "1"))
    worker = StreamWorker(parts.queue, router, parts.handler_deps(), claim_idle_ms=0)
    assert await worker.drain() == 1
    assert seen == [("你好", True, True)]
    assert (await parts.queue.depth())["length"] == 0


async def test_failed_entry_retried_then_dead_lettered(parts):
    attempts = []
    router = Router()

    @router.on("text")
    async def flaky(msg):
        attempts.append(msg.raw["Content"])
        raise RuntimeError("handler bug")

    await parts.queue.accept("msg:2", env_for("boom", "2"))
    worker = StreamWorker(parts.queue, router, {}, claim_idle_ms=0, max_deliveries=3)
    for _ in range(5):
        await worker.step(block_ms=1)
    assert attempts == ["boom"] * 3
    depth = await parts.queue.depth()
    assert depth == {"length": 0, "pending": 0, "dead": 1}


async def test_undecodable_payload_dead_lettered(parts):
    await parts.redis.xadd(parts.settings.stream_name, {"p": b"\xff not json"})
    worker = StreamWorker(parts.queue, Router(), {}, claim_idle_ms=0)
    await worker.drain()
    assert (await parts.queue.depth())["dead"] == 1


async def test_killed_worker_loses_no_accepted_message(parts):
    """A worker process is SIGKILLed while handling; another worker re-claims what it left."""
    q = parts.queue
    contents = ["a", "hang", "b", "c"]
    for i, c in enumerate(contents):
        await q.accept(f"msg:{i}", env_for(c, str(i)))
    if parts.settings.redis_url:
        url = parts.settings.redis_url
    else:
        url = "unix://" + parts.redis.connection_pool.connection_kwargs["path"]
    child = subprocess.Popen([sys.executable, str(ROOT / "tests" / "worker_child.py"), url, q.stream],
                             cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        for _ in range(300):
            if (await parts.redis.lrange("test:handled:child", 0, -1))[-1:] == [b"hang"]:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("child worker never reached the hanging message")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert (await q.depth())["pending"] == 3  # "hang", "b", "c" were read but never acknowledged

    handled = []
    router = Router()

    @router.on("text")
    async def record(msg):
        handled.append(msg.raw["Content"])

    rescuer = StreamWorker(q, router, {}, claim_idle_ms=0)
    await rescuer.drain()
    assert handled == ["hang", "b", "c"]
    assert await q.depth() == {"length": 0, "pending": 0, "dead": 0}


async def test_worker_run_stops_gracefully(parts):
    handled = []
    router = Router()

    @router.on("text")
    async def record(msg):
        handled.append(msg.raw["Content"])

    stop = asyncio.Event()
    worker = StreamWorker(parts.queue, router, {})
    task = asyncio.create_task(worker.run(stop))
    await parts.queue.accept("msg:9", env_for("live", "9"))
    for _ in range(100):
        if handled:
            break
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert handled == ["live"]


async def test_concurrent_accepts_share_round_trips(parts):
    """The ack path pipelines dedupe+XADD of concurrent callbacks (its throughput depends on it)."""
    import asyncio

    from storage.script_batcher import ScriptBatcher

    batcher = parts.queue._accept
    assert isinstance(batcher, ScriptBatcher)
    flushes = []
    original = batcher._flush

    async def counting_flush():
        flushes.append(len(batcher._pending))
        await original()

    batcher._flush = counting_flush
    ids = await asyncio.gather(*(parts.queue.accept(f"msg:b{i}", env_for(f"t{i}", f"b{i}")) for i in range(50)))
    assert all(ids) and len(set(ids)) == 50
    assert len(flushes) < 5 and sum(flushes) == 50
    assert await parts.queue.accept("msg:b3", env_for("t3", "b3")) is None  # still de-duplicated
