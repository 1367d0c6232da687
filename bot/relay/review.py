"""A second, learned reading of a relay message, after the rules (bot/relay/parse.py).

The rules read a message first. A linear model, trained on the writers' labelled threads, then
sees the message's character n-grams, the rules' answer, what the sender holds and whether they run
the relay; where it is confident the rules took the wrong action it overrides them. Members invent
sign-up forms faster than rules can list them ("我家两台车 一台我的一台我儿子的 都做"), and on
writers the rules never saw this corrects about one message in a hundred (docs/EVALUATION.md).

Cost: the character model answers most messages alone; only the ones it is unsure of (under a
tenth) are also embedded by the sentence encoder and read by a second model that adds the
embedding. The reviewer may add a sign-up the rules missed, drop one they misread, or drop a
cancellation. It cancels only under a stricter guard: the rules read the message as nothing, the
sender holds units and does not run the relay, and the model is sure (p > CANCEL_AT). A wrong
cancellation takes away a member's confirmed units, so a sign-up is never turned into one.
"""
from __future__ import annotations

import logging
import os
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from bot.relay.parse import NONE, NUM, UNIT, RelayIntent, _num

log = logging.getLogger(__name__)

ACTIONS = ("join", "cancel", "none")
# Chosen by leaving one writer out over the labelled threads (docs/EVALUATION.md, round 8): an
# override needs 0.6; the character model alone decides when it agrees with the rules at 0.9.
OVERRIDE_AT = 0.6
SURE_AT = 0.9
# A cancellation of its own needs more (round 9, decided on four writers the reviewer never saw:
# 7 of 1,513 messages fixed at 0.6, 4 at 0.7, no message wrongly cancelled at either).
CANCEL_AT = 0.7
# (rules, reviewer) → how sure the reviewer must be to override; a sign-up never becomes a cancellation.
_OVERRIDES = {("none", "join"): OVERRIDE_AT, ("join", "none"): OVERRIDE_AT, ("cancel", "none"): OVERRIDE_AT,
              ("none", "cancel"): CANCEL_AT}


@dataclass(frozen=True)
class Reading:
    """One message as the reviewer sees it: the text, the rules' answer (join/cancel/none), the
    units the sender held before it, and whether the sender runs the relay."""
    text: str
    rules: RelayIntent
    held: int = 0
    organiser: bool = False


# The canonical sign-up forms a flash sale is made of: the rules read them exactly, and skipping the
# reviewer for them keeps the `+1` path as fast as it was (docs/BENCHMARKS.md).
_CANONICAL = re.compile(r"^\s*(?:[+＋]\s*[0-9０-９]{1,3}|-\s*[0-9]{1,2}|接龙|接龍|取消|报名)\s*$")


def needs_review(text: str) -> bool:
    return not _CANONICAL.match(text)


def count_in(text: str) -> int:
    """The units a sign-up the rules did not read names: the first count with a unit ("两台",
    "3盒"), else a lone small number ("x2", "+3"), else one."""
    t = text.lower()
    m = re.search(NUM + UNIT, t)
    if m:
        n = _num(m.group(1))
    else:
        m = re.search(r"(?:[x×*+]|加)\s*(\d{1,2})\b", t)
        n = int(m.group(1)) if m else 1
    return n if 0 < n <= 99 else 1


def _context(r: Reading) -> list[float]:
    a = _action(r)
    f = [a == x for x in ACTIONS]
    f += [r.held > 0, r.organiser, float(np.log1p(max(r.rules.quantity, 0))), bool(re.search(r"\d", r.text)),
          len(r.text) < 6, "\n" in r.text]
    f += [a == x and r.held > 0 for x in ACTIONS] + [a == x and r.organiser for x in ACTIONS]
    return [3.0 * float(v) for v in f]  # on the scale of the n-gram weights


@dataclass
class RelayReviewer:
    vectorizer: object            # character 1-3-gram hashing + TF-IDF (sklearn Pipeline)
    char_model: object            # LogisticRegression over n-grams + context
    dense_model: object | None    # the same plus the sentence embedding, for the unsure messages
    encoder: object | None = None
    meta: dict = field(default_factory=dict)

    # --- training -------------------------------------------------------------------------
    @classmethod
    def fit(cls, readings: Sequence[Reading], actions: Sequence[str], encoder=None, c: float = 3.0,
            meta: dict | None = None) -> "RelayReviewer":
        from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline

        if set(actions) - set(ACTIONS):
            raise ValueError(f"unknown actions: {sorted(set(actions) - set(ACTIONS))}")
        # Hashing, not a vocabulary: the artefact is numpy arrays and loads in milliseconds
        # (a pickled vocabulary of 10^5 n-grams took 2.4 s, at every start and in every test).
        vec = Pipeline([("hash", HashingVectorizer(analyzer="char_wb", ngram_range=(1, 3), n_features=1 << 18,
                                                   alternate_sign=False, norm=None)),
                        ("tfidf", TfidfTransformer(sublinear_tf=True))])
        vec.fit([r.text for r in readings])
        y = np.array([ACTIONS.index(a) for a in actions])
        me = cls(vec, None, None, encoder, dict(meta or {}))
        me.char_model = LogisticRegression(C=c, max_iter=3000).fit(me._char_x(readings), y)
        if encoder is not None:
            me.dense_model = LogisticRegression(C=c, max_iter=3000).fit(
                me._dense_x(readings, me._embed(readings)), y)
        me.meta.update({"n_train": len(readings), "encoder": getattr(encoder, "name", None)})
        return me

    # --- reading ----------------------------------------------------------------------------
    def review(self, reading: Reading) -> RelayIntent:
        return self.review_many([reading])[0]

    def review_many(self, readings: Sequence[Reading]) -> list[RelayIntent]:
        """The answer for each reading: the rules' own, or the reviewer's where it overrides them."""
        if not readings:
            return []
        text = self._text_x([r.text for r in readings])
        context = np.array([_context(r) for r in readings], dtype=np.float64)
        probs = _proba(self._weights(self.char_model), text, context)
        unsure = [i for i, (r, p) in enumerate(zip(readings, probs))
                  if not (ACTIONS[int(p.argmax())] == _action(r) and p.max() >= SURE_AT)]
        if unsure and self.dense_model is not None and self.encoder is not None:
            part = [readings[i] for i in unsure]
            probs[unsure] = _proba(self._weights(self.dense_model), text[unsure], context[unsure], self._embed(part))
        return [self._decide(r, p) for r, p in zip(readings, probs)]

    @staticmethod
    def _decide(r: Reading, p: np.ndarray) -> RelayIntent:
        said, rules = ACTIONS[int(p.argmax())], _action(r)
        need = _OVERRIDES.get((rules, said))
        if need is None or p.max() <= need or (said == "cancel" and (r.held <= 0 or r.organiser)):
            return r.rules
        if said == "join":
            return RelayIntent("join", count_in(r.text))
        return RelayIntent("cancel", 0) if said == "cancel" else NONE

    def _weights(self, model) -> "_Weights":
        """The model's coefficients split by feature block, contiguous, made once per model."""
        cache = self.__dict__.setdefault("_split", {})
        if id(model) not in cache:
            cache[id(model)] = _Weights.of(model, self.vectorizer[1].idf_.shape[0], len(_context(Reading("", NONE))))
        return cache[id(model)]

    def _text_x(self, texts: list[str]):
        """The fitted TF-IDF of the texts' hashed n-grams, computed here: sklearn's transform and
        normalize validate their input at ~0.7 ms a call, more than the arithmetic of one message
        (the same numbers: tests/test_relay_review.py)."""
        from scipy import sparse
        from sklearn.utils import murmurhash3_32

        hashing, idf = self.vectorizer[0], self.vectorizer[1].idf_
        analyse = self.__dict__.get("_analyse") or self.__dict__.setdefault("_analyse", hashing.build_analyzer())
        size = hashing.n_features
        indptr, indices, data = [0], [], []
        for text in texts:
            counts: dict[int, int] = {}
            for gram in analyse(text):
                i = abs(murmurhash3_32(gram, seed=0)) % size  # as sklearn's FeatureHasher
                counts[i] = counts.get(i, 0) + 1
            cols = np.fromiter(counts, dtype=np.int64, count=len(counts))
            vals = (np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts))) + 1.0) * idf[cols]
            norm = float(np.sqrt(vals @ vals)) or 1.0
            indices.append(cols)
            data.append(vals / norm)
            indptr.append(indptr[-1] + len(cols))
        return sparse.csr_matrix((np.concatenate(data) if data else np.zeros(0), np.concatenate(indices) if indices
                                  else np.zeros(0, dtype=np.int64), np.array(indptr)), shape=(len(texts), size))

    def _char_x(self, readings: Sequence[Reading]):
        from scipy import sparse

        return sparse.hstack([self.vectorizer.transform([r.text for r in readings]),
                              sparse.csr_matrix(np.array([_context(r) for r in readings], dtype=np.float32))]).tocsr()

    def _dense_x(self, readings: Sequence[Reading], embedded: np.ndarray):
        from scipy import sparse

        return sparse.hstack([self._char_x(readings), sparse.csr_matrix(embedded)]).tocsr()

    def _embed(self, readings: Sequence[Reading]) -> np.ndarray:
        texts = [r.text[:200] for r in readings]
        return np.vstack([self.encoder.encode(texts[i:i + 256]) for i in range(0, len(texts), 256)])

    # --- storage ----------------------------------------------------------------------------
    def save(self, path: Path, fingerprint: str) -> None:
        import joblib

        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")  # two processes may train at once
        joblib.dump({"fingerprint": fingerprint, "vectorizer": self.vectorizer, "char": self.char_model,
                     "dense": self.dense_model, "meta": self.meta}, tmp)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path, encoder, fingerprint: str) -> "RelayReviewer | None":
        """The stored reviewer if it was trained on data with this fingerprint, else None."""
        import joblib

        saved = joblib.load(path)
        if saved.get("fingerprint") != fingerprint:
            return None
        if saved["dense"] is not None and saved["meta"].get("encoder") != getattr(encoder, "name", None):
            return None
        return cls(saved["vectorizer"], saved["char"], saved["dense"], encoder, saved["meta"])


@dataclass(frozen=True)
class _Weights:
    text: np.ndarray      # (n-gram columns, k), C order: a sparse row times it touches only its n-grams
    context: np.ndarray
    embedding: np.ndarray
    intercept: np.ndarray
    classes: np.ndarray

    @classmethod
    def of(cls, model, n_text: int, n_context: int) -> "_Weights":
        w = model.coef_
        return cls(np.ascontiguousarray(w[:, :n_text].T), np.ascontiguousarray(w[:, n_text:n_text + n_context].T),
                   np.ascontiguousarray(w[:, n_text + n_context:].T), model.intercept_, model.classes_)


def _proba(w: _Weights, text, context: np.ndarray, embedded: np.ndarray | None = None) -> np.ndarray:
    """A fitted LogisticRegression's predict_proba over [text | context | embedding] columns,
    without stacking the sparse matrix first; one column per action (ACTIONS order), zero for an
    action the training data never had."""
    scores = np.asarray(text @ w.text) + context @ w.context + w.intercept
    if embedded is not None:
        scores += np.asarray(embedded, dtype=np.float64) @ w.embedding
    if w.text.shape[1] == 1:  # two classes: sklearn's logistic on the second
        p = 1.0 / (1.0 + np.exp(-scores[:, 0]))
        probs = np.column_stack([1.0 - p, p])
    else:
        scores -= scores.max(axis=1, keepdims=True)
        e = np.exp(scores)
        probs = e / e.sum(axis=1, keepdims=True)
    out = np.zeros((probs.shape[0], len(ACTIONS)))
    out[:, w.classes] = probs
    return out


def _action(r: Reading) -> str:
    return r.rules.action if r.rules.action in ACTIONS else "none"


def load_or_train(path: Path, encoder, train: Callable[[object], RelayReviewer | None],
                  fingerprint: str) -> RelayReviewer | None:
    """The reviewer stored at `path` for this data and encoder, else `train(encoder)` (saved);
    None when there is nothing to train on (the rules then answer alone)."""
    if path.is_file():
        try:
            got = RelayReviewer.load(path, encoder, fingerprint)
            if got is not None:
                return got
            log.info("relay reviewer trained on other data or encoder; retraining")
        except Exception as exc:  # noqa: BLE001 - a broken artefact is retrained, not fatal
            log.warning("relay reviewer unreadable; retraining", extra={"error": repr(exc)})
    model = train(encoder)
    if model is not None:
        model.save(path, fingerprint)
    return model
