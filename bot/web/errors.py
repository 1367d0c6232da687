"""API errors as `{"error": {"code", "message"}}`: the typed error views raise, and the middleware
that turns it (and any other failure under /api/ and /console/) into that JSON."""
from __future__ import annotations

import logging
from typing import Awaitable, Callable

from aiohttp import web

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)


def _url_refusal(request: web.Request) -> str | None:
    """A NUL in the path or a query parameter is refused here, once for every route: PostgreSQL
    cannot store or compare it (asyncpg raised, a 500), SQLite and Redis would keep it silently."""
    if "\x00" in request.path:
        return "the path may not contain NUL (U+0000)"
    for name, value in request.query.items():
        if "\x00" in name or "\x00" in value:
            return "query parameters may not contain NUL (U+0000)"
    return None


@web.middleware
async def api_errors(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    # /console/* are the JSON endpoints of the pages (login, session, logout); /survey/* the
    # customer's survey page and its answer.
    if not request.path.startswith(("/api/", "/console/", "/survey/")):
        return await handler(request)
    refused = _url_refusal(request)
    if refused:
        return error_response(400, "invalid_request", refused)
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
