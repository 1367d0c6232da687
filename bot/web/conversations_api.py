"""Archive ingestion (docs/PIPELINE.md), conversations, messages, flags and reviews."""
from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from bot import keys
from bot.conversations.intake import take_in
from bot.conversations.pii import mask_flag, mask_message, mask_text
from bot.conversations.records import ArchiveRecord, RecordError
from bot.web.appkeys import CONVERSATIONS, QUEUE, REDIS, SETTINGS
from bot.web.errors import ApiError
from bot.web.labels_api import LABELS
from bot.web.middlewares import principal, roles
from bot.web.requests import parse_items, read_json, read_model

log = logging.getLogger(__name__)

MAX_RECORDS = 1000


class Review(BaseModel):
    model_config = ConfigDict(extra="forbid")
    verdict: Literal["confirmed", "dismissed"]
    note: str = Field(default="", max_length=4000)
    # The right sensitive category when the flag named the wrong one ("clean" for none): a label.
    category: Literal["abuse", "diversion", "ad_law", "privacy", "clean"] | None = None


def _limit(request: web.Request, default: int = 50) -> int:
    try:
        return min(max(int(request.query.get("limit", str(default))), 1), 200)
    except ValueError:
        raise ApiError(400, "invalid_request", "limit must be an integer") from None


def _time(request: web.Request, name: str) -> datetime | None:
    raw = request.query.get(name)
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ApiError(400, "invalid_request", f"{name} must be an ISO-8601 date or time") from None
    if value.tzinfo is None:
        raise ApiError(400, "invalid_request", f"{name} must include a timezone offset")
    return value


@roles("qa")
async def ingest_archive(request: web.Request) -> web.Response:
    records, errors = parse_items(await read_json(request), MAX_RECORDS, ArchiveRecord.parse, (RecordError,))
    stored, duplicates = await take_in(request.app[CONVERSATIONS], request.app[QUEUE], records)
    return web.json_response({"accepted": len(stored), "duplicates": duplicates, "errors": errors})


def _unmasked(request: web.Request) -> bool:
    return principal(request).role in request.app[SETTINGS].unmasked_roles


@roles("qa", "trainer", "staff")
async def list_conversations(request: web.Request) -> web.Response:
    kind = request.query.get("kind")
    if kind not in (None, "private", "group"):
        raise ApiError(400, "invalid_request", "kind must be private or group")
    try:
        items, nxt = await request.app[CONVERSATIONS].list_conversations(
            kind, request.query.get("staff"), request.query.get("flagged") == "true", request.query.get("cursor"),
            _limit(request), principal(request).member_scope)
    except ValueError as exc:
        raise ApiError(400, "invalid_request", str(exc)) from None
    return web.json_response({"items": items, "next": nxt})


@roles("qa", "trainer", "staff")
async def conversation_messages(request: web.Request) -> web.Response:
    store = request.app[CONVERSATIONS]
    conv_id = request.match_info["id"]
    # Someone else's conversation answers the same 404 as a missing one, so ids cannot be probed.
    conv = await store.get_conversation(conv_id, principal(request).member_scope)
    if conv is None:
        raise ApiError(404, "not_found", "no such conversation")
    try:
        items, nxt = await store.list_messages(conv_id, request.query.get("cursor"), _limit(request, 100),
                                               request.query.get("around"))
    except ValueError as exc:
        raise ApiError(400, "invalid_request", str(exc)) from None
    raw = await request.app[REDIS].get(keys.conversation_suggestions(conv_id))
    suggested = json.loads(raw) if raw else None
    if not _unmasked(request):
        items = [mask_message(m) for m in items]
        if suggested and suggested.get("text"):
            suggested = {**suggested, "text": mask_text(suggested["text"])}
    body = {"items": items, "next": nxt, "conversation": conv}
    if suggested:
        body["suggestions"] = suggested
    return web.json_response(body)


@roles("qa")
async def list_flags(request: web.Request) -> web.Response:
    q = request.query
    status, severity = q.get("status"), q.get("severity")
    if status not in (None, "open", "confirmed", "dismissed"):
        raise ApiError(400, "invalid_request", "status must be open, confirmed or dismissed")
    if severity not in (None, "high", "medium", "low"):
        raise ApiError(400, "invalid_request", "severity must be high, medium or low")
    try:
        items, nxt = await request.app[CONVERSATIONS].list_flags(
            status, q.get("reason"), severity, q.get("conversation_id"), q.get("staff"), _time(request, "since"),
            _time(request, "until"), q.get("cursor"), _limit(request), principal(request).member_scope)
    except ValueError as exc:
        raise ApiError(400, "invalid_request", str(exc)) from None
    if not _unmasked(request):
        items = [mask_flag(f) for f in items]
    return web.json_response({"items": items, "next": nxt})


@roles("qa")
async def review_flag(request: web.Request) -> web.Response:
    req = await read_model(request, Review)
    store = request.app[CONVERSATIONS]
    who = principal(request)
    flag = await store.review_flag(request.match_info["id"], req.verdict, req.note, who.name)
    if flag is None:
        raise ApiError(404, "not_found", "no such flag")
    # The verdict is also a label for the learning loop (docs/openapi.yaml /api/v1/labels).
    await request.app[LABELS].from_flag_review(flag, req.verdict, req.category, f"{who.role}:{who.name}")
    if not _unmasked(request):
        flag = mask_flag(flag)
    return web.json_response({**flag, "history": await store.flag_history(flag["id"])})
