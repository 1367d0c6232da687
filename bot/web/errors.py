"""API errors as `{"error": {"code", "message"}}`, request validation, and the middlewares
that every request goes through (errors, metrics, auth)."""
from __future__ import annotations

import logging
import time
from typing import Any, Awaitable, Callable, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from bot import safe_json
from bot.auth import Principal
from bot.web.appkeys import AUTH_LIMITS, METRICS, SESSIONS, SETTINGS, TOKENS

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
PRINCIPAL = "principal"


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)


def client_address(request: web.Request) -> str:
    """The peer address (X-Forwarded-For is not trusted: see docs/CONFIGURATION.md)."""
    return request.remote or "unknown"


async def refuse_if_throttled(request: web.Request) -> None:
    """429 with Retry-After while this address (or everyone) has used up its failed-token budget."""
    limiter = request.app.get(AUTH_LIMITS)
    if limiter is None:
        return
    wait = await limiter.retry_after(client_address(request))
    if wait is not None:
        raise ApiError(429, "rate_limited", f"too many failed token attempts; retry in {wait} s",
                       headers={"Retry-After": str(wait)})


async def count_failure(request: web.Request) -> None:
    limiter = request.app.get(AUTH_LIMITS)
    if limiter is not None:
        await limiter.failed(client_address(request))


def roles(*allowed: str) -> Callable:
    """Declare which roles may call a /api/v1 handler (admin always may)."""

    def deco(fn: Callable) -> Callable:
        fn.allowed_roles = allowed  # type: ignore[attr-defined]
        return fn

    return deco


def principal(request: web.Request) -> Principal:
    return request[PRINCIPAL]


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


def _route_name(request: web.Request) -> str:
    info = request.match_info
    route = getattr(info, "route", None)
    resource = getattr(route, "resource", None)
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def observe(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    start = time.perf_counter()
    status = 500
    try:
        resp = await handler(request)
        status = resp.status
        return resp
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        metrics = request.app[METRICS]
        route = _route_name(request)
        metrics.requests.labels(route, request.method, str(status)).inc()
        metrics.latency.labels(route).observe(time.perf_counter() - start)


@web.middleware
async def api_errors(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    # /console/* are the JSON endpoints of the pages (login, session, logout).
    if not request.path.startswith(("/api/", "/console/")):
        return await handler(request)
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(exc.status, "http_error")
        return error_response(exc.status, code, exc.reason)
    except Exception:  # noqa: BLE001 - never leak a traceback to a client
        log.exception("unhandled API error", extra={"path": request.path})
        return error_response(500, "internal", "internal error")


async def _session_principal(request: web.Request) -> Principal | None:
    """A console session (cookie) stands in for a bearer token; writes need its CSRF token."""
    from bot.web.sessions import COOKIE, csrf_ok

    sid = request.cookies.get(COOKIE)
    store = request.app.get(SESSIONS)
    if not sid or store is None:
        return None
    session = await store.get(sid)
    if session is None:
        return None
    if not await request.app[TOKENS].is_active(session["token_id"]):
        await store.delete(sid)  # the token behind this session was revoked
        return None
    if not csrf_ok(request, session):
        raise ApiError(403, "csrf", "missing or wrong X-CSRF-Token")
    return Principal(session["token_id"], session["name"], session["role"], session.get("userid"))


@web.middleware
async def authenticate(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    if not request.path.startswith("/api/"):
        return await handler(request)
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        tokens = request.app[TOKENS]
        who = tokens.known_valid(token.strip())
        if who is None:
            await refuse_if_throttled(request)
            who = await tokens.authenticate(token.strip())
            if who is None:
                await count_failure(request)
                raise ApiError(401, "unauthorized", "invalid or revoked token")
    else:
        who = await _session_principal(request)
        if who is None:
            raise ApiError(401, "unauthorized", "missing bearer token")
    request[PRINCIPAL] = who
    allowed = getattr(handler, "allowed_roles", None)
    if allowed is None:
        # A matched route with no declaration is admin-only; unmatched paths fall through to 404.
        if getattr(request.match_info, "http_exception", None) is None:
            allowed = ()
        else:
            return await handler(request)
    if not who.may(*allowed):
        raise ApiError(403, "forbidden", f"role {who.role!r} may not call this endpoint")
    return await handler(request)
