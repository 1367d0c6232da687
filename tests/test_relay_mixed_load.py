"""Relay sign-ups are not held up by other SQL writers (issue 11, finding 7): on SQLite the relay
event log has its own file, so a long write transaction on the main file (an archive import)
does not delay an answer; stores from before the split keep their events. The throughput side
is measured by bench/mixed_load_bench.py."""
from __future__ import annotations

import asyncio
import os
import sqlite3

import pytest
import sqlalchemy as sa

from storage.sql import open_database, relay_events, relay_log_path

sqlite_only = pytest.mark.skipif(bool(os.environ.get("DATABASE_URL")), reason="SQLite's per-file write lock")


@sqlite_only
async def test_signup_answered_while_main_file_is_write_locked(client, admin_headers, settings):
    resp = await client.post("/api/v1/relays", json={"chat_id": "wrLOCK", "title": "t", "stock": 10}, headers=admin_headers)
    rid = (await resp.json())["id"]
    db = settings.sql_url.split(":///", 1)[1]
    holder = sqlite3.connect(db, timeout=30, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # what an archive import's transaction holds
    try:
        resp = await asyncio.wait_for(client.post(f"/api/v1/relays/{rid}/messages", headers=admin_headers,
                                                  json={"sender_id": "c1", "text": "+1", "msgid": "m1"}), 5)
        assert resp.status == 200 and (await resp.json())["status"] == "confirmed"
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    log = sqlite3.connect(relay_log_path(settings.sql_url))
    assert log.execute("SELECT count(*) FROM relay_events WHERE relay_id = ?", (rid,)).fetchone() == (1,)
    log.close()


@sqlite_only
async def test_events_of_an_older_store_move_to_the_relay_log(tmp_path):
    db = tmp_path / "copilot.db"
    old = sqlite3.connect(db)  # the layout before the split: relay_events in the main file
    old.execute("CREATE TABLE relay_events (relay_id VARCHAR(32) NOT NULL, seq INTEGER NOT NULL, kind VARCHAR(16) NOT NULL,"
                " sender_id VARCHAR(128) DEFAULT '' NOT NULL, sender_name VARCHAR(200) DEFAULT '' NOT NULL,"
                " msgid VARCHAR(128), changes JSON NOT NULL, response JSON, line TEXT DEFAULT '' NOT NULL,"
                " at FLOAT NOT NULL, PRIMARY KEY (relay_id, seq))")
    old.execute("INSERT INTO relay_events (relay_id, seq, kind, changes, at) VALUES ('r1', 1, 'join', '[]', 1.0)")
    old.commit()
    old.close()
    url = f"sqlite+aiosqlite:///{db}"
    for _start in range(2):  # a second start finds nothing left to move
        async with open_database(url) as engine:
            async with engine.connect() as conn:
                rows = (await conn.execute(sa.select(relay_events.c.relay_id, relay_events.c.seq))).all()
            assert rows == [("r1", 1)]
    main = sqlite3.connect(db)
    assert main.execute("SELECT name FROM sqlite_master WHERE name = 'relay_events'").fetchall() == []
    main.close()


async def test_bulk_work_waits_only_while_interactive_work_is_active():
    import time

    from bot.foreground import Foreground

    fg = Foreground(active_for=0.5, wait_per_busy=2.0, max_wait=1.0)
    async with fg.bulk():
        await asyncio.sleep(0.05)
    t0 = time.monotonic()
    async with fg.bulk():  # nothing interactive: no wait
        pass
    assert time.monotonic() - t0 < 0.03
    async with fg.bulk():
        await asyncio.sleep(0.05)
    fg.touch()
    t0 = time.monotonic()
    async with fg.bulk():  # a sign-up just arrived: twice the previous batch (0.05 s)
        pass
    assert 0.09 <= time.monotonic() - t0 < 0.5
