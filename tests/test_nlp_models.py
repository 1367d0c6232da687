"""The cascade classifiers and the analyzer's shared encoding."""
from __future__ import annotations

from pathlib import Path

import pytest

from nlp.classifier import CascadeClassifier
from nlp.encoders import UseEncoder
from nlp.pipeline import AnalyzeItem, Analyzer
from nlp.sensitive import LexiconSet
from tests.conftest import MODELS_DIR


class CountingEncoder:
    def __init__(self, inner):
        self.inner, self.name, self.dim, self.calls = inner, inner.name, inner.dim, []

    def encode(self, texts):
        self.calls.append(list(texts))
        return self.inner.encode(texts)


@pytest.fixture(scope="module")
def models():
    from nlp.models import load_or_train
    from training.trainers import data_fingerprint, train_model

    enc, fp = UseEncoder(), data_fingerprint()
    return (load_or_train(MODELS_DIR, "intent", enc, train_model, fp),
            load_or_train(MODELS_DIR, "sentiment", enc, train_model, fp))


def test_each_text_encoded_at_most_once_per_batch(models, tmp_path):
    intent, sentiment = models
    counting = CountingEncoder(intent.encoder)
    intent.encoder = sentiment.encoder = counting
    intent.tau, sentiment.tau = 1.01, 1.01  # both models unsure about everything
    try:
        analyzer = Analyzer(LexiconSet(tmp_path), intent, sentiment)
        texts = ["面霜多少钱", "什么时候发货", "太差了我要投诉"]
        out = analyzer.analyze([AnalyzeItem(t) for t in texts])
        encoded = [t for call in counting.calls for t in call]
        assert sorted(encoded) == sorted(set(encoded)) and len(encoded) == 3
        assert intent.encoder is counting  # restored after the batch
        assert out[0]["intent"]["label"] == "price_inquiry"
    finally:
        intent.tau, sentiment.tau = intent.meta.get("tau", 0.4), 0.6
        intent.encoder = sentiment.encoder = counting.inner


def test_a_batch_is_hashed_once_for_both_models_with_the_same_answers(models, tmp_path, monkeypatch):
    intent, sentiment = models
    texts = ["面霜多少钱", "什么时候发货", "太差了我要投诉", "好评 下次还来", "+1 两份"]
    alone = intent.predict(texts), sentiment.predict(texts)
    assert intent.char.hashing_key == sentiment.char.hashing_key
    calls = []
    step = type(intent.char.pipeline[0])
    original = step.transform
    monkeypatch.setattr(step, "transform", lambda self, X: calls.append(len(X)) or original(self, X))
    shared = Analyzer(LexiconSet(tmp_path), intent, sentiment)._classify(texts)
    assert calls == [len(texts)]  # once, for both models
    assert shared == alone


def test_artefact_refuses_another_encoder(models):
    class Other:
        name, dim = "other-model", 512

    with pytest.raises(ValueError, match="trained with encoder"):
        CascadeClassifier.load(Path(MODELS_DIR) / "intent.joblib", Other())


def test_stale_artefact_is_retrained(tmp_path, monkeypatch):
    from nlp import models as m

    trained = []
    (tmp_path / "intent.joblib").write_bytes(b"not a model")
    m.load_or_train(tmp_path, "intent", UseEncoder(), lambda task, enc: trained.append(task) or _Saved())
    assert trained == ["intent"]


def test_missing_model_without_a_trainer_is_a_clear_error(tmp_path):
    from nlp import models as m

    with pytest.raises(FileNotFoundError, match="python -m training build"):
        m.load_or_train(tmp_path, "intent", UseEncoder())


class _Saved:
    def save(self, path):
        path.write_bytes(b"x")


def test_sensitive_model_hits_carry_exact_spans_and_respect_roles():
    """The learned check fires above its threshold, with the span it rests on in original offsets;
    advertising claims only bind staff; very short messages are left to the lexicon."""
    from nlp.normalize import normalize
    from nlp.sensitive_model import SensitiveModel

    threats = ["我知道你们店在哪 你等着", "下班路上小心点 我认识你", "明天我带几个兄弟过去找你", "你家住哪我清楚得很"]
    claims = ["喝了保证长命百岁", "吃一个月保证不生病", "用了保证年轻十岁", "保证孩子考第一"]
    clean = ["明天几点开门", "这个多少钱", "我想退货", "快递到哪了", "谢谢你呀", "有优惠吗", "我在你们店门口"]
    texts = [normalize(t).text for t in threats * 5 + claims * 5 + clean * 5]
    labels = ["abuse"] * 20 + ["ad_law"] * 20 + ["clean"] * 35
    model = CascadeClassifier.train(texts, labels, UseEncoder(), tau=0.0)
    sm = SensitiveModel(model, {"abuse": 0.5, "ad_law": 0.5})
    text = "亲，我知道你们店在哪 你等着瞧"
    [hits] = sm.hits([(normalize(text), "customer")])
    assert [h["category"] for h in hits] == ["abuse"]
    h = hits[0]
    assert text[h["start"]:h["end"]] == h["match"] and h["rule"] == "model:abuse"
    assert sm.hits([(normalize("用了保证年轻十岁"), "customer")]) == [[]]       # a customer's words
    assert [x["category"] for x in sm.hits([(normalize("用了保证年轻十岁"), "staff")])[0]] == ["ad_law"]
    assert sm.hits([(normalize("你等"), "customer")]) == [[]]                   # too short to judge
