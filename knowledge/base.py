"""The knowledge base: scripts in SQL, their vectors in FAISS, their words in BM25, kept in step
across processes through a Redis change log, and hybrid ranking for suggestions."""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import redis.asyncio as aioredis

from knowledge.index import VectorIndex
from knowledge.lexical import CharTfidfIndex
from knowledge.ranking import CHIT_CHAT_INTENTS, LearnedRanking, rank_features, silence_features
from knowledge.scripts import MAX_ALTERNATIVES, Script, ScriptInput, ScriptStore, script_views, vector_id_for
from nlp.dialect import standardise

log = logging.getLogger(__name__)

CHANGES_KEY = "copilot:kb:changes"
MAX_VIEWS = 3 + MAX_ALTERNATIVES  # question, question+scenario+reply, reply, alternatives
VIEWS_PER_CANDIDATE = 4  # search this many views per wanted script (several views of one script rank close)
CHANGES_MAXLEN = 100_000


@dataclass(frozen=True)
class Fusion:
    """Hand-set hybrid score = dense·(cosine of the best view) + lexical·(character TF-IDF cosine) +
    prior·(adoption − ½), used when no learned ranking matches the encoder (knowledge/ranking.py).
    Weights chosen on a spent blind query set (docs/EVALUATION.md)."""

    dense: float = 1.0
    lexical: float = 1.0
    prior: float = 0.05
    candidates: int = 50
    # When the best hybrid score is below this, nothing is suggested. Chosen on a spent blind set
    # (docs/EVALUATION.md): 0.45 still answers ~95 % of real questions; messages the intent model
    # calls greeting/other (寒暄, thanks, off-topic) must clear a higher bar, which silences most chit-chat.
    min_score: float = 0.45
    chit_chat_min_score: float = 0.75


@dataclass(frozen=True)
class Suggestion:
    script: Script
    score: float
    dense: float
    lexical: float

    def to_json(self) -> dict:
        return {"script_id": self.script.id, "question": self.script.question, "reply": self.script.reply,
                "score": round(self.score, 4), "tags": list(self.script.tags)}


def adoption_prior(stats: dict) -> float:
    """Smoothed adoption rate in [0, 1]; 0.5 with no evidence."""
    adopted, rejected = stats.get("adopted", 0), stats.get("rejected", 0)
    return (adopted + 1) / (adopted + rejected + 2)


class KnowledgeBase:
    def __init__(self, store: ScriptStore, redis: aioredis.Redis, encoder, data_dir: Path, executor: Executor | None,
                 reply_is_unsafe: Callable[[str], bool] = lambda _t: False, fusion: Fusion = Fusion(),
                 ranking: LearnedRanking | None = None) -> None:
        self.store = store
        self.redis = redis
        self.encoder = encoder
        self.dir = data_dir / "knowledge"
        self.executor = executor
        self.reply_is_unsafe = reply_is_unsafe
        self.fusion = fusion
        self.ranking = ranking
        self.index = VectorIndex(encoder.dim, encoder.name)
        self.lexical = CharTfidfIndex()
        self.by_vid: dict[int, Script] = {}
        self._last_change = "0-0"
        self._lock = asyncio.Lock()
        self._save_task: asyncio.Task | None = None

    # --- loading ------------------------------------------------------------------------------
    async def _run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def encode(self, texts: Sequence[str]) -> np.ndarray:
        return await self._run(self.encoder.encode, list(texts))

    async def encode_views(self, items: Sequence[Script | ScriptInput]) -> list[np.ndarray]:
        """One stacked (views × dim) matrix per script, from one batched encoding."""
        views = [script_views(it.question, it.scenario, it.reply, it.alternatives) for it in items]
        flat = await self.encode([v for vs in views for v in vs])
        out, i = [], 0
        for vs in views:
            out.append(flat[i:i + len(vs)])
            i += len(vs)
        return out

    @staticmethod
    def content_checksum(items: Sequence[Script]) -> str:
        h = hashlib.sha256(b"views-v1")  # an index saved before multi-view is never reused
        for s in sorted(items, key=lambda s: s.vector_id):
            h.update(f"{s.vector_id}:{s.updated_at.timestamp() if s.updated_at else 0}:{len(s.views())}\n".encode())
        return h.hexdigest()[:16]

    async def start(self) -> None:
        last = await self.redis.xrevrange(CHANGES_KEY, count=1)
        self._last_change = last[0][0].decode() if last else "0-0"
        await self.reload()

    async def reload(self) -> None:
        """Load everything from SQL; use the saved FAISS index when it matches, else rebuild it
        (re-encoding scripts that have no vector for the configured model)."""
        items = await self.store.all()
        vectors = self._views_of(await self.store.vectors(self.encoder.name))
        # No vector for this model, or vectors of other views (a store from before multi-view).
        missing = [s for s in items if s.id not in vectors or len(vectors[s.id]) != len(s.views())]
        if missing:
            log.info("encoding scripts without vectors for this model", extra={"count": len(missing),
                                                                              "model": self.encoder.name})
            enc = await self.encode_views(missing)
            await self.store.upsert_many([_as_input(s) for s in missing], enc, self.encoder.name)
            items = await self.store.all()
            vectors = self._views_of(await self.store.vectors(self.encoder.name))
        checksum = self.content_checksum(items)
        index = await self._run(VectorIndex.load, self.dir, self.encoder.name, self.encoder.dim, checksum)
        if index is None:
            index = VectorIndex(self.encoder.dim, self.encoder.name)
            if items:
                ids = np.concatenate([view_ids(s.vector_id, len(vectors[s.id])) for s in items])
                mat = np.concatenate([vectors[s.id] for s in items])
                await self._run(index.build, ids, mat)
            await self._run(index.save, self.dir, checksum)
            log.info("knowledge index rebuilt", extra={"scripts": len(items), "kind": index.kind})
        lexical = CharTfidfIndex()
        for s in items:
            lexical.add(s.vector_id, s.index_text())
        self.index, self.lexical = index, lexical
        self.by_vid = {s.vector_id: s for s in items}
        self.by_view = {int(v): s.vector_id for s in items for v in view_ids(s.vector_id, len(vectors[s.id]))}

    # --- keeping processes in step ---------------------------------------------------------
    async def _publish(self, op: str, ids: Sequence[str]) -> None:
        entry = await self.redis.xadd(CHANGES_KEY, {"op": op, "ids": json.dumps(list(ids))},
                                      maxlen=CHANGES_MAXLEN, approximate=True)
        # Our own change is already applied here.
        self._last_change = entry.decode()

    async def sync(self) -> None:
        """Apply changes other processes made since we last looked (one cheap XRANGE when none)."""
        entries = await self.redis.xrange(CHANGES_KEY, min=f"({self._last_change}", count=10_000)
        if not entries:
            return
        oldest = await self.redis.xrange(CHANGES_KEY, count=1)
        async with self._lock:
            behind = oldest and self._last_change != "0-0" and _id_lt(self._last_change, oldest[0][0].decode())
            if behind or any(fields[b"op"] == b"reload" for _e, fields in entries):
                await self.reload()  # fell behind the trimmed log, or the model changed: start over from SQL
            else:
                upserts, deletes = set(), set()
                for _eid, fields in entries:
                    ids = json.loads(fields[b"ids"])
                    (deletes if fields[b"op"] == b"delete" else upserts).update(ids)
                    if fields[b"op"] == b"delete":
                        upserts.difference_update(ids)
                    else:
                        deletes.difference_update(ids)
                fresh = await self.store.get_many(sorted(upserts))
                vecs = self._views_of(await self.store.vectors(self.encoder.name, [s.id for s in fresh]))
                self._apply([s for s in fresh if s.id in vecs], vecs, sorted(deletes))
            self._last_change = entries[-1][0].decode()

    def _views_of(self, flat: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {sid: v.reshape(-1, self.encoder.dim) for sid, v in flat.items()}

    def _drop_views(self, vid: int) -> None:
        old = [v for v in view_ids(vid, MAX_VIEWS) if int(v) in self.by_view]
        if old:
            self.index.remove(np.array(old, dtype=np.int64))
            for v in old:
                del self.by_view[int(v)]

    def _apply(self, scripts_: Sequence[Script], vectors: dict[str, np.ndarray], deleted: Sequence[str]) -> None:
        for sid in deleted:
            vid = vector_id_for(sid)
            if vid in self.by_vid:
                self._drop_views(vid)
                self.lexical.remove(vid)
                del self.by_vid[vid]
        if scripts_:
            for s in scripts_:
                self._drop_views(s.vector_id)  # an edit may have fewer views than before
            ids = np.concatenate([view_ids(s.vector_id, len(vectors[s.id])) for s in scripts_])
            self.index.upsert(ids, np.concatenate([vectors[s.id] for s in scripts_]))
            for s in scripts_:
                self.lexical.add(s.vector_id, s.index_text())
                self.by_vid[s.vector_id] = s
                self.by_view.update({int(v): s.vector_id for v in view_ids(s.vector_id, len(vectors[s.id]))})
        self._schedule_save()

    def _schedule_save(self, delay: float = 2.0) -> None:
        """Persist the index a moment after changes settle (not once per change)."""
        if self._save_task is not None and not self._save_task.done():
            return

        async def later():
            await asyncio.sleep(delay)
            await self.save()

        self._save_task = asyncio.ensure_future(later())

    async def save(self) -> None:
        checksum = self.content_checksum(list(self.by_vid.values()))
        await self._run(self.index.save, self.dir, checksum)

    async def stop(self) -> None:
        if self._save_task is not None and not self._save_task.done():
            self._save_task.cancel()
            await self.save()

    # --- writing ------------------------------------------------------------------------------
    async def upsert(self, items: Sequence[ScriptInput]) -> tuple[list[Script], int]:
        """Store, index and announce; searchable here when this returns, elsewhere on their next sync."""
        if not items:
            return [], 0
        vectors = await self.encode_views(items)
        stored, created, ids = await self.store.upsert_many(items, vectors, self.encoder.name)
        vecs: dict[str, np.ndarray] = {}
        for sid, v in zip(ids, vectors):
            vecs.setdefault(sid, v)
        async with self._lock:
            self._apply(stored, vecs, [])
        await self._publish("upsert", [s.id for s in stored])
        return stored, created

    async def delete(self, script_id: str) -> bool:
        ok = await self.store.delete(script_id)
        if ok:
            async with self._lock:
                self._apply([], {}, [script_id])
            await self._publish("delete", [script_id])
        return ok

    async def reembed(self) -> int:
        """Re-encode every script with the configured model and rebuild the index."""
        items = await self.store.all()
        if items:
            vectors = await self.encode_views(items)
            await self.store.upsert_many([_as_input(s) for s in items], vectors, self.encoder.name)
        async with self._lock:
            await self.reload()
        await self._publish("reload", [])
        return len(items)

    # --- reading ------------------------------------------------------------------------------
    async def suggest(self, text: str, k: int = 3, tags: Sequence[str] = (), include_drafts: bool = False,
                      mode: str = "hybrid", intent: str | None = None, intent_score: float = 1.0) -> list[Suggestion]:
        """`intent`, `intent_score`: the message's intent when known; chit-chat needs a closer match."""
        await self.sync()
        if not self.by_vid:
            return []
        text = standardise(text)  # 几钿 → 多少钱: matched as the scripts are written
        query = (await self.encode([text]))[0] if mode != "lexical" else None
        return await self._run(self._rank, text, query, k, tuple(tags), include_drafts, mode, (intent, intent_score))

    async def suggest_many(self, texts: Sequence[str], k: int = 3,
                           intents: Sequence[tuple[str, float]] | None = None) -> list[list[Suggestion]]:
        """Suggestions for several messages with one batched encoding (the pipeline's path)."""
        await self.sync()
        if not self.by_vid or not texts:
            return [[] for _ in texts]
        texts = [standardise(t) for t in texts]
        queries = await self.encode(texts)
        intents = list(intents) if intents is not None else [(None, 1.0)] * len(texts)

        def rank_all():
            return [self._rank(t, q, k, (), False, "hybrid", it) for t, q, it in zip(texts, queries, intents)]

        return await self._run(rank_all)

    def candidate_scores(self, text: str, query: np.ndarray | None, n: int,
                         mode: str = "hybrid") -> tuple[dict[int, float], dict[int, float], dict[int, float]]:
        """Candidates by vector id: the cosine of each one's best view, its character TF-IDF cosine,
        and the cosine of its second-best view among those searched (the features the learned
        ranking is trained on, training/retrieval_model.py)."""
        dense: dict[int, float] = {}
        second: dict[int, float] = {}
        if query is not None:
            # Views are searched (best first); a script scores by its best view.
            for view, score in self.index.search(query, n * VIEWS_PER_CANDIDATE):
                vid = self.by_view.get(int(view))
                if vid is None:
                    continue
                if vid not in dense:
                    dense[vid] = score
                elif vid not in second:
                    second[vid] = score
        lexical = dict(self.lexical.search(text, n, also=dense)) if mode != "dense" else {}
        return dense, lexical, second

    def _rank(self, text: str, query: np.ndarray | None, k: int, tags: tuple[str, ...], include_drafts: bool,
              mode: str, intent: tuple[str | None, float] = (None, 1.0)) -> list[Suggestion]:
        f = self.fusion
        learned = self.ranking if mode == "hybrid" else None
        dense, lexical, second = self.candidate_scores(text, query, f.candidates if not tags else max(f.candidates, 200),
                                                       mode)
        best_d = max(dense.values(), default=0.0)
        best_2 = max(second.values(), default=0.0)
        best_lx = max(lexical.values(), default=0.0)
        out: list[Suggestion] = []
        for vid in set(dense) | set(lexical):
            s = self.by_vid.get(vid)
            if s is None or (s.status != "approved" and not include_drafts):
                continue
            if tags and not set(tags) & set(s.tags):
                continue
            d = dense.get(vid, 0.0)
            lx = lexical.get(vid, 0.0)
            if mode == "dense":
                score = d
            elif mode == "lexical":
                score = lx
            elif learned is not None:
                # The prior keeps its size relative to the dense cosine it had in the hand-set fusion.
                score = learned.score(rank_features(d, lx, best_d, best_lx, second.get(vid, 0.0), best_2)) + \
                    f.prior * learned.dense_slope * (adoption_prior(s.stats) - 0.5)
            else:
                score = f.dense * d + f.lexical * lx + f.prior * (adoption_prior(s.stats) - 0.5)
            out.append(Suggestion(s, score, d, lx))
        out.sort(key=lambda x: -x.score)
        result = []
        if mode == "hybrid" and out and self._silent(text, out, best_d, best_lx, intent):
            return []  # nothing relevant enough: an off-topic message gets no suggestion
        for sug in out:
            if self.reply_is_unsafe(sug.script.reply):
                continue  # never suggest a reply with a sensitive hit
            if learned is not None:  # answer a probability-like confidence rather than a logit
                sug = Suggestion(sug.script, 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, sug.score)))), sug.dense,
                                 sug.lexical)
            result.append(sug)
            if len(result) == k:
                break
        return result


    def _silent(self, text: str, ranked: list[Suggestion], best_d: float, best_lx: float,
                intent: tuple[str | None, float]) -> bool:
        label, score = intent
        if self.ranking is None:
            floor = self.fusion.chit_chat_min_score if label in CHIT_CHAT_INTENTS else self.fusion.min_score
            return ranked[0].score < floor
        top = ranked[0]
        margin = top.score - ranked[1].score if len(ranked) > 1 else 10.0
        return self.ranking.silent(silence_features(top.dense, top.lexical, best_d, best_lx, label, score,
                                                    len(text), margin))


def view_ids(vector_id: int, n: int) -> np.ndarray:
    """FAISS ids of a script's first `n` views: its id's low 56 bits, then the view number."""
    base = (vector_id & ((1 << 56) - 1)) << 6
    return np.arange(base, base + n, dtype=np.int64)


def _as_input(s: Script) -> ScriptInput:
    return ScriptInput(id=s.id, question=s.question, reply=s.reply, scenario=s.scenario, tags=s.tags,
                       source=s.source, status=s.status, alternatives=s.alternatives)


def _id_lt(a: str, b: str) -> bool:
    ams, aseq = (int(x) for x in a.split("-"))
    bms, bseq = (int(x) for x in b.split("-"))
    return (ams, aseq) < (bms, bseq)
