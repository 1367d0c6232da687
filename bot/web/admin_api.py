"""Admin endpoints: API tokens and acquisition channels."""
from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.channels import Channel
from bot.web.appkeys import CHANNELS, COMPONENTS, TOKENS
from bot.web.errors import ApiError
from bot.web.middlewares import principal, roles
from bot.web.requests import read_model
from bot.wecom_api import WeComAPIError, WeComUnavailable


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["admin", "trainer", "qa", "staff"]
    name: str = Field(min_length=1, max_length=200)
    userid: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@\-]+$",
                               description="the WeCom userid of a staff member (required for staff)")

    @model_validator(mode="after")
    def _staff_has_userid(self) -> "TokenRequest":
        if self.role == "staff" and not self.userid:
            raise ValueError("a staff token needs userid (the member's WeCom userid)")
        return self


class ChannelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    state: str = Field(min_length=1, max_length=30, pattern=r"^[A-Za-z0-9_\-]+$")
    name: str = Field(min_length=1, max_length=200)
    welcome_text: str = Field(default="", max_length=4000)
    tag_ids: list[str] = Field(default_factory=list, max_length=100)
    parent: str | None = Field(default=None, min_length=1, max_length=30, pattern=r"^[A-Za-z0-9_\-]+$")
    # Create its WeCom contact way (a QR code whose State is this channel) for these members.
    contact_way_users: list[str] = Field(default_factory=list, max_length=100)

    @field_validator("tag_ids")
    @classmethod
    def _tags(cls, v: list[str]) -> list[str]:
        if any(not t or len(t) > 64 for t in v):
            raise ValueError("tag ids must be 1..64 characters")
        return v


@roles()
async def create_token(request: web.Request) -> web.Response:
    req = await read_model(request, TokenRequest)
    info, token = await request.app[TOKENS].create(req.role, req.name, principal(request).name, req.userid)
    return web.json_response({**info, "token": token}, status=201)


@roles()
async def list_tokens(request: web.Request) -> web.Response:
    return web.json_response({"items": await request.app[TOKENS].list(), "next": None})


@roles()
async def revoke_token(request: web.Request) -> web.Response:
    if not await request.app[TOKENS].revoke(request.match_info["id"]):
        raise ApiError(404, "not_found", "no such active token")
    return web.json_response({"revoked": True})


@roles()
async def upsert_channel(request: web.Request) -> web.Response:
    req = await read_model(request, ChannelRequest)
    store = request.app[CHANNELS]
    if req.parent is not None:
        # The parent must exist and must not be this channel or below it (no cycles).
        node: str | None = req.parent
        while node is not None:
            if node == req.state:
                raise ApiError(400, "invalid_request", "a channel cannot sit below itself")
            found = await store.get(node)
            if found is None:
                raise ApiError(400, "invalid_request", f"no parent channel {node!r}")
            node = found.parent
    config_id = qr_code = None
    if req.contact_way_users:
        wecom = request.app[COMPONENTS].wecom
        if wecom is None:
            raise ApiError(503, "unavailable", "the outbound WeCom API is not configured (WECOM_SECRET)")
        try:
            way = await wecom.add_contact_way(req.state, req.contact_way_users)
        except (WeComAPIError, WeComUnavailable) as exc:
            raise ApiError(502, "wecom_error", f"WeCom refused the contact way: {exc}") from None
        config_id, qr_code = way.get("config_id"), way.get("qr_code")
    channel = Channel(req.state, req.name, req.welcome_text, tuple(req.tag_ids), req.parent, config_id, qr_code)
    created = await store.upsert(channel)
    return web.json_response((await store.get(req.state) or channel).to_json(), status=201 if created else 200)


@roles()
async def list_channels(request: web.Request) -> web.Response:
    items = [c.to_json() for c in await request.app[CHANNELS].list()]
    return web.json_response({"items": items, "next": None})


@roles("qa", "trainer")
async def channel_tree(request: web.Request) -> web.Response:
    """Layered channel codes with adds, 7-day losses, active rate and conversions per node and rolled up."""
    from bot.customers.channel_tree import channel_tree as tree

    raw = request.query.get("days", "30")
    if not raw.isdigit() or not 1 <= int(raw) <= 3650:
        raise ApiError(400, "invalid_request", "days must be 1..3650")
    return web.json_response({"days": int(raw), "items": await tree(request.app[COMPONENTS].engine,
                                                                     request.app[CHANNELS], int(raw))})


@roles("staff", "qa", "trainer")
async def demo_info(request: web.Request) -> web.Response:
    """Whether the sample brand is loaded; an admin also gets its role tokens (the first-run page)."""
    import json

    settings = request.app[COMPONENTS].settings
    marker = settings.data_dir / "demo.json"
    if not marker.is_file():
        return web.json_response({"demo": False})
    out: dict = {"demo": True, "summary": json.loads(marker.read_text(encoding="utf-8"))}
    tokens = settings.data_dir / "demo_tokens.json"
    if principal(request).role == "admin" and tokens.is_file():
        out["tokens"] = json.loads(tokens.read_text(encoding="utf-8"))
    return web.json_response(out)
