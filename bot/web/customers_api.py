"""Customer operations: profiles, tag rules and segments (docs/openapi.yaml, docs/CUSTOMERS.md).

Staff see the customers they follow; QA, trainers and admins see all. Message texts in a
profile's timeline are masked for roles outside COPILOT_UNMASKED_ROLES."""
from __future__ import annotations

import re

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.conversations.pii import mask_text
from bot.customers.campaigns import CampaignInput
from bot.groups.materials import MAX_FILE_BYTES, MaterialError, MaterialInput, UseInput
from bot.groups.sop import PlanInput
from bot.customers.work_orders import STATUSES, Transition, WorkOrderError, WorkOrderInput
from bot.customers.fission import FissionError, FissionInput
from bot.customers.orders import OrderInput
from bot.customers.segments import SegmentFilter, SegmentInput
from bot.customers.stores import StoreInput
from bot.customers.tag_rules import TagRuleInput
from bot.web.appkeys import COMPONENTS, SETTINGS
from bot.wecom_api import WeComAPIError, WeComUnavailable
from bot.web.errors import ApiError
from bot.web.middlewares import principal, roles
from bot.web.requests import parse_items, read_json, read_limited, read_model, validation_message

BACKGROUND = web.AppKey("customer_background", set)  # running sync tasks, cancelled at shutdown
_ID = re.compile(r"^[A-Za-z0-9_\-]{1,128}$")
_RULE_ID = re.compile(r"^[0-9a-f]{16}$")


def _path_id(request: web.Request, pattern: re.Pattern, what: str, key: str = "id") -> str:
    """The id in the path, or 404: an id of the wrong shape names nothing."""
    value = request.match_info[key]
    if not pattern.match(value):
        raise ApiError(404, "not_found", f"no such {what}")
    return value


def _parts(request: web.Request):
    return request.app[COMPONENTS]


def _int(request: web.Request, name: str, lo: int, hi: int, default: int | None = None) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        v = int(raw)
    except ValueError:
        raise ApiError(400, "invalid_request", f"{name} must be an integer") from None
    if not lo <= v <= hi:
        raise ApiError(400, "invalid_request", f"{name} must be {lo}..{hi}")
    return v


@roles("staff", "qa", "trainer")
async def list_customers(request: web.Request) -> web.Response:
    parts, who = _parts(request), principal(request)
    q = request.query
    f: dict = {}
    if q.get("segment"):
        seg = await parts.segments.get(q["segment"]) if _RULE_ID.match(q["segment"]) else None
        if seg is None:
            raise ApiError(400, "invalid_request", "no such segment")
        f.update(seg["filter"])
    if q.get("tag"):
        f["tags_all"] = [*f.get("tags_all", []), q["tag"]]
    for name in ("dormant_days", "active_within_days"):
        v = _int(request, name, 1, 3650)
        if v is not None:
            f[name] = v
    for name in ("channel", "staff", "status"):
        if q.get(name):
            f[name] = q[name]
    if who.member_scope is not None:
        if f.get("staff") not in (None, who.member_scope):
            raise ApiError(403, "forbidden", "staff see their own customers only")
        f["staff"] = who.member_scope
    try:
        flt = SegmentFilter.model_validate(f)
    except ValidationError as exc:
        raise ApiError(400, "invalid_request", validation_message(exc)) from None
    limit = _int(request, "limit", 1, 200, 50)
    try:
        rows, nxt = await parts.segments.page(flt, limit, q.get("cursor") or None)
    except ValueError:
        raise ApiError(400, "invalid_request", "invalid cursor") from None
    return web.json_response({"items": await parts.customers.profiles(rows), "next": nxt})


@roles("staff", "qa", "trainer")
async def get_customer(request: web.Request) -> web.Response:
    parts, who = _parts(request), principal(request)
    cid = request.match_info["id"]
    profile = await parts.customers.get(cid) if _ID.match(cid) else None
    if profile is None or (who.member_scope is not None and who.member_scope not in profile["staff"]):
        raise ApiError(404, "not_found", "no such customer")
    if who.role not in request.app[SETTINGS].unmasked_roles:
        for e in profile["timeline"]:
            if e.get("text"):
                e["text"] = mask_text(e["text"])
    # Where they are and the nearest open store (docs/GROWTH.md); the coordinates only for unmasked roles.
    loc = await parts.store_router.of(cid)
    profile["nearest_store"] = None if loc is None else {
        "store_id": loc["store_id"], "source": loc["source"], "at": loc["at"], "routed_to": loc["routed_to"],
        **({"lat": loc["lat"], "lng": loc["lng"]} if who.role in request.app[SETTINGS].unmasked_roles else {})}
    return web.json_response(profile)


# --- tag rules ---------------------------------------------------------------------------------
@roles("qa", "trainer")
async def list_rules(request: web.Request) -> web.Response:
    return web.json_response({"items": await _parts(request).tag_rules.list()})


@roles("trainer")
async def create_rule(request: web.Request) -> web.Response:
    rule = await read_model(request, TagRuleInput)
    return web.json_response(await _parts(request).tag_rules.create(rule), status=201)


def _rule_id(request: web.Request) -> str:
    return _path_id(request, _RULE_ID, "rule")


@roles("qa", "trainer")
async def get_rule(request: web.Request) -> web.Response:
    rule = await _parts(request).tag_rules.get(_rule_id(request))
    if rule is None:
        raise ApiError(404, "not_found", "no such rule")
    return web.json_response(rule)


@roles("trainer")
async def update_rule(request: web.Request) -> web.Response:
    rid = _rule_id(request)
    rule = await read_model(request, TagRuleInput)
    out = await _parts(request).tag_rules.update(rid, rule)
    if out is None:
        raise ApiError(404, "not_found", "no such rule")
    return web.json_response(out)


@roles("trainer")
async def delete_rule(request: web.Request) -> web.Response:
    if not await _parts(request).tag_rules.delete(_rule_id(request)):
        raise ApiError(404, "not_found", "no such rule")
    return web.json_response({"deleted": True})


@roles("trainer")
async def run_rules(request: web.Request) -> web.Response:
    """Evaluate every rule over every customer now (the schedule does it every 10 minutes)."""
    return web.json_response(await _parts(request).tag_rules.evaluate())


# --- segments ----------------------------------------------------------------------------------
@roles("qa", "trainer")
async def list_segments(request: web.Request) -> web.Response:
    return web.json_response({"items": await _parts(request).segments.list()})


@roles("trainer")
async def create_segment(request: web.Request) -> web.Response:
    seg = await read_model(request, SegmentInput)
    who = principal(request)
    return web.json_response(await _parts(request).segments.create(seg, f"{who.role}:{who.name}"), status=201)


@roles("qa", "trainer")
async def segment_customers(request: web.Request) -> web.Response:
    parts = _parts(request)
    sid = request.match_info["id"]
    seg = await parts.segments.get(sid) if _RULE_ID.match(sid) else None
    if seg is None:
        raise ApiError(404, "not_found", "no such segment")
    flt = SegmentFilter.model_validate(seg["filter"])
    limit = _int(request, "limit", 1, 200, 50)
    try:
        rows, nxt = await parts.segments.page(flt, limit, request.query.get("cursor") or None)
    except ValueError:
        raise ApiError(400, "invalid_request", "invalid cursor") from None
    return web.json_response({"id": sid, "name": seg["name"], "count": await parts.segments.count(flt),
                              "items": await parts.customers.profiles(rows), "next": nxt})


# --- campaigns ---------------------------------------------------------------------------------
@roles("qa", "trainer")
async def list_campaigns(request: web.Request) -> web.Response:
    return web.json_response({"items": await _parts(request).campaigns.list()})


@roles("trainer")
async def create_campaign(request: web.Request) -> web.Response:
    req = await read_model(request, CampaignInput)
    who = principal(request)
    out = await _parts(request).campaigns.create(req, f"{who.role}:{who.name}")
    if out is None:
        raise ApiError(400, "invalid_request", "no such segment")
    return web.json_response(out, status=201)


def _campaign_id(request: web.Request) -> str:
    return _path_id(request, _RULE_ID, "campaign")


@roles("qa", "trainer")
async def get_campaign(request: web.Request) -> web.Response:
    out = await _parts(request).campaigns.get(_campaign_id(request))
    if out is None:
        raise ApiError(404, "not_found", "no such campaign")
    return web.json_response(out)


@roles("trainer")
async def start_sync(request: web.Request) -> web.Response:
    """Bring in customers and WeCom tags now (the schedule does it daily): 202, then poll GET."""
    import asyncio

    from bot import keys
    from bot.jobs import sync_customers_now

    parts = _parts(request)
    if parts.wecom is None:
        raise ApiError(503, "unavailable", "the outbound WeCom API is not configured (WECOM_SECRET)")
    if await parts.redis.exists(keys.CUSTOMER_SYNC_LOCK):
        raise ApiError(409, "conflict", "a customer sync is already running")
    task = asyncio.get_running_loop().create_task(sync_customers_now(parts))
    tasks = request.app[BACKGROUND]
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    return web.json_response({"status": "started"}, status=202)


@roles("qa", "trainer")
async def sync_status(request: web.Request) -> web.Response:
    import json

    from bot import keys

    raw = await _parts(request).redis.get(keys.CUSTOMER_SYNC_LAST)
    return web.json_response(json.loads(raw) if raw else {"status": "never"})


@roles("trainer")
async def refresh_campaign(request: web.Request) -> web.Response:
    """Pull results from WeCom now (the schedule does it every 15 minutes)."""
    parts, cid = _parts(request), _campaign_id(request)
    if await parts.campaigns.get(cid) is None:
        raise ApiError(404, "not_found", "no such campaign")
    if parts.wecom is None:
        raise ApiError(503, "unavailable", "the outbound WeCom API is not configured (WECOM_SECRET)")
    try:
        await parts.campaigns.refresh(cid)
    except (WeComAPIError, WeComUnavailable) as exc:
        raise ApiError(502, "wecom_error", f"WeCom answered: {exc}") from None
    return web.json_response(await parts.campaigns.get(cid))


# --- orders and ROI ----------------------------------------------------------------------------
@roles("trainer")
async def add_orders(request: web.Request) -> web.Response:
    body = await read_json(request)
    if isinstance(body, dict) and set(body) - {"items"}:
        raise ApiError(400, "invalid_request", 'body must be {"items": [...]}')
    valid, errors = parse_items(body, 1000, OrderInput.model_validate, (ValidationError,))
    accepted, duplicates = await _parts(request).orders.add(valid)
    return web.json_response({"accepted": accepted, "duplicates": duplicates, "errors": errors})


@roles("qa", "trainer")
async def touchpoints(request: web.Request) -> web.Response:
    days = _int(request, "days", 1, 3650, 30)
    return web.json_response(await _parts(request).orders.touchpoints(days or 30))


# --- stores ------------------------------------------------------------------------------------
@roles("trainer")
async def add_stores(request: web.Request) -> web.Response:
    body = await read_json(request)
    if isinstance(body, dict) and set(body) - {"items"}:
        raise ApiError(400, "invalid_request", 'body must be {"items": [...]}')
    valid, errors = parse_items(body, 10_000, StoreInput.model_validate, (ValidationError,))
    return web.json_response({"accepted": await _parts(request).stores.add(valid), "errors": errors})


@roles("staff", "qa", "trainer")
async def list_stores(request: web.Request) -> web.Response:
    return web.json_response({"items": await _parts(request).stores.list()})


def _coordinate(request: web.Request, name: str, bound: float) -> float:
    try:
        v = float(request.query[name])
    except (KeyError, ValueError):
        raise ApiError(400, "invalid_request", f"{name} is required and must be a number") from None
    if not -bound <= v <= bound:  # NaN fails this too
        raise ApiError(400, "invalid_request", f"{name} must be within ±{bound:g}")
    return v


@roles("staff", "qa", "trainer")
async def nearest_stores(request: web.Request) -> web.Response:
    lat, lng = _coordinate(request, "lat", 90), _coordinate(request, "lng", 180)
    k = _int(request, "k", 1, 50, 3)
    return web.json_response({"items": await _parts(request).stores.nearest(lat, lng, k or 3)})


# --- fission -----------------------------------------------------------------------------------
_FISSION_ID = re.compile(r"^[0-9a-f]{8}$")


class Participant(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_id: str = Field(pattern=r"^(wm|wo)[A-Za-z0-9_\-]{1,126}$")


class Claim(BaseModel):
    model_config = ConfigDict(extra="forbid")
    participant_id: str = Field(min_length=1, max_length=128)
    tier: int = Field(ge=1, le=10_000)


def _fission_id(request: web.Request) -> str:
    return _path_id(request, _FISSION_ID, "fission campaign")


async def _fission(coro):
    try:
        return await coro
    except FissionError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None
    except (WeComAPIError, WeComUnavailable) as exc:
        raise ApiError(502, "wecom_error", f"WeCom answered: {exc}") from None


@roles("trainer")
async def create_fission(request: web.Request) -> web.Response:
    req = await read_model(request, FissionInput)
    return web.json_response(await _parts(request).fission.create(req), status=201)


@roles("qa", "trainer")
async def list_fission(request: web.Request) -> web.Response:
    return web.json_response({"items": await _parts(request).fission.list()})


@roles("qa", "trainer")
async def get_fission(request: web.Request) -> web.Response:
    out = await _parts(request).fission.get(_fission_id(request))
    if out is None:
        raise ApiError(404, "not_found", "no such fission campaign")
    return web.json_response(out)


@roles("staff", "trainer")
async def join_fission(request: web.Request) -> web.Response:
    fid = _fission_id(request)
    req = await read_model(request, Participant)
    return web.json_response(await _fission(_parts(request).fission.join(fid, req.customer_id)))


@roles("staff", "qa", "trainer")
async def fission_leaderboard(request: web.Request) -> web.Response:
    fid = _fission_id(request)
    return web.json_response({"items": await _fission(_parts(request).fission.leaderboard(fid))})


@roles("trainer")
async def fission_claim(request: web.Request) -> web.Response:
    fid = _fission_id(request)
    req = await read_model(request, Claim)
    who = principal(request)
    return web.json_response(await _fission(_parts(request).fission.claim(fid, req.participant_id, req.tier,
                                                                          f"{who.role}:{who.name}")))


# --- work orders -------------------------------------------------------------------------------
async def _wo(coro):
    try:
        return await coro
    except WorkOrderError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None


@roles("staff", "qa", "trainer")
async def list_work_orders(request: web.Request) -> web.Response:
    q, who = request.query, principal(request)
    status = q.get("status") or None
    if status is not None and status not in STATUSES:
        raise ApiError(400, "invalid_request", f"status must be one of {', '.join(STATUSES)}")
    limit = _int(request, "limit", 1, 200, 50)
    items, nxt = await _wo(_parts(request).work_orders.list(status, q.get("customer_id") or None, who.member_scope,
                                                            limit or 50, q.get("cursor") or None))
    return web.json_response({"items": items, "next": nxt})


@roles("staff", "qa", "trainer")
async def work_order_figures(request: web.Request) -> web.Response:
    """Team figures over the orders opened in the last `days` (staff: their own)."""
    import time

    from bot.customers.work_order_figures import team_figures

    days = _int(request, "days", 1, 365, 30) or 30
    since = int(time.time() * 1000) - days * 86_400_000
    return web.json_response(await team_figures(_parts(request).engine, since, principal(request).member_scope))


@roles("qa", "trainer")
async def create_work_order(request: web.Request) -> web.Response:
    req = await read_model(request, WorkOrderInput)
    who = principal(request)
    order, created = await _wo(_parts(request).work_orders.open_or_attach(
        req.customer_id, req.cause, req.severity, req.evidence, None, None, f"{who.role}:{who.name}"))
    return web.json_response(order, status=201 if created else 200)


def _order_id(request: web.Request) -> str:
    return _path_id(request, _RULE_ID, "work order")


async def _visible(request: web.Request, oid: str) -> dict:
    order = await _parts(request).work_orders.get(oid)
    scope = principal(request).member_scope
    if order is None or (scope is not None and scope not in (order["owner"], order["staff_id"])):
        raise ApiError(404, "not_found", "no such work order")
    return order


@roles("staff", "qa", "trainer")
async def get_work_order(request: web.Request) -> web.Response:
    order = await _visible(request, _order_id(request))
    order["survey"] = await _parts(request).surveys.for_order(order["id"])
    return web.json_response(order)


@roles("staff", "qa", "trainer")
async def transition_work_order(request: web.Request) -> web.Response:
    oid = _order_id(request)
    req = await read_model(request, Transition)
    await _visible(request, oid)
    who = principal(request)
    order = await _wo(_parts(request).work_orders.transition(oid, req.to, f"{who.role}:{who.name}", req.note))
    # A resolved order gets its satisfaction survey link (bot/customers/surveys.py) for the customer.
    order["survey"] = await _parts(request).surveys.ensure(oid) if order["status"] == "resolved" else \
        await _parts(request).surveys.for_order(oid)
    return web.json_response(order)


# --- groups and the SOP calendar ---------------------------------------------------------------
_GROUP_TYPE = re.compile(r"^[a-z0-9_]{1,32}$")


class GroupType(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: str | None = Field(default=None, pattern=r"^[a-z0-9_]{1,32}$")


@roles("qa", "trainer")
async def list_groups(request: web.Request) -> web.Response:
    t = request.query.get("type") or None
    if t is not None and not _GROUP_TYPE.match(t):
        raise ApiError(400, "invalid_request", "type is lower-case letters, digits and _")
    return web.json_response({"items": await _parts(request).groups.list(t)})


@roles("trainer")
async def set_group_type(request: web.Request) -> web.Response:
    req = await read_model(request, GroupType)
    cid = request.match_info["chat_id"]
    out = await _parts(request).groups.set_type(cid, req.type) if _ID.match(cid) else None
    if out is None:
        raise ApiError(404, "not_found", "no such group")
    return web.json_response(out)


@roles("trainer")
async def create_sop_plan(request: web.Request) -> web.Response:
    req = await read_model(request, PlanInput)
    return web.json_response(await _parts(request).sop.create(req), status=201)


@roles("qa", "trainer")
async def get_sop_plan(request: web.Request) -> web.Response:
    pid = request.match_info["id"]
    out = await _parts(request).sop.get(pid) if _RULE_ID.match(pid) else None
    if out is None:
        raise ApiError(404, "not_found", "no such SOP plan")
    return web.json_response(out)


@roles("qa", "trainer")
async def list_sop_plans(request: web.Request) -> web.Response:
    return web.json_response({"items": await _parts(request).sop.list()})


@roles("qa", "trainer")
async def sop_runs(request: web.Request) -> web.Response:
    pid = request.match_info["id"]
    if not _RULE_ID.match(pid) or await _parts(request).sop.get(pid) is None:
        raise ApiError(404, "not_found", "no such SOP plan")
    return web.json_response({"items": await _parts(request).sop.runs(pid)})


# --- materials ---------------------------------------------------------------------------------
async def _material(coro):
    try:
        return await coro
    except MaterialError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None
    except (WeComAPIError, WeComUnavailable) as exc:
        raise ApiError(502, "wecom_error", f"WeCom answered: {exc}") from None


def _material_id(request: web.Request) -> str:
    return _path_id(request, _RULE_ID, "material")


@roles("trainer")
async def create_material(request: web.Request) -> web.Response:
    req = await read_model(request, MaterialInput)
    return web.json_response(await _parts(request).materials.create(req), status=201)


@roles("staff", "qa", "trainer")
async def list_materials(request: web.Request) -> web.Response:
    q = request.query
    sort = q.get("sort", "recent")
    if sort not in ("recent", "best"):
        raise ApiError(400, "invalid_request", "sort is recent or best")
    kind = q.get("kind") or None
    if kind is not None and kind not in ("text", "image", "link", "miniprogram", "file"):
        raise ApiError(400, "invalid_request", "kind is text, image, link, miniprogram or file")
    limit = _int(request, "limit", 1, 200, 50)
    items = await _parts(request).materials.search((q.get("q") or "")[:100] or None, q.get("tag") or None, kind,
                                                   sort, limit or 50)
    return web.json_response({"items": items})


@roles("staff", "qa", "trainer")
async def get_material(request: web.Request) -> web.Response:
    out = await _parts(request).materials.get(_material_id(request))
    if out is None:
        raise ApiError(404, "not_found", "no such material")
    return web.json_response(out)


@roles("trainer")
async def put_material_file(request: web.Request) -> web.Response:
    mid = _material_id(request)
    data = await read_limited(request, MAX_FILE_BYTES)
    if data is None:
        raise ApiError(413, "too_large", f"a file is at most {MAX_FILE_BYTES >> 20} MiB")
    name = (request.query.get("name") or mid)[:200]
    return web.json_response(await _material(_parts(request).materials.attach_file(mid, name, request.content_type,
                                                                                   data)))


@roles("staff", "trainer")
async def use_material(request: web.Request) -> web.Response:
    mid = _material_id(request)
    req = await read_model(request, UseInput) if request.body_exists else UseInput()
    who = principal(request)
    return web.json_response(await _material(_parts(request).materials.use(mid, req, f"{who.role}:{who.name}")))
