"""Group commit for Redis Lua scripts: calls made in the same event-loop tick share one pipelined
round trip. Under load the Redis client's per-command overhead, not Redis, is what costs; each
call still runs as its own atomic script and gets its own result or error."""
from __future__ import annotations

import asyncio
from typing import Any, Sequence

import redis.asyncio as aioredis


class ScriptBatcher:
    def __init__(self, redis: aioredis.Redis, source: str) -> None:
        self.redis = redis
        self.script = redis.register_script(source)
        self._pending: list[tuple[Sequence[str], Sequence[Any], asyncio.Future]] = []

    async def __call__(self, keys: Sequence[str], args: Sequence[Any]) -> Any:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._pending.append((keys, args, fut))
        if len(self._pending) == 1:
            loop.call_soon(lambda: asyncio.ensure_future(self._flush()))
        return await fut

    async def _flush(self) -> None:
        batch, self._pending = self._pending, []
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for keys, args, _fut in batch:
                    await self.script(keys=keys, args=args, client=pipe)
                results = await pipe.execute(raise_on_error=False)
        except Exception as exc:  # noqa: BLE001 - every waiter gets the failure
            for *_x, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
            return
        for (*_x, fut), result in zip(batch, results):
            if fut.done():
                continue
            if isinstance(result, Exception):
                fut.set_exception(result)
            else:
                fut.set_result(result)
