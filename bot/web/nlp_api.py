"""POST /api/v1/analyze (docs/openapi.yaml, docs/EVALUATION.md) and the lexicon admin endpoints."""
from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bot.web.appkeys import NLP
from bot.web.errors import ApiError
from bot.web.middlewares import roles
from bot.web.requests import read_json, validation_message
from nlp.pipeline import AnalyzeItem
from nlp.sensitive import LexiconError

MAX_TEXT = 5000
MAX_ITEMS = 1000


class AnalyzeText(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(max_length=MAX_TEXT)
    role: Literal["customer", "staff"] = "customer"

    @field_validator("text")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("text must not be empty")
        return v


class AnalyzeBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[AnalyzeText] = Field(min_length=1, max_length=MAX_ITEMS)


class LexiconTerm(BaseModel):
    model_config = ConfigDict(extra="forbid")
    term: str = Field(min_length=1, max_length=100)
    severity: Literal["high", "medium", "low"] = "medium"
    roles: Literal["any", "staff", "customer"] = "any"


class LexiconAddition(BaseModel):
    model_config = ConfigDict(extra="forbid")
    terms: list[LexiconTerm] = Field(min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _no_tabs(self) -> "LexiconAddition":
        if any("\t" in t.term or "\n" in t.term for t in self.terms):
            raise ValueError("terms may not contain tabs or newlines")
        return self


@roles("staff", "qa", "trainer")
async def analyze(request: web.Request) -> web.Response:
    data = await read_json(request)
    try:
        if isinstance(data, dict) and "items" in data:
            batch = AnalyzeBatch.model_validate(data)
            results = await request.app[NLP].analyze([AnalyzeItem(i.text, i.role) for i in batch.items])
            return web.json_response({"items": results})
        one = AnalyzeText.model_validate(data)
    except ValidationError as exc:
        raise ApiError(400, "invalid_request", validation_message(exc)) from None
    [result] = await request.app[NLP].analyze([AnalyzeItem(one.text, one.role)])
    return web.json_response(result)


@roles()
async def list_lexicons(request: web.Request) -> web.Response:
    lex = request.app[NLP].lexicons
    checker = lex.checker()
    counts: dict[str, int] = {}
    for t in checker.terms:
        counts[t.category] = counts.get(t.category, 0) + 1
    return web.json_response({"categories": counts, "operator_terms": lex.operator_terms()})


@roles()
async def add_lexicon_terms(request: web.Request) -> web.Response:
    category = request.match_info["category"]
    data = await read_json(request)
    try:
        req = LexiconAddition.model_validate(data)
    except ValidationError as exc:
        raise ApiError(400, "invalid_request", validation_message(exc)) from None
    try:
        n = request.app[NLP].lexicons.add_terms(category, [(t.term, t.severity, t.roles) for t in req.terms])
    except LexiconError as exc:
        raise ApiError(400, "invalid_lexicon", str(exc)) from None
    return web.json_response({"category": category, "added": n}, status=201)
