"""GET /api/v1/analytics/* — operator views of groups, customers and staff."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from aiohttp import web

from bot.web.appkeys import ANALYTICS
from bot.web.errors import ApiError
from bot.web.middlewares import principal, roles


def _int(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    try:
        return min(max(int(request.query.get(name, str(default))), lo), hi)
    except ValueError:
        raise ApiError(400, "invalid_request", f"{name} must be an integer") from None


def _window(request: web.Request) -> tuple[datetime, datetime]:
    now = datetime.now(timezone.utc)
    out = []
    for name, default in (("since", now - timedelta(days=30)), ("until", now + timedelta(days=1))):
        raw = request.query.get(name)
        if not raw:
            out.append(default)
            continue
        try:
            value = datetime.fromisoformat(raw)
        except ValueError:
            raise ApiError(400, "invalid_request", f"{name} must be ISO-8601") from None
        out.append(value if value.tzinfo else value.replace(tzinfo=timezone.utc))
    return out[0], out[1]


@roles("qa", "trainer")
async def groups(request: web.Request) -> web.Response:
    since, until = _window(request)
    return web.json_response({"items": await request.app[ANALYTICS].groups(since, until)})


@roles("qa", "trainer")
async def customers(request: web.Request) -> web.Response:
    since, _ = _window(request)
    return web.json_response({"items": await request.app[ANALYTICS].customers(since, _int(request, "limit", 50, 1, 500))})


@roles("qa", "trainer", "staff")
async def dormant(request: web.Request) -> web.Response:
    items = await request.app[ANALYTICS].dormant(_int(request, "days", 14, 1, 365), datetime.now(timezone.utc),
                                                 _int(request, "limit", 100, 1, 1000), principal(request).member_scope)
    return web.json_response({"items": items})


@roles("qa", "trainer")
async def response_times(request: web.Request) -> web.Response:
    since, _ = _window(request)
    return web.json_response({"items": await request.app[ANALYTICS].response_times(since)})


@roles("qa", "trainer")
async def daily(request: web.Request) -> web.Response:
    items = await request.app[ANALYTICS].daily(_int(request, "days", 30, 1, 366), datetime.now(timezone.utc))
    return web.json_response({"items": items})


@roles("qa", "trainer")
async def negative_topics(request: web.Request) -> web.Response:
    """What customers' negative messages of the last `days` were about, by topic and ISO week."""
    from bot.conversations.pii import mask_text
    from bot.web.appkeys import COMPONENTS, SETTINGS

    days = _int(request, "days", 28, 1, 366)
    now = int(datetime.now(timezone.utc).timestamp() * 1000)
    out = await request.app[COMPONENTS].negative_topics.ranking(now - days * 86_400_000, now + 86_400_000)
    if principal(request).role not in request.app[SETTINGS].unmasked_roles:
        for item in out["items"]:
            for e in item["examples"]:
                e["text"] = mask_text(e["text"] or "")
    return web.json_response(out)
