"""Runs the analyzer off the event loop.

With `processes > 0` a process pool does the CPU work and each worker loads the models once
(`_warm`, as in aiohttp-demos' imagetagger); with 0 a single thread does (tests, tiny installs).
Lexicon edits reach every worker because each `LexiconSet` watches the files' mtimes.
"""
from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from nlp.pipeline import AnalyzeItem, Analyzer
from nlp.sensitive import LexiconSet

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NlpConfig:
    models_dir: Path
    lexicon_dir: Path
    dense_heads: bool = True  # False: char n-gram models only (≈7x faster on long messages, a little less accurate)
    # Builds a missing or stale model: `train(task, encoder)` (training.trainers.train_model), and
    # the fingerprint of the data it trains from. A module-level function, so it pickles to pool workers.
    train: Callable | None = None
    data_fingerprint: str | None = None
    # The registry's artefacts and active pointer (nlp/active.py); None: the base models only.
    versions_dir: Path | None = None


def build_analyzer(cfg: NlpConfig, lexicons: LexiconSet | None = None) -> Analyzer:
    from nlp.active import TASKS, ActiveModels, base_version
    from nlp.encoders import UseEncoder
    from nlp.models import load_or_train, load_version

    encoder = UseEncoder(threads=1)
    bases = {t: base_version(t, cfg.data_fingerprint) for t in TASKS}

    def load(task: str, version: str):
        if version == bases[task]:
            model = load_or_train(cfg.models_dir, task, encoder, cfg.train, cfg.data_fingerprint)
        elif cfg.versions_dir is None:
            raise FileNotFoundError(f"no registry to load {version} from")
        else:
            model = load_version(cfg.versions_dir, task, version, encoder)
        if not cfg.dense_heads and task != "sensitive":
            model.tau = 0.0
        return model

    analyzer = Analyzer(lexicons or LexiconSet(cfg.lexicon_dir), *(load(t, bases[t]) for t in TASKS))
    analyzer.active = ActiveModels(cfg.versions_dir, load, bases)
    analyzer.refresh()
    return analyzer


# One analyzer per worker process, loaded by the pool initializer.
_WORKER_ANALYZER: Analyzer | None = None


# Analysis is background work (a backlog drains later); answering requests is not. The pool's
# processes run at a lower CPU priority so that, on a machine with few cores, an archive backlog
# being analysed takes only the CPU the web process leaves idle (issue 11, finding 7: relay
# sign-ups during an archive import). They still get every idle cycle.
POOL_NICENESS = 10


def _warm(cfg: NlpConfig) -> None:
    global _WORKER_ANALYZER
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        os.nice(POOL_NICENESS)
    except OSError:  # not permitted (some containers): run at normal priority
        pass
    _WORKER_ANALYZER = build_analyzer(cfg)


def _analyze_in_worker(items: list[tuple[str, str]]) -> list[dict]:
    assert _WORKER_ANALYZER is not None, "pool worker was not warmed"
    return _WORKER_ANALYZER.analyze([AnalyzeItem(t, r) for t, r in items])


class NlpService:
    def __init__(self, cfg: NlpConfig, processes: int = 1) -> None:
        self.cfg = cfg
        self.processes = processes
        self._executor: Executor | None = None
        self._local: Analyzer | None = None
        self.lexicons = LexiconSet(cfg.lexicon_dir)  # for admin reads/writes in this process

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        # Train missing models once here, so pool workers only ever load.
        # The local analyzer shares this process's LexiconSet, so an edit here applies at once;
        # pool workers notice the changed files within LexiconSet.CHECK_INTERVAL (1 s).
        self._local = await loop.run_in_executor(None, build_analyzer, self.cfg, self.lexicons)
        if self.processes > 0:
            import multiprocessing

            self._executor = ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("spawn"),
                                                 initializer=_warm, initargs=(self.cfg,))
            # Start the workers now rather than on the first request.
            await asyncio.gather(*(loop.run_in_executor(self._executor, _analyze_in_worker, [("你好", "customer")])
                                   for _ in range(self.processes)))
        else:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="nlp")

    async def stop(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    async def analyze(self, items: Sequence[AnalyzeItem]) -> list[dict]:
        if not items:
            return []
        loop = asyncio.get_running_loop()
        if self.processes > 0:
            return await loop.run_in_executor(self._executor, _analyze_in_worker, [(i.text, i.role) for i in items])
        assert self._local is not None
        return await loop.run_in_executor(self._executor, self._local.analyze, list(items))
