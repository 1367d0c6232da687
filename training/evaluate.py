"""Evaluation on held-out data: intent and sentiment (accuracy, macro-F1, confusion matrix),
SnowNLP's sentiment as a baseline, and the sensitive checker's precision/recall per category."""
from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from training.datasets import DATA, intent_examples, sentiment_chat_examples


def classification_report(gold: list[str], pred: list[str], labels: list[str]) -> dict:
    f1s = {}
    for lab in labels:
        tp = sum(1 for g, p in zip(gold, pred) if g == lab and p == lab)
        fp = sum(1 for g, p in zip(gold, pred) if g != lab and p == lab)
        fn = sum(1 for g, p in zip(gold, pred) if g == lab and p != lab)
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        f1s[lab] = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    confusion = {g: {p: 0 for p in labels} for g in labels}
    for g, p in zip(gold, pred):
        confusion[g][p] += 1
    return {
        "n": len(gold),
        "accuracy": sum(g == p for g, p in zip(gold, pred)) / len(gold),
        "macro_f1": sum(f1s.values()) / len(labels),
        "f1": f1s,
        "labels": labels,
        "confusion": confusion,
    }


def snownlp_label(text: str) -> str:
    from snownlp import SnowNLP

    p = SnowNLP(text).sentiments
    return "positive" if p >= 0.6 else "negative" if p <= 0.4 else "neutral"


def read_sensitive_eval(path: Path | None = None) -> list[tuple[str, str, bool, str]]:
    rows = []
    for line in (path or DATA / "sensitive_eval.tsv").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            cat, role, evasion, text = line.split("\t", 3)
            rows.append((cat, role, evasion == "1", text))
    return rows


def evaluate_sensitive(checker, path: Path | None = None) -> dict:
    rows = read_sensitive_eval(path)
    cats = sorted({r[0] for r in rows if r[0] != "-"})
    per = {c: {"tp": 0, "fn": 0, "fp": 0, "evasion_tp": 0, "evasion_n": 0} for c in cats}
    neg_flagged, neg_n, offsets_ok, misses, false_alarms = 0, 0, True, [], []
    for cat, role, evasion, text in rows:
        hits = checker.check(text, role)
        for h in hits:
            offsets_ok &= text[h.start:h.end] == h.match
        found = {h.category for h in hits}
        if cat == "-":
            neg_n += 1
            if found:
                neg_flagged += 1
                false_alarms.append((text, sorted(found)))
            continue
        if cat in found:
            per[cat]["tp"] += 1
            if evasion:
                per[cat]["evasion_tp"] += 1
        else:
            per[cat]["fn"] += 1
            misses.append((cat, text))
        if evasion:
            per[cat]["evasion_n"] += 1
        for other in found - {cat}:
            if other in per:
                per[other]["fp"] += 1
    out = {}
    for c, m in per.items():
        out[c] = {
            "precision": m["tp"] / (m["tp"] + m["fp"]) if m["tp"] + m["fp"] else 0.0,
            "recall": m["tp"] / (m["tp"] + m["fn"]) if m["tp"] + m["fn"] else 0.0,
            "evasion_recall": m["evasion_tp"] / m["evasion_n"] if m["evasion_n"] else None,
            "n": m["tp"] + m["fn"],
        }
    total_tp = sum(m["tp"] for m in per.values())
    total = sum(m["tp"] + m["fn"] for m in per.values())
    return {"per_category": out, "recall": total_tp / total, "n_positive": total,
            "n_evasion": sum(m["evasion_n"] for m in per.values()),
            "hard_negative_fp_rate": neg_flagged / neg_n, "n_negative": neg_n, "offsets_exact": offsets_ok,
            "misses": misses, "false_alarms": false_alarms}


def evaluate_all(models_dir: Path) -> dict:
    from nlp.encoders import UseEncoder
    from nlp.models import INTENT_LABELS, SENTIMENT_LABELS, load_or_train
    from training.trainers import data_fingerprint, train_model
    from nlp.sensitive import LexiconSet

    report: dict = {}
    encoder = UseEncoder()
    intent = load_or_train(models_dir, "intent", encoder, train_model, data_fingerprint())
    test = [e for e in intent_examples() if e.split == "test"]
    pred = [lab for lab, _ in intent.predict([e.text for e in test])]
    report["intent"] = classification_report([e.label for e in test], pred, list(INTENT_LABELS))

    report["intent_char_only"] = classification_report(
        [e.label for e in test], [lab for lab, _ in intent.char.predict([e.text for e in test])], list(INTENT_LABELS))
    sentiment = load_or_train(models_dir, "sentiment", encoder, train_model, data_fingerprint())
    stest = [e for e in sentiment_chat_examples() if e.split == "test"]
    t0 = time.perf_counter()
    spred = [lab for lab, _ in sentiment.predict([e.text for e in stest])]
    ours_s = time.perf_counter() - t0
    report["sentiment"] = classification_report([e.label for e in stest], spred, list(SENTIMENT_LABELS))
    report["sentiment_char_only"] = classification_report(
        [e.label for e in stest], [lab for lab, _ in sentiment.char.predict([e.text for e in stest])], list(SENTIMENT_LABELS))
    report["sentiment"]["seconds_per_1k"] = ours_s / len(stest) * 1000
    t0 = time.perf_counter()
    bpred = [snownlp_label(e.text) for e in stest]
    base_s = time.perf_counter() - t0
    report["sentiment_snownlp_baseline"] = classification_report([e.label for e in stest], bpred, list(SENTIMENT_LABELS))
    report["sentiment_snownlp_baseline"]["seconds_per_1k"] = base_s / len(stest) * 1000
    report["sensitive"] = evaluate_sensitive(LexiconSet().checker())
    report["sensitive_blind"] = evaluate_sensitive(LexiconSet().checker(), DATA / "sensitive_blind.tsv")
    return report


def _matrix(rep: dict) -> str:
    labels = rep["labels"]
    short = [l[:8] for l in labels]
    lines = ["gold \\ pred".ljust(16) + " ".join(s.rjust(8) for s in short)]
    for g in labels:
        lines.append(g[:15].ljust(16) + " ".join(str(rep["confusion"][g][p]).rjust(8) for p in labels))
    return "\n".join(lines)


def render(r: dict) -> str:
    out = []
    for name in ("intent", "intent_char_only", "sentiment", "sentiment_char_only", "sentiment_snownlp_baseline"):
        rep = r[name]
        out.append(f"## {name}  (held-out n={rep['n']})\naccuracy {rep['accuracy']:.3f}  macro-F1 {rep['macro_f1']:.3f}")
        if "seconds_per_1k" in rep:
            out.append(f"time per 1k messages: {rep['seconds_per_1k'] * 1000:.1f} ms")
        out.append(_matrix(rep) + "\n")
    for key, title in (("sensitive", "sensitive (development set)"), ("sensitive_blind", "sensitive (blind set)")):
        s = r[key]
        out.append(f"## {title}  ({s['n_positive']} positives incl. {s['n_evasion']} evasions, {s['n_negative']} hard negatives)")
        out.append("category     precision  recall  evasion-recall   n")
        for c, m in s["per_category"].items():
            ev = f"{m['evasion_recall']:.3f}" if m["evasion_recall"] is not None else "-"
            out.append(f"{c:12} {m['precision']:9.3f} {m['recall']:7.3f} {ev:>15} {m['n']:4}")
        out.append(f"overall recall {s['recall']:.3f}; hard-negative false-positive rate {s['hard_negative_fp_rate']:.3f}; "
                   f"offsets exact: {s['offsets_exact']}")
        if s["misses"]:
            out.append("missed: " + "; ".join(f"{c}:{t}" for c, t in s["misses"]))
        if s["false_alarms"]:
            out.append("false alarms: " + "; ".join(f"{t} {c}" for t, c in s["false_alarms"]))
        out.append("")
    return "\n".join(out)
