"""The middlewares every request goes through besides the JSON errors (bot/web/errors.py): metrics
(`observe`) and bearer-token / console-session authentication with role checks (`authenticate`)."""
from __future__ import annotations

import time
from typing import Awaitable, Callable

from aiohttp import web

from bot.auth import Principal
from bot.web.appkeys import AUTH_LIMITS, METRICS, SESSIONS, TOKENS
from bot.web.errors import ApiError

PRINCIPAL = "principal"


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
