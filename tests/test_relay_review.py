"""The learned second reading of relay messages (bot/relay/review.py): what it may override, how it
learns, how it is stored, and that the service applies it."""
from __future__ import annotations

import numpy as np
import pytest

from bot.relay.parse import NONE, RelayIntent, RelayReader
from bot.relay.review import CANCEL_AT, OVERRIDE_AT, Reading, RelayReviewer, count_in, load_or_train


def test_canonical_sign_ups_skip_the_reviewer():
    from bot.relay.review import needs_review

    assert not any(map(needs_review, ["+1", " +2 ", "＋３", "-1", "接龙", "取消"]))
    assert all(map(needs_review, ["+1 几点到", "+1是一箱吗", "1", "我要两份", "不要了"]))


def test_count_in_reads_the_units_a_missed_sign_up_names():
    assert count_in("我家两台车 都做") == 2
    assert count_in("给我侄子带3箱") == 3
    assert count_in("can I get x2") == 2
    assert count_in("算我一个") == 1
    assert count_in("都做") == 1
    assert count_in("要500箱") == 1  # not a believable sign-up size


def _probs(join: float, cancel: float, none: float) -> np.ndarray:
    return np.array([join, cancel, none])


def test_decide_overrides_only_when_confident_and_cancels_only_a_holder():
    said_none = Reading("我家两台车 一台我的一台我儿子的 都做", NONE)
    assert RelayReviewer._decide(said_none, _probs(0.8, 0.1, 0.1)) == RelayIntent("join", 2)
    assert RelayReviewer._decide(said_none, _probs(OVERRIDE_AT - 0.01, 0.0, 0.41)) == NONE  # not sure enough
    joined = Reading("+1", RelayIntent("join", 1), held=0)
    assert RelayReviewer._decide(joined, _probs(0.05, 0.9, 0.05)) == RelayIntent("join", 1)  # no cancel of its own
    assert RelayReviewer._decide(joined, _probs(0.1, 0.1, 0.8)) == NONE                      # a misread sign-up
    cancelled = Reading("不要了吗？", RelayIntent("cancel", 0), held=1)
    assert RelayReviewer._decide(cancelled, _probs(0.05, 0.15, 0.8)) == NONE
    assert RelayReviewer._decide(cancelled, _probs(0.8, 0.1, 0.1)) == RelayIntent("cancel", 0)  # cancel → join: no
    # Its own cancellation: only for chatter-read messages of a member who holds units, when sure.
    holder = Reading("家里还有 我那个就算了吧", NONE, held=2)
    assert RelayReviewer._decide(holder, _probs(0.05, CANCEL_AT + 0.05, 0.2)) == RelayIntent("cancel", 0)
    assert RelayReviewer._decide(holder, _probs(0.1, CANCEL_AT - 0.05, 0.25)) == NONE      # not sure enough
    assert RelayReviewer._decide(Reading("家里还有 我那个就算了吧", NONE, held=0),
                                 _probs(0.05, 0.9, 0.05)) == NONE                           # holds nothing
    assert RelayReviewer._decide(Reading("那个就算了吧", NONE, held=2, organiser=True),
                                 _probs(0.05, 0.9, 0.05)) == NONE                           # the organiser


def _toy() -> tuple[list[Reading], list[str]]:
    """Sign-ups the rules miss share 都做/也要; chatter shares 谢谢/好的."""
    rs, ys = [], []
    for i in range(30):
        rs.append(Reading(f"我家两台车 一台我的一台{'我儿子 我女儿 我老婆'.split()[i % 3]}的 都做", NONE)); ys.append("join")
        rs.append(Reading(f"我妈也要{i % 4 + 1}份哈", NONE)); ys.append("join")
        rs.append(Reading(f"谢谢团长{'!' * (i % 3)}", NONE)); ys.append("none")
        rs.append(Reading(f"好的收到{'~' * (i % 3)}", NONE)); ys.append("none")
        rs.append(Reading("+1", RelayIntent("join", 1))); ys.append("join")
    return rs, ys


def test_fit_learns_sign_ups_the_rules_missed_and_keeps_chatter():
    rs, ys = _toy()
    model = RelayReviewer.fit(rs, ys)
    got = model.review_many([Reading("我家两台车 一台我的一台我女婿的 都做", NONE), Reading("谢谢团长", NONE), Reading("+1", RelayIntent("join", 1))])
    assert got == [RelayIntent("join", 2), NONE, RelayIntent("join", 1)]
    with pytest.raises(ValueError):
        RelayReviewer.fit(rs[:2], ["join", "maybe"])


def test_reader_applies_the_reviewer_to_texts_and_records_what_it_saw():
    rs, ys = _toy()
    reader = RelayReader(RelayReviewer.fit(rs, ys))
    reader.read("【接龙】洗车卡 99元 限2张", "店长")
    text = "我家两台车 一台我的一台我儿子的 都做"
    assert RelayReader().read(text, "老王") == NONE  # the rules alone
    assert reader.read(text, "老王") == RelayIntent("join", 2)
    assert reader.held["老王"] == 2
    assert reader.last_reading == Reading(text, NONE, 0, False)  # the rules' answer, before review


def test_stored_reviewer_is_reused_for_the_same_data_and_retrained_for_other(tmp_path):
    rs, ys = _toy()
    calls = []

    def train(encoder):
        calls.append(encoder)
        return RelayReviewer.fit(rs, ys)

    path = tmp_path / "relay_reviewer.joblib"
    first = load_or_train(path, None, train, "fp-1")
    again = load_or_train(path, None, train, "fp-1")
    assert len(calls) == 1 and path.is_file()
    text = "我家两台车 一台我的一台我女儿的 都做"
    assert again.review(Reading(text, NONE)) == first.review(Reading(text, NONE)) == RelayIntent("join", 2)
    load_or_train(path, None, train, "fp-2")  # other training data: retrained
    assert len(calls) == 2
    path.write_bytes(b"not a joblib file")
    assert load_or_train(path, None, train, "fp-2") is not None and len(calls) == 3
    assert load_or_train(tmp_path / "none.joblib", None, lambda e: None, "fp") is None


class _Override:
    """Reads every unrecognised text as a sign-up of two (to see the service apply it)."""

    def __init__(self):
        self.seen = []

    def review(self, reading: Reading) -> RelayIntent:
        self.seen.append(reading)
        return RelayIntent("join", 2) if reading.rules.action == "none" else reading.rules


async def test_service_applies_the_reviewer_with_the_senders_holding(client, parts, admin_headers):
    resp = await client.post("/api/v1/tokens", json={"role": "staff", "name": "导购", "userid": "dg"}, headers=admin_headers)
    staff = {"Authorization": f"Bearer {(await resp.json())['token']}"}
    relay = await (await client.post("/api/v1/relays", json={"chat_id": "wrR", "title": "洗车卡", "stock": 10,
                                                              "per_user_limit": 5}, headers=staff)).json()
    reviewer = _Override()
    parts.relays.reviewer = reviewer

    async def say(sender, text):
        r = await client.post(f"/api/v1/relays/{relay['id']}/messages",
                              json={"sender_id": sender, "sender_name": sender, "text": text}, headers=staff)
        assert r.status == 200
        return await r.json()

    assert (await say("c1", "+1"))["confirmed_quantity"] == 1
    got = await say("c1", "我家两台车 一台我的一台我儿子的 都做")
    assert (got["action"], got["quantity"], got["confirmed_quantity"]) == ("join", 2, 3)
    assert [(r.rules.action, r.held) for r in reviewer.seen] == [("none", 1)]  # "+1" is the rules' alone
    parts.relays.reviewer = None
    assert (await say("c2", "我家两台车 一台我的一台我儿子的 都做"))["action"] == "none"


def test_fast_probabilities_equal_sklearns():
    from bot.relay.review import _context, _proba

    rs, ys = _toy()
    model = RelayReviewer.fit(rs, ys)
    probe = [Reading("我家两台车 一台我的一台我女婿的 都做", NONE), Reading("谢谢", NONE),
             Reading("+1", RelayIntent("join", 1), held=1, organiser=True)]
    ours = _proba(model._weights(model.char_model), model._text_x([r.text for r in probe]), np.array([_context(r) for r in probe]))
    theirs = np.zeros_like(ours)
    theirs[:, model.char_model.classes_] = model.char_model.predict_proba(model._char_x(probe))
    assert np.allclose(ours, theirs, atol=1e-9) and set(model.char_model.classes_) == {0, 2}  # toy: no cancels
    three = RelayReviewer.fit(rs + [Reading("不要了", RelayIntent("cancel", 0), held=1)] * 5, ys + ["cancel"] * 5)
    ours = _proba(three._weights(three.char_model), three._text_x([r.text for r in probe]), np.array([_context(r) for r in probe]))
    assert np.allclose(ours, three.char_model.predict_proba(three._char_x(probe)), atol=1e-9)
