"""Fuzz targets: CSV/JSON Lines script imports and pagination cursors — parsed into typed errors
only, and over HTTP never a 5xx (the real app, so on PostgreSQL too when DATABASE_URL is set)."""
from __future__ import annotations

import base64
import json
from datetime import datetime

from hypothesis import given, strategies as st

from bot.conversations.store import decode_cursor, encode_cursor
from bot.web.knowledge_api import parse_import
from knowledge.scripts import ScriptInput
from tests.conftest import ADMIN

H = {"Authorization": f"Bearer {ADMIN}"}
FIELD = st.one_of(st.text(max_size=30), st.sampled_from(["", "a|b", "||", "\"", "\"\"", "=1+1", "\r", "\r\n", "\x00",
                                                          "x" * 300, "approved", "draft", "bogus", "sc_1"]))
COLUMNS = ["id", "question", "reply", "scenario", "tags", "source", "status", "alternatives", "stats", "extra", ""]


@st.composite
def csv_body(draw) -> str:
    header = draw(st.lists(st.sampled_from(COLUMNS), min_size=0, max_size=8))
    rows = draw(st.lists(st.lists(FIELD, max_size=len(header) + 2), max_size=8))
    sep = draw(st.sampled_from(["\n", "\r\n", "\r"]))

    def cell(v: str) -> str:
        return '"' + v.replace('"', '""') + '"' if draw(st.booleans()) else v

    lines = [",".join(header)] + [",".join(cell(v) for v in r) for r in rows]
    body = sep.join(lines)
    if draw(st.booleans()):
        body = body[: draw(st.integers(0, len(body)))]
    return body


JSON_VALUE = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                          lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
                          max_leaves=8)


@st.composite
def jsonl_body(draw) -> str:
    lines = []
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.integers(0, 3))
        if kind == 0:
            obj = {k: draw(st.one_of(FIELD, JSON_VALUE)) for k in draw(st.lists(st.sampled_from(COLUMNS), max_size=6))}
            lines.append(json.dumps(obj, ensure_ascii=draw(st.booleans())))
        elif kind == 1:
            lines.append(json.dumps(draw(JSON_VALUE)))
        elif kind == 2:
            lines.append("[" * draw(st.integers(1, 200)) + "]" * draw(st.integers(0, 200)))
        else:
            lines.append(draw(st.text(max_size=40)))
    return "\n".join(lines)


def _check_parsed(good, errors, n_lines: int) -> None:
    for line, script in good:
        assert isinstance(line, int) and isinstance(script, ScriptInput)
    for e in errors:
        assert set(e) == {"line", "message"} and isinstance(e["line"], int) and isinstance(e["message"], str)
        assert 1 <= e["line"] <= max(n_lines, 1) + 1


@given(csv_body())
def test_csv_import_parses_into_scripts_and_line_errors(body):
    good, errors = parse_import(body, "text/csv")
    _check_parsed(good, errors, body.count("\n") + body.count("\r") + 1)


@given(st.one_of(jsonl_body(), st.text(max_size=300)))
def test_jsonl_import_parses_into_scripts_and_line_errors(body):
    good, errors = parse_import(body, "application/x-ndjson")
    _check_parsed(good, errors, len(body.splitlines()) or 1)


SHAPES = [(int, str), (int, datetime, str), (int, str, str)]
CURSOR_JSON = st.lists(st.one_of(st.integers(), st.integers(min_value=2**63 - 2, max_value=2**70), st.text(max_size=40),
                                 st.sampled_from(["2026-01-01T00:00:00+08:00", "0001-01-01T00:00:00+14:00",
                                                  "9999-12-31T23:59:59-14:00", "2026-01-01", "x" * 41]),
                                 st.booleans(), st.none(), st.floats(), st.lists(st.integers(), max_size=2)), max_size=4)
CURSOR = st.one_of(
    st.text(max_size=80),
    st.binary(max_size=80).map(lambda b: base64.urlsafe_b64encode(b).decode()),
    CURSOR_JSON.map(lambda v: base64.urlsafe_b64encode(json.dumps(v).encode()).decode()),
)


@given(CURSOR, st.sampled_from(SHAPES))
def test_decode_cursor_raises_only_value_error(cursor, shape):
    try:
        out = decode_cursor(cursor, *shape)
    except ValueError as exc:
        assert str(exc) == "invalid cursor"
        return
    assert len(out) == len(shape)


# Ids in cursors come from stored records, and no stored text holds a NUL or a lone surrogate
# (safe_json refuses both at the door).
STORED_TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=300)


@given(st.lists(st.one_of(st.integers(-(2**63), 2**63 - 1), STORED_TEXT),
                min_size=1, max_size=3))
def test_cursor_round_trip(parts):
    shape = [int if isinstance(p, int) else str for p in parts]
    assert decode_cursor(encode_cursor(*parts), *shape) == parts


LIST_URLS = ["/api/v1/conversations", "/api/v1/flags", "/api/v1/conversations/c1/messages", "/api/v1/scripts",
             "/api/v1/flags?status=open"]


@given(url=st.sampled_from(LIST_URLS), cursor=CURSOR, limit=st.one_of(st.none(), st.integers().map(str), st.text(max_size=5)))
async def test_cursors_over_http_are_never_a_5xx(client, url, cursor, limit):
    params = {"cursor": cursor}
    if limit is not None:
        params["limit"] = limit
    r = await client.get(url, params=params, headers=H)
    assert r.status in (200, 400, 404), (r.status, await r.text())
    if r.status != 200:
        assert (await r.json())["error"]["code"] in ("invalid_request", "not_found")


@given(ctype=st.sampled_from(["text/csv", "application/x-ndjson"]),
       body=st.one_of(csv_body().map(lambda s: s.encode("utf-8", "surrogatepass")),
                      jsonl_body().map(lambda s: s.encode("utf-8", "surrogatepass")), st.binary(max_size=200)))
async def test_imports_over_http_are_never_a_5xx(client, ctype, body):
    r = await client.post("/api/v1/scripts/import", data=body, headers={**H, "Content-Type": ctype})
    assert r.status in (200, 400, 413), (r.status, await r.text())
    data = await r.json()
    if r.status == 200:
        assert set(data) == {"imported", "updated", "errors"}
    else:
        assert data["error"]["code"] in ("bad_encoding", "too_large", "invalid_request")
