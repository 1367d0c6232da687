"""A learned message-level check for each sensitive category, beside the lexicon.

The lexicon gives exact, explainable hits; this model catches what no lexicon word covers (a
threat in plain words, a diversion phrased a new way). It reads the normalised text (evasions
already undone), and fires for a category only above that category's threshold, which training
chooses so that clean chat and real shopping reviews are almost never flagged. Its hit carries
the span the decision rests on: the smallest run of words whose removal takes the score below
the threshold's half, found by occlusion (run only for messages that fire, so it costs nothing
on clean traffic).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from nlp.classifier import CascadeClassifier
from nlp.normalize import Normalized

# Advertising-law claims bind the brand's staff, not what a customer says.
ROLES_FOR = {"ad_law": ("staff",)}
# Below this many normalised characters a message is left to the lexicon ("你好" is not abuse).
MIN_CHARS = 4


@dataclass
class SensitiveModel:
    model: CascadeClassifier
    thresholds: dict[str, float] = field(default_factory=dict)

    @property
    def meta(self) -> dict:
        return self.model.meta

    def scores(self, normalized: Sequence[str]):
        return self.model.predict_proba(list(normalized))

    def hits(self, items: Sequence[tuple[Normalized, str]]) -> list[list[dict]]:
        """Per message: [{"category", "severity", "start", "end", "match", "rule"}] in ORIGINAL offsets."""
        if not items:
            return []
        labels = self.model.labels
        proba = self.scores([n.text or "." for n, _ in items])
        out: list[list[dict]] = []
        for (n, role), p in zip(items, proba):
            found = []
            if len(n.text) < MIN_CHARS:
                out.append(found)
                continue
            for j, cat in enumerate(labels):
                thr = self.thresholds.get(cat)
                if thr is None or p[j] < thr or (cat in ROLES_FOR and role not in ROLES_FOR[cat]):
                    continue
                s, e = self._span(n, j, thr)
                found.append({"category": cat, "severity": "high" if p[j] >= (1 + thr) / 2 else "medium",
                              "start": s, "end": e, "match": n.original[s:e], "rule": f"model:{cat}"})
            out.append(found)
        return out

    def _span(self, n: Normalized, j: int, thr: float) -> tuple[int, int]:
        import jieba

        text = n.text
        tokens = [(a, b) for _w, a, b in jieba.tokenize(text, HMM=False)]
        if len(tokens) <= 1:
            return n.span(0, len(text))
        variants = [text[:a] + text[b:] for a, b in tokens]
        base = self.scores([text])[0][j]
        drops = [base - p[j] for p in self.scores(variants)]
        best = max(drops)
        if best <= 0:
            return n.span(0, len(text))
        keep = [k for k, d in enumerate(drops) if d >= best / 2]
        return n.span(tokens[keep[0]][0], tokens[keep[-1]][1])

    def save(self, path: Path) -> None:
        self.model.meta["thresholds"] = self.thresholds
        self.model.save(path)

    @classmethod
    def load(cls, path: Path, encoder=None) -> "SensitiveModel":
        model = CascadeClassifier.load(path, encoder)
        return cls(model, dict(model.meta.get("thresholds", {})))
