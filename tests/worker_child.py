"""A worker process for the crash test: records what it handles in Redis and hangs on "hang"."""
from __future__ import annotations

import asyncio
import sys

import redis.asyncio as aioredis

from bot.gateway.event_queue import EventQueue
from bot.gateway.router import Router
from bot.gateway.worker import StreamWorker


async def main(redis_url: str, stream: str) -> None:
    r = aioredis.Redis.from_url(redis_url)
    router = Router()

    @router.on("text")
    async def record(msg, redis):
        await redis.rpush("test:handled:child", msg.raw["Content"])
        if msg.raw["Content"] == "hang":
            await asyncio.sleep(3600)

    worker = StreamWorker(EventQueue(r, stream, 3600), router, {"redis": r}, name="child", claim_idle_ms=600_000)
    await worker.run(asyncio.Event())


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
