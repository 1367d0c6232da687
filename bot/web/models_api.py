"""The model registry: versions, training jobs, gated promotion and rollback (docs/openapi.yaml)."""
from __future__ import annotations

import re
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, StrictBool

from bot.learning.registry import RegistryError
from bot.web.appkeys import COMPONENTS
from bot.web.errors import ApiError
from bot.web.middlewares import principal, roles
from bot.web.requests import read_model

TRAINABLE = ("intent", "sentiment", "sensitive")
_VERSION = re.compile(r"^[a-z]+-[A-Za-z0-9-]{1,70}$")
_JOB = re.compile(r"^[0-9a-f]{16}$")


class TrainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    task: Literal["intent", "sentiment", "sensitive", "relay"]


class PromoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    force: StrictBool = False


def _registry(request: web.Request):
    return request.app[COMPONENTS].models


@roles("trainer")
async def list_models(request: web.Request) -> web.Response:
    task = request.query.get("task") or None
    if task is not None and task not in TRAINABLE:
        raise ApiError(400, "invalid_request", f"task must be one of {', '.join(TRAINABLE)}")
    return web.json_response({"items": await _registry(request).list(task)})


@roles("trainer")
async def train(request: web.Request) -> web.Response:
    req = await read_model(request, TrainRequest)
    if req.task == "relay":
        # Relay parsing is rules (bot/relay/parse.py); relay labels measure it, nothing trains on them.
        raise ApiError(400, "invalid_request", "relay parsing is rule-based: relay labels evaluate it, "
                                               "no model trains on them")
    who = principal(request)
    job = await _registry(request).enqueue(req.task, f"{who.role}:{who.name}")
    return web.json_response({"job_id": job["id"], "status": job["status"]}, status=202)


@roles("trainer")
async def job(request: web.Request) -> web.Response:
    job_id = request.match_info["id"]
    found = await _registry(request).job(job_id) if _JOB.match(job_id) else None
    if found is None:
        raise ApiError(404, "not_found", "no such training job")
    return web.json_response(found)


@roles("trainer")
async def promote(request: web.Request) -> web.Response:
    version = request.match_info["version"]
    req = await read_model(request, PromoteRequest) if request.body_exists else PromoteRequest()
    who = principal(request)
    if req.force and who.role != "admin":
        raise ApiError(403, "forbidden", "only an admin may force a promotion past the gate")
    if not _VERSION.match(version):
        raise ApiError(404, "not_found", f"no model version {version!r}")
    try:
        return web.json_response(await _registry(request).promote(version, f"{who.role}:{who.name}", req.force))
    except RegistryError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None
