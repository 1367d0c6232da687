"""Character TF-IDF similarity between a customer message and the scripts, as an incremental inverted index."""
from __future__ import annotations

import math
import unicodedata
from collections import Counter, defaultdict
from functools import lru_cache
from typing import Iterable


@lru_cache(maxsize=1)
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


def char_grams(text: str) -> list[str]:
    """Characters and character bigrams of the normalised text (letters and digits only)."""
    t = _t2s().convert(unicodedata.normalize("NFKC", text)).lower()
    chars = [c for c in t if c.isalnum()]
    return chars + [a + b for a, b in zip(chars, chars[1:])]


class CharTfidfIndex:
    """Cosine similarity of character 1-2-gram TF-IDF vectors, as an incremental inverted index.

    Measured on blind customer queries (docs/EVALUATION.md) this finds the right script more often
    than BM25 over jieba words: colloquial messages segment badly, characters do not. Document
    norms depend on the IDF, so they are recomputed when the collection has grown or shrunk by
    a tenth since they were last computed."""

    def __init__(self) -> None:
        self.postings: dict[str, dict[int, float]] = defaultdict(dict)  # term → doc → 1 + log tf
        self.doc_terms: dict[int, list[str]] = {}
        self._norms: dict[int, float] = {}
        self._norm_n = 0

    def __len__(self) -> int:
        return len(self.doc_terms)

    def _idf(self, term: str) -> float:
        return math.log((1 + len(self.doc_terms)) / (1 + len(self.postings.get(term, ())))) + 1.0

    def add(self, doc_id: int, text: str) -> None:
        self.remove(doc_id)
        counts = Counter(char_grams(text))
        for term, tf in counts.items():
            self.postings[term][doc_id] = 1.0 + math.log(tf)
        self.doc_terms[doc_id] = list(counts)
        self._norms.pop(doc_id, None)

    def remove(self, doc_id: int) -> None:
        for term in self.doc_terms.pop(doc_id, ()):
            p = self.postings.get(term)
            if p is not None:
                p.pop(doc_id, None)
                if not p:
                    del self.postings[term]
        self._norms.pop(doc_id, None)

    def _norm(self, doc: int) -> float:
        n = len(self.doc_terms)
        if abs(n - self._norm_n) > max(10, self._norm_n // 10):
            self._norms.clear()
            self._norm_n = n
        v = self._norms.get(doc)
        if v is None:
            v = math.sqrt(sum((self.postings[t][doc] * self._idf(t)) ** 2 for t in self.doc_terms[doc])) or 1.0
            self._norms[doc] = v
        return v

    def search(self, query: str, k: int = 50, also: Iterable[int] = ()) -> list[tuple[int, float]]:
        """Top-k documents by cosine, plus the exact cosine of every document in `also` (the dense
        candidates). Grams that most documents share (的, 吗, 多少) are not walked: their posting
        lists are long and say little, so at 100k scripts the walk stays a few thousand steps; they
        still count in the exact scores."""
        n = len(self.doc_terms)
        if not n:
            return []
        q = Counter(char_grams(query))
        qw = {t: (1.0 + math.log(tf)) * self._idf(t) for t, tf in q.items()}
        qnorm = math.sqrt(sum(w * w for w in qw.values())) or 1.0
        cap = max(200, n // 50)
        partial: dict[int, float] = defaultdict(float)
        for t, w in qw.items():
            p = self.postings.get(t)
            if p and len(p) <= cap:
                idf = self._idf(t)
                for doc, dw in p.items():
                    partial[doc] += w * dw * idf
        pool = set(sorted(partial, key=partial.__getitem__, reverse=True)[:4 * k]) | {d for d in also if d in self.doc_terms}
        present = [(t, w, self._idf(t), self.postings[t]) for t, w in qw.items() if t in self.postings]
        out = []
        for doc in pool:
            score = sum(w * idf * p.get(doc, 0.0) for t, w, idf, p in present)
            if score > 0:
                out.append((doc, score / (qnorm * self._norm(doc))))
        out.sort(key=lambda x: -x[1])
        return out[:k]
