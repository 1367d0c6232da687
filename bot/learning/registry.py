"""The model registry and its training jobs (docs/openapi.yaml /api/v1/models).

A version is `candidate` when trained, `active` when promoted (one per task), `retired` when
replaced. Promotion compares the candidate's gate metrics with those of the active version it was
measured against in the same training job (training/jobs.py); promoting a retired version is a
rollback and needs no gate: it served before. SQL is the truth; the pointer file that every
analyzer watches (nlp/active.py) is written from it.
"""
from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from nlp.active import TASKS, version_path, write_pointer
from storage.sql import labels, model_versions, training_jobs
from training.gate import failures

log = logging.getLogger("copilot")

JOB_STATUSES = ("queued", "running", "done", "failed")
MAX_ATTEMPTS = 2  # a job interrupted by a restart runs once more, then fails


class RegistryError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(v: datetime | None) -> str | None:
    if v is None:
        return None
    return (v if v.tzinfo else v.replace(tzinfo=timezone.utc)).isoformat()


def version_json(r) -> dict:
    return {"version": r["version"], "task": r["task"], "status": r["status"], "kind": r["kind"],
            "created_at": _iso(r["created_at"]), "promoted_at": _iso(r["promoted_at"]),
            "promoted_by": r["promoted_by"], "code_version": r["code_version"], "params": r["params"],
            "data": r["data"], "metrics": r["metrics"], "job_id": r["job_id"]}


def job_json(r) -> dict:
    return {"id": r["id"], "task": r["task"], "status": r["status"], "version": r["version"], "error": r["error"],
            "requested_by": r["requested_by"], "attempts": r["attempts"], "created_at": _iso(r["created_at"]),
            "started_at": _iso(r["started_at"]), "finished_at": _iso(r["finished_at"])}


@dataclass
class ModelRegistry:
    engine: AsyncEngine
    versions_dir: Path
    gate_tolerance: float = 0.01
    current_bases: set[str] = field(default_factory=set)  # the base versions this install can load

    # --- versions -------------------------------------------------------------------------------
    async def ensure_base(self, task: str, version: str, meta: dict, code_version: str) -> None:
        """Record the shipped model; it is active when the task has no active version, or when the
        active one is an older base (the repository's data changed with an upgrade)."""
        self.current_bases.add(version)
        try:
            await self._ensure_base(task, version, meta, code_version)
        except IntegrityError:
            # Another process starting at the same moment recorded it (or took over first): theirs stands.
            log.info("base model version recorded by another process", extra={"version": version})

    async def _ensure_base(self, task: str, version: str, meta: dict, code_version: str) -> None:
        async with self.engine.begin() as conn:
            have = (await conn.execute(sa.select(model_versions.c.version)
                                       .where(model_versions.c.version == version))).first()
            active = (await conn.execute(sa.select(model_versions.c.version, model_versions.c.kind)
                                         .where(model_versions.c.task == task,
                                                model_versions.c.status == "active"))).first()
            if have is None:
                take_over = active is None or active.kind == "base"
                if active is not None and take_over:
                    await conn.execute(model_versions.update().where(model_versions.c.version == active.version)
                                       .values(status="retired"))
                await conn.execute(model_versions.insert().values(
                    version=version, task=task, status="active" if take_over else "retired", kind="base",
                    created_at=_now(), promoted_at=_now() if take_over else None, promoted_by="install",
                    code_version=code_version, params={"family": meta.get("family"), "tau": meta.get("tau")},
                    data={"counts": meta.get("sources", {}), "hash": meta.get("data"), "n": meta.get("n_train")},
                    metrics={}, job_id=None))

    async def list(self, task: str | None = None, limit: int = 100) -> list[dict]:
        stmt = sa.select(model_versions).order_by(model_versions.c.created_at.desc()).limit(limit)
        if task:
            stmt = stmt.where(model_versions.c.task == task)
        async with self.engine.connect() as conn:
            return [version_json(r) for r in (await conn.execute(stmt)).mappings()]

    async def get(self, version: str) -> dict | None:
        async with self.engine.connect() as conn:
            r = (await conn.execute(sa.select(model_versions).where(model_versions.c.version == version))
                 ).mappings().first()
        return version_json(r) if r else None

    async def active(self) -> dict[str, str]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(model_versions.c.task, model_versions.c.version)
                                       .where(model_versions.c.status == "active"))).all()
        return {t: v for t, v in rows}

    async def add_candidate(self, version: str, task: str, code_version: str, params: dict, data: dict,
                            metrics: dict, job_id: str | None) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(model_versions.insert().values(
                version=version, task=task, status="candidate", kind="trained", created_at=_now(),
                code_version=code_version, params=params, data=data, metrics=metrics, job_id=job_id))

    async def promote(self, version: str, by: str, force: bool = False) -> dict:
        """Make `version` the active one of its task. Raises RegistryError: 404 unknown, 409
        gate_failed / gate_stale / not_loadable / conflict."""
        try:
            row = await self._promote(version, by, force)
        except IntegrityError:
            raise RegistryError(409, "conflict", "another promotion of this task ran at the same time; "
                                                 "look at the versions and try again") from None
        await self.sync_pointer()
        return row

    async def _promote(self, version: str, by: str, force: bool) -> dict:
        async with self.engine.begin() as conn:
            row = (await conn.execute(sa.select(model_versions).where(model_versions.c.version == version))
                   ).mappings().first()
            if row is None:
                raise RegistryError(404, "not_found", f"no model version {version!r}")
            if row["status"] == "active":
                return version_json(row)
            active = (await conn.execute(sa.select(model_versions).where(
                model_versions.c.task == row["task"], model_versions.c.status == "active"))).mappings().first()
            if row["kind"] == "trained" and not version_path(self.versions_dir, version).is_file():
                raise RegistryError(409, "not_loadable", f"the artefact of {version} is missing")
            if row["kind"] == "base" and version not in self.current_bases:
                raise RegistryError(409, "not_loadable", f"{version} was built from older repository data; "
                                                         "its artefact is gone")
            if row["status"] == "candidate" and active is not None and not force:
                baseline = (row["metrics"] or {}).get("baseline") or {}
                if baseline.get("version") != active["version"]:
                    raise RegistryError(409, "gate_stale",
                                        f"{version} was compared with {baseline.get('version')}, but "
                                        f"{active['version']} is active now; train again (or an admin forces it)")
                failed = failures(row["task"], row["metrics"].get("gate") or {}, baseline.get("gate") or {},
                                  self.gate_tolerance)
                if failed:
                    raise RegistryError(409, "gate_failed",
                                        f"{version} is worse than {active['version']} on the gate set: "
                                        + "; ".join(failed))
            if active is not None:
                await conn.execute(model_versions.update().where(model_versions.c.version == active["version"])
                                   .values(status="retired"))
            await conn.execute(model_versions.update().where(model_versions.c.version == version)
                               .values(status="active", promoted_at=_now(), promoted_by=by[:200]))
            row = (await conn.execute(sa.select(model_versions).where(model_versions.c.version == version))
                   ).mappings().first()
        return version_json(row)

    async def sync_pointer(self) -> bool:
        """Write the active versions to the pointer file every analyzer watches."""
        active = await self.active()
        return write_pointer(self.versions_dir, {t: v for t, v in active.items() if t in TASKS})

    # --- jobs -----------------------------------------------------------------------------------
    async def enqueue(self, task: str, by: str) -> dict:
        """A training job for `task`; a job already waiting or running for it is answered instead."""
        async with self.engine.begin() as conn:
            pending = (await conn.execute(sa.select(training_jobs).where(
                training_jobs.c.task == task, training_jobs.c.status.in_(("queued", "running"))))).mappings().first()
            if pending is not None:
                return job_json(pending)
            job_id = secrets.token_hex(8)
            await conn.execute(training_jobs.insert().values(id=job_id, task=task, status="queued",
                                                             requested_by=by[:200], created_at=_now()))
            row = (await conn.execute(sa.select(training_jobs).where(training_jobs.c.id == job_id))).mappings().first()
        return job_json(row)

    async def job(self, job_id: str) -> dict | None:
        async with self.engine.connect() as conn:
            r = (await conn.execute(sa.select(training_jobs).where(training_jobs.c.id == job_id))).mappings().first()
        return job_json(r) if r else None

    async def claim(self) -> dict | None:
        """Take the oldest queued job, when none is running (one training at a time)."""
        async with self.engine.begin() as conn:
            running = (await conn.execute(sa.select(training_jobs.c.id)
                                          .where(training_jobs.c.status == "running"))).first()
            if running is not None:
                return None
            nxt = (await conn.execute(sa.select(training_jobs.c.id).where(training_jobs.c.status == "queued")
                                      .order_by(training_jobs.c.created_at).limit(1))).first()
            if nxt is None:
                return None
            now = _now()
            claimed = await conn.execute(training_jobs.update().where(
                training_jobs.c.id == nxt.id, training_jobs.c.status == "queued").values(
                status="running", started_at=now, heartbeat_at=now, attempts=training_jobs.c.attempts + 1))
            if claimed.rowcount != 1:
                return None  # another process took it
            row = (await conn.execute(sa.select(training_jobs).where(training_jobs.c.id == nxt.id))).mappings().first()
        return job_json(row)

    async def claim_peek(self) -> str | None:
        """The id of a job waiting to run, if any (without taking it)."""
        async with self.engine.connect() as conn:
            r = (await conn.execute(sa.select(training_jobs.c.id)
                                    .where(training_jobs.c.status == "queued").limit(1))).first()
        return r.id if r else None

    async def release(self, job_id: str) -> None:
        """A job whose runner is shutting down goes back to the queue."""
        async with self.engine.begin() as conn:
            await conn.execute(training_jobs.update().where(training_jobs.c.id == job_id,
                                                            training_jobs.c.status == "running")
                               .values(status="queued"))

    async def heartbeat(self, job_id: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(training_jobs.update().where(training_jobs.c.id == job_id,
                                                            training_jobs.c.status == "running")
                               .values(heartbeat_at=_now()))

    async def finish(self, job_id: str, version: str | None = None, error: str | None = None) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(training_jobs.update().where(training_jobs.c.id == job_id,
                                                            training_jobs.c.status == "running")
                               .values(status="failed" if error else "done", version=version,
                                       error=error[-2000:] if error else None, finished_at=_now()))

    async def recover_stale(self, older_than: timedelta = timedelta(minutes=2)) -> int:
        """Running jobs whose runner stopped beating (its process died) run again, or fail after
        MAX_ATTEMPTS."""
        cutoff = _now() - older_than
        stale = (training_jobs.c.status == "running") & (training_jobs.c.heartbeat_at < cutoff)
        async with self.engine.begin() as conn:
            again = await conn.execute(training_jobs.update().where(stale, training_jobs.c.attempts < MAX_ATTEMPTS)
                                       .values(status="queued"))
            failed = await conn.execute(training_jobs.update().where(stale).values(
                status="failed", error="interrupted (the training process stopped) too often", finished_at=_now()))
        return again.rowcount + failed.rowcount

    async def new_labels_since_active(self, task: str) -> int:
        """Labels for `task` stored after its active version was trained (all of them for a base)."""
        async with self.engine.connect() as conn:
            active = (await conn.execute(sa.select(model_versions.c.created_at, model_versions.c.kind).where(
                model_versions.c.task == task, model_versions.c.status == "active"))).first()
            stmt = sa.select(sa.func.count()).select_from(labels).where(labels.c.task == task)
            if active is not None and active.kind == "trained":
                stmt = stmt.where(labels.c.created_at > active.created_at)
            return int((await conn.execute(stmt)).scalar_one())
