"""/healthz and /metrics (no auth)."""
from __future__ import annotations

import asyncio
import logging

import sqlalchemy as sa
from aiohttp import web

from bot.web.appkeys import COMPONENTS, METRICS, QUEUE

log = logging.getLogger(__name__)


async def healthz(request: web.Request) -> web.Response:
    parts = request.app[COMPONENTS]
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(parts.redis.ping(), 2)
        checks["redis"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means unhealthy
        checks["redis"] = exc.__class__.__name__
    try:
        async def _db() -> None:
            async with parts.engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
        await asyncio.wait_for(_db(), 2)
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["database"] = exc.__class__.__name__
    ok = all(v == "ok" for v in checks.values())
    return web.json_response({"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503)


async def metrics(request: web.Request) -> web.Response:
    m = request.app[METRICS]
    try:
        depth = await request.app[QUEUE].depth()
        for state, value in depth.items():
            m.queue_depth.labels(state).set(value)
    except Exception:  # noqa: BLE001 - metrics must render even when Redis is down
        log.warning("queue depth unavailable")
    return web.Response(body=m.render(), headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})
