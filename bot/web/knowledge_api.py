"""Scripts, suggestions, feedback and re-embedding (docs/openapi.yaml; README, "Knowledge base")."""
from __future__ import annotations

import csv
import io
import json

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from bot import safe_json
from bot.csv_export import csv_text
from bot.web.appkeys import KNOWLEDGE, NLP, SETTINGS
from bot.web.errors import ApiError
from bot.web.middlewares import principal, roles
from bot.web.requests import read_json, read_limited, read_model, validation_message
from knowledge.picks import PickStore
from knowledge.scripts import ID_PATTERN, MAX_ALTERNATIVES, ScriptInput
from nlp.pipeline import AnalyzeItem

PICKS = web.AppKey("script_picks", PickStore)
MAX_IMPORT_LINES = 50_000
MAX_IMPORT_BYTES = 32 << 20
FIELDS = ["id", "question", "reply", "scenario", "tags", "alternatives", "source", "status"]
LIST_FIELDS = ("tags", "alternatives")  # "|"-separated in CSV


class SuggestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=5000)
    k: int = Field(default=3, ge=1, le=20)
    tags: list[str] = Field(default_factory=list, max_length=20)
    conversation_id: str | None = Field(default=None, max_length=200)


class Feedback(BaseModel):
    model_config = ConfigDict(extra="forbid")
    adopted: StrictBool
    conversation_id: str | None = Field(default=None, max_length=200)
    # The customer's words the suggestion answered: a picked query is proposed as an alternative question.
    query: str | None = Field(default=None, max_length=2000)


class ProposalDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    accept: StrictBool


def _script_input(data) -> ScriptInput:
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_request", "body must be a JSON object")
    try:
        return ScriptInput.model_validate(data)
    except ValidationError as exc:
        raise ApiError(400, "invalid_request", validation_message(exc)) from None


def _check_id(script_id: str) -> str:
    import re

    if not re.match(ID_PATTERN, script_id):
        raise ApiError(404, "not_found", "no such script")
    return script_id


@roles("trainer", "qa", "staff")
async def list_scripts(request: web.Request) -> web.Response:
    try:
        limit = min(max(int(request.query.get("limit", "50")), 1), 200)
    except ValueError:
        raise ApiError(400, "invalid_request", "limit must be an integer") from None
    status = request.query.get("status")
    if status not in (None, "draft", "approved"):
        raise ApiError(400, "invalid_request", "status must be draft or approved")
    items, nxt = await request.app[KNOWLEDGE].store.list(request.query.get("q") or None, request.query.get("tag") or None,
                                                         status, request.query.get("cursor") or None, limit)
    return web.json_response({"items": [s.to_json() for s in items], "next": nxt})


@roles("trainer")
async def create_script(request: web.Request) -> web.Response:
    item = _script_input(await read_json(request))
    stored, created = await request.app[KNOWLEDGE].upsert([item])
    return web.json_response(stored[0].to_json(), status=201 if created else 200)


@roles("trainer", "qa", "staff")
async def get_script(request: web.Request) -> web.Response:
    s = await request.app[KNOWLEDGE].store.get(_check_id(request.match_info["id"]))
    if s is None:
        raise ApiError(404, "not_found", "no such script")
    return web.json_response(s.to_json())


@roles("trainer")
async def put_script(request: web.Request) -> web.Response:
    sid = _check_id(request.match_info["id"])
    data = await read_json(request)
    if isinstance(data, dict):
        if data.get("id") not in (None, sid):
            raise ApiError(400, "invalid_request", "id in the body differs from the URL")
        data = {**data, "id": sid}
    stored, created = await request.app[KNOWLEDGE].upsert([_script_input(data)])
    return web.json_response(stored[0].to_json(), status=201 if created else 200)


@roles("trainer")
async def delete_script(request: web.Request) -> web.Response:
    if not await request.app[KNOWLEDGE].delete(_check_id(request.match_info["id"])):
        raise ApiError(404, "not_found", "no such script")
    return web.json_response({"deleted": True})


def parse_import(body: str, content_type: str) -> tuple[list[tuple[int, ScriptInput]], list[dict]]:
    """→ ([(line, script)], [{"line", "message"}]). Lines are the file's line numbers (CSV: header = 1)."""
    good, errors = [], []
    if content_type == "text/csv":
        # newline="": the csv module itself splits records, so a bare CR ends a line (as in old
        # Mac exports) instead of raising "new-line character seen in unquoted field".
        reader = csv.DictReader(io.StringIO(body, newline=""))
        try:
            fieldnames = reader.fieldnames
        except csv.Error as exc:
            return [], [{"line": 1, "message": f"CSV header: {exc}"}]
        if not fieldnames or not {"question", "reply"} <= set(fieldnames):
            return [], [{"line": 1, "message": "CSV header must include question and reply"}]
        unknown = set(fieldnames) - set(FIELDS) - {"stats"}
        if unknown:
            errors.append({"line": 1, "message": f"ignored unknown columns: {', '.join(sorted(unknown))}"})
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:  # e.g. a field over csv.field_size_limit(); the reader goes on
                errors.append({"line": reader.line_num + 1, "message": f"CSV: {exc}"})
                continue
            line = reader.line_num
            if any("\x00" in v for v in row.values() if isinstance(v, str)):
                errors.append({"line": line, "message": "fields may not contain NUL (U+0000)"})
                continue
            try:
                good.append((line, ScriptInput.model_validate({k: v for k, v in row.items() if k and v not in (None, "")})))
            except ValidationError as exc:
                errors.append({"line": line, "message": validation_message(exc)})
    else:
        for line, raw in enumerate(body.splitlines(), 1):
            if not raw.strip():
                continue
            try:
                obj = safe_json.loads(raw)
                if not isinstance(obj, dict):
                    raise ValueError("each line must be a JSON object")
                good.append((line, ScriptInput.model_validate(obj)))
            except ValidationError as exc:
                errors.append({"line": line, "message": validation_message(exc)})
            except ValueError as exc:  # safe_json.JsonInputError or not an object
                errors.append({"line": line, "message": str(exc)})
    return good, errors


@roles("trainer")
async def import_scripts(request: web.Request) -> web.Response:
    ctype = request.content_type
    if ctype not in ("application/x-ndjson", "application/jsonl", "text/csv"):
        raise ApiError(415, "unsupported_media_type", "send application/x-ndjson or text/csv")
    raw = await read_limited(request, MAX_IMPORT_BYTES)
    if raw is None:
        raise ApiError(413, "too_large", f"imports are limited to {MAX_IMPORT_BYTES >> 20} MiB")
    try:
        body = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ApiError(400, "bad_encoding", "the file must be UTF-8") from None
    good, errors = parse_import(body, ctype)
    if len(good) > MAX_IMPORT_LINES:
        raise ApiError(413, "too_large", f"at most {MAX_IMPORT_LINES} scripts per import")
    imported = updated = 0
    kb = request.app[KNOWLEDGE]
    for start in range(0, len(good), 2000):
        chunk = [s for _l, s in good[start:start + 2000]]
        stored, created = await kb.upsert(chunk)
        imported += created
        updated += len(stored) - created
    return web.json_response({"imported": imported, "updated": updated, "errors": errors})


@roles("trainer", "qa")
async def export_scripts(request: web.Request) -> web.StreamResponse:
    fmt = request.query.get("format", "jsonl")
    if fmt not in ("jsonl", "csv"):
        raise ApiError(400, "invalid_request", "format must be jsonl or csv")
    items = await request.app[KNOWLEDGE].store.all()
    if fmt == "csv":
        rows: list[list] = [FIELDS]
        for s in items:
            d = s.to_json()
            rows.append(["|".join(d[k]) if k in LIST_FIELDS else d[k] for k in FIELDS])
        return web.Response(text=csv_text(rows), content_type="text/csv", charset="utf-8",
                            headers={"Content-Disposition": 'attachment; filename="scripts.csv"'})
    text = "".join(json.dumps(s.to_json(), ensure_ascii=False) + "\n" for s in items)
    return web.Response(text=text, content_type="application/x-ndjson", charset="utf-8",
                        headers={"Content-Disposition": 'attachment; filename="scripts.jsonl"'})


@roles("staff", "trainer", "qa")
async def suggestions(request: web.Request) -> web.Response:
    req = await read_model(request, SuggestRequest)
    kb = request.app[KNOWLEDGE]
    [analysis] = await request.app[NLP].analyze([AnalyzeItem(req.text, "customer")])
    found = await kb.suggest(req.text, req.k, req.tags, intent=analysis["intent"]["label"],
                             intent_score=analysis["intent"]["score"])
    if found:
        request.app[KNOWLEDGE_TASKS].add_shown([s.script.id for s in found])
    return web.json_response({"suggestions": [s.to_json() for s in found], "intent": analysis["intent"]})


@roles("staff", "trainer")
async def feedback(request: web.Request) -> web.Response:
    req = await read_model(request, Feedback)
    sid = _check_id(request.match_info["id"])
    stats = await request.app[KNOWLEDGE].store.record_feedback(sid, req.adopted)
    if stats is None:
        raise ApiError(404, "not_found", "no such script")
    if req.query:
        who = principal(request)
        await request.app[PICKS].record(sid, req.query, req.adopted, f"{who.role}:{who.name}")
    return web.json_response({"script_id": sid, "stats": stats})


@roles("trainer")
async def alternative_proposals(request: web.Request) -> web.Response:
    """Customer wordings staff picked a script for, to approve as its alternative questions."""
    kb = request.app[KNOWLEDGE]
    out = []
    for p in await request.app[PICKS].proposals(200):
        script = await kb.store.get(p["script_id"])
        if script is None or p["query"] in script.views():
            continue  # deleted, or already a view
        out.append({**p, "question": script.question})
    return web.json_response({"items": out[:50]})


@roles("trainer")
async def decide_proposal(request: web.Request) -> web.Response:
    req = await read_model(request, ProposalDecision)
    picks, kb, who = request.app[PICKS], request.app[KNOWLEDGE], principal(request)
    pid = request.match_info["id"]
    p = await picks.get(pid) if len(pid) == 24 else None
    script = await kb.store.get(p["script_id"]) if p else None
    if p is None or script is None:
        raise ApiError(404, "not_found", "no such proposal")
    if req.accept and p["query"] not in script.views():
        if len(script.alternatives) >= MAX_ALTERNATIVES:
            raise ApiError(409, "too_many_alternatives",
                           f"the script has {MAX_ALTERNATIVES} alternatives already; edit it to make room")
        data = {**script.to_json(), "alternatives": [*script.alternatives, p["query"]]}
        await kb.upsert([_script_input(data)])
    await picks.decide(pid, "accepted" if req.accept else "rejected", f"{who.role}:{who.name}")
    updated = await kb.store.get(script.id)
    return web.json_response({"id": pid, "status": "accepted" if req.accept else "rejected",
                              "script": updated.to_json() if updated else None})


@roles()
async def reembed(request: web.Request) -> web.Response:
    n = await request.app[KNOWLEDGE].reembed()
    return web.json_response({"reembedded": n, "model": request.app[SETTINGS].embedding_model})


class ShownCounter:
    """Counts suggestions shown off the request path (adoption rate = adopted / shown)."""

    def __init__(self, store) -> None:
        self.store = store
        self._tasks: set = set()

    def add_shown(self, ids: list[str]) -> None:
        import asyncio

        t = asyncio.ensure_future(self.store.count_shown(ids))
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        import asyncio

        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)


KNOWLEDGE_TASKS = web.AppKey("knowledge_tasks", ShownCounter)
