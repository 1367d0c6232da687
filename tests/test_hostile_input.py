"""Inputs that used to answer 500 (issue 11, finding 4): each is a clear 4xx now, and the
server keeps serving."""
from __future__ import annotations

import base64
import json

import pytest

from bot import safe_json
from tests.helpers import sealed_request, text_xml
from tests.test_archive import rec

DEEP = "[" * 100_000 + "]" * 100_000
DEEP_OBJ = '{"a":' * 5_000 + "1" + "}" * 5_000


def cursor(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


def test_bounded_parser_refuses_depth_nul_surrogates_and_constants():
    for bad in (DEEP, DEEP_OBJ, '{"a": "x\\u0000"}', '["\\ud800"]', "[NaN]", '{"a": Infinity}', "[1,", b"\xff"):
        with pytest.raises(safe_json.JsonInputError):
            safe_json.loads(bad)
    assert safe_json.loads('{"items": [{"a": [1, {"b": "好"}]}]}') == {"items": [{"a": [1, {"b": "好"}]}]}
    with pytest.raises(safe_json.JsonInputError):
        safe_json.loads("[[[1]]]", max_depth=2)


@pytest.mark.parametrize("path", ["/api/v1/analyze", "/api/v1/archive", "/api/v1/scripts", "/api/v1/relays",
                                  "/api/v1/tokens", "/api/v1/suggestions", "/api/v1/channels",
                                  "/api/v1/lexicons/competitor"])
@pytest.mark.parametrize("body", [DEEP, DEEP_OBJ], ids=["array", "object"])
async def test_deeply_nested_json_is_400_everywhere(client, admin_headers, path, body):
    resp = await client.post(path, data=body, headers={**admin_headers, "Content-Type": "application/json"})
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["error"]["code"] == "bad_json"
    assert (await client.get("/healthz")).status == 200


async def test_deep_nul_and_surrogate_import_lines_are_line_errors(client, admin_headers):
    good = json.dumps({"question": "面霜多少钱", "reply": "199 元"}, ensure_ascii=False)
    body = "\n".join([good, DEEP, '{"question": "a\\u0000", "reply": "b"}', '{"question": "\\udc00", "reply": "b"}'])
    resp = await client.post("/api/v1/scripts/import", data=body.encode(),
                             headers={**admin_headers, "Content-Type": "application/x-ndjson"})
    assert resp.status == 200, await resp.text()
    out = await resp.json()
    assert out["imported"] == 1
    assert [e["line"] for e in out["errors"]] == [2, 3, 4]


@pytest.mark.parametrize("forged", [
    cursor([{"a": 1}, "x"]), cursor(["x", "y"]), cursor([1]), cursor([True, "x"]), cursor([2 ** 70, "x"]),
    cursor([1, 2]), cursor({"a": 1}), cursor([[[[[[1]]]]]]), "!!!", "5L2g5aW9", base64.urlsafe_b64encode(
        b"[" * 2000 + b"]" * 2000).decode(),
], ids=lambda c: str(len(c)))
async def test_forged_cursors_are_400(client, admin_headers, forged):
    for path in ("/api/v1/conversations", "/api/v1/conversations/p:a|wmB/messages", "/api/v1/flags"):
        resp = await client.get(path, params={"cursor": forged}, headers=admin_headers)
        assert resp.status in (400, 404), (path, resp.status, await resp.text())
        if resp.status == 404:  # a conversation that does not exist is checked before the cursor
            assert path.endswith("/messages")
        else:
            assert (await resp.json())["error"]["code"] == "invalid_request"


async def test_forged_flag_cursor_shapes_are_400(client, admin_headers):
    for forged in (cursor([1, 2, "x"]), cursor([1, "not a time", "x"]), cursor([1, "2026-01-01T00:00:00", "x"]),
                   cursor([1, "0001-01-01T00:00:00+14:00", "x"]), cursor(["1", "2026-01-01T00:00:00+00:00", "x"])):
        resp = await client.get("/api/v1/flags", params={"cursor": forged}, headers=admin_headers)
        assert resp.status == 400, (forged, await resp.text())


async def test_forged_message_cursor_on_a_real_conversation_is_400(client, admin_headers):
    await client.post("/api/v1/archive", json={"items": [rec("m1", "wmCUST", "你好")]}, headers=admin_headers)
    conv = "p:wmCUST|zhangsan"
    for forged in (cursor(["x", "y"]), cursor([{"a": 1}, "m"]), cursor([2 ** 64, "m"])):
        resp = await client.get(f"/api/v1/conversations/{conv}/messages", params={"cursor": forged},
                                headers=admin_headers)
        assert resp.status == 400, await resp.text()


@pytest.mark.parametrize("ends_at", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00",
                                     "0001-01-01T00:00:00+00:00", "9999-12-31T23:59:59+00:00", 1e20, -1e20])
async def test_relay_ends_at_at_the_edges_is_400(client, admin_headers, ends_at):
    resp = await client.post("/api/v1/relays", json={"chat_id": "wrX", "title": "t", "stock": 5, "ends_at": ends_at},
                             headers=admin_headers)
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["error"]["code"] == "invalid_request"


async def test_archive_out_of_range_numbers_are_per_record_errors(client, admin_headers, parts):
    items = [rec("ok1", "wmA", "你好"), rec("big-time", "wmA", "x", msgtime=2 ** 64),
             rec("big-seq", "wmA", "x", seq=2 ** 64), rec("neg-seq", "wmA", "x", seq=-1),
             rec("long-type", "wmA", "x", msgtype="t" * 40), rec("long-from", "w" + "m" * 200, "x"),
             rec("long-room", "wmA", "x", roomid="r" * 200), rec("ok2", "wmA", "在吗", t=1)]
    items[1]["msgtime"] = 2 ** 64
    resp = await client.post("/api/v1/archive", json={"items": items}, headers=admin_headers)
    assert resp.status == 200, await resp.text()
    out = await resp.json()
    assert out["accepted"] == 2
    assert [e["index"] for e in out["errors"]] == [1, 2, 3, 4, 5, 6]
    resp = await client.get("/api/v1/conversations", headers=admin_headers)
    assert resp.status == 200, await resp.text()


async def test_csv_bare_cr_and_huge_fields(client, admin_headers):
    body = "question,reply\r\n面霜多少钱,199 元\r眼霜呢,299 元\n长的," + "x" * 200_000 + "\n最后,一行\n"
    resp = await client.post("/api/v1/scripts/import", data=body.encode(),
                             headers={**admin_headers, "Content-Type": "text/csv"})
    assert resp.status == 200, await resp.text()
    out = await resp.json()
    assert out["imported"] == 3, out
    assert len(out["errors"]) == 1 and out["errors"][0]["line"] == 4, out


async def test_callback_timestamp_of_hundreds_of_digits_is_403(client, parts):
    params, body = sealed_request(text_xml("你好"), timestamp="9" * 300)
    resp = await client.post("/wecom/callback", params=params, data=body)
    assert resp.status == 403, await resp.text()
    params, body = sealed_request(text_xml("你好"), timestamp="-" + "9" * 300)
    resp = await client.post("/wecom/callback", params=params, data=body)
    assert resp.status == 403
