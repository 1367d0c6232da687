"""Screenshots of every console page and the sidebar, taken from the demo brand (`--demo`), for the
README and docs/CONSOLE.md.

    python scripts/demo_screenshots.py [--out docs/screenshots] [--port 8093]

Starts `python server.py --demo` on 127.0.0.1 with a temporary data dir (embedded stores), logs in
with the demo's token for each role, and saves one PNG per page. Needs Debian chromium
(`apt-get install chromium fonts-wqy-microhei`).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = [  # (file, role, path, what to wait for)
    ("start.png", "qa", "/console#start", "#view section"),
    ("qa-queue.png", "qa", "/console#qa", "#flags tr.clickable"),
    ("trainer.png", "trainer", "/console#trainer", "#scripts tr.clickable"),
    ("labels.png", "trainer", "/console#labels", "#view section"),
    ("operator.png", "trainer", "/console#operator", "#relays tr.clickable"),
    ("customers.png", "trainer", "/console#customers", "#customers tr.clickable"),
    ("groups.png", "trainer", "/console#groups", "#view section"),
    ("work-orders.png", "qa", "/console#work-orders", "#work-orders tr"),
    ("sidebar.png", "staff", "/sidebar", "#customer-text"),
]


def wait_healthy(url: str, proc: subprocess.Popen, seconds: float = 600) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    raise SystemExit("server did not become healthy")


async def shoot(base: str, tokens: dict, out: Path) -> None:
    from playwright.async_api import async_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=["--headless", "--no-sandbox", "--disable-gpu"])
        for name, role, path, selector in PAGES:
            width = 420 if path == "/sidebar" else 1280
            page = await browser.new_page(viewport={"width": width, "height": 900})
            await page.goto(base + path)
            await page.fill("#token", tokens[role])
            await page.click("#login-form button")
            await page.wait_for_load_state("networkidle")
            await page.goto(base + path)
            await page.wait_for_selector(selector, timeout=15000)
            if name == "sidebar.png":
                await page.fill("#customer-text", "我的快递怎么还没到啊 都三天了")
                await page.click("#suggest")
                await page.wait_for_selector("#suggestions .suggestion, #suggestions li, #suggestions div", timeout=15000)
                await page.wait_for_timeout(1000)
            elif name == "customers.png":
                await page.click("#customers tr.clickable")
                await page.wait_for_selector("#timeline li")
            elif name == "qa-queue.png":
                await page.wait_for_selector("#flag-detail .msg")
            await page.wait_for_timeout(500)
            await page.evaluate("window.scrollTo(0, 0)")
            await page.screenshot(path=str(out / name))  # the first screen, as a visitor sees it
            print("saved", out / name, flush=True)
            await page.close()
        await browser.close()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    ap.add_argument("--port", type=int, default=8093)
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as d:
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
        env.update(COPILOT_DATA_DIR=d, COPILOT_PORT=str(a.port), COPILOT_HOST="127.0.0.1")
        if (ROOT / "var" / "models").is_dir():  # reuse trained models (else the first start trains them)
            env.setdefault("COPILOT_MODELS_DIR", str(ROOT / "var" / "models"))
        proc = subprocess.Popen([sys.executable, str(ROOT / "server.py"), "--demo"], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            base = f"http://127.0.0.1:{a.port}"
            wait_healthy(base, proc)
            tokens = json.loads((Path(d) / "demo_tokens.json").read_text(encoding="utf-8"))
            asyncio.run(shoot(base, tokens, out))
        finally:
            os.killpg(proc.pid, 15)
            proc.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
