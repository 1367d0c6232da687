"""Fuzz targets: the normaliser's offset map (nlp/normalize.py), sensitive hits mapped back to the
original text, and the relay parser (bot/relay/parse.py): no exceptions, valid offsets, bounded
quantities."""
from __future__ import annotations

from functools import lru_cache

from hypothesis import given, strategies as st

from bot.relay.parse import RelayReader, understand
from nlp.normalize import normalize

# Characters the normaliser treats specially, mixed with anything at all.
SPECIAL = list("零一二三四五六七八九十壹贰两oilOIL0123456789微信VX薇亻言口木氵艹[]/:加+＋＃#ｗｅｃｈａｔ　 \t\n💰🐶😀"
               "̀ﬁ①㈠") + ["weixin", "ling", "yao", "san", "[微笑]", "/:smile", "шǎ", "丨"]
TEXT = st.one_of(
    st.text(max_size=200),
    st.text(alphabet=st.characters(exclude_categories=()), max_size=120),
    st.lists(st.one_of(st.sampled_from(SPECIAL), st.text(max_size=3)), max_size=60).map("".join),
)


@given(TEXT, st.booleans(), st.booleans())
def test_normalize_offsets_are_valid(text, fold, emoji):
    n = normalize(text, fold_numerals=fold, emoji_as_chars=emoji)
    assert n.original == text
    assert len(n.index) == len(n.text)
    assert all(0 <= i < len(text) for i in n.index)
    assert list(n.index) == sorted(n.index)
    if n.ends is not None:
        assert len(n.ends) == len(n.text)
    for start in range(len(n.text)):
        for end in (start + 1, len(n.text)):
            s, e = n.span(start, end)
            assert 0 <= s < e <= len(text)


@lru_cache(maxsize=1)
def _checker():
    from nlp.sensitive import LexiconSet

    return LexiconSet().checker()


HOSTILE = SPECIAL + ["傻逼", "加我微信", "最低价", "13800138000", "１３８００１３８０００", "vx", "qq", "红包", "转账", "草泥马",
                     "110101199003077777", "6222020200112233445", "根治", "100%有效"]


@given(st.one_of(TEXT, st.lists(st.sampled_from(HOSTILE), max_size=12).map("".join)), st.sampled_from(["customer", "staff"]))
def test_sensitive_hits_map_back_to_the_original(text, role):
    for hit in _checker().check(text, role):
        assert 0 <= hit.start < hit.end <= len(text)
        assert text[hit.start:hit.end] == hit.match


RELAY_WORDS = ["接龙", "+1", "+2", "+999", "+1000", "+99999999999999999999", "-1", "-3", "取消", "不要了", "我要", "两份",
               "三份", "十二", "二十五", "九十九", "报名", "x2", "×3", "*4", "份", "个", "盒", "#接龙", "\n", "1. ", "2、",
               "张三", "李四 +2", "一共", "再来", "吗", "?", " ", "123", "1000000", "一百", "千", "。", "，", "~", "!", "次", "各",
               "wo yao", "minus 1", "一人", "的"]


@given(st.one_of(st.text(max_size=200), st.lists(st.sampled_from(RELAY_WORDS), max_size=30).map("".join)),
       st.text(max_size=20))
def test_relay_parser_never_raises_and_bounds_quantities(text, name):
    intent = understand(text, sender_name=name)
    # "set" is a stated total ("改成两份", "一共三瓶"); resolve() turns it into a join or a cancel
    assert intent.action in ("join", "cancel", "none", "set")
    assert 0 <= intent.quantity <= 999
    if intent.action == "join":
        assert intent.quantity >= 1


@given(st.lists(st.tuples(st.one_of(st.text(max_size=80), st.lists(st.sampled_from(RELAY_WORDS), max_size=20).map("".join)),
                          st.text(max_size=10)), max_size=8))
def test_relay_reader_over_a_conversation(messages):
    reader = RelayReader()
    for text, name in messages:
        intent = reader.read(text, name)
        assert intent.action in ("join", "cancel", "none")
        assert 0 <= intent.quantity <= 999
