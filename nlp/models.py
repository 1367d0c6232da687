"""Where the intent and sentiment models live, and how they are loaded.

Artefacts are under `DATA_DIR/models/`. Training is not this package's job: the service's wiring
passes a `train(task, encoder)` callable (training/trainers.py) and the fingerprint of the data it
trains from; an artefact is rebuilt when missing, unreadable or trained from other data, so a fresh
install needs no manual step.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from nlp.classifier import CascadeClassifier

log = logging.getLogger(__name__)

INTENT_LABELS = ("greeting", "price_inquiry", "promotion", "product_info", "purchase_intent", "relay_signup",
                 "shipping", "return_refund", "complaint", "membership", "store_visit", "other")
SENTIMENT_LABELS = ("positive", "neutral", "negative")
Trainer = Callable[[str, object], CascadeClassifier]


def model_path(models_dir: Path, name: str) -> Path:
    return models_dir / f"{name}.joblib"


def _loader(name: str):
    if name == "sensitive":
        from nlp.sensitive_model import SensitiveModel

        return SensitiveModel.load
    return CascadeClassifier.load


def load_or_train(models_dir: Path, name: str, encoder, train: Trainer | None = None,
                  fingerprint: str | None = None):
    """The stored model; retrained with `train` when missing, unreadable or (given `fingerprint`)
    trained from other data. Without `train` a missing model is an error."""
    path = model_path(models_dir, name)
    if path.is_file():
        try:
            model = _loader(name)(path, encoder)
            if fingerprint is None or model.meta.get("data") == fingerprint:
                return model
            log.info("training data changed; retraining", extra={"model": name})
        except Exception as exc:  # noqa: BLE001 - a corrupt or old artefact is rebuilt, not fatal
            if train is None:
                raise
            log.warning("model artefact unusable; retraining", extra={"model": name, "error": repr(exc)})
    if train is None:
        raise FileNotFoundError(f"no {name} model at {path}: run `python -m training build`")
    model = train(name, encoder)
    model.save(path)
    return model


def load_version(versions_dir: Path, task: str, version: str, encoder):
    """A registry version's artefact (nlp/active.py names the file)."""
    from nlp.active import version_path

    model = _loader(task)(version_path(versions_dir, version), encoder)
    if model.meta.get("model") not in (None, task):
        raise ValueError(f"{version} is a {model.meta.get('model')} model, not {task}")
    return model
