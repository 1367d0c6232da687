"""Relay message parsing cost: RelayReader over every labelled relay thread in training/data/writers
(real group chat by the writers, native lists included), against a baseline that only knows "+N".

    python bench/relay_parse_bench.py [--repeat 3]

Prints one table (best of --repeat runs); the service parses each group message of a chat with an
open relay once, in the request, then the learned reviewer reads it (bot/relay/review.py: a
character model, and the sentence encoder for the few it is unsure of). The reviewer is loaded
from (or trained into) var/bench-models."""
from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bot.relay.parse import RelayReader  # noqa: E402
from training import corpus  # noqa: E402

PLUS_N = re.compile(r"^\+(\d{1,3})$")


def threads() -> list[list[dict]]:
    out = []
    for d in sorted(corpus.WRITERS.iterdir()):
        f = d / "relay.jsonl"
        if f.is_file():
            out += corpus.threads_from(f)
    return out


def best_of(repeat: int, fn) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    data = threads()
    n = sum(map(len, data))

    from pathlib import Path

    from nlp.encoders import make_encoder
    from training.trainers import load_relay_reviewer

    reviewer = load_relay_reviewer(Path("var/bench-models"), make_encoder("use-multilingual"))

    def reader(with_reviewer=None):
        for t in data:
            r = RelayReader(with_reviewer)
            for m in t:
                r.read(m["text"], m["sender_name"])

    def baseline():
        for t in data:
            for m in t:
                PLUS_N.match(m["text"].strip())

    rows = [("rules + reviewer (shipped)", best_of(args.repeat, lambda: reader(reviewer))),
            ("rules alone (COPILOT_RELAY_REVIEWER=0)", best_of(args.repeat, reader)), ("baseline: '+N' regex only", best_of(args.repeat, baseline))]
    print(f"{n} messages in {len(data)} threads; {platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print("| parser | µs / message | messages / s |\n|---|---:|---:|")
    for name, secs in rows:
        print(f"| {name} | {secs / n * 1e6:.1f} | {n / secs:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
