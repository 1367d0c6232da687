"""One simulated week of the learning loop, measured on a blind set (read by code only).

    python -m training simulate-week --blind DIR [--json]

Each task's blind lines are split in two by content hash. The "week" half plays the corrections
people make while they work: every week-half line the active (shipped) model gets wrong becomes a
label — QA's verdicts, trainers' queue work, staff picking the right script — and nothing else.
A candidate is trained on them exactly as a training job would (training/jobs.py), and both are
measured on the other half, which neither saw. For retrieval, each week-half query whose script
did not rank first becomes an accepted alternative question of that script (≤ 20 per script).
Prints aggregate metrics only. The set is spent afterwards (docs/EVALUATION.md).
"""
from __future__ import annotations

import asyncio
import zlib
from pathlib import Path

from training import corpus


def week_half(text: str) -> bool:
    return zlib.crc32(b"week\0" + text.encode("utf-8")) % 2 == 0


def split(lines):
    week = [l for l in lines if week_half(l.text)]
    rest = [l for l in lines if not week_half(l.text)]
    return week, rest


def simulate_classifier(task: str, lines, base, encoder) -> dict:
    from nlp.models import INTENT_LABELS, SENTIMENT_LABELS
    from training.blind import evaluate_classifier
    from training.jobs import train

    labels = INTENT_LABELS if task == "intent" else SENTIMENT_LABELS
    lines = [l for l in lines if l.label in labels]
    week, rest = split(lines)
    guesses = [lab for lab, _ in base.predict([l.text for l in week])]
    corrections = [(l.text, l.label, "simulated") for l, g in zip(week, guesses) if g != l.label]
    cand = train(task, encoder, corrections)
    predict = lambda m: (lambda ts: [lab for lab, _ in m.predict(ts)])  # noqa: E731
    before, after = evaluate_classifier(rest, predict(base), labels), evaluate_classifier(rest, predict(cand), labels)
    return {"week_lines": len(week), "corrections": len(corrections), "held_out": len(rest),
            "before": {k: round(before[k], 4) for k in ("accuracy", "macro_f1")},
            "after": {k: round(after[k], 4) for k in ("accuracy", "macro_f1")}}


def simulate_sensitive(lines, analyzer, encoder) -> dict:
    from nlp.pipeline import AnalyzeItem
    from training.blind import evaluate_sensitive
    from training.jobs import train

    week, rest = split(lines)
    results = analyzer.analyze([AnalyzeItem(l.text, l.role) for l in week])
    corrections = []
    for l, r in zip(week, results):
        found = {h["category"] for h in r["sensitive"]}
        wrong = (l.label == "clean" and found) or (l.label != "clean" and l.label not in found)
        if wrong:
            corrections.append((l.text, l.label, "simulated"))

    def check(a):
        return lambda items: [r["sensitive"] for r in a.analyze([AnalyzeItem(t, role) for t, role in items])]

    before = evaluate_sensitive(rest, check(analyzer))
    base_model = analyzer.sensitive
    analyzer.sensitive = train("sensitive", encoder, corrections)
    analyzer.active = None  # keep the candidate in place for this measurement
    try:
        after = evaluate_sensitive(rest, check(analyzer))
    finally:
        analyzer.sensitive = base_model
    keys = ("recall", "evasion_recall", "clean_flagged_rate")
    return {"week_lines": len(week), "corrections": len(corrections), "held_out": len(rest),
            "before": {k: round(before[k], 4) for k in keys}, "after": {k: round(after[k], 4) for k in keys}}


def simulate_retrieval(queries: list[dict], scripts: list[dict], encoder_name: str, intent_model) -> dict:
    from knowledge.scripts import MAX_ALTERNATIVES
    from training.blind import evaluate_retrieval

    asked = [q for q in queries if q.get("script_id")]
    week = [q for q in asked if week_half(q["query"])]
    rest = [q for q in queries if not week_half(q["query"])]

    async def misses(kb):
        labels = intent_model.predict([q["query"] for q in week])
        out = []
        for q, (lab, sc) in zip(week, labels):
            ids = [s.script.id for s in await kb.suggest(q["query"], k=3, intent=str(lab), intent_score=float(sc))]
            if ids[:1] != [q["script_id"]]:
                out.append(q)
        return out

    from training.retrieval import knowledge_base_of

    picked = asyncio.run(knowledge_base_of(scripts, encoder_name, misses))
    taught = [dict(s) for s in scripts]
    by_id = {s["id"]: s for s in taught}
    added = 0
    for q in picked:
        s = by_id.get(q["script_id"])
        if s is not None and len(s.get("alternatives") or []) < MAX_ALTERNATIVES:
            s["alternatives"] = [*(s.get("alternatives") or []), q["query"]]
            added += 1
    import json
    import tempfile

    def measure(items):
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, encoding="utf-8") as f:
            f.write("\n".join(json.dumps(s, ensure_ascii=False) for s in items))
        try:
            return evaluate_retrieval(rest, Path(f.name), encoder_name, intent_model)
        finally:
            Path(f.name).unlink()

    keys = ("recall@1", "recall@3", "chit_chat_silenced_rate")
    before, after = measure(scripts), measure(taught)
    return {"week_queries": len(week), "alternatives_added": added, "held_out": before["n_queries"],
            "before": {k: round(before[k], 4) for k in keys}, "after": {k: round(after[k], 4) for k in keys}}


def simulate_week(directory: Path, models_dir: Path, scripts_path: Path | None = None,
                  encoder_name: str = "use-multilingual") -> dict:
    from training.blind import analyzer_for

    analyzer = analyzer_for(models_dir)
    encoder = analyzer.intent.encoder
    report: dict = {"set": directory.name}
    for task in ("intent", "sentiment"):
        path = directory / f"{task}.jsonl"
        if path.is_file():
            report[task] = simulate_classifier(task, corpus.lines_from(path, "blind"), getattr(analyzer, task), encoder)
    path = directory / "sensitive.jsonl"
    if path.is_file():
        report["sensitive"] = simulate_sensitive(corpus.lines_from(path, "blind"), analyzer, encoder)
    path = directory / "retrieval.jsonl"
    if path.is_file():
        kb = scripts_path or corpus.DATA / "kb" / "scripts.jsonl"
        report["retrieval"] = simulate_retrieval(corpus.read_jsonl(path), corpus.read_jsonl(kb), encoder_name,
                                                 analyzer.intent)
    return report


def render(r: dict) -> str:
    out = [f"# one simulated week on {r['set']} (corrections from one half, measured on the other)"]
    for task, m in r.items():
        if task == "set":
            continue
        n = m.get("corrections", m.get("alternatives_added"))
        out.append(f"\n## {task}: {n} corrections from {m.get('week_lines', m.get('week_queries'))} week lines; "
                   f"held out {m['held_out']}")
        for k in m["before"]:
            out.append(f"{k:24} {m['before'][k]:.3f} -> {m['after'][k]:.3f}")
    return "\n".join(out)
