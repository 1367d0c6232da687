"""Which model version each task uses, and switching to it without a restart.

The registry (bot/learning/registry.py) is the truth; on every promotion it, and every process's
schedule, write `DATA_DIR/model_versions/active.json` ({task: version}). Each analyzer — in the
web process, a worker process or an NLP pool worker — looks at that file's mtime at most once a
second and loads a changed version before its next batch, so a promotion reaches every process
within seconds. A missing entry, or a `base` version, means the model built from the
repository's own data (nlp/models.py).
"""
from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)

TASKS = ("intent", "sentiment", "sensitive")
POINTER = "active.json"
CHECK_INTERVAL = 1.0


def base_version(task: str, data_fingerprint: str | None) -> str:
    return f"{task}-base-{(data_fingerprint or 'unknown')[:10]}"


def is_base(version: str) -> bool:
    return "-base-" in version


def version_path(versions_dir: Path, version: str) -> Path:
    return versions_dir / f"{version}.joblib"


def read_pointer(versions_dir: Path) -> dict[str, str]:
    try:
        data = json.loads((versions_dir / POINTER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if k in TASKS and isinstance(v, str)} if isinstance(data, dict) else {}


def write_pointer(versions_dir: Path, active: dict[str, str]) -> bool:
    """Atomically replace the pointer; False when it already said this (no mtime bump)."""
    active = {k: active[k] for k in sorted(active) if k in TASKS}
    if read_pointer(versions_dir) == active:
        return False
    versions_dir.mkdir(parents=True, exist_ok=True)
    tmp = versions_dir / f".{POINTER}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(active), encoding="utf-8")
    os.replace(tmp, versions_dir / POINTER)
    return True


class ActiveModels:
    """Keeps an analyzer's models at the pointer's versions. `load(task, version)` builds a model
    (the base one, or an artefact from the registry); a version that fails to load is logged and
    the current model kept, so a bad artefact never stops analysis."""

    def __init__(self, versions_dir: Path | None, load: Callable[[str, str], object],
                 current: dict[str, str], clock: Callable[[], float] = time.monotonic) -> None:
        self.versions_dir = versions_dir
        self.load = load
        self.current = dict(current)
        self._base = dict(current)
        self._clock = clock
        self._checked = float("-inf")
        self._mtime: float | None = None
        self._failed: set[str] = set()

    def changes(self) -> dict[str, object]:
        """{task: new model} for the tasks whose active version changed since the last call."""
        if self.versions_dir is None:
            return {}
        now = self._clock()
        if now - self._checked < CHECK_INTERVAL:
            return {}
        self._checked = now
        try:
            mtime = (self.versions_dir / POINTER).stat().st_mtime_ns
        except OSError:
            mtime = 0
        if mtime == self._mtime:
            return {}
        self._mtime = mtime
        wanted = {**self._base, **read_pointer(self.versions_dir)}
        out = {}
        for task, version in wanted.items():
            if version == self.current.get(task) or version in self._failed:
                continue
            try:
                out[task] = self.load(task, version)
            except Exception as exc:  # noqa: BLE001 - keep serving the current model
                self._failed.add(version)
                log.error("model version could not be loaded; keeping the current one",
                          extra={"task": task, "version": version, "error": repr(exc)})
                continue
            log.info("model version switched", extra={"task": task, "from": self.current.get(task), "to": version})
            self.current[task] = version
        return out
