"""Limits on failed token attempts (console logins and bearer tokens), per client address and for
the whole service. The counts live in Redis, so every web process shares one budget.

Fixed windows of `window` seconds: when an address (or everyone together) has failed `per_ip`
(`global_`) times in the current window, further attempts are refused until it ends — before the
token is checked, so a refused guess learns nothing. Tokens already known to be valid (the token
store's cache) are not checked against the limits, so integrations keep working during a flood."""
from __future__ import annotations

import logging
import math
import time

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bot import keys

log = logging.getLogger(__name__)


class FailureLimiter:
    def __init__(self, redis: aioredis.Redis, per_ip: int, global_: int, window: int = 60,
                 clock=time.time) -> None:
        self.redis, self.per_ip, self.global_, self.window, self.clock = redis, per_ip, global_, window, clock

    def _keys(self, ip: str) -> tuple[list[str], float]:
        now = self.clock()
        win = int(now // self.window)
        return [keys.auth_failures(f"ip:{ip[:64]}", win), keys.auth_failures("all", win)], now

    async def retry_after(self, ip: str) -> int | None:
        """Seconds until `ip` may try again, or None when it may try now."""
        names, now = self._keys(ip)
        try:
            mine, everyone = await self.redis.mget(names)
        except RedisError:
            # Fail open: without Redis the sessions are gone too, and bearer tokens still need the
            # database; refusing every token would turn a Redis outage into a full outage.
            log.warning("auth failure limits unavailable (Redis error); not enforced for this attempt")
            return None
        if int(mine or 0) >= self.per_ip or int(everyone or 0) >= self.global_:
            return max(1, math.ceil((int(now // self.window) + 1) * self.window - now))
        return None

    async def failed(self, ip: str) -> None:
        names, _now = self._keys(ip)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.incr(name)
                    pipe.expire(name, self.window * 2)
                await pipe.execute()
        except RedisError:
            log.warning("could not count a failed token attempt (Redis error)")
