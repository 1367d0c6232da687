"""Char n-gram TF-IDF + logistic regression: the text classifier behind intent and sentiment.

Chosen by measurement (docs/EVALUATION.md): on short colloquial Chinese it is as accurate as
sentence-embedding heads here, trains in seconds, and classifies >10k messages/s on one core.
"""
from __future__ import annotations

import hashlib
import json
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

ARTEFACT_VERSION = 2


@lru_cache(maxsize=1)
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


def prepare(text: str) -> str:
    """Full-width → half-width, traditional → simplified, lower case; symbols are kept (+1, x2)."""
    return _t2s().convert(unicodedata.normalize("NFKC", text)).lower()


@dataclass
class TextClassifier:
    pipeline: object
    labels: tuple[str, ...]
    meta: dict

    @classmethod
    def train(cls, texts: Sequence[str], labels: Sequence[str], weights: Sequence[float] | None = None,
              c: float = 8.0, n_features: int = 1 << 17, meta: dict | None = None) -> "TextClassifier":
        from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline

        # Hashing instead of a vocabulary: the artefact is numpy arrays only, so it loads in
        # milliseconds instead of unpickling a dict of 10^5 n-grams.
        pipe = Pipeline([
            ("hash", HashingVectorizer(analyzer="char_wb", ngram_range=(1, 3), n_features=n_features,
                                       alternate_sign=False, norm=None, preprocessor=prepare)),
            ("tfidf", TfidfTransformer(sublinear_tf=True)),
            ("lr", LogisticRegression(C=c, max_iter=2000, class_weight="balanced", random_state=0)),
        ])
        pipe.fit(list(texts), list(labels), lr__sample_weight=list(weights) if weights is not None else None)
        return cls(pipe, tuple(pipe.classes_), dict(meta or {}))

    def proba(self, texts: Sequence[str], hashed=None):
        """Class probabilities; `hashed`: the texts' n-gram counts already computed by a model that
        hashes the same way (see `hashing_key`), so two models on one batch hash it once."""
        if hashed is not None:
            return self.pipeline[1:].predict_proba(hashed)
        return self.pipeline.predict_proba(list(texts))

    def hash(self, texts: Sequence[str]):
        return self.pipeline[0].transform(list(texts))

    @property
    def hashing_key(self) -> tuple:
        """Equal keys: the two models turn a text into the same n-gram counts."""
        params = self.pipeline[0].get_params()
        return tuple(sorted((k, v if k != "preprocessor" else id(v)) for k, v in params.items()))

    def predict(self, texts: Sequence[str], hashed=None) -> list[tuple[str, float]]:
        if not texts:
            return []
        proba = self.proba(texts, hashed)
        best = proba.argmax(axis=1)
        return [(self.labels[i], float(proba[row, i])) for row, i in enumerate(best)]

    def save(self, path: Path) -> None:
        import joblib

        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        joblib.dump({"version": ARTEFACT_VERSION, "pipeline": self.pipeline, "labels": self.labels, "meta": self.meta}, tmp)
        tmp.replace(path)  # atomic: a concurrent loader never sees half a file
        path.with_suffix(".json").write_text(json.dumps({"labels": self.labels, **self.meta}, ensure_ascii=False, indent=1))

    @classmethod
    def load(cls, path: Path) -> "TextClassifier":
        import joblib

        obj = joblib.load(path)
        if obj.get("version") != ARTEFACT_VERSION:
            raise ValueError(f"{path}: artefact version {obj.get('version')} != {ARTEFACT_VERSION}")
        return cls(obj["pipeline"], tuple(obj["labels"]), obj["meta"])


def fingerprint(*parts: str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()[:16]


@dataclass
class CascadeClassifier:
    """Char n-gram model first; where it is unsure (top probability < `tau`), average its
    probabilities with a logistic-regression head on sentence embeddings. Measured on the
    held-out split this beats either model alone while encoding only the unsure share of messages."""

    char: TextClassifier
    dense: object | None          # sklearn LogisticRegression over encoder embeddings
    encoder_name: str
    tau: float
    meta: dict
    encoder: object | None = None  # attached at load; not pickled
    dense_weight: float = 0.5      # the dense head's share of the blend (1.0: dense only)

    @property
    def labels(self) -> tuple[str, ...]:
        return self.char.labels

    @classmethod
    def train(cls, texts: Sequence[str], labels: Sequence[str], encoder, weights: Sequence[float] | None = None,
              c_char: float = 8.0, c_dense: float = 10.0, tau: float = 0.5, meta: dict | None = None,
              dense_rows: Sequence[int] | None = None, head: str | None = "logreg",
              dense_weight: float = 0.5) -> "CascadeClassifier":
        """`dense_rows`: which rows train the dense head (default all) — e.g. only chat-style data.
        `head`: "logreg", "mlp" (nlp/heads.py) or None (char model only). `dense_weight`: the dense
        head's share where blended."""
        from sklearn.linear_model import LogisticRegression

        from nlp.heads import MlpHead

        char = TextClassifier.train(texts, labels, weights, c=c_char, meta=meta)
        if head is None:  # the char model alone: no sentence encodings to compute
            return cls(char, None, encoder.name, 0.0, dict(meta or {}), encoder, dense_weight)
        rows = list(range(len(texts))) if dense_rows is None else list(dense_rows)
        X = encoder.encode([prepare(texts[i]) for i in rows])
        y = [labels[i] for i in rows]
        w = None if weights is None else [weights[i] for i in rows]
        if head == "mlp":
            dense = MlpHead().fit(X, y, sample_weight=w)
        else:
            dense = LogisticRegression(C=c_dense, max_iter=3000, class_weight="balanced", random_state=0)
            dense.fit(X, y, sample_weight=w)
        if tuple(dense.classes_) != char.labels:
            raise ValueError("dense head and char model disagree on labels")
        return cls(char, dense, encoder.name, tau, dict(meta or {}), encoder, dense_weight)

    def predict_proba(self, texts: Sequence[str], hashed=None):
        import numpy as np

        p = self.char.proba(texts, hashed)
        if self.dense is None or self.encoder is None or self.tau <= 0:
            return p
        unsure = np.flatnonzero(p.max(axis=1) < self.tau)
        if len(unsure):
            emb = self.encoder.encode([prepare(texts[i]) for i in unsure])
            a = self.dense_weight
            p[unsure] = (1 - a) * p[unsure] + a * self.dense.predict_proba(emb)
        return p

    def choose_tau(self, texts: Sequence[str], labels: Sequence[str],
                   candidates: Sequence[float] = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.01)) -> float:
        """The cheapest threshold with the best macro-F1 on validation data (ties → fewer encodings)."""
        from sklearn.metrics import f1_score

        best, best_f1 = candidates[-1], -1.0
        for tau in candidates:
            self.tau = tau
            f1 = f1_score(list(labels), [lab for lab, _ in self.predict(texts)], average="macro")
            if f1 > best_f1 + 1e-9:
                best, best_f1 = tau, f1
        self.tau = best
        return best

    def predict(self, texts: Sequence[str], hashed=None) -> list[tuple[str, float]]:
        if not texts:
            return []
        p = self.predict_proba(texts, hashed)
        best = p.argmax(axis=1)
        return [(self.labels[i], float(p[row, i])) for row, i in enumerate(best)]

    def save(self, path: Path) -> None:
        import joblib

        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        joblib.dump({"version": ARTEFACT_VERSION, "kind": "cascade", "char_pipeline": self.char.pipeline,
                     "labels": self.labels, "dense": self.dense, "encoder_name": self.encoder_name,
                     "tau": self.tau, "meta": self.meta, "dense_weight": self.dense_weight}, tmp)
        tmp.replace(path)
        path.with_suffix(".json").write_text(json.dumps(
            {"labels": self.labels, "encoder": self.encoder_name, "tau": self.tau, **self.meta}, ensure_ascii=False, indent=1))

    @classmethod
    def load(cls, path: Path, encoder=None) -> "CascadeClassifier":
        import joblib

        obj = joblib.load(path)
        if obj.get("version") != ARTEFACT_VERSION or obj.get("kind") != "cascade":
            raise ValueError(f"{path}: not a cascade artefact of version {ARTEFACT_VERSION}")
        char = TextClassifier(obj["char_pipeline"], tuple(obj["labels"]), obj["meta"])
        if encoder is not None and encoder.name != obj["encoder_name"]:
            raise ValueError(f"{path}: trained with encoder {obj['encoder_name']!r}, got {encoder.name!r}")
        return cls(char, obj["dense"], obj["encoder_name"], obj["tau"], obj["meta"], encoder,
                   obj.get("dense_weight", 0.5))
