"""CSV exports neutralise formulas with one writer, pages refuse framing, times carry their offset
(issue 11, finding 6)."""
from __future__ import annotations

import csv
import io

import pytest

from bot.csv_export import csv_text, neutralise

FORMULAS = ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "\tx", "\rx"]


def test_one_writer_neutralises_every_string_cell():
    assert [neutralise(v) for v in FORMULAS] == ["'" + v for v in FORMULAS]
    assert neutralise("面霜") == "面霜" and neutralise(-1) == -1 and neutralise("") == ""
    rows = list(csv.reader(io.StringIO(csv_text([["a", "b"], ["=HYPERLINK(1)", 3]]))))
    assert rows == [["a", "b"], ["'=HYPERLINK(1)", "3"]]


async def test_scripts_csv_export_neutralises_formulas(client, admin_headers):
    for i, value in enumerate(FORMULAS[:4]):
        resp = await client.post("/api/v1/scripts", json={"id": f"f{i}", "question": value, "reply": value,
                                                         "tags": [value]}, headers=admin_headers)
        assert resp.status == 201, await resp.text()
    text = await (await client.get("/api/v1/scripts/export?format=csv", headers=admin_headers)).text()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 4
    for row in rows:
        for field in ("question", "reply", "tags"):
            assert row[field].startswith("'"), row


async def test_relay_export_uses_the_same_writer(client, admin_headers):
    relay = await (await client.post("/api/v1/relays", json={"chat_id": "wrX", "title": "面霜", "stock": 5},
                                     headers=admin_headers)).json()
    await client.post(f"/api/v1/relays/{relay['id']}/messages",
                      json={"sender_id": "=evil", "sender_name": "@boss", "text": "接龙"}, headers=admin_headers)
    text = await (await client.get(f"/api/v1/relays/{relay['id']}/export.csv", headers=admin_headers)).text()
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[1][2:4] == ["'=evil", "'@boss"]


async def test_console_refuses_framing_and_the_sidebar_stays_embeddable(client):
    resp = await client.get("/console")
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    resp = await client.get("/sidebar")
    assert "X-Frame-Options" not in resp.headers  # WeCom's clients embed it (docs/CONSOLE.md)
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]


async def test_created_at_carries_its_offset_on_create_and_read(client, admin_headers):
    created = await (await client.post("/api/v1/tokens", json={"role": "qa", "name": "q"}, headers=admin_headers)).json()
    listed = (await (await client.get("/api/v1/tokens", headers=admin_headers)).json())["items"][0]
    assert created["created_at"].endswith("+00:00") and listed["created_at"].endswith("+00:00")
    relay = await (await client.post("/api/v1/relays", json={"chat_id": "wrX", "title": "t", "stock": 1,
                                                             "ends_at": "2030-01-01T20:00:00+08:00"},
                                     headers=admin_headers)).json()
    got = await (await client.get(f"/api/v1/relays/{relay['id']}", headers=admin_headers)).json()
    for body in (relay, got):
        assert body["created_at"].endswith("+00:00") and body["ends_at"].endswith("+00:00"), body
    listed = (await (await client.get("/api/v1/relays", headers=admin_headers)).json())["items"][0]
    assert listed["created_at"].endswith("+00:00")


async def test_script_search_escapes_like_wildcards(client, admin_headers):
    for i, q in enumerate(["面霜多少钱", "100%有效吗", "a_b"]):
        await client.post("/api/v1/scripts", json={"id": f"s{i}", "question": q, "reply": "r"}, headers=admin_headers)
    found = lambda body: [s["id"] for s in body["items"]]  # noqa: E731
    assert found(await (await client.get("/api/v1/scripts", params={"q": "%"}, headers=admin_headers)).json()) == ["s1"]
    assert found(await (await client.get("/api/v1/scripts", params={"q": "_"}, headers=admin_headers)).json()) == ["s2"]


async def test_script_created_at_carries_its_offset_on_read(client, admin_headers, settings):
    created = await (await client.post("/api/v1/scripts", json={"id": "t1", "question": "q", "reply": "r"},
                                       headers=admin_headers)).json()
    got = await (await client.get("/api/v1/scripts/t1", headers=admin_headers)).json()
    assert created["created_at"].endswith("+00:00") and got["created_at"].endswith("+00:00")
