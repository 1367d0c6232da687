"""Text normalisation that keeps a map back to the original text.

Every later stage matches on `Normalized.text` and reports spans in the original through
`Normalized.span`, so that `original[start:end]` is exactly what the user typed, evasions and all.

Steps, per character: NFKC (full-width → half-width, circled numerals ① → 1), traditional →
simplified (OpenCC t2s), lower case, Chinese numerals → digits (一三八, 幺, 两, 壹…), removal of
everything that is not a letter/digit/CJK character (spaces, symbols, emoji) and of WeChat emoji
codes such as `[捂脸]`, and folding of runs of one repeated non-digit character.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

CN_DIGITS = {
    "零": "0", "〇": "0", "洞": "0", "一": "1", "幺": "1", "壹": "1", "二": "2", "两": "2", "贰": "2", "俩": "2",
    "三": "3", "叁": "3", "四": "4", "肆": "4", "五": "5", "伍": "5", "六": "6", "陆": "6", "七": "7", "柒": "7",
    "拐": "7", "八": "8", "捌": "8", "九": "9", "玖": "9", "勾": "9",
}
# Only within runs that spell out a number (≥ 3 Chinese numerals), so 一样/两个/三楼 stay words and
# 张三13900139000 keeps its 三.
_NUMERAL_RUN = re.compile("[" + "".join(CN_DIGITS) + "0-9]{3,}")


def _numerals_to_digits(m: re.Match) -> str:
    run = m.group()
    if sum(1 for c in run if c in CN_DIGITS) < 3:
        return run
    return "".join(CN_DIGITS.get(c, c) for c in run)
_WECHAT_EMOJI = re.compile(r"\[[\u4e00-\u9fffA-Za-z]{1,4}\]|/:[A-Za-z]{1,8}")


@dataclass(frozen=True)
class Normalized:
    original: str
    text: str
    index: tuple[int, ...]  # index[i] = position in `original` of text[i]

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Normalised [start, end) → original [start, end)."""
        return self.index[start], self.index[end - 1] + 1


@lru_cache(maxsize=1)
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


@lru_cache(maxsize=65536)
def _char_form(ch: str) -> str:
    """NFKC + simplified + lower-case for one character ('' when it should be dropped)."""
    out = []
    for c in unicodedata.normalize("NFKC", ch):
        c = c.lower()
        cat = unicodedata.category(c)
        if cat[0] in "LN":
            out.append(c)
    s = "".join(out)
    if s and "\u3400" <= s[0] <= "\u9fff":
        s = _t2s().convert(s)
    return s


def normalize(text: str, fold_numerals: bool = True) -> Normalized:
    masked = text
    # WeChat emoji codes are removed whole: blank them out keeping positions.
    if "[" in text or "/:" in text:
        masked = _WECHAT_EMOJI.sub(lambda m: "\x00" * len(m.group()), text)
    chars: list[str] = []
    index: list[int] = []
    for i, ch in enumerate(masked):
        if ch == "\x00":
            continue
        form = _char_form(ch)
        for c in form:
            if chars and c == chars[-1] and not c.isdigit() and c not in CN_DIGITS:
                continue  # fold repeats: 加加加 → 加, 微微信 → 微信 (never digits: 零零零 is a number)
            chars.append(c)
            index.append(i)
    out = "".join(chars)
    if fold_numerals and any(c in CN_DIGITS for c in out):
        out = _NUMERAL_RUN.sub(_numerals_to_digits, out)
    return Normalized(text, out, tuple(index))
