"""Typed aiohttp app keys for every component the views use (wired in server.py)."""
from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from aiohttp import web

from bot.auth import TokenStore
from bot.auth_limits import FailureLimiter
from bot.channels import ChannelStore
from bot.gateway.crypto import WeComCrypto
from bot.gateway.event_queue import EventQueue
from bot.metrics import Metrics
from bot.settings import Settings
from bot.web.sessions import SessionStore
from bot.relay.service import RelayService
from bot.conversations.analytics import Analytics
from bot.conversations.store import ConversationStore
from knowledge.base import KnowledgeBase
from nlp.service import NlpService

SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", Metrics)
COMPONENTS = web.AppKey("components", Any)
TOKENS = web.AppKey("tokens", TokenStore)
CHANNELS = web.AppKey("channels", ChannelStore)
QUEUE = web.AppKey("queue", EventQueue)
CRYPTO = web.AppKey("crypto", WeComCrypto)
NLP = web.AppKey("nlp", NlpService)
RELAYS = web.AppKey("relays", RelayService)
KNOWLEDGE = web.AppKey("knowledge", KnowledgeBase)
CONVERSATIONS = web.AppKey("conversations", ConversationStore)
REDIS = web.AppKey("redis", aioredis.Redis)
ANALYTICS = web.AppKey("analytics", Analytics)
SESSIONS = web.AppKey("sessions", SessionStore)
AUTH_LIMITS = web.AppKey("auth_limits", FailureLimiter)
