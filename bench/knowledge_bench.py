"""Knowledge-base benchmark: suggestion latency at 100,000 scripts (query encoding included),
FAISS exact vs approximate vs brute-force numpy, and importing 10,000 scripts with encoding.

    python bench/knowledge_bench.py [--scripts 100000] [--import 10000]

The 100k base: the 45 real scripts of the retrieval set plus synthetic scripts whose vectors are
mixtures of real embeddings and noise (encoding 100k texts would only time the encoder). Uses the
embedded stores in a temporary directory. Prints Markdown tables.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] * 1000


async def main(n_scripts: int, n_import: int) -> None:
    import numpy as np

    from storage.redis_store import open_redis
    from storage.sql import open_database
    from knowledge.base import KnowledgeBase
    from knowledge.index import VectorIndex
    from knowledge.scripts import ScriptInput, ScriptStore
    from nlp.encoders import UseEncoder
    from training.retrieval import load_retrieval_set

    scripts, queries = load_retrieval_set()
    enc = UseEncoder(threads=1)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as d:
        async with open_redis(None, Path(d)) as redis, open_database(f"sqlite+aiosqlite:///{d}/kb.db") as engine:
            store = ScriptStore(engine)
            kb = KnowledgeBase(store, redis, enc, Path(d), None)
            await kb.start()

            # 1. import with encoding
            words = ["面霜", "精华", "口红", "大衣", "月饼", "大闸蟹", "防晒", "积分", "快递", "门店", "退货", "会员"]
            items = [ScriptInput(id=f"imp{i}", question=f"{rng.choice(words)}{rng.choice(['多少钱', '怎么用', '能退吗', '几天到', '有货吗'])}{i % 97}",
                                 reply=f"回复{i}", tags=[str(rng.choice(words))]) for i in range(n_import)]
            t0 = time.perf_counter()
            for start in range(0, n_import, 2000):
                await kb.upsert(items[start:start + 2000])
            import_s = time.perf_counter() - t0

            # 2. grow to n_scripts with synthetic vectors (stored like real ones)
            real = enc.encode([s["question"] for s in scripts])
            await kb.upsert([ScriptInput(**s) for s in scripts])
            rest = n_scripts - len(kb.by_vid)
            batch = 5000
            for start in range(0, rest, batch):
                m = min(batch, rest - start)
                # Three views per script, as real scripts have (question, question+scenario+reply, reply).
                mix = real[rng.integers(0, len(real), (m, 3))] * 0.6 + rng.normal(size=(m, 3, enc.dim)).astype("float32") * 0.04
                mix /= np.linalg.norm(mix, axis=2, keepdims=True)
                syn = [ScriptInput(id=f"syn{start + j}", question=f"合成问题{start + j}", reply=f"合成回复{start + j}")
                       for j in range(m)]
                await store.upsert_many(syn, list(mix), enc.name)
            t0 = time.perf_counter()
            await kb.reload()
            reload_s = time.perf_counter() - t0
            kind = kb.index.kind

            # 3. latency of suggest (encode + ANN + BM25 + fusion + safety filter)
            qs = [q for _sid, q, _ in queries]
            for q in qs[:20]:
                await kb.suggest(q)
            lat, hits = [], 0
            for sid, q, _ in queries:
                t0 = time.perf_counter()
                res = await kb.suggest(q, k=3)
                lat.append(time.perf_counter() - t0)
                hits += sid in [r.script.id for r in res]

            # 4. search alone: exact FAISS, IVF, brute numpy, on the same vectors
            vecs = await store.vectors(enc.name)
            mat = np.concatenate([v.reshape(-1, enc.dim) for v in vecs.values()])  # every view
            ids = np.arange(len(mat), dtype=np.int64)
            qv = enc.encode(qs)
            exact = VectorIndex(enc.dim, "x")
            exact.build(ids, mat, approx=False)
            approx = VectorIndex(enc.dim, "x")
            approx.build(ids, mat, approx=True)

            def timed(fn):
                out = []
                for v in qv:
                    t0 = time.perf_counter()
                    fn(v)
                    out.append(time.perf_counter() - t0)
                return out

            t_exact = timed(lambda v: exact.search(v, 10))
            t_ivf = timed(lambda v: approx.search(v, 10))
            t_np = timed(lambda v: np.argpartition(-(mat @ v), 10)[:10])
            overlap = np.mean([len({i for i, _ in exact.search(v, 10)} & {i for i, _ in approx.search(v, 10)}) / 10 for v in qv])
            t_enc = timed(lambda v: None)
            enc_lat = []
            for q in qs[:100]:
                t0 = time.perf_counter()
                enc.encode([q])
                enc_lat.append(time.perf_counter() - t0)

    print(f"\n{n_scripts:,} scripts, {len(mat):,} view vectors ({kind} index), {len(queries)} queries, one thread\n")
    print("| step | p50 ms | p95 ms |")
    print("|---|---:|---:|")
    print(f"| suggest() end to end (encode + ANN over views + char TF-IDF + fusion + filter) | {pct(lat, .5):.1f} | {pct(lat, .95):.1f} |")
    print(f"| query encoding alone (USE) | {pct(enc_lat, .5):.1f} | {pct(enc_lat, .95):.1f} |")
    print(f"| FAISS exact (IndexFlatIP), top-10 | {pct(t_exact, .5):.2f} | {pct(t_exact, .95):.2f} |")
    print(f"| FAISS IVF (nprobe {approx.nprobe}), top-10 | {pct(t_ivf, .5):.2f} | {pct(t_ivf, .95):.2f} |")
    print(f"| brute-force numpy (matrix · query + argpartition), top-10 | {pct(t_np, .5):.2f} | {pct(t_np, .95):.2f} |")
    print(f"\nIVF top-10 overlap with exact: {overlap:.3f}; recall@3 of the 45 real scripts among {n_scripts:,}: "
          f"{hits / len(queries):.3f}")
    print(f"Import of {n_import:,} scripts with encoding: {import_s:.1f} s ({n_import / import_s:,.0f}/s); "
          f"full reload of {n_scripts:,} from SQL incl. index build: {reload_s:.1f} s")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--scripts", type=int, default=100_000)
    p.add_argument("--import", dest="n_import", type=int, default=10_000)
    a = p.parse_args()
    asyncio.run(main(a.scripts, a.n_import))
