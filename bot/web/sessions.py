"""Browser sessions for the consoles: a token login becomes an HttpOnly, SameSite=Strict cookie
naming a server-side session (Redis), and every state-changing request must carry the session's
CSRF token in `X-CSRF-Token`. The pages then call the same /api/v1 endpoints as integrators."""
from __future__ import annotations

import hmac
import json
import secrets

import redis.asyncio as aioredis
from aiohttp import web

from bot import keys
from bot.auth import Principal

COOKIE = "copilot_session"
TTL = 12 * 3600


def _key(sid: str) -> str:
    return keys.session(sid)


class SessionStore:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

    async def create(self, who: Principal) -> tuple[str, str]:
        sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        await self.redis.set(_key(sid), json.dumps({"token_id": who.token_id, "name": who.name, "role": who.role,
                                                    "userid": who.userid, "csrf": csrf}), ex=TTL)
        return sid, csrf

    async def get(self, sid: str) -> dict | None:
        if not sid or len(sid) > 100:
            return None
        raw = await self.redis.get(_key(sid))
        return json.loads(raw) if raw else None

    async def delete(self, sid: str) -> None:
        await self.redis.delete(_key(sid))


def set_cookie(request: web.Request, resp: web.StreamResponse, sid: str) -> None:
    resp.set_cookie(COOKIE, sid, httponly=True, samesite="Strict", path="/", max_age=TTL,
                    secure=request.secure)


def csrf_ok(request: web.Request, session: dict) -> bool:
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return True
    sent = request.headers.get("X-CSRF-Token", "")
    return bool(sent) and hmac.compare_digest(sent.encode(), session["csrf"].encode())
