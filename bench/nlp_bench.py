"""Analyze-path throughput on one core, beside SnowNLP's sentiment and raw pyahocorasick.

    python bench/nlp_bench.py [--messages 5000]

Messages are chat-style texts (10–60 chars) built from the repository's data. Single-threaded:
BLAS and the encoder use one thread. Prints a Markdown table.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def messages(n: int, natural: bool = False) -> list[str]:
    from training.datasets import intent_examples, sentiment_chat_examples
    from training.evaluate import read_sensitive_eval

    pool = [e.text for e in intent_examples()] + [e.text for e in sentiment_chat_examples()] \
        + [r[3] for r in read_sensitive_eval()]
    rng = random.Random(1)
    out = []
    if natural:
        return [rng.choice(pool) for _ in range(n)]
    while len(out) < n:
        target = rng.randint(10, 60)  # typical chat messages: 10–60 characters
        t = rng.choice(pool)
        while len(t) < target:
            t += "，" + rng.choice(pool)
        out.append(t[:target])
    return out


def rate(fn, items, batch: int) -> float:
    t0 = time.perf_counter()
    for i in range(0, len(items), batch):
        fn(items[i:i + batch])
    return len(items) / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--messages", type=int, default=5000)
    p.add_argument("--models-dir", default=str(ROOT / "var" / "test-models"))
    p.add_argument("--natural", action="store_true", help="single dataset messages as they are (no concatenation)")
    p.add_argument("--blind", help="a blind set directory: also compare sentiment accuracy with SnowNLP on it")
    a = p.parse_args()
    import ahocorasick
    from snownlp import SnowNLP

    from nlp.pipeline import AnalyzeItem
    from nlp.sensitive import LexiconSet
    from nlp.service import NlpConfig, build_analyzer
    from training.trainers import data_fingerprint, train_model
    from training.evaluate import snownlp_label

    msgs = messages(a.messages, a.natural)
    avg_len = sum(map(len, msgs)) / len(msgs)
    with tempfile.TemporaryDirectory() as d:
        analyzer = build_analyzer(NlpConfig(Path(a.models_dir), Path(d), train=train_model,
                                            data_fingerprint=data_fingerprint()))
    items = [AnalyzeItem(m, "customer" if i % 3 else "staff") for i, m in enumerate(msgs)]
    analyzer.analyze(items[:200])  # warm-up

    rows = []
    rows.append(("full analyze (normalise + sensitive + intent + sentiment), batch 100",
                 rate(analyzer.analyze, items, 100)))
    rows.append(("full analyze, batch 1", rate(analyzer.analyze, items[:1000], 1)))
    unsure = {name: float((m.char.pipeline.predict_proba(msgs).max(axis=1) < m.tau).mean())
              for name, m in (("intent", analyzer.intent), ("sentiment", analyzer.sentiment))}
    taus = (analyzer.intent.tau, analyzer.sentiment.tau)
    analyzer.intent.tau = analyzer.sentiment.tau = 0.0
    rows.append(("full analyze, char n-gram models only (no encoder), batch 100", rate(analyzer.analyze, items, 100)))
    analyzer.intent.tau, analyzer.sentiment.tau = taus
    checker = LexiconSet().checker()
    rows.append(("sensitive checker only", rate(lambda b: [checker.check(m) for m in b], msgs, 100)))
    auto = ahocorasick.Automaton()
    for t in {t.text for t in checker.terms}:
        auto.add_word(t, t)
    auto.make_automaton()
    rows.append(("raw pyahocorasick, same terms, no normalisation (ceiling)",
                 rate(lambda b: [list(auto.iter(m)) for m in b], msgs, 100)))
    rows.append(("intent cascade only", rate(analyzer.intent.predict, msgs, 100)))
    rows.append(("sentiment cascade only", rate(analyzer.sentiment.predict, msgs, 100)))
    sub = msgs[:500]
    rows.append(("SnowNLP sentiment (baseline)", rate(lambda b: [SnowNLP(m).sentiments for m in b], sub, 100)))

    # Accuracy side by side on the held-out chat sentiment split.
    from training.datasets import sentiment_chat_examples

    test = [e for e in sentiment_chat_examples() if e.split == "test"]
    ours = sum(lab == e.label for (lab, _), e in zip(analyzer.sentiment.predict([e.text for e in test]), test)) / len(test)
    base = sum(snownlp_label(e.text) == e.label for e in test) / len(test)

    print(f"\n{len(msgs)} messages, average {avg_len:.0f} chars, one thread; "
          f"below the threshold (encoded): intent {unsure['intent']:.0%}, sentiment {unsure['sentiment']:.0%}\n")
    print("| path | messages/s |")
    print("|---|---:|")
    for name, r in rows:
        print(f"| {name} | {r:,.0f} |")
    if a.blind:
        # Accuracy side by side on a blind set's sentiment lines (aggregate only, never items).
        from training.corpus import lines_from

        test = lines_from(Path(a.blind) / "sentiment.jsonl", "blind")
        ours = sum(lab == e.label for (lab, _), e in zip(analyzer.sentiment.predict([e.text for e in test]), test)) / len(test)
        base = sum(snownlp_label(e.text) == e.label for e in test) / len(test)
        print(f"\nSentiment accuracy on blind set {Path(a.blind).name} (n={len(test)}): ours {ours:.3f}, SnowNLP {base:.3f}")


if __name__ == "__main__":
    main()
