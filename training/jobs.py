"""One training job, in its own process: `python -m training run-job ID` (started by
bot/learning/job_runner.py, or by hand).

It trains the task's shipped family on the repository's data plus the labels people stored
(less the gate's tenth), measures the candidate AND the version active now on the same gate set,
saves the artefact under DATA_DIR/model_versions and records a candidate version. Promotion later
compares those two measurements (bot/learning/registry.py).
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

log = logging.getLogger("copilot.training")

CODE_FILES = ("training/trainers.py", "training/gate.py", "nlp/classifier.py", "nlp/heads.py",
              "nlp/sensitive_model.py", "nlp/normalize.py")


def code_version() -> str:
    """The package version and a hash of the code that shapes a model."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        pkg = version("wecom-copilot")
    except PackageNotFoundError:
        pkg = "0"
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for name in CODE_FILES:
        p = root / name
        if p.is_file():
            h.update(p.read_bytes())
    return f"{pkg}+{h.hexdigest()[:10]}"


def new_version(task: str) -> str:
    return f"{task}-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def labels_hash(extra) -> str:
    h = hashlib.sha256()
    for text, label, _ in sorted(extra):
        h.update(f"{text}\0{label}\n".encode("utf-8"))
    return h.hexdigest()[:16]


def train(task: str, encoder, extra):
    from training.trainers import DEFAULT_FAMILY, train_family, train_sensitive

    if task == "sensitive":
        return train_sensitive(encoder, "char", extra)
    return train_family(task, DEFAULT_FAMILY[task], encoder, extra=extra)


def load_active(task: str, version: str | None, settings, encoder):
    from nlp.active import is_base
    from nlp.models import load_or_train, load_version
    from training.trainers import data_fingerprint, train_model

    if version is None or is_base(version):
        return load_or_train(settings.models_dir, task, encoder, train_model, data_fingerprint())
    return load_version(settings.versions_dir, task, version, encoder)


async def run_job(job_id: str, settings) -> str:
    from bot.learning.labels import LabelStore
    from bot.learning.registry import ModelRegistry
    from nlp.active import version_path
    from nlp.encoders import UseEncoder
    from nlp.sensitive import LexiconSet
    from storage.sql import open_database
    from training.gate import evaluate, gate_hash, gate_items
    from training.trainers import data_fingerprint

    async with open_database(settings.sql_url) as engine:
        registry = ModelRegistry(engine, settings.versions_dir, settings.gate_tolerance)
        job = await registry.job(job_id)
        if job is None:
            raise SystemExit(f"no training job {job_id}")
        task = job["task"]
        try:
            t0 = time.perf_counter()
            extra = [(l.text, l.label, l.source) for l in await LabelStore(engine).for_training(task)]
            active = (await registry.active()).get(task)
            encoder = UseEncoder(threads=1)
            model = train(task, encoder, extra)
            trained_s = time.perf_counter() - t0
            gate = gate_items(task, extra)
            lexicons = LexiconSet(settings.lexicon_dir) if task == "sensitive" else None
            candidate_gate = evaluate(task, model, gate, lexicons)
            baseline_gate = evaluate(task, load_active(task, active, settings, encoder), gate, lexicons)
            version = new_version(task)
            settings.versions_dir.mkdir(parents=True, exist_ok=True)
            model.save(version_path(settings.versions_dir, version))
            meta = model.meta
            n_labels_gate = sum(1 for src in (s for _, _, s in gate) if src.startswith("label:"))
            await registry.add_candidate(
                version, task, code_version(),
                params={"family": meta.get("family"), "tau": meta.get("tau")},
                data={"counts": meta.get("sources", {}), "n": meta.get("n_train"), "repo_data": data_fingerprint(),
                      "labels": len(extra), "labels_hash": labels_hash(extra),
                      "gate": {"n": len(gate), "from_labels": n_labels_gate, "hash": gate_hash(gate)}},
                metrics={"gate": candidate_gate, "baseline": {"version": active, "gate": baseline_gate},
                         "train_seconds": round(trained_s, 1)},
                job_id=job_id)
            await registry.finish(job_id, version=version)
            return version
        except Exception as exc:
            await registry.finish(job_id, error=f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}")
            raise


def main(job_id: str) -> int:
    from bot.settings import Settings

    settings = Settings.from_env()
    try:
        version = asyncio.run(run_job(job_id, settings))
    except SystemExit:
        raise
    except Exception:  # noqa: BLE001 - recorded on the job; the exit code tells the runner
        return 1
    print(version, flush=True)
    return 0
