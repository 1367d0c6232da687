"""Batch in → results out: normalisation, sensitive words, intent, sentiment, and the flag rule.

Pure CPU code with no I/O besides loading; callers run it in an executor (see nlp/service.py)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from nlp.classifier import TextClassifier
from nlp.normalize import normalize
from nlp.sensitive import LexiconSet

ROLES = ("customer", "staff")


@dataclass(frozen=True)
class AnalyzeItem:
    text: str
    role: str = "customer"


def is_flagged(role: str, hits: list[dict], intent: str, sentiment: str) -> bool:
    """The message needs a human look: any high-severity hit; staff moving a customer off-channel
    or making advertising-law claims; customer abuse; a customer complaint in a negative mood."""
    for h in hits:
        if h["severity"] == "high":
            return True
        if role == "staff" and h["category"] in ("ad_law", "diversion"):
            return True
        if role == "customer" and h["category"] == "abuse":
            return True
    return role == "customer" and intent == "complaint" and sentiment == "negative"


class Analyzer:
    def __init__(self, lexicons: LexiconSet, intent: TextClassifier, sentiment: TextClassifier) -> None:
        self.lexicons = lexicons
        self.intent = intent
        self.sentiment = sentiment

    def _classify(self, texts: list[str]):
        """Both models, sharing one encoding per text when both are unsure about it."""
        encoder = getattr(self.intent, "encoder", None)
        if encoder is None or getattr(self.sentiment, "encoder", None) is not encoder:
            return self.intent.predict(texts), self.sentiment.predict(texts)
        from nlp.encoders import BatchMemoEncoder

        memo = BatchMemoEncoder(encoder)
        self.intent.encoder = self.sentiment.encoder = memo
        try:
            return self.intent.predict(texts), self.sentiment.predict(texts)
        finally:
            self.intent.encoder = self.sentiment.encoder = encoder

    def analyze(self, items: Sequence[AnalyzeItem]) -> list[dict]:
        if not items:
            return []
        checker = self.lexicons.checker()
        texts = [i.text for i in items]
        intents, sentiments = self._classify(texts)
        out = []
        for item, (ilabel, iscore), (slabel, sscore) in zip(items, intents, sentiments):
            hits = [h.to_json() for h in checker.check(item.text, item.role, normalize(item.text))]
            out.append({
                "intent": {"label": ilabel, "score": round(iscore, 4)},
                "sentiment": {"label": slabel, "score": round(sscore, 4)},
                "sensitive": hits,
                "flagged": is_flagged(item.role, hits, ilabel, slabel),
            })
        return out
