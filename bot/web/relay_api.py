"""Relay endpoints (docs/RELAYS.md; routes in docs/openapi.yaml)."""
from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.learning.labels import LabelInput
from bot.relay.ledger import RelayMissing
from bot.relay.service import RelayNotFound, RelaySpec, canonical_list_text
from bot.web.appkeys import RELAYS
from bot.web.errors import ApiError
from bot.web.labels_api import LABELS
from bot.web.middlewares import principal, roles
from bot.web.requests import read_model


ENDS_AT_RANGE = (2000, 2999)


class RelayCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    chat_id: str = Field(min_length=1, max_length=128)
    title: str = Field(min_length=1, max_length=200)
    stock: int = Field(gt=0, le=1_000_000)
    per_user_limit: int = Field(default=1, gt=0, le=10_000)
    ends_at: datetime | None = None
    waitlist: bool = True
    chat_kind: Literal["customer", "appchat"] = "customer"
    owner_userid: str | None = Field(default=None, max_length=64)

    @field_validator("ends_at")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        if v is None:
            return v
        if v.tzinfo is None:
            raise ValueError("ends_at must include a timezone offset, e.g. 2026-11-22T20:00:00+08:00")
        try:  # years 1 and 9999 overflow when moved to UTC; the stores also need a sane range
            utc = v.astimezone(timezone.utc)
        except OverflowError:
            raise ValueError("ends_at is out of range") from None
        if not ENDS_AT_RANGE[0] <= utc.year <= ENDS_AT_RANGE[1]:
            raise ValueError(f"ends_at must be between the years {ENDS_AT_RANGE[0]} and {ENDS_AT_RANGE[1]}")
        return utc


class RelayMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sender_id: str = Field(min_length=1, max_length=128)
    sender_name: str = Field(default="", max_length=200)
    text: str = Field(min_length=1, max_length=5000)
    msgid: str | None = Field(default=None, max_length=128)
    # Staff messages (and the relay opener's) answer and remind; only an explicit sign-up of their own counts.
    role: Literal["customer", "staff"] = "customer"


async def _guard(coro):
    try:
        return await coro
    except RelayNotFound:
        raise ApiError(404, "not_found", "no such relay") from None
    except RelayMissing:
        raise ApiError(503, "unavailable", "relay state is being rebuilt; retry") from None


def _with_list(state: dict) -> dict:
    return {**state, "list_text": canonical_list_text(state)}


@roles("staff")
async def create_relay(request: web.Request) -> web.Response:
    req = await read_model(request, RelayCreate)
    ends_at = req.ends_at.astimezone(timezone.utc) if req.ends_at else None
    state = await request.app[RELAYS].create(
        RelaySpec(req.chat_id, req.title, req.stock, req.per_user_limit, ends_at, req.waitlist, req.chat_kind,
                  req.owner_userid), created_by=principal(request).name)
    return web.json_response(_with_list(state), status=201)


@roles("staff", "qa", "trainer")
async def list_relays(request: web.Request) -> web.Response:
    status = request.query.get("status")
    if status not in (None, "open", "closed", "active"):
        raise ApiError(400, "invalid_request", "status must be open or closed")
    try:
        limit = min(max(int(request.query.get("limit", "50")), 1), 200)
    except ValueError:
        raise ApiError(400, "invalid_request", "limit must be an integer") from None
    items = await request.app[RELAYS].list(status, request.query.get("chat_id"), limit)
    return web.json_response({"items": items, "next": None})


@roles("staff", "qa", "trainer")
async def get_relay(request: web.Request) -> web.Response:
    return web.json_response(_with_list(await _guard(request.app[RELAYS].state(request.match_info["id"]))))


@roles("staff")
async def relay_message(request: web.Request) -> web.Response:
    req = await read_model(request, RelayMessage)
    resp = await _guard(request.app[RELAYS].handle_message(request.match_info["id"], req.sender_id, req.sender_name,
                                                           req.text, req.msgid or "", role=req.role))
    return web.json_response(resp)


class RelayCorrection(BaseModel):
    """An operator's fix of a misread group message: what it meant (a relay label for the
    learning loop) and, with sender_id, the member's corrected total."""
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    text: str = Field(min_length=1, max_length=2000)
    label: str = Field(pattern=r"^(join:[1-9]\d{0,2}|cancel|none)$")
    msgid: str | None = Field(default=None, max_length=128)
    sender_id: str | None = Field(default=None, min_length=1, max_length=128)
    sender_name: str = Field(default="", max_length=200)
    quantity: int | None = Field(default=None, ge=0, le=10_000)

    @model_validator(mode="after")
    def _quantity_needs_sender(self):
        if (self.sender_id is None) != (self.quantity is None):
            raise ValueError("sender_id and quantity go together")
        return self


@roles("staff", "trainer")
async def correct_relay(request: web.Request) -> web.Response:
    req = await read_model(request, RelayCorrection)
    relay_id, who = request.match_info["id"], principal(request)
    result = None
    if req.sender_id is not None and req.quantity is not None:
        ref = req.msgid or hashlib.sha256(f"{req.sender_id}\0{req.text}".encode("utf-8")).hexdigest()[:16]
        result = await _guard(request.app[RELAYS].correct(relay_id, req.sender_id, req.sender_name, req.quantity, ref))
    else:
        await _guard(request.app[RELAYS].state(relay_id))  # 404 for an unknown relay
    stored = await request.app[LABELS].add([LabelInput(task="relay", text=req.text, label=req.label, msgid=req.msgid)],
                                           "relay_correction", f"{who.role}:{who.name}")
    return web.json_response({"labelled": stored, "result": result})


@roles("staff")
async def close_relay(request: web.Request) -> web.Response:
    return web.json_response(_with_list(await _guard(request.app[RELAYS].close(request.match_info["id"]))))


@roles("staff", "qa", "trainer")
async def export_relay(request: web.Request) -> web.Response:
    rid = request.match_info["id"]
    body = await _guard(request.app[RELAYS].export_csv(rid))
    return web.Response(text="\ufeff" + body, content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": f'attachment; filename="relay-{rid}.csv"'})
