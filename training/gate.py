"""The promotion gate: a fixed tenth of the independent writers' lines and of the people's labels,
which no model — the shipped base included — ever trains on, and the metrics a candidate must not
lose against the active version (docs/EVALUATION.md, "The learning loop")."""
from __future__ import annotations

import hashlib
import zlib
from typing import Sequence

from training import corpus

# metric -> +1 when higher is better, -1 when lower is
GATE_METRICS: dict[str, dict[str, int]] = {
    "intent": {"macro_f1": 1, "accuracy": 1},
    "sentiment": {"macro_f1": 1, "accuracy": 1},
    "sensitive": {"recall": 1, "clean_flagged": -1},
}


def in_gate(text: str) -> bool:
    """A fixed tenth of all texts, chosen by content (so a text is in or out wherever it comes from)."""
    return zlib.crc32(b"gate\0" + text.encode("utf-8")) % 10 == 0


Item = tuple[str, str, str]  # (text, label, source)


def gate_items(task: str, db_labels: Sequence[Item] = ()) -> list[Item]:
    """The gate set of `task`: gate writers' lines and gate labels (a label overrides a writer's line)."""
    from training.trainers import SENSITIVE_LABELS
    from nlp.models import INTENT_LABELS, SENTIMENT_LABELS

    allowed = {"intent": INTENT_LABELS, "sentiment": SENTIMENT_LABELS, "sensitive": SENSITIVE_LABELS}[task]
    out: dict[str, Item] = {}
    for line in corpus.writer_lines(task):
        if line.label in allowed and in_gate(line.text):
            out[line.text] = (line.text, line.label, line.source)
    for text, label, source in db_labels:
        if label in allowed and in_gate(text):
            out[text] = (text, label, f"label:{source}")
    return list(out.values())


def gate_hash(items: Sequence[Item]) -> str:
    h = hashlib.sha256()
    for text, label, _ in sorted(items):
        h.update(f"{text}\0{label}\n".encode("utf-8"))
    return h.hexdigest()[:16]


def classifier_metrics(model, items: Sequence[Item]) -> dict:
    from sklearn.metrics import accuracy_score, f1_score

    if not items:
        return {"n": 0}
    gold = [label for _, label, _ in items]
    pred = [label for label, _ in model.predict([t for t, _, _ in items])]
    return {"n": len(items), "accuracy": round(float(accuracy_score(gold, pred)), 4),
            "macro_f1": round(float(f1_score(gold, pred, average="macro", labels=sorted(set(gold)),
                                             zero_division=0)), 4)}


def sensitive_metrics(model, items: Sequence[Item], lexicons) -> dict:
    """Lexicon and model together, as the service flags: recall on unsafe lines (the right category
    found) and the share of clean lines with any hit."""
    from nlp.normalize import normalize

    if not items:
        return {"n": 0}
    checker = lexicons.checker()
    normalized = [normalize(t) for t, _, _ in items]
    learned = model.hits([(n, "customer") for n in normalized])
    unsafe = clean = found = flagged = 0
    for (text, label, _), n, extra in zip(items, normalized, learned):
        cats = {h.category for h in checker.check(text, "customer", n)} | {h["category"] for h in extra}
        if label == "clean":
            clean += 1
            flagged += bool(cats)
        else:
            unsafe += 1
            found += label in cats
    return {"n": len(items), "recall": round(found / unsafe, 4) if unsafe else 1.0,
            "clean_flagged": round(flagged / clean, 4) if clean else 0.0}


def evaluate(task: str, model, items: Sequence[Item], lexicons=None) -> dict:
    if task == "sensitive":
        return sensitive_metrics(model, items, lexicons)
    return classifier_metrics(model, items)


def failures(task: str, candidate: dict, active: dict, tolerance: float) -> list[str]:
    """Each gate metric on which the candidate is worse than the active version beyond `tolerance`."""
    out = []
    for metric, sign in GATE_METRICS[task].items():
        c, a = candidate.get(metric), active.get(metric)
        if c is None or a is None:
            continue
        if sign * (c - a) < -tolerance:
            out.append(f"{metric} {c:.4f} vs active {a:.4f} (tolerance {tolerance:.3f})")
    return out
