"""WeCom Copilot: app factory and CLI. All wiring and lifetimes live here.

    python server.py [--host H] [--port P] [--data-dir D]   web server + background workers
    python server.py worker [--data-dir D]                  a worker process only
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import time
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator

import aiohttp
import redis.asyncio as aioredis
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.handlers import kf, welcome
from bot.relay import handlers as relay_handlers
from bot.relay.announce import RelayAnnouncer, make_poster
from bot.relay.ledger import RelayLedger
from bot.relay.service import RelayService
from bot.auth import TokenStore, load_or_create_admin_token
from bot.auth_limits import FailureLimiter
from bot.channels import ChannelStore
from bot.gateway.crypto import WeComCrypto
from bot.gateway.event_queue import EventQueue
from bot.lifetime import DiesWithParent
from bot.logs import configure_logging
from bot.metrics import Metrics
from bot.gateway.router import Router
from bot.settings import Settings, SettingsError
from storage.redis_store import open_redis
from storage.sql import open_database
from bot.conversations.analytics import Analytics
from bot.conversations.archive_puller import ArchivePuller, load_private_keys, pull_if_free
from bot.conversations.pipeline import Pipeline
from bot.conversations.store import ConversationStore
from bot.web import (admin_api, analytics_api, callback, conversations_api, knowledge_api, nlp_api, pages, relay_api,
                     system)
from bot.web.sessions import SessionStore
from bot.web.appkeys import (ANALYTICS, AUTH_LIMITS, CHANNELS, COMPONENTS, CONVERSATIONS, CRYPTO, KNOWLEDGE, METRICS, NLP, QUEUE, REDIS, RELAYS,
                             SESSIONS, SETTINGS, TOKENS)
from knowledge.base import KnowledgeBase
from knowledge.scripts import ScriptStore
from nlp.encoders import make_encoder
from nlp.service import NlpConfig, NlpService
from bot.web.errors import api_errors, authenticate, observe
from bot.wecom_api import WeComClient
from bot.gateway.worker import StreamWorker

log = logging.getLogger("copilot")

SHUTDOWN_GRACE_SECONDS = 10.0


@dataclass
class Components:
    """Everything a view, handler or worker may depend on, built once per process."""

    settings: Settings
    metrics: Metrics
    redis: aioredis.Redis
    engine: AsyncEngine
    tokens: TokenStore
    channels: ChannelStore
    queue: EventQueue
    router: Router
    wecom: WeComClient | None
    nlp: NlpService
    relays: RelayService
    announcer: RelayAnnouncer
    knowledge: KnowledgeBase
    conversations: ConversationStore
    pipeline: Pipeline
    puller: ArchivePuller | None = None
    admin_token: str = field(repr=False, default="")

    def handler_deps(self) -> dict[str, Any]:
        """The names handlers may ask for in their signature."""
        return {
            "settings": self.settings, "redis": self.redis, "engine": self.engine, "channels": self.channels,
            "wecom": self.wecom, "queue": self.queue, "metrics": self.metrics, "nlp": self.nlp,
            "relays": self.relays, "knowledge": self.knowledge, "conversations": self.conversations,
            "pipeline": self.pipeline, "puller": self.puller,
        }


def build_router() -> Router:
    router = Router()
    router.include(welcome.router)
    router.include(relay_handlers.router)
    router.include(kf.router)

    @router.on("event:msgaudit_notify")
    async def archive_notified(_event, puller, redis) -> None:
        if puller is not None:
            await pull_if_free(puller, redis)
    return router


@asynccontextmanager
async def open_components(settings: Settings, metrics: Metrics | None = None) -> AsyncIterator[Components]:
    metrics = metrics or Metrics()
    async with AsyncExitStack() as stack:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        redis = await stack.enter_async_context(open_redis(settings.redis_url, settings.data_dir))
        engine = await stack.enter_async_context(open_database(settings.sql_url))
        admin_token, created = load_or_create_admin_token(settings.admin_token, settings.data_dir)
        if created:
            # Printed once, on the console only (never into the logs).
            print(f"Admin token (stored in {settings.data_dir / 'admin_token'}): {admin_token}", flush=True)
        queue = EventQueue(redis, settings.stream_name, settings.dedupe_ttl)
        await queue.ensure_group()
        wecom = None
        if settings.outbound_configured:
            session = await stack.enter_async_context(aiohttp.ClientSession())
            wecom = WeComClient(
                session, redis, settings.wecom_api_base, settings.wecom_corp_id or "", settings.wecom_secret or "",
                agent_id=settings.wecom_agent_id or "", retries=settings.api_retries, timeout=settings.api_timeout,
            )
        from training.trainers import data_fingerprint, train_model

        # DiesWithParent: the pool's workers get SIGTERM when this process dies (even by SIGKILL).
        nlp = NlpService(DiesWithParent(NlpConfig(settings.models_dir, settings.lexicon_dir, settings.nlp_dense_heads,
                                                  train=train_model, data_fingerprint=data_fingerprint())),
                         settings.nlp_processes)
        await nlp.start()
        stack.push_async_callback(nlp.stop)
        relays = RelayService(engine, RelayLedger(redis))
        announcer = RelayAnnouncer(redis, make_poster(relays, wecom), settings.relay_announce_interval)
        relays.on_change = announcer.schedule
        stack.push_async_callback(announcer.drain)
        knowledge = await open_knowledge(settings, engine, redis, nlp, stack)
        conversations = ConversationStore(engine)
        await conversations.backfill_members()
        pipeline = Pipeline(conversations, nlp, redis, relays, knowledge, settings.flag_window,
                            settings.unanswered_sla_minutes * 60_000)
        puller = None
        if settings.finance_sdk:
            from bot.conversations.finance_sdk import CtypesFinanceSdk

            sdk = CtypesFinanceSdk(settings.finance_sdk, settings.wecom_corp_id or "", settings.archive_secret or "")
            stack.callback(sdk.close)
            puller = ArchivePuller(sdk, load_private_keys(settings.archive_private_keys or ""), conversations, queue)
        recovered = await relays.recover_all()
        if recovered:
            log.info("relays recovered", extra={"open_relays": recovered})
        yield Components(
            settings=settings, metrics=metrics, redis=redis, engine=engine,
            tokens=TokenStore(engine, admin_token), channels=ChannelStore(engine), queue=queue,
            router=build_router(), wecom=wecom, nlp=nlp, relays=relays, announcer=announcer, knowledge=knowledge,
            conversations=conversations, pipeline=pipeline, puller=puller, admin_token=admin_token,
        )


async def open_knowledge(settings: Settings, engine: AsyncEngine, redis: aioredis.Redis, nlp: NlpService,
                         stack: AsyncExitStack) -> KnowledgeBase:
    from concurrent.futures import ThreadPoolExecutor

    loop = asyncio.get_running_loop()
    encoder = await loop.run_in_executor(None, make_encoder, settings.embedding_model)
    executor = ThreadPoolExecutor(1, thread_name_prefix="knowledge")
    stack.callback(executor.shutdown, wait=False)
    lexicons = nlp.lexicons

    def reply_is_unsafe(reply: str) -> bool:
        return bool(lexicons.checker().check(reply, "staff"))

    kb = KnowledgeBase(ScriptStore(engine), redis, encoder, settings.data_dir, executor, reply_is_unsafe)
    await kb.start()
    stack.push_async_callback(kb.stop)
    return kb


def make_worker(parts: Components) -> StreamWorker:
    async def archive_batch(entry, _deps) -> None:
        await parts.pipeline.process(entry.envelope.fields["msgids"])

    return StreamWorker(
        parts.queue, parts.router, parts.handler_deps(),
        claim_idle_ms=parts.settings.claim_idle_ms, max_deliveries=parts.settings.max_deliveries,
        sources={"archive": archive_batch},
        on_result=lambda r: parts.metrics.worker_entries.labels(r).inc(),
    )


@asynccontextmanager
async def running_workers(parts: Components, count: int) -> AsyncIterator[list[StreamWorker]]:
    """Start `count` workers; on exit let them finish their batch, then cancel stragglers."""
    stop = asyncio.Event()
    workers = [make_worker(parts) for _ in range(count)]
    tasks = [asyncio.create_task(w.run(stop), name=f"worker-{i}") for i, w in enumerate(workers)]
    if count:
        tasks.append(asyncio.create_task(upkeep(parts, stop), name="upkeep"))
    try:
        yield workers
    finally:
        stop.set()
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE_SECONDS)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)


async def upkeep(parts: Components, stop: asyncio.Event, every: float = 5.0) -> None:
    """Periodic upkeep in every worker-running process (all steps are idempotent): every 5 s close
    relays past their ends_at; every minute queue stored-but-unanalysed messages again, flag
    unanswered questions and pull the archive; once a day (one process) mine draft scripts."""
    ticks = 0
    while not stop.is_set():
        try:
            await parts.relays.close_due()
            if ticks % 12 == 0:
                await parts.pipeline.requeue_stale(parts.queue)
                await parts.pipeline.sweep_unanswered()
                if ticks % (12 * 60 * 24) == 12 * 60 and await parts.redis.set(
                        "copilot:mining:daily", b"1", nx=True, ex=20 * 3600):
                    from knowledge.mining import mine  # once a day, in one process

                    await mine(parts.engine, parts.knowledge, int((time.time() - 30 * 86400) * 1000))
                if parts.puller is not None:  # the archive timer; msgaudit_notify pulls sooner
                    await pull_if_free(parts.puller, parts.redis, retry_parked=ticks % 120 == 0)
        except Exception:  # noqa: BLE001 - keep ticking
            log.exception("periodic upkeep failed")
        ticks += 1
        try:
            await asyncio.wait_for(stop.wait(), every)
        except asyncio.TimeoutError:
            pass


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/healthz", system.healthz)
    r.add_get("/metrics", system.metrics)
    r.add_get("/wecom/callback", callback.verify_url)
    r.add_post("/wecom/callback", callback.receive)
    r.add_post("/api/v1/tokens", admin_api.create_token)
    r.add_get("/api/v1/tokens", admin_api.list_tokens)
    r.add_delete("/api/v1/tokens/{id}", admin_api.revoke_token)
    r.add_post("/api/v1/channels", admin_api.upsert_channel)
    r.add_get("/api/v1/channels", admin_api.list_channels)
    r.add_post("/api/v1/analyze", nlp_api.analyze)
    r.add_get("/api/v1/lexicons", nlp_api.list_lexicons)
    r.add_post("/api/v1/lexicons/{category}", nlp_api.add_lexicon_terms)
    r.add_get("/api/v1/scripts", knowledge_api.list_scripts)
    r.add_post("/api/v1/scripts", knowledge_api.create_script)
    r.add_post("/api/v1/scripts/import", knowledge_api.import_scripts)
    r.add_get("/api/v1/scripts/export", knowledge_api.export_scripts)
    r.add_get("/api/v1/scripts/{id}", knowledge_api.get_script)
    r.add_put("/api/v1/scripts/{id}", knowledge_api.put_script)
    r.add_delete("/api/v1/scripts/{id}", knowledge_api.delete_script)
    r.add_post("/api/v1/suggestions", knowledge_api.suggestions)
    r.add_post("/api/v1/suggestions/{id}/feedback", knowledge_api.feedback)
    r.add_post("/api/v1/knowledge/reembed", knowledge_api.reembed)
    r.add_post("/api/v1/archive", conversations_api.ingest_archive)
    r.add_get("/api/v1/conversations", conversations_api.list_conversations)
    r.add_get("/api/v1/conversations/{id}/messages", conversations_api.conversation_messages)
    r.add_get("/api/v1/flags", conversations_api.list_flags)
    r.add_post("/api/v1/flags/{id}/review", conversations_api.review_flag)
    r.add_get("/api/v1/analytics/groups", analytics_api.groups)
    r.add_get("/api/v1/analytics/customers", analytics_api.customers)
    r.add_get("/api/v1/analytics/dormant", analytics_api.dormant)
    r.add_get("/api/v1/analytics/response-times", analytics_api.response_times)
    r.add_get("/api/v1/analytics/daily", analytics_api.daily)
    pages.add_page_routes(app)
    r.add_post("/api/v1/relays", relay_api.create_relay)
    r.add_get("/api/v1/relays", relay_api.list_relays)
    r.add_get("/api/v1/relays/{id}", relay_api.get_relay)
    r.add_post("/api/v1/relays/{id}/messages", relay_api.relay_message)
    r.add_post("/api/v1/relays/{id}/close", relay_api.close_relay)
    r.add_get("/api/v1/relays/{id}/export.csv", relay_api.export_relay)


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
            app[COMPONENTS] = parts
            app[TOKENS] = parts.tokens
            app[CHANNELS] = parts.channels
            app[QUEUE] = parts.queue
            app[NLP] = parts.nlp
            app[RELAYS] = parts.relays
            app[KNOWLEDGE] = parts.knowledge
            app[CONVERSATIONS] = parts.conversations
            app[REDIS] = parts.redis
            app[ANALYTICS] = Analytics(parts.engine, settings.timezone)
            app[SESSIONS] = SessionStore(parts.redis)
            app[AUTH_LIMITS] = FailureLimiter(parts.redis, settings.auth_failures_per_ip, settings.auth_failures_global,
                                              settings.auth_failure_window)
            app[knowledge_api.KNOWLEDGE_TASKS] = shown = knowledge_api.ShownCounter(parts.knowledge.store)
            n = settings.worker_concurrency if run_workers else 0
            async with running_workers(parts, n):
                yield
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
        await asyncio.gather(*(w.run(stop) for w in workers), upkeep(parts, stop))


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="server.py", description="WeCom Copilot service")
    p.add_argument("command", nargs="?", default="serve", choices=["serve", "worker"])
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--data-dir")
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
    web.run_app(create_app(settings), host=settings.host, port=settings.port, access_log=None,
                shutdown_timeout=SHUTDOWN_GRACE_SECONDS, print=lambda *_: None, loop=loop)
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
