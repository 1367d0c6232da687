"""Retrieval evaluation: recall@1/@3 and MRR for dense, lexical and hybrid ranking on the
held-out paraphrased queries, and the fusion grid search on the training queries."""
from __future__ import annotations

import asyncio
import itertools
import json
import tempfile
from pathlib import Path

from training.datasets import DATA


def load_retrieval_set() -> tuple[list[dict], list[tuple[str, str, str]]]:
    scripts = [json.loads(l) for l in (DATA / "retrieval_scripts.jsonl").read_text(encoding="utf-8").splitlines() if l.strip()]
    queries, counters = [], {}
    for line in (DATA / "retrieval_queries.tsv").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        sid, q = line.split("\t", 1)
        k = counters.get(sid, 0)
        counters[sid] = k + 1
        queries.append((sid, q, "test" if k % 4 == 3 else "train"))  # every 4th paraphrase held out
    return scripts, queries


def metrics(ranked: list[list[str]], gold: list[str]) -> dict:
    r1 = sum(1 for r, g in zip(ranked, gold) if r[:1] == [g]) / len(gold)
    r3 = sum(1 for r, g in zip(ranked, gold) if g in r[:3]) / len(gold)
    mrr = sum(1 / (r.index(g) + 1) if g in r else 0 for r, g in zip(ranked, gold)) / len(gold)
    return {"recall@1": r1, "recall@3": r3, "mrr": mrr, "n": len(gold)}


async def knowledge_base_of(scripts: list[dict], encoder_name: str, fn, ranking="shipped"):
    """Run `fn(kb)` on a throw-away knowledge base (embedded Redis, SQLite) holding `scripts`, ranked as
    the service ranks (the shipped learned weights for this encoder) unless `ranking` is given."""
    from knowledge.ranking import ranking_for
    from storage.redis_store import open_redis
    from storage.sql import open_database
    from knowledge.base import KnowledgeBase
    from knowledge.scripts import ScriptInput, ScriptStore
    from nlp.encoders import make_encoder

    with tempfile.TemporaryDirectory() as d:
        async with open_redis(None, Path(d)) as redis, open_database(f"sqlite+aiosqlite:///{d}/kb.db") as engine:
            kb = KnowledgeBase(ScriptStore(engine), redis, make_encoder(encoder_name), Path(d), None,
                               ranking=ranking_for(encoder_name) if ranking == "shipped" else ranking)
            await kb.start()
            await kb.upsert([ScriptInput(**s) for s in scripts])
            return await fn(kb)


async def _with_kb(encoder_name: str, fn):
    from storage.redis_store import open_redis
    from storage.sql import open_database
    from knowledge.base import KnowledgeBase
    from knowledge.scripts import ScriptInput, ScriptStore
    from nlp.encoders import make_encoder

    with tempfile.TemporaryDirectory() as d:
        async with open_redis(None, Path(d)) as redis, open_database(f"sqlite+aiosqlite:///{d}/kb.db") as engine:
            kb = KnowledgeBase(ScriptStore(engine), redis, make_encoder(encoder_name), Path(d), None)
            await kb.start()
            scripts, _ = load_retrieval_set()
            await kb.upsert([ScriptInput(**s) for s in scripts])
            return await fn(kb)


def evaluate_retrieval(encoder_name: str = "use-multilingual") -> dict:
    from knowledge.base import Fusion

    scripts, queries = load_retrieval_set()

    async def run(kb):
        out = {}
        for split in ("train", "test"):
            qs = [q for q in queries if q[2] == split]
            for mode in ("dense", "lexical", "hybrid"):
                ranked = []
                for sid, q, _ in qs:
                    ranked.append([s.script.id for s in await kb.suggest(q, k=10, mode=mode)])
                out[f"{split}/{mode}"] = metrics(ranked, [sid for sid, _, _ in qs])
        # Fusion grid on the TRAINING queries only.
        train = [q for q in queries if q[2] == "train"]
        grid = []
        for lex, prior in itertools.product((0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5), (0.0, 0.05)):
            kb.fusion = Fusion(dense=1.0, lexical=lex, prior=prior, min_score=0.0)
            ranked = [[s.script.id for s in await kb.suggest(q, k=10)] for _, q, _ in train]
            m = metrics(ranked, [sid for sid, _, _ in train])
            grid.append(((m["mrr"], m["recall@3"]), lex, prior))
        grid.sort(reverse=True)
        out["grid_best"] = {"lexical": grid[0][1], "prior": grid[0][2], "train_mrr": grid[0][0][0]}
        return out

    report = asyncio.run(_with_kb(encoder_name, run))
    report["n_scripts"] = len(scripts)
    report["n_queries"] = len(queries)
    return report


def render(r: dict) -> str:
    lines = [f"{r['n_scripts']} scripts, {r['n_queries']} paraphrased queries (every 4th per script held out)", "",
             "| split | ranking | recall@1 | recall@3 | MRR | n |", "|---|---|---:|---:|---:|---:|"]
    for key, m in r.items():
        if "/" in key:
            split, mode = key.split("/")
            lines.append(f"| {split} | {mode} | {m['recall@1']:.3f} | {m['recall@3']:.3f} | {m['mrr']:.3f} | {m['n']} |")
    g = r["grid_best"]
    lines.append(f"\nFusion grid (training queries only): best lexical weight {g['lexical']}, prior {g['prior']} "
                 f"(train MRR {g['train_mrr']:.3f})")
    return "\n".join(lines)
