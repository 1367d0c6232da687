"""Runs queued training jobs, one at a time, each in a child process (`python -m training run-job`).

Training is CPU-heavy for tens of seconds to minutes; in a child at low priority with one BLAS/
torch thread it cannot block the ack path or the analysis pool (docs/BENCHMARKS.md measures the
callback path during a job). The child dies with its parent; a job whose runner stopped beating
runs again (bot/learning/registry.py, recover_stale)."""
from __future__ import annotations

import asyncio
import collections
import logging
import os
import sys
import time
from typing import Any

from bot.learning.registry import ModelRegistry
from bot.lifetime import preexec_die_with_parent

log = logging.getLogger("copilot")

HEARTBEAT_SECONDS = 10.0
STALE_CHECK_SECONDS = 60.0
CHILD_NICENESS = 15


class TrainingRunner:
    def __init__(self, registry: ModelRegistry, settings: Any) -> None:
        self.registry = registry
        self.settings = settings
        self._proc: asyncio.subprocess.Process | None = None
        self._job: str | None = None
        self._watch: asyncio.Task | None = None
        self._beat = 0.0
        self._stale_checked = 0.0

    @property
    def busy(self) -> bool:
        return self._proc is not None

    def child_env(self) -> dict[str, str]:
        s = self.settings
        env = dict(os.environ)
        env.update({"COPILOT_DATA_DIR": str(s.data_dir), "DATABASE_URL": s.sql_url,
                    "COPILOT_MODELS_DIR": str(s.models_dir), "COPILOT_GATE_TOLERANCE": str(s.gate_tolerance),
                    # one core for training; the rest stays with the web and analysis processes
                    "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})
        return env

    async def tick(self) -> None:
        """Called by the schedule every few seconds: beat for the running job, notice its end, or
        start the next one."""
        now = time.monotonic()
        if self._proc is not None:
            if self._watch is not None and not self._watch.done():
                if now - self._beat >= HEARTBEAT_SECONDS:
                    self._beat = now
                    await self.registry.heartbeat(self._job or "")
                return
            await self._finished()
        if now - self._stale_checked >= STALE_CHECK_SECONDS:
            self._stale_checked = now
            if await self.registry.recover_stale():
                log.warning("training jobs interrupted by a stopped process were re-queued")
        job = await self.registry.claim()
        if job is not None:
            await self._start(job["id"])

    async def _start(self, job_id: str) -> None:
        die = preexec_die_with_parent()

        def preexec() -> None:
            die()
            try:
                os.nice(CHILD_NICENESS)
            except OSError:
                pass

        self._job, self._beat = job_id, time.monotonic()
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "training", "run-job", job_id, env=self.child_env(),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, preexec_fn=preexec)
        self._watch = asyncio.create_task(self._collect(self._proc))
        log.info("training job started", extra={"job_id": job_id, "pid": self._proc.pid})

    @staticmethod
    async def _collect(proc: asyncio.subprocess.Process) -> str:
        tail: collections.deque[str] = collections.deque(maxlen=30)
        assert proc.stderr is not None
        async for line in proc.stderr:
            tail.append(line.decode("utf-8", "replace").rstrip())
        await proc.wait()
        return "\n".join(tail)

    async def _finished(self) -> None:
        assert self._proc is not None and self._watch is not None
        tail = self._watch.result() if not self._watch.cancelled() else ""
        rc, job_id = self._proc.returncode, self._job or ""
        self._proc = self._watch = self._job = None
        job = await self.registry.job(job_id)
        if job is not None and job["status"] == "running":
            # The child died before it could record anything (killed, out of memory, import error).
            await self.registry.finish(job_id, error=f"training process exited with {rc}: {tail[-1500:]}")
        log.info("training job ended", extra={"job_id": job_id, "exit_code": rc,
                                              "status": (await self.registry.job(job_id) or {}).get("status")})

    async def run_until_idle(self, timeout: float = 600.0, poll: float = 0.2) -> None:
        """Run jobs until none is queued or running (tests, `bench/`)."""
        deadline = time.monotonic() + timeout
        while True:
            await self.tick()
            if not self.busy and await self.registry.claim_peek() is None:
                return
            if time.monotonic() > deadline:
                raise TimeoutError("training jobs still running")
            await asyncio.sleep(poll)

    async def stop(self) -> None:
        """Stop a running child and give its job back to the queue (it runs again later)."""
        if self._proc is None:
            return
        if self._proc.returncode is None:
            self._proc.terminate()
            try:
                await asyncio.wait_for(asyncio.shield(self._watch), 10) if self._watch else None
            except asyncio.TimeoutError:
                self._proc.kill()
        await self.registry.release(self._job or "")
        self._proc = self._watch = self._job = None
