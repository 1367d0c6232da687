"""`python server.py` as a user runs it: embedded defaults, health, graceful stop."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env() -> dict[str, str]:
    from tests.conftest import MODELS_DIR

    env = {k: v for k, v in os.environ.items() if not k.startswith(("WECOM_", "COPILOT_", "REDIS_URL", "DATABASE_URL"))}
    env["COPILOT_MODELS_DIR"] = str(MODELS_DIR)  # trained once per test session; a user's first start trains
    return env


def wait_healthy(port: int, proc: subprocess.Popen, timeout: float = 30) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else "exited"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                return {"status": r.status, "body": r.read().decode()}
        except OSError:
            time.sleep(0.2)
    raise AssertionError("server never became healthy")


def test_serve_on_embedded_defaults_then_worker(tmp_path):
    port = free_port()
    data = tmp_path / "data"
    proc = subprocess.Popen([sys.executable, "server.py", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data)],
                            cwd=ROOT, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        health = wait_healthy(port, proc)
        assert health["status"] == 200 and '"ok"' in health["body"]
        token = (data / "admin_token").read_text().strip()
        req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/tokens", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=2) as r:
            assert r.status == 200
        # /api/v1/analyze goes through the NLP process pool.
        req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/analyze", method="POST",
                                     data=json.dumps({"text": "加我薇信 便宜卖你", "role": "staff"}).encode(),
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            result = json.loads(r.read())
        assert result["flagged"] and result["sensitive"][0]["category"] == "diversion"
        # A worker process shares the embedded Redis and SQLite of the same data dir.
        worker = subprocess.Popen([sys.executable, "server.py", "worker", "--data-dir", str(data)], cwd=ROOT,
                                  env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        # SIGTERM once it runs (before its signal handler exists the default action would kill it).
        seen = []
        deadline = time.monotonic() + 60
        for line in worker.stdout:
            seen.append(line)
            if "worker started" in line or time.monotonic() > deadline:
                break
        assert worker.poll() is None, "".join(seen)
        worker.send_signal(signal.SIGTERM)
        out, _ = worker.communicate(timeout=20)
        out = "".join(seen) + out
        assert worker.returncode == 0, out
        assert "worker stopped" in out
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert f"Admin token (stored in {data / 'admin_token'})" in out
    assert token not in out.split("Admin token", 1)[1].split("\n", 1)[1]  # printed once, never logged
    assert (data / "copilot.db").exists() and (data / "redis").is_dir()


def test_bad_configuration_refuses_to_start(tmp_path):
    env = {**clean_env(), "WECOM_MAX_CLOCK_SKEW": "abc"}
    proc = subprocess.run([sys.executable, "server.py", "--data-dir", str(tmp_path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "WECOM_MAX_CLOCK_SKEW" in proc.stderr
