"""Learned ranking and silence for suggestions: two small logistic models over features that do
not depend on a brand's scripts (cosines, their product, the gap to the best candidate, the
message's chit-chat intent and length), so weights learned on one knowledge base carry to another.

Trained by `python -m training build --task retrieval` on the writers' retrieval query sets
(docs/EVALUATION.md "Suggestions"); the weights file records the encoder its cosines came from, and
a knowledge base on another encoder falls back to the hand-set fusion weights."""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

DEFAULT_PATH = Path(__file__).resolve().parent / "ranking_weights.json"
CHIT_CHAT_INTENTS = ("greeting", "other")
RANK_FEATURES = ("dense", "lexical", "dense_x_lexical", "dense_gap", "lexical_gap", "second_view", "second_view_gap")
SHORT_MESSAGE = 6  # characters
SILENCE_FEATURES = ("top_dense", "top_lexical", "best_dense", "best_lexical", "chit_chat", "log_length", "margin")


def rank_features(dense: float, lexical: float, best_dense: float, best_lexical: float,
                  second: float = 0.0, best_second: float = 0.0) -> tuple[float, ...]:
    """`second`: the cosine of the script's second-best view — a script that two of its views
    (question, scenario, reply, alternatives) match is likelier right than one matched by a single
    view (leave-one-query-set-out on r1-r11: recall@3 +0.8 points, docs/EVALUATION.md)."""
    return (dense, lexical, dense * lexical, dense - best_dense, lexical - best_lexical, second, second - best_second)


def silence_features(top_dense: float, top_lexical: float, best_dense: float, best_lexical: float,
                     intent: str | None, intent_score: float, length: int, margin: float) -> tuple[float, ...]:
    chit = intent_score if intent in CHIT_CHAT_INTENTS else 0.0
    # Length only tells "好的" from a question: the writers' queries run long and their chit-chat
    # short, and unclipped the model learned "short means chit-chat", silencing short real questions.
    return (top_dense, top_lexical, best_dense, best_lexical, chit, math.log1p(min(length, SHORT_MESSAGE)), margin)


@dataclass(frozen=True)
class LearnedRanking:
    encoder: str
    rank_weights: tuple[float, ...]
    rank_bias: float
    silence_weights: tuple[float, ...]
    silence_bias: float
    silence_threshold: float = 0.6  # silence when P(chit-chat | features) is above this
    meta: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if len(self.rank_weights) != len(RANK_FEATURES) or len(self.silence_weights) != len(SILENCE_FEATURES):
            raise ValueError("ranking weights do not match the feature lists")

    @property
    def dense_slope(self) -> float:
        """How much the score moves per unit of dense cosine (its own weight and the gap's)."""
        return max(0.0, self.rank_weights[0] + self.rank_weights[3])

    def score(self, features: Sequence[float]) -> float:
        return self.rank_bias + sum(w * x for w, x in zip(self.rank_weights, features))

    def silence_probability(self, features: Sequence[float]) -> float:
        z = self.silence_bias + sum(w * x for w, x in zip(self.silence_weights, features))
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))

    def silent(self, features: Sequence[float]) -> bool:
        return self.silence_probability(features) > self.silence_threshold

    def to_json(self) -> dict:
        d = asdict(self)
        d["rank_features"], d["silence_features"] = list(RANK_FEATURES), list(SILENCE_FEATURES)
        return d

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_json(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path = DEFAULT_PATH) -> "LearnedRanking":
        d = json.loads(path.read_text(encoding="utf-8"))
        if d.get("rank_features") != list(RANK_FEATURES) or d.get("silence_features") != list(SILENCE_FEATURES):
            raise ValueError(f"{path}: features differ from this code's; rebuild with python -m training build --task retrieval")
        return cls(encoder=d["encoder"], rank_weights=tuple(d["rank_weights"]), rank_bias=float(d["rank_bias"]),
                   silence_weights=tuple(d["silence_weights"]), silence_bias=float(d["silence_bias"]),
                   silence_threshold=float(d.get("silence_threshold", 0.6)), meta=d.get("meta", {}))


def ranking_for(encoder_name: str, path: Path = DEFAULT_PATH) -> LearnedRanking | None:
    """The learned weights when they were learned with this encoder, else None (hand-set fusion)."""
    if not path.is_file():
        return None
    ranking = LearnedRanking.load(path)
    return ranking if ranking.encoder == encoder_name else None
