"""Measuring the negative-topic model (nlp/topics.py) on negative messages by independent writers,
labelled by independent annotators (training/data/writers/neg*/topics.jsonl):

    python -m training.topics_eval assign --review-out /tmp/review.jsonl [--sample 300] [--train neg1,neg2 --test neg3,neg4]
    python -m training.topics_eval score  --review /tmp/review.jsonl --verdicts /tmp/verdicts.jsonl

`assign` trains on neg1+neg2 (writers 1-2, annotators A-B) and predicts neg3+neg4 (other writers,
other annotators): it prints agreement with those annotators per family and the share given a
named topic, and writes a random sample of the shipped family's named predictions for a reviewer
(message, topic name, what the topic means). `score` combines the reviewer's accept/reject with
the named share: grouped and accepted ≈ named share × acceptance on the sample.
"""
from __future__ import annotations

import argparse
import json
import random
from collections import Counter
from pathlib import Path

import numpy as np

from training import corpus

TRAIN, TEST = ("neg1", "neg2"), ("neg3", "neg4")


def main(argv=None) -> int:
    from nlp.encoders import make_encoder
    from nlp.topics import TOPICS, TopicAssigner
    from training.trainers import topic_lines, train_topics

    ap = argparse.ArgumentParser(prog="python -m training.topics_eval")
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("assign")
    a.add_argument("--sample", type=int, default=300)
    a.add_argument("--review-out")
    a.add_argument("--seed", type=int, default=7)
    a.add_argument("--train", default=",".join(TRAIN), help="writer sets to train on")
    a.add_argument("--test", default=",".join(TEST),
                   help="writer sets to predict; unlabelled ones (negative.jsonl only) are judged by the reviewer alone")
    s = sub.add_parser("score")
    s.add_argument("--review", required=True)
    s.add_argument("--verdicts", required=True)
    args = ap.parse_args(argv)
    names = {t.key: t.name for t in TOPICS}
    if args.cmd == "score":
        review = {r["id"]: r for r in corpus.read_jsonl(Path(args.review))}
        verdicts = [v for v in corpus.read_jsonl(Path(args.verdicts)) if v["id"] in review]
        meta = json.loads(Path(args.review).with_suffix(".meta.json").read_text())
        rate = sum(bool(v.get("accept")) for v in verdicts) / max(1, len(verdicts))
        print(f"reviewed {len(verdicts)}: accepted {rate:.3f}; named share {meta['named_share']:.3f}; "
              f"grouped into a named topic and accepted ≈ {rate * meta['named_share']:.3f} of {meta['n']} messages")
        per, ok = Counter(), Counter()
        for v in verdicts:
            per[review[v["id"]]["topic"]] += 1
            ok[review[v["id"]]["topic"]] += bool(v.get("accept"))
        for t, n in per.most_common():
            print(f"  {t:10s} accepted {ok[t]}/{n}")
        return 0
    enc = make_encoder("use-multilingual")
    train_sets, test_sets = tuple(args.train.split(",")), tuple(args.test.split(","))
    test = topic_lines(test_sets)
    if test:
        texts, gold = [t for t, _ in test], [l for _, l in test]
    else:  # unlabelled sets: the reviewer is the only judge
        texts = [r["text"] for n in test_sets for r in corpus.read_jsonl(corpus.WRITERS / n / "negative.jsonl")]
        gold = None
    shipped = train_topics(enc, train_sets)
    pred = [k or "other" for k, _ in shipped.assign(texts)]
    base = [k or "other" for k, _ in TopicAssigner(enc, min_score=0.0).assign(texts)]
    print(f"trained on {', '.join(train_sets)} ({len(topic_lines(train_sets))} lines), predicting {', '.join(test_sets)} "
          f"({len(texts)} messages)")
    for label, p in (("trained char + USE heads (shipped)", pred), ("untrained: descriptions + words", base)):
        agree = f"agreement with the annotators {np.mean([x == g for x, g in zip(p, gold)]):.3f}, " if gold else ""
        print(f"{label}: {agree}named share {np.mean([x != 'other' for x in p]):.3f}")
    print("predicted:", ", ".join(f"{names.get(k, '其他')} {n}" for k, n in Counter(pred).most_common()))
    if args.review_out:
        named = [(t, k) for t, k in zip(texts, pred) if k != "other"]
        rng = random.Random(args.seed)
        sample = rng.sample(named, min(args.sample, len(named)))
        desc = {t.key: "；".join(t.descriptions) for t in TOPICS}
        out = Path(args.review_out)
        out.write_text("".join(json.dumps({"id": i, "text": t, "topic": names[k], "topic_means": desc[k]},
                                          ensure_ascii=False) + "\n" for i, (t, k) in enumerate(sample)),
                       encoding="utf-8")
        out.with_suffix(".meta.json").write_text(json.dumps({"n": len(texts), "named_share": len(named) / len(texts)}))
        print(f"review sample of {len(sample)} -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
