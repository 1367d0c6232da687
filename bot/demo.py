"""`python server.py --demo` (or COPILOT_DEMO=1): a sample brand on every page (issue 17).

On an empty data dir, before serving: the sample brand's reply scripts, two weeks of
conversation-archive records replayed **through the real intake** (so analyses, flags,
suggestions, mining drafts and analytics are the product's own work), an open relay with
sign-ups and a waitlist and a closed one, and a token per role (printed once, stored in
DATA_DIR/demo_tokens.json). The sample data (`bot/demo_data/`) was written for the demo by
separate writers and is neither training nor evaluation data.

Loading is idempotent (DATA_DIR/demo.json marks it) and refuses to load into stores that already
hold other data.
"""
from __future__ import annotations

import json
import logging
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from bot.conversations import intake
from bot.conversations.records import ArchiveRecord
from bot.customers.profiles import ContactChange
from bot.relay.service import RelaySpec
from storage.sql import conversations, scripts

if TYPE_CHECKING:
    from bot.components import Components

log = logging.getLogger("copilot")
DATA = Path(__file__).resolve().parent / "demo_data"
MARKER = "demo.json"
ROLES = (("qa", "质检小李", None), ("trainer", "培训师周老师", None), ("staff", "导购小王", "xiaowang"))


class DemoRefused(Exception):
    """The stores hold data that is not the demo's: loading would mix the two."""


def _read(name: str) -> list[dict]:
    path = DATA / name
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def archive_records(convs: list[dict], tz: ZoneInfo, today: datetime) -> list[dict]:
    """The sample conversations as WeCom chatdata records, day 13 being today."""
    out = []
    for n, c in enumerate(convs):
        day = (today - timedelta(days=13 - int(c["day"]))).replace(hour=0, minute=0, second=0, microsecond=0)
        for i, m in enumerate(c["messages"]):
            at = int((day + timedelta(minutes=int(m["minute"]), seconds=i)).timestamp() * 1000)
            if c["kind"] == "private":
                sender = c["staff"] if m["from"] == "staff" else c["customer"]
                other = c["customer"] if sender == c["staff"] else c["staff"]
                rec = {"msgid": f"demo-{n}-{i}", "action": "send", "from": sender, "tolist": [other], "roomid": "",
                       "msgtime": at, "msgtype": "text", "text": {"content": m["text"]}}
            else:
                rec = {"msgid": f"demo-{n}-{i}", "action": "send", "from": m["from"], "tolist": [], "roomid": c["room"],
                       "msgtime": at, "msgtype": "text", "text": {"content": m["text"]}}
            if at <= int(datetime.now(tz).timestamp() * 1000):  # nothing from later today
                out.append(rec)
    return out


async def load_demo(parts: "Components") -> dict | None:
    """Load the sample brand once; → what was loaded (None when it already was)."""
    settings = parts.settings
    marker = settings.data_dir / MARKER
    if marker.is_file():
        return None
    async with parts.engine.connect() as conn:
        n_conv = (await conn.execute(sa.select(sa.func.count()).select_from(conversations))).scalar_one()
        n_scripts = (await conn.execute(sa.select(sa.func.count()).select_from(scripts))).scalar_one()
    if n_conv or n_scripts:
        raise DemoRefused(f"{settings.data_dir} already holds {n_conv} conversations and {n_scripts} scripts that are "
                          "not the demo's; start --demo with an empty --data-dir")
    from knowledge.scripts import ScriptInput

    demo_scripts = [ScriptInput(**{**s, "source": "demo"}) for s in _read("scripts.jsonl")]
    await parts.knowledge.upsert(demo_scripts)
    tz = ZoneInfo(settings.timezone)
    convs = _read("conversations.jsonl")
    records = archive_records(convs, tz, datetime.now(tz))
    stored = 0
    for i in range(0, len(records), 500):
        got, _dup = await intake.take_in(parts.conversations, parts.queue,
                                         [ArchiveRecord.parse(r) for r in records[i:i + 500]], source="archive")
        stored += len(got)
    for c in convs:
        if c["kind"] == "private" and c.get("customer_name"):
            at = int((datetime.now(tz) - timedelta(days=13 - int(c["day"]))).timestamp() * 1000)
            await parts.customers.contact_changed(ContactChange("add_external_contact", c["staff"], c["customer"],
                                                                None, at))
            await parts.customers.set_name(c["customer"], c["customer_name"])
    relays = await _relays(parts, convs)
    tokens = {}
    for role, name, userid in ROLES:
        info, token = await parts.tokens.create(role, name, "demo", userid)
        tokens[role] = token
    path = settings.data_dir / "demo_tokens.json"
    path.write_text(json.dumps(tokens, ensure_ascii=False, indent=1), encoding="utf-8")
    os.chmod(path, 0o600)
    summary = {"loaded_at": datetime.now(tz).isoformat(), "scripts": len(demo_scripts), "messages": stored,
               "conversations": len(convs), "relays": relays}
    marker.write_text(json.dumps(summary, ensure_ascii=False), encoding="utf-8")
    # Printed once, on the console only (never into the logs), like the admin token.
    print("Demo brand 鹿米生活 loaded: " + ", ".join(f"{k} {v}" for k, v in summary.items() if k != "loaded_at"), flush=True)
    for role, token in tokens.items():
        print(f"  {role} token: {token}", flush=True)
    print(f"  (stored in {path})", flush=True)
    return summary


async def _relays(parts: "Components", convs: list[dict]) -> list[str]:
    """An open relay with sign-ups and a waitlist, and a closed one, in the sample's groups."""
    rooms = [c for c in convs if c["kind"] == "group"]
    if not rooms:
        return []
    members = sorted({m["from"] for c in rooms for m in c["messages"] if m["from"].startswith("wm")})
    first, second = rooms[0]["room"], (rooms[1] if len(rooms) > 1 else rooms[0])["room"]
    made = []
    closed = await parts.relays.create(RelaySpec(second, "云南蓝莓 125g×4 盒", stock=20, per_user_limit=2,
                                                 owner_userid=rooms[0].get("owner")), "demo")
    for i, who in enumerate(members[:6]):
        await parts.relays.handle_message(closed["id"], who, who, "接龙+1" if i % 2 else "我要两份", f"demo-r1-{i}")
    await parts.relays.close(closed["id"])
    made.append(closed["id"])
    opened = await parts.relays.create(RelaySpec(first, "安吉白茶 明前特级 50g", stock=6, per_user_limit=2,
                                                 owner_userid=rooms[0].get("owner")), "demo")
    texts = ["接龙2份", "+1", "我要两份", "+1", "接龙 1", "+2", "+1"]
    for i, who in enumerate(members[6:13]):
        await parts.relays.handle_message(opened["id"], who, who, texts[i % len(texts)], f"demo-r2-{i}")
    made.append(opened["id"])
    return made
