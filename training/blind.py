"""Blind evaluation: aggregate metrics on a held-out set that nobody on the team reads.

    python -m training evaluate --blind DIR [--families] [--json]

DIR holds any of intent.jsonl, sentiment.jsonl, sensitive.jsonl, relay.jsonl, retrieval.jsonl
(formats in training/corpus.py). This module prints metrics and per-class counts only, never an
item, so a set can inform a decision without being tuned to item by item. A set that informed a
decision is spent: move it into training/data/writers/ and have a new one written
(docs/EVALUATION.md, "Blind protocol").
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

from training import corpus


def class_counts(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str]) -> dict:
    per, f1s = {}, []
    for lab in labels:
        tp = sum(1 for g, p in zip(gold, pred) if g == lab and p == lab)
        n_gold = sum(1 for g in gold if g == lab)
        n_pred = sum(1 for p in pred if p == lab)
        prec = tp / n_pred if n_pred else 0.0
        rec = tp / n_gold if n_gold else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        if n_gold:
            f1s.append(f1)
        per[lab] = {"n": n_gold, "predicted": n_pred, "correct": tp, "f1": round(f1, 4)}
    n = len(gold)
    return {"n": n, "accuracy": sum(g == p for g, p in zip(gold, pred)) / n if n else 0.0,
            "macro_f1": sum(f1s) / len(f1s) if f1s else 0.0, "per_class": per}


def evaluate_classifier(lines: list[corpus.Line], predict: Callable[[list[str]], list[str]], labels) -> dict:
    lines = [l for l in lines if l.label in labels]
    t0 = time.perf_counter()
    pred = predict([l.text for l in lines])
    out = class_counts([l.label for l in lines], pred, labels)
    out["ms_per_message"] = (time.perf_counter() - t0) / max(1, len(lines)) * 1000
    return out


def evaluate_sensitive(lines: list[corpus.Line], check: Callable[[list[tuple[str, str]]], list[list[dict]]]) -> dict:
    from nlp.sensitive import CATEGORIES

    hits_per = check([(l.text, l.role) for l in lines])
    per = {c: {"n": 0, "found": 0, "evasion_n": 0, "evasion_found": 0, "flagged_as_other": 0} for c in CATEGORIES}
    clean_n = clean_flagged = 0
    clean_by_cat = {c: 0 for c in CATEGORIES}
    offsets_exact = True
    for l, hits in zip(lines, hits_per):
        offsets_exact &= all(l.text[h["start"]:h["end"]] == h["match"] for h in hits)
        found = {h["category"] for h in hits}
        if l.label == "clean":
            clean_n += 1
            clean_flagged += bool(found)
            for c in found & set(CATEGORIES):
                clean_by_cat[c] += 1
            continue
        if l.label not in per:
            continue
        m = per[l.label]
        m["n"] += 1
        m["found"] += l.label in found
        m["flagged_as_other"] += bool(found - {l.label})
        if l.evasion:
            m["evasion_n"] += 1
            m["evasion_found"] += l.label in found
    n_pos = sum(m["n"] for m in per.values())
    return {
        "recall": sum(m["found"] for m in per.values()) / n_pos if n_pos else 0.0,
        "evasion_recall": (sum(m["evasion_found"] for m in per.values()) /
                           max(1, sum(m["evasion_n"] for m in per.values()))),
        "clean_flagged_rate": clean_flagged / clean_n if clean_n else 0.0,
        "n_positive": n_pos, "n_clean": clean_n, "offsets_exact": offsets_exact,
        "per_category": per, "clean_flagged_by_category": clean_by_cat,
    }


def relay_label(action: str, quantity: int) -> str:
    return f"join:{quantity}" if action == "join" else action


def evaluate_relay(threads: list[list[dict]], reviewer=None) -> dict:
    """As the service reads a relay's messages: the rules, and the learned reviewer when given."""
    from bot.relay.parse import RelayReader

    n = correct = action_ok = 0
    per: dict[str, dict] = {}
    for thread in threads:
        reader = RelayReader(reviewer)
        for m in thread:
            got = reader.read(m["text"], m["sender_name"])
            gold = m["label"]
            kind = gold.split(":")[0]
            pred = relay_label(got.action, got.quantity)
            n += 1
            correct += pred == gold
            action_ok += got.action == kind
            k = per.setdefault(kind, {"n": 0, "correct": 0, "action_correct": 0})
            k["n"] += 1
            k["correct"] += pred == gold
            k["action_correct"] += got.action == kind
    return {"n_threads": len(threads), "n_messages": n, "action_quantity_accuracy": correct / n if n else 0.0,
            "action_accuracy": action_ok / n if n else 0.0, "per_action": per}


def evaluate_retrieval(queries: list[dict], scripts_path: Path, encoder_name: str, intent_model=None,
                       ranking_path: Path | None = None) -> dict:
    """As the suggestions endpoint answers: with the message's intent when a model is given, ranked by
    the shipped weights for the encoder (or those in `ranking_path`)."""
    import asyncio

    from training.retrieval import knowledge_base_of

    scripts = corpus.read_jsonl(scripts_path)

    async def run(kb):
        asked = [q for q in queries if q.get("script_id")]
        chit = [q for q in queries if not q.get("script_id")]
        labels = [(str(lab), float(sc)) for lab, sc in intent_model.predict([q["query"] for q in queries])] \
            if intent_model else [(None, 1.0)] * len(queries)
        intent_of = {id(q): lab for q, lab in zip(queries, labels)}
        r1 = r3 = 0
        silent_asked = 0
        for q in asked:
            ids = [s.script.id for s in await kb.suggest(q["query"], k=3, intent=intent_of[id(q)][0],
                                                               intent_score=intent_of[id(q)][1])]
            r1 += ids[:1] == [q["script_id"]]
            r3 += q["script_id"] in ids
            silent_asked += not ids
        silenced = 0
        for q in chit:
            silenced += not await kb.suggest(q["query"], k=3, intent=intent_of[id(q)][0],
                                             intent_score=intent_of[id(q)][1])
        return {"n_queries": len(asked), "n_chit_chat": len(chit), "n_scripts": len(scripts),
                "recall@1": r1 / max(1, len(asked)), "recall@3": r3 / max(1, len(asked)),
                "answered_rate": 1 - silent_asked / max(1, len(asked)),
                "chit_chat_silenced_rate": silenced / max(1, len(chit))}

    if ranking_path is None:
        return asyncio.run(knowledge_base_of(scripts, encoder_name, run))
    from knowledge.ranking import ranking_for

    ranking = ranking_for(encoder_name, ranking_path)
    if ranking is None:
        raise ValueError(f"{ranking_path} holds weights for another encoder than {encoder_name}")
    return asyncio.run(knowledge_base_of(scripts, encoder_name, run, ranking=ranking))


def analyzer_for(models_dir: Path):
    from nlp.service import NlpConfig, build_analyzer
    from training.trainers import data_fingerprint, train_model

    lex = Path(tempfile.mkdtemp(prefix="blind-lexicons-"))
    return build_analyzer(NlpConfig(models_dir, lex, train=train_model, data_fingerprint=data_fingerprint()))


def shipped_reviewer(models_dir: Path, encoder_name: str):
    """The relay reviewer the service loads (trained into `models_dir` when missing or stale)."""
    from nlp.encoders import make_encoder
    from training.trainers import load_relay_reviewer

    return load_relay_reviewer(models_dir, make_encoder(encoder_name))


def evaluate_blind(directory: Path, models_dir: Path, families: bool = False,
                   scripts_path: Path | None = None, encoder_name: str = "use-multilingual",
                   ranking_path: Path | None = None) -> dict:
    from nlp.models import INTENT_LABELS, SENTIMENT_LABELS
    from nlp.pipeline import AnalyzeItem

    report: dict = {"set": directory.name}
    analyzer = None

    def shipped():
        nonlocal analyzer
        analyzer = analyzer or analyzer_for(models_dir)
        return analyzer

    for task, labels in (("intent", INTENT_LABELS), ("sentiment", SENTIMENT_LABELS)):
        path = directory / f"{task}.jsonl"
        if not path.is_file():
            continue
        lines = corpus.lines_from(path, "blind")
        model = getattr(shipped(), task)
        report[task] = evaluate_classifier(lines, lambda ts: [lab for lab, _ in model.predict(ts)], labels)
        if families:
            report[f"{task}_families"] = compare_families(task, lines, labels, model.encoder)
    path = directory / "sensitive.jsonl"
    if path.is_file():
        a = shipped()
        report["sensitive"] = evaluate_sensitive(
            corpus.lines_from(path, "blind"),
            lambda items: [r["sensitive"] for r in a.analyze([AnalyzeItem(t, r) for t, r in items])])
    path = directory / "relay.jsonl"
    if path.is_file():
        threads = corpus.threads_from(path)
        report["relay"] = evaluate_relay(threads, shipped_reviewer(models_dir, encoder_name))
        report["relay_rules_only"] = evaluate_relay(threads)
    path = directory / "retrieval.jsonl"
    if path.is_file():
        kb = scripts_path or (directory / "scripts.jsonl")
        if not kb.is_file():
            kb = corpus.DATA / "kb" / "scripts.jsonl"
        report["retrieval"] = evaluate_retrieval(corpus.read_jsonl(path), kb, encoder_name, shipped().intent,
                                                 ranking_path)
    return report


_FAMILY_MODELS: dict = {}


def _family_model(task: str, family: str, encoder):
    """Each family trained once per run, however many sets it is compared on."""
    from training.trainers import train_family

    key = (task, family)
    if key not in _FAMILY_MODELS:
        t0 = time.perf_counter()
        _FAMILY_MODELS[key] = (train_family(task, family, encoder), time.perf_counter() - t0)
    return _FAMILY_MODELS[key]


def compare_families(task: str, lines: list[corpus.Line], labels, encoder) -> dict:
    from training.trainers import FAMILIES

    out = {}
    for family in FAMILIES:
        model, train_s = _family_model(task, family, encoder)
        rep = evaluate_classifier(lines, lambda ts: [lab for lab, _ in model.predict(ts)], labels)
        out[family] = {"accuracy": rep["accuracy"], "macro_f1": rep["macro_f1"],
                       "ms_per_message": rep["ms_per_message"], "train_seconds": train_s, "tau": model.tau}
    return out


def render(r: dict) -> str:
    out = [f"# blind set {r['set']}"]
    for task in ("intent", "sentiment"):
        if task in r:
            m = r[task]
            out.append(f"\n## {task}: n={m['n']} accuracy {m['accuracy']:.3f} macro-F1 {m['macro_f1']:.3f} "
                       f"({m['ms_per_message']:.2f} ms/message)")
            out.append("label            n  predicted  correct     F1")
            for lab, c in m["per_class"].items():
                out.append(f"{lab:15} {c['n']:3} {c['predicted']:10} {c['correct']:8} {c['f1']:6.3f}")
        if f"{task}_families" in r:
            out.append(f"\nfamilies ({task}): " + "; ".join(
                f"{f}: acc {m['accuracy']:.3f} F1 {m['macro_f1']:.3f} {m['ms_per_message']:.2f} ms tau {m['tau']}"
                for f, m in r[f"{task}_families"].items()))
    if "sensitive" in r:
        s = r["sensitive"]
        out.append(f"\n## sensitive: recall {s['recall']:.3f} (evasions {s['evasion_recall']:.3f}), clean flagged "
                   f"{s['clean_flagged_rate']:.3f} of {s['n_clean']}, offsets exact {s['offsets_exact']}")
        out.append("category      n  found  evasion n/found  flagged-as-other  clean-flagged-as")
        for c, m in s["per_category"].items():
            out.append(f"{c:10} {m['n']:4} {m['found']:6} {m['evasion_n']:7}/{m['evasion_found']:<7} "
                       f"{m['flagged_as_other']:12} {s['clean_flagged_by_category'][c]:14}")
    if "relay" in r:
        m = r["relay"]
        out.append(f"\n## relay: {m['n_messages']} messages in {m['n_threads']} threads; action+quantity "
                   f"{m['action_quantity_accuracy']:.3f}, action {m['action_accuracy']:.3f}")
        for k, c in m["per_action"].items():
            out.append(f"{k:8} n={c['n']} correct={c['correct']} action-correct={c['action_correct']}")
        if "relay_rules_only" in r:
            out.append(f"rules alone (no reviewer): action+quantity {r['relay_rules_only']['action_quantity_accuracy']:.3f}")
    if "retrieval" in r:
        m = r["retrieval"]
        out.append(f"\n## retrieval: {m['n_queries']} queries over {m['n_scripts']} scripts: recall@1 "
                   f"{m['recall@1']:.3f} recall@3 {m['recall@3']:.3f}, answered {m['answered_rate']:.3f}; "
                   f"{m['n_chit_chat']} chit-chat, silenced {m['chit_chat_silenced_rate']:.3f}")
    return "\n".join(out)
