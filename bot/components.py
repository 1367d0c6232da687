"""Builds and owns every component (stores, queue, router, outbound client, NLP, knowledge,
relays, pipeline); the web process and `server.py worker` open the same set."""
from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

import aiohttp
import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.auth import TokenStore, load_or_create_admin_token
from bot.channels import ChannelStore
from bot.conversations.archive_puller import ArchivePuller, load_private_keys
from bot.conversations.pipeline import Pipeline
from bot.conversations.store import ConversationStore
from bot.foreground import Foreground
from bot.gateway.event_queue import EventQueue
from bot.gateway.router import Router
from bot.customers.campaigns import Campaigns
from bot.customers.fission import Fission
from bot.customers.orders import Orders
from bot.customers.profiles import CustomerStore
from bot.customers.segment_index import SegmentIndex
from bot.customers.segments import Segments
from bot.conversations.negative_topics import NegativeTopics
from bot.customers.routing import StoreRouter
from bot.customers.stores import StoreDirectory
from bot.customers.tag_push import TagPusher
from bot.customers.tag_rules import TagRules
from bot.customers.surveys import Surveys
from bot.customers.work_orders import WorkOrders
from bot.groups.materials import MaterialLibrary
from bot.groups.sop import SopCalendar
from bot.groups.store import GroupStore
from bot.handlers import archive, contacts, groups as group_events, kf, welcome
from bot.learning.job_runner import TrainingRunner
from bot.learning.registry import ModelRegistry
from bot.lifetime import DiesWithParent
from bot.metrics import Metrics
from bot.relay import handlers as relay_handlers
from bot.relay.announce import RelayAnnouncer, make_poster
from bot.relay.ledger import RelayLedger
from bot.relay.service import RelayService
from bot.settings import Settings
from bot.wecom_api import WeComClient
from knowledge.base import KnowledgeBase
from knowledge.ranking import ranking_for
from knowledge.scripts import ScriptStore
from nlp.encoders import make_encoder
from nlp.service import NlpConfig, NlpService
from storage.redis_store import open_redis
from storage.sql import open_database, open_relay_log

log = logging.getLogger("copilot")


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
    models: ModelRegistry
    trainer: TrainingRunner
    customers: CustomerStore
    tag_rules: TagRules
    tag_pusher: TagPusher
    segments: Segments
    campaigns: Campaigns
    orders: Orders
    stores: StoreDirectory
    fission: Fission
    work_orders: WorkOrders
    surveys: Surveys
    store_router: StoreRouter
    negative_topics: NegativeTopics
    groups: GroupStore
    sop: SopCalendar
    materials: MaterialLibrary
    puller: ArchivePuller | None = None
    admin_token: str = field(repr=False, default="")

    def handler_deps(self) -> dict[str, Any]:
        """The names handlers may ask for in their signature."""
        return {
            "settings": self.settings, "redis": self.redis, "engine": self.engine, "channels": self.channels,
            "wecom": self.wecom, "queue": self.queue, "metrics": self.metrics, "nlp": self.nlp,
            "relays": self.relays, "knowledge": self.knowledge, "conversations": self.conversations,
            "pipeline": self.pipeline, "puller": self.puller, "customers": self.customers, "fission": self.fission,
            "groups": self.groups, "store_router": self.store_router,
        }


def build_router() -> Router:
    router = Router()
    router.include(welcome.router)
    router.include(contacts.router)
    router.include(group_events.router)
    router.include(relay_handlers.router)
    router.include(kf.router)
    router.include(archive.router)
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

        fingerprint = data_fingerprint()
        models = ModelRegistry(engine, settings.versions_dir, settings.gate_tolerance)
        await models.sync_pointer()  # analyzers start on the registry's active versions

        # DiesWithParent: the pool's workers get SIGTERM when this process dies (even by SIGKILL).
        nlp = NlpService(DiesWithParent(NlpConfig(settings.models_dir, settings.lexicon_dir, settings.nlp_dense_heads,
                                                  train=train_model, data_fingerprint=fingerprint,
                                                  versions_dir=settings.versions_dir)),
                         settings.nlp_processes)
        await nlp.start()
        stack.push_async_callback(nlp.stop)
        await register_base_models(models, settings, fingerprint)
        trainer = TrainingRunner(models, settings)
        stack.push_async_callback(trainer.stop)
        relay_log = await stack.enter_async_context(open_relay_log(engine))
        foreground = Foreground()  # relay sign-ups first; ingestion and analysis yield to them
        loop = asyncio.get_running_loop()
        encoder = await loop.run_in_executor(None, make_encoder, settings.embedding_model)
        reviewer = await loop.run_in_executor(None, relay_reviewer, settings, encoder) if settings.relay_reviewer else None
        relays = RelayService(engine, RelayLedger(redis), events_engine=relay_log, foreground=foreground,
                              reviewer=reviewer)
        announcer = RelayAnnouncer(redis, make_poster(relays, wecom), settings.relay_announce_interval)
        relays.on_change = announcer.schedule
        stack.push_async_callback(announcer.drain)
        knowledge = await open_knowledge(settings, engine, redis, nlp, stack, encoder)
        conversations = ConversationStore(engine, foreground)
        await conversations.backfill_members()
        customers = CustomerStore(engine, settings.timezone)
        tag_rules = TagRules(engine, customers)
        segments = Segments(engine, SegmentIndex(engine, redis))
        fission = Fission(engine, wecom)
        groups = GroupStore(engine, wecom)

        high, medium, low = settings.work_order_sla_hours
        work_orders = WorkOrders(engine, redis, wecom, settings.work_order_owner,
                                 {"high": high, "medium": medium, "low": low}, settings.public_url)

        stores = StoreDirectory(engine, redis)
        store_router = StoreRouter(engine, stores, wecom, settings.store_routing, settings.timezone)

        async def customer_ops(msgs: list[dict], results: dict) -> None:
            touched = await customers.observe(msgs)
            await tag_rules.evaluate(sorted(touched))
            await work_orders.from_analysed(msgs, results)
            await store_router.observe(msgs)

        pipeline = Pipeline(conversations, nlp, redis, relays, knowledge, settings.flag_window,
                            settings.unanswered_sla_minutes * 60_000, after_save=customer_ops)
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
            conversations=conversations, pipeline=pipeline, models=models, trainer=trainer, customers=customers,
            tag_rules=tag_rules, tag_pusher=TagPusher(engine, wecom), segments=segments,
            campaigns=Campaigns(engine, segments, wecom), orders=Orders(engine),
            stores=stores, store_router=store_router, fission=fission,
            negative_topics=NegativeTopics(engine, lambda: topic_model(settings, knowledge.encoder)),
            work_orders=work_orders, surveys=Surveys(engine, work_orders, settings.public_url), groups=groups, sop=SopCalendar(engine, groups, wecom, settings.timezone),
            materials=MaterialLibrary(engine, wecom, settings.data_dir), puller=puller,
            admin_token=admin_token,
        )


async def register_base_models(models: ModelRegistry, settings: Settings, fingerprint: str) -> None:
    """The models built from the repository's data are versions too (rollback targets)."""
    import json

    from nlp.active import TASKS, base_version
    from nlp.models import model_path
    from training.jobs import code_version

    code = code_version()
    for task in TASKS:
        sidecar = model_path(settings.models_dir, task).with_suffix(".json")
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = {}
        await models.ensure_base(task, base_version(task, fingerprint), meta, code)
    await models.sync_pointer()


def relay_reviewer(settings: Settings, encoder):
    """The relay messages' learned second reading (bot/relay/review.py), trained into the models dir
    on first start (≈ 2 min), loaded afterwards; None when there are no labelled threads."""
    from training.trainers import load_relay_reviewer

    return load_relay_reviewer(settings.models_dir, encoder)


def topic_model(settings: Settings, encoder):
    """The negative-topic assigner: trained on the repository's labelled negative messages into the
    models dir once, loaded afterwards (nlp/topics.py)."""
    from nlp.topics import load_or_train
    from training.trainers import topics_fingerprint, train_topics

    return load_or_train(settings.models_dir / "topics.joblib", encoder, train_topics, topics_fingerprint())


async def open_knowledge(settings: Settings, engine: AsyncEngine, redis: aioredis.Redis, nlp: NlpService,
                         stack: AsyncExitStack, encoder) -> KnowledgeBase:
    from concurrent.futures import ThreadPoolExecutor

    executor = ThreadPoolExecutor(1, thread_name_prefix="knowledge")
    stack.callback(executor.shutdown, wait=False)
    lexicons = nlp.lexicons

    def reply_is_unsafe(reply: str) -> bool:
        return bool(lexicons.checker().check(reply, "staff"))

    ranking = ranking_for(settings.embedding_model)
    if ranking is None:
        log.info("no learned suggestion ranking for encoder %s: hand-set fusion weights", settings.embedding_model)
    kb = KnowledgeBase(ScriptStore(engine), redis, encoder, settings.data_dir, executor, reply_is_unsafe,
                       ranking=ranking)
    await kb.start()
    stack.push_async_callback(kb.stop)
    return kb
