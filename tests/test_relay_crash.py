"""A server process SIGKILLed in the middle of a flash sale loses no acknowledged sign-up and
never oversells (issue 6, 'faults')."""
from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import aiohttp

from tests.conftest import MODELS_DIR
from tests.test_cli import free_port

ROOT = Path(__file__).resolve().parent.parent
ADMIN = "crash-admin-token-0123456789"


def start(port: int, data: Path) -> subprocess.Popen:
    env = {**os.environ, "COPILOT_ADMIN_TOKEN": ADMIN, "COPILOT_NLP_PROCESSES": "0", "COPILOT_WORKERS": "0",
           "COPILOT_MODELS_DIR": str(MODELS_DIR)}
    proc = subprocess.Popen([sys.executable, "server.py", "--host", "127.0.0.1", "--port", str(port), "--data-dir",
                             str(data)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("server did not start")


async def fire(base: str, rid: str, msgs, stop_after: int | None = None):
    answers = []
    it = iter(msgs)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {ADMIN}"}) as s:
        async def worker():
            for msgid, sender, text in it:
                if stop_after and len(answers) >= stop_after:
                    return
                try:
                    async with s.post(f"{base}/api/v1/relays/{rid}/messages",
                                      json={"sender_id": sender, "sender_name": sender, "text": text, "msgid": msgid}) as r:
                        if r.status == 200:
                            answers.append((msgid, sender, await r.json()))
                except aiohttp.ClientError:
                    pass

        await asyncio.gather(*(worker() for _ in range(32)))
    return answers


async def test_sigkill_mid_sale(tmp_path):
    port, data = free_port(), tmp_path / "data"
    base = f"http://127.0.0.1:{port}"
    rng = random.Random(3)
    sale = [(f"m{i}", f"c{rng.randrange(300)}", rng.choice(["+1", "+2", "接龙", "我要两份"])) for i in range(800)]
    proc = start(port, data)
    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {ADMIN}"}) as s:
            async with s.post(f"{base}/api/v1/relays", json={"chat_id": "wrCRASH", "title": "t", "stock": 50,
                                                              "per_user_limit": 2}) as r:
                rid = (await r.json())["id"]
        first = await fire(base, rid, sale, stop_after=250)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc = start(port, data)
        answered = {m for m, _s, _a in first}
        rest = await fire(base, rid, [m for m in sale if m[0] not in answered])
        # a client retrying an answered msgid after the restart gets the same answer
        retry = await fire(base, rid, [m for m in sale if m[0] == first[0][0]])
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {ADMIN}"}) as s:
            async with s.get(f"{base}/api/v1/relays/{rid}") as r:
                state = await r.json()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    assert retry[0][2] == first[0][2]
    final = {e["sender_id"]: e["quantity"] for e in state["entries"]}
    assert sum(final.values()) == 50 and state["remaining"] == 0
    assert max(final.values()) <= 2
    for _m, sender, answer in first + rest:  # nothing acknowledged is lost
        assert answer["confirmed_quantity"] <= final.get(sender, 0)
