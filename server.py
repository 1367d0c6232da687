"""WeCom Copilot: app factory, the worker process and the CLI.

    python server.py [--host H] [--port P] [--data-dir D] [--demo]   web server + background workers
                                                            (--demo: a sample brand on every page)
    python server.py worker [--data-dir D]                  a worker process only

Where the parts are: the components and their wiring in bot/components.py, the periodic jobs in
bot/jobs.py, the route table in bot/web/routes.py.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

from aiohttp import web

from bot.auth_limits import FailureLimiter
from bot.components import Components, open_components
from bot.conversations import intake
from bot.conversations.analytics import Analytics
from bot.gateway.crypto import WeComCrypto
from bot.gateway.worker import StreamWorker
from bot.jobs import run_schedule
from bot.learning.labels import LabelStore
from bot.logs import configure_logging
from bot.metrics import Metrics
from bot.settings import Settings, SettingsError
from bot.web import customers_api, knowledge_api, labels_api
from bot.web.appkeys import (ANALYTICS, AUTH_LIMITS, CHANNELS, COMPONENTS, CONVERSATIONS, CRYPTO, KNOWLEDGE, METRICS, NLP, QUEUE, REDIS, RELAYS,
                             SESSIONS, SETTINGS, TOKENS)
from bot.web.errors import api_errors
from bot.web.middlewares import authenticate, observe
from bot.web.routes import add_routes
from bot.web.sessions import SessionStore
from knowledge.picks import PickStore

log = logging.getLogger("copilot")

SHUTDOWN_GRACE_SECONDS = 10.0


def make_worker(parts: Components) -> StreamWorker:
    async def analysis_batch(entry, _deps) -> None:
        msgids, known = intake.batch_contents(entry.envelope)
        await parts.pipeline.process(msgids, known)

    return StreamWorker(
        parts.queue, parts.router, parts.handler_deps(),
        claim_idle_ms=parts.settings.claim_idle_ms, max_deliveries=parts.settings.max_deliveries,
        sources={intake.SOURCE: analysis_batch},
        on_result=lambda r: parts.metrics.worker_entries.labels(r).inc(),
    )


@asynccontextmanager
async def running_workers(parts: Components, count: int) -> AsyncIterator[list[StreamWorker]]:
    """Start `count` workers; on exit let them finish their batch, then cancel stragglers."""
    stop = asyncio.Event()
    workers = [make_worker(parts) for _ in range(count)]
    tasks = [asyncio.create_task(w.run(stop), name=f"worker-{i}") for i, w in enumerate(workers)]
    if count:
        tasks.append(asyncio.create_task(run_schedule(parts, stop), name="jobs"))
    try:
        yield workers
    finally:
        stop.set()
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE_SECONDS)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)


def create_app(settings: Settings, *, run_workers: bool = True) -> web.Application:
    metrics = Metrics()
    app = web.Application(
        middlewares=[observe, api_errors, authenticate],
        # Script imports may be large; every other endpoint enforces max_body_bytes itself.
        client_max_size=max(settings.max_body_bytes, knowledge_api.MAX_IMPORT_BYTES),
    )
    app[SETTINGS] = settings
    app[METRICS] = metrics
    if settings.callback_configured:
        app[CRYPTO] = WeComCrypto(
            settings.wecom_token or "", settings.wecom_encoding_aes_key or "", settings.wecom_corp_id or "",
            settings.wecom_max_clock_skew,
        )

    async def components_ctx(app: web.Application) -> AsyncIterator[None]:
        async with open_components(settings, metrics) as parts:
            if settings.demo:
                from bot.demo import load_demo

                await load_demo(parts)
            app[COMPONENTS] = parts
            app[TOKENS] = parts.tokens
            app[CHANNELS] = parts.channels
            app[QUEUE] = parts.queue
            app[NLP] = parts.nlp
            app[RELAYS] = parts.relays
            app[KNOWLEDGE] = parts.knowledge
            app[CONVERSATIONS] = parts.conversations
            app[labels_api.LABELS] = LabelStore(parts.engine)
            app[knowledge_api.PICKS] = PickStore(parts.engine)
            app[REDIS] = parts.redis
            app[ANALYTICS] = Analytics(parts.engine, settings.timezone)
            app[SESSIONS] = SessionStore(parts.redis)
            app[AUTH_LIMITS] = FailureLimiter(parts.redis, settings.auth_failures_per_ip, settings.auth_failures_global,
                                              settings.auth_failure_window)
            app[knowledge_api.KNOWLEDGE_TASKS] = shown = knowledge_api.ShownCounter(parts.knowledge.store)
            app[customers_api.BACKGROUND] = background = set()
            n = settings.worker_concurrency if run_workers else 0
            async with running_workers(parts, n):
                yield
            for task in list(background):
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await shown.drain()

    app.cleanup_ctx.append(components_ctx)
    add_routes(app)
    return app


async def run_worker_process(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with open_components(settings) as parts:
        workers = [make_worker(parts) for _ in range(max(1, settings.worker_concurrency))]
        await asyncio.gather(*(w.run(stop) for w in workers), run_schedule(parts, stop))


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="server.py", description="WeCom Copilot service")
    p.add_argument("command", nargs="?", default="serve", choices=["serve", "worker"])
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--data-dir")
    p.add_argument("--demo", action="store_true", help="load the sample brand into an empty data dir (bot/demo.py)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    overrides: dict[str, Any] = {}
    if args.host:
        overrides["host"] = args.host
    if args.port is not None:
        overrides["port"] = args.port
    if args.data_dir:
        overrides["data_dir"] = Path(args.data_dir)
    if args.demo:
        overrides["demo"] = True
    settings = settings.with_overrides(**overrides)
    configure_logging(settings.log_level, [
        s for s in (settings.wecom_token, settings.wecom_encoding_aes_key, settings.wecom_secret, settings.admin_token) if s
    ])
    loop = new_event_loop()
    if args.command == "worker":
        loop.run_until_complete(run_worker_process(settings))
        loop.close()
        return 0
    log.info("starting", extra={"host": settings.host, "port": settings.port, "data_dir": str(settings.data_dir)})
    from bot.demo import DemoRefused

    try:
        web.run_app(create_app(settings), host=settings.host, port=settings.port, access_log=None,
                    shutdown_timeout=SHUTDOWN_GRACE_SECONDS, print=lambda *_: None, loop=loop)
    except DemoRefused as exc:
        print(f"--demo refused: {exc}", file=sys.stderr)
        return 2
    return 0


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed (it is a dependency; ~2x the request rate), else asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


if __name__ == "__main__":
    sys.exit(main())
