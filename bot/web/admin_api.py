"""Admin endpoints: API tokens and acquisition channels."""
from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.channels import Channel
from bot.web.appkeys import CHANNELS, TOKENS
from bot.web.errors import ApiError
from bot.web.middlewares import principal, roles
from bot.web.requests import read_model


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
    channel = Channel(req.state, req.name, req.welcome_text, tuple(req.tag_ids))
    created = await request.app[CHANNELS].upsert(channel)
    return web.json_response(channel.to_json(), status=201 if created else 200)


@roles()
async def list_channels(request: web.Request) -> web.Response:
    items = [c.to_json() for c in await request.app[CHANNELS].list()]
    return web.json_response({"items": items, "next": None})
