"""The consoles and the staff sidebar: static pages (served locally, no CDN) that log in with a
token into a cookie session and then call the same /api/v1 endpoints as integrators."""
from __future__ import annotations

import hashlib
import re
import secrets
import time
from pathlib import Path
from urllib.parse import parse_qs

from aiohttp import web

from bot import keys
from bot import safe_json
from bot.web.appkeys import COMPONENTS, SESSIONS, TOKENS
from bot.web.errors import ApiError
from bot.web.middlewares import count_failure, refuse_if_throttled, roles
from bot.wecom_api import WeComAPIError, WeComUnavailable
from bot.web.requests import read_limited
from bot.web.sessions import COOKIE, csrf_ok, set_cookie

STATIC = Path(__file__).resolve().parent / "static"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; base-uri 'none'; form-action 'self'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
# The console may not be framed at all (clickjacking). The sidebar is opened by WeCom's clients as
# the chat-toolbar page, and WeCom does not document the origin it would frame it from, so it
# keeps no frame restriction (docs/CONSOLE.md, "Framing").
NO_FRAMING = {"Content-Security-Policy": CSP + "; frame-ancestors 'none'", "X-Frame-Options": "DENY"}


def _page(name: str, extra: dict[str, str] | None = None) -> web.FileResponse:
    return web.FileResponse(STATIC / name, headers={**SECURITY_HEADERS, **(extra or {}), "Cache-Control": "no-store"})


async def console(_request: web.Request) -> web.StreamResponse:
    return _page("console.html", NO_FRAMING)


async def sidebar(_request: web.Request) -> web.StreamResponse:
    return _page("sidebar.html")


LOGIN_MAX_BYTES = 4096


async def _login_token(request: web.Request) -> str:
    """The token from a small JSON or urlencoded body; anything else is a 4xx (never a 500)."""
    ctype = request.content_type
    if ctype not in ("application/json", "application/x-www-form-urlencoded"):
        raise ApiError(415, "unsupported_media_type", "send application/json or application/x-www-form-urlencoded")
    body = await read_limited(request, LOGIN_MAX_BYTES)
    if body is None:
        raise ApiError(413, "too_large", f"request body over {LOGIN_MAX_BYTES} bytes")
    if ctype == "application/json":
        try:
            data = safe_json.loads(body)
        except safe_json.JsonInputError as exc:
            raise ApiError(400, "bad_json", f"request body is not acceptable JSON: {exc}") from None
        token = data.get("token") if isinstance(data, dict) else None
    else:
        form = parse_qs(body.decode("latin-1"), max_num_fields=20, encoding="utf-8", errors="replace")
        token = (form.get("token") or [None])[0]
    return token.strip() if isinstance(token, str) else ""


async def login(request: web.Request) -> web.Response:
    await refuse_if_throttled(request)
    token = await _login_token(request)
    who = await request.app[TOKENS].authenticate(token) if token else None
    if who is None:
        await count_failure(request)
        raise ApiError(401, "unauthorized", "invalid or revoked token")
    sid, csrf = await request.app[SESSIONS].create(who)
    resp = web.json_response({"name": who.name, "role": who.role, "csrf": csrf})
    set_cookie(request, resp, sid)
    return resp


async def session(request: web.Request) -> web.Response:
    s = await request.app[SESSIONS].get(request.cookies.get(COOKIE, ""))
    if s is None:
        return web.json_response({"error": {"code": "unauthorized", "message": "not logged in"}}, status=401)
    return web.json_response({"name": s["name"], "role": s["role"], "csrf": s["csrf"]})


async def logout(request: web.Request) -> web.Response:
    sid = request.cookies.get(COOKIE, "")
    s = await request.app[SESSIONS].get(sid)
    if s is not None:
        if not csrf_ok(request, s):
            return web.json_response({"error": {"code": "csrf", "message": "missing or wrong X-CSRF-Token"}}, status=403)
        await request.app[SESSIONS].delete(sid)
    resp = web.json_response({"logged_out": True})
    resp.del_cookie(COOKIE, path="/")
    return resp


async def sidebar_oauth(request: web.Request) -> web.StreamResponse:
    """WeCom OAuth2 for the chat-toolbar page: code → userid (auth/getuserinfo) → a staff session."""
    parts = request.app[COMPONENTS]
    code = request.query.get("code", "")
    if not code or parts.wecom is None:
        raise web.HTTPFound("/sidebar")
    try:
        data = await parts.wecom.call("GET", "/cgi-bin/auth/getuserinfo", params={"code": code})
    except WeComAPIError:
        raise web.HTTPForbidden(text="WeCom did not accept this login code; open the sidebar again") from None
    except WeComUnavailable:
        raise web.HTTPServiceUnavailable(text="WeCom is unreachable; try again") from None
    userid = data.get("userid") or data.get("UserId")
    if not userid:
        raise web.HTTPForbidden(text="only members of the corp can use the sidebar")
    from bot.auth import Principal

    sid, _csrf = await request.app[SESSIONS].create(Principal(f"wecom:{userid}", str(userid), "staff", str(userid)))
    resp = web.HTTPFound("/sidebar?wecom=1")
    set_cookie(request, resp, sid)
    raise resp


@roles("staff")
async def jsconfig(request: web.Request) -> web.Response:
    """Signature for wx.agentConfig (JS-SDK) for the page at ?url=, from the agent_config ticket
    (cached in Redis by the outbound client's token lifetime rules)."""
    parts = request.app[COMPONENTS]
    url = request.query.get("url", "").split("#", 1)[0]
    if not url.startswith(("http://", "https://")):
        raise ApiError(400, "invalid_request", "url must be the page's absolute URL")
    if parts.wecom is None:
        raise ApiError(503, "not_configured", "outbound WeCom API not configured (WECOM_SECRET)")
    key = keys.wecom("agent_ticket", parts.settings.wecom_corp_id or "", parts.settings.wecom_agent_id or "")
    ticket = await parts.redis.get(key)
    if ticket is None:
        try:
            data = await parts.wecom.call("GET", "/cgi-bin/ticket/get", params={"type": "agent_config"})
            ticket = str(data["ticket"]).encode()
        except (WeComAPIError, WeComUnavailable, KeyError) as exc:
            # WeCom's failure, not ours: say so (the sidebar falls back to manual mode).
            raise ApiError(502, "wecom_unavailable", f"WeCom did not give a JS-SDK ticket: {exc}") from None
        await parts.redis.set(key, ticket, ex=max(60, int(data.get("expires_in", 7200)) - 300))
    nonce, ts = secrets.token_hex(8), str(int(time.time()))
    signature = hashlib.sha1(f"jsapi_ticket={ticket.decode()}&noncestr={nonce}&timestamp={ts}&url={url}".encode()).hexdigest()
    return web.json_response({"corpid": parts.settings.wecom_corp_id, "agentid": parts.settings.wecom_agent_id,
                              "timestamp": int(ts), "nonceStr": nonce, "signature": signature,
                              "jsApiList": ["getCurExternalContact", "getCurExternalChat", "sendChatMessage"]})


@roles("trainer", "qa")
async def models(request: web.Request) -> web.Response:
    """Model artefacts' metadata and the latest evaluation report, for the trainer page."""
    import json

    parts = request.app[COMPONENTS]
    out = {}
    for name in ("intent", "sentiment"):
        meta = parts.settings.models_dir / f"{name}.json"
        out[name] = json.loads(meta.read_text()) if meta.is_file() else None
    report = parts.settings.models_dir / "evaluation.json"
    out["evaluation"] = json.loads(report.read_text()) if report.is_file() else None
    out["embedding_model"] = parts.settings.embedding_model
    return web.json_response(out)


_SURVEY_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,40}$")


async def _survey(request: web.Request):
    token = request.match_info["token"]
    surveys = request.app[COMPONENTS].surveys
    if not _SURVEY_TOKEN.match(token) or await surveys.get(token) is None:
        raise ApiError(404, "not_found", "no such survey")
    return surveys, token


async def survey_page(request: web.Request) -> web.StreamResponse:
    """The customer's one-question page (no login: the link's token is the key)."""
    await _survey(request)
    return _page("survey.html", NO_FRAMING)


async def survey_answer(request: web.Request) -> web.Response:
    from bot.customers.surveys import SurveyAnswer
    from bot.customers.work_orders import WorkOrderError
    from bot.web.requests import read_model

    surveys, token = await _survey(request)
    answer = await read_model(request, SurveyAnswer)
    try:
        return web.json_response(await surveys.answer(token, answer))
    except WorkOrderError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None


def add_page_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/console", console)
    r.add_get("/sidebar", sidebar)
    r.add_post("/console/login", login)
    r.add_get("/console/session", session)
    r.add_post("/console/logout", logout)
    r.add_get("/sidebar/oauth", sidebar_oauth)
    r.add_get("/survey/{token}", survey_page)
    r.add_post("/survey/{token}", survey_answer)
    r.add_get("/api/v1/sidebar/jsconfig", jsconfig)
    r.add_get("/api/v1/models/evaluation", models)
    r.add_static("/static/", STATIC, show_index=False, append_version=False)
