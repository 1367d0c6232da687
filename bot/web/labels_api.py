"""The learning loop's labels: POST /api/v1/labels and GET /api/v1/labels/queue (docs/openapi.yaml)."""
from __future__ import annotations

from aiohttp import web
from pydantic import ValidationError

from bot.learning.labels import QUEUE_TASKS, LabelInput, LabelStore
from bot.conversations.pii import mask_text
from bot.web.appkeys import SETTINGS
from bot.web.errors import ApiError
from bot.web.middlewares import principal, roles
from bot.web.requests import parse_items, read_json

LABELS = web.AppKey("labels", LabelStore)
MAX_ITEMS = 1000


@roles("trainer")
async def add_labels(request: web.Request) -> web.Response:
    body = await read_json(request)
    if isinstance(body, dict) and set(body) - {"items"}:
        raise ApiError(400, "invalid_request", 'body must be {"items": [...]}')
    valid, errors = parse_items(body, MAX_ITEMS, LabelInput.model_validate, (ValidationError,))
    who = principal(request)
    accepted = await request.app[LABELS].add(valid, "api", f"{who.role}:{who.name}")
    return web.json_response({"accepted": accepted, "errors": errors})


@roles("trainer")
async def label_queue(request: web.Request) -> web.Response:
    task = request.query.get("task", "intent")
    if task not in QUEUE_TASKS:
        raise ApiError(400, "invalid_request", f"task must be one of {', '.join(QUEUE_TASKS)}")
    try:
        limit = int(request.query.get("limit", "50"))
    except ValueError:
        raise ApiError(400, "invalid_request", "limit must be an integer") from None
    if not 1 <= limit <= 200:
        raise ApiError(400, "invalid_request", "limit must be 1..200")
    store = request.app[LABELS]
    items = await store.queue(task, limit)
    if request.query.get("context") == "1":
        around = await store.context([i["msgid"] for i in items])
        unmasked = principal(request).role in request.app[SETTINGS].unmasked_roles
        for i in items:
            i["context"] = [c if unmasked else {**c, "text": mask_text(c["text"])} for c in around.get(i["msgid"], [])]
    return web.json_response({"items": items})


@roles("trainer")
async def allow_proposals(request: web.Request) -> web.Response:
    """Matches QA keeps dismissing, for a trainer to accept with POST /api/v1/lexicons/allow."""
    return web.json_response({"items": await request.app[LABELS].allow_proposals()})
