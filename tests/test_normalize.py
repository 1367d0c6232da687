"""Every normalisation rule, with offsets back into the original text."""
from __future__ import annotations

import pytest

from nlp.normalize import normalize


@pytest.mark.parametrize("text,expected", [
    ("ＡＢＣ１２３", "abc123"),                 # full-width → half-width, case folding
    ("發貨了嗎", "发货了吗"),                   # traditional → simplified
    ("加 我 V 信", "加我v信"),                  # spaces and case
    ("加-我*微❤信", "加我微信"),                # symbols and emoji between characters
    ("发货[捂脸]了吗/:rose", "发货了吗"),       # WeChat emoji codes
    ("加加加我微微信", "加我微信"),             # repeated characters folded
    ("一三八 一二三四 五六七八", "13812345678"),  # Chinese numerals → digits
    ("幺八六零零零零一一一一", "18600001111"),   # 幺 and repeated numerals are not folded
    ("①③⑧", "138"),                           # circled numerals
    ("壹贰叁", "123"),                          # financial numerals
    ("我要两个", "我要两个"),                   # a lone numeral word stays a word
    ("张三13900139000", "张三13900139000"),     # a name's numeral is not glued to a number
])
def test_rules(text, expected):
    assert normalize(text).text == expected


@pytest.mark.parametrize("text", ["加 我 V 信", "加-我*微❤信", "發貨[捂脸]了嗎", "一三八 一二三四 五六七八",
                                  "加加加我微微信", "①③⑧１２３", "😀a😀b"])
def test_every_char_maps_back(text):
    n = normalize(text)
    assert len(n.index) == len(n.text)
    assert list(n.index) == sorted(n.index)
    for i, c in enumerate(n.text):
        original = text[n.index[i]]
        assert normalize(original, fold_numerals=False).text in (c, "") or c.isdigit()


def test_span_maps_to_original_substring():
    text = "亲，加 我 V 信 吧"
    n = normalize(text)
    start = n.text.index("加我v信")
    s, e = n.span(start, start + 4)
    assert text[s:e] == "加 我 V 信"


def test_empty_and_symbol_only():
    assert normalize("").text == ""
    assert normalize("！！！ ～～").text == ""
