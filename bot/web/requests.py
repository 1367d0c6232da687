"""Reading request bodies: size-limited, JSON through the one safe parser, validated into models."""
from __future__ import annotations

from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from bot import safe_json
from bot.web.appkeys import SETTINGS
from bot.web.errors import ApiError

M = TypeVar("M", bound=BaseModel)


async def read_limited(request: web.Request, limit: int) -> bytes | None:
    """The body, or None when it exceeds `limit` bytes (read at most limit + 1 bytes)."""
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks, size = [], 0
    while True:
        try:
            chunk = await request.content.read(min(65536, limit + 1 - size))
        except web.HTTPRequestEntityTooLarge:
            return None
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return None


async def read_json(request: web.Request) -> Any:
    if request.content_type not in ("application/json", ""):
        raise ApiError(415, "unsupported_media_type", "Content-Type must be application/json")
    limit = request.app[SETTINGS].max_body_bytes
    body = await read_limited(request, limit)
    if body is None:
        raise ApiError(413, "too_large", f"request body over {limit} bytes")
    try:
        return safe_json.loads(body)
    except safe_json.JsonInputError as exc:
        raise ApiError(400, "bad_json", f"request body is not acceptable JSON: {exc}") from None


def validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ())) or "body"
        parts.append(f"{loc}: {err.get('msg')}")
    return "; ".join(parts)


async def read_model(request: web.Request, model: type[M]) -> M:
    data = await read_json(request)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(400, "invalid_request", validation_message(exc)) from None


def parse_items(data, max_items: int, parse, errors_of=(ValueError,)) -> tuple[list, list[dict]]:
    """A batch body `{"items": [...]}`: every item parsed on its own, so one bad item is a
    per-item error and the rest go through."""
    items = data.get("items") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        raise ApiError(400, "invalid_request", "items must be a non-empty list")
    if len(items) > max_items:
        raise ApiError(400, "invalid_request", f"at most {max_items} items per call")
    parsed, errors = [], []
    for i, raw in enumerate(items):
        try:
            parsed.append(parse(raw))
        except errors_of as exc:
            message = validation_message(exc) if isinstance(exc, ValidationError) else str(exc)
            errors.append({"index": i, "message": message})
    return parsed, errors
