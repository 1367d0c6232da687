"""Text normalisation that keeps a map back to the original text.

Every later stage matches on `Normalized.text` and reports spans in the original through
`Normalized.span`, so that `original[start:end]` is exactly what the user typed, evasions and all.

Steps, per character: NFKC (full-width → half-width, circled numerals ① → 1), traditional →
simplified (OpenCC t2s), lower case, Chinese numerals → digits (一三八, 幺, 两, 壹…), removal of
everything that is not a letter/digit/CJK character (spaces, symbols, emoji) and of WeChat emoji
codes such as `[捂脸]`, and folding of runs of one repeated non-digit character. Two more evasions:
a character written as its components (亻尔 → 你, 女马 → 妈) is joined back, and digits mixed with
Chinese numerals in one long run (1三8 0013 8000) become digits. With `emoji_as_chars` an emoji
that stands for a character (威❤ → 威心, read wei xin) is kept as that character instead of
dropped; the checker tries that form only when such an emoji is present.
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
# A long run of digits with a few Chinese numerals among them is a number written to dodge filters.
_MIXED_RUN = re.compile("[" + "".join(CN_DIGITS) + "0-9]{7,}")


def _mixed_to_digits(m: re.Match) -> str:
    """Numerals between digits become digits (1三8 → 138); at the edges only when the run is a
    mobile number's length, so 张三13900139000 keeps the name's 三."""
    run = m.group()
    if sum(c.isdigit() for c in run) < 3:
        return run
    out = list(run)
    for i, c in enumerate(run):
        if c in CN_DIGITS and ((0 < i < len(run) - 1) or len(run) == 11):
            out[i] = CN_DIGITS[c]
    return "".join(out)


# Emoji people type in place of a character (by sound or picture).
EMOJI_CHARS = {
    "❤": "心", "♥": "心", "💗": "心", "💓": "心", "💕": "心", "💖": "心", "💜": "心", "💙": "心", "💚": "心",
    "🧡": "心", "💛": "心", "🖤": "心", "🤍": "心", "♡": "心", "💰": "钱", "💴": "钱", "💵": "钱", "🐷": "猪",
    "🐖": "猪", "🐶": "狗", "🐕": "狗", "🐴": "马", "🐎": "马", "💩": "屎", "🈶": "有", "🈚": "无", "🉑": "可",
    "🐔": "鸡", "🐓": "鸡", "🐂": "牛", "🐮": "牛", "🌿": "草", "🌱": "草", "🐍": "蛇", "🦢": "鹅", "🐧": "企鹅",
    "🐢": "龟", "🤡": "小丑", "☎": "电话", "📞": "电话", "📱": "手机", "🧧": "红包", "✉": "信", "📧": "信", "💌": "信",
}
# Characters written as their components, side by side.
COMPONENTS = {
    "亻尔": "你", "女马": "妈", "亻也": "他", "女也": "她", "歹匕": "死", "亻言": "信", "彳微": "微", "言身寸": "谢",
    "女干": "奸", "弓虽": "强", "犭句": "狗", "木示": "标", "氵去": "法", "艹屮": "草", "纟工": "红", "钅艮": "银",
    "禾尔": "称", "口卩": "叩", "扌丁": "打", "扌喿": "操", "日寸": "时", "亻吏": "便", "亻氏": "低",
}
_COMPONENT_RE = re.compile("|".join(sorted(map(re.escape, COMPONENTS), key=len, reverse=True)))
_WECHAT_EMOJI = re.compile(r"\[[\u4e00-\u9fffA-Za-z]{1,4}\]|/:[A-Za-z]{1,8}")


@dataclass(frozen=True)
class Normalized:
    original: str
    text: str
    index: tuple[int, ...]  # index[i] = position in `original` of text[i]
    ends: tuple[int, ...] | None = None  # where text[i] ends in `original` when not index[i] + 1 (joined components)

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Normalised [start, end) → original [start, end)."""
        last = self.ends[end - 1] if self.ends is not None else self.index[end - 1] + 1
        return self.index[start], last


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
        if "\u00c0" <= c <= "\u024f":  # Latin with a tone mark or accent (shǎ bī): the bare letter
            c = unicodedata.normalize("NFKD", c)[0]
        cat = unicodedata.category(c)
        if cat[0] in "LN":
            out.append(c)
    s = "".join(out)
    if s and "\u3400" <= s[0] <= "\u9fff":
        s = _t2s().convert(s)
    return s


def normalize(text: str, fold_numerals: bool = True, emoji_as_chars: bool = False) -> Normalized:
    masked = text
    # WeChat emoji codes are removed whole: blank them out keeping positions.
    if "[" in text or "/:" in text:
        masked = _WECHAT_EMOJI.sub(lambda m: "\x00" * len(m.group()), text)
    chars: list[str] = []
    index: list[int] = []
    for i, ch in enumerate(masked):
        if ch == "\x00":
            continue
        form = EMOJI_CHARS.get(ch, "") if emoji_as_chars and ch in EMOJI_CHARS else _char_form(ch)
        for c in form:
            if chars and c == chars[-1] and not c.isdigit() and c not in CN_DIGITS:
                continue  # fold repeats: 加加加 → 加, 微微信 → 微信 (never digits: 零零零 is a number)
            chars.append(c)
            index.append(i)
    out = "".join(chars)
    ends = None
    if any(c in "亻女歹彳言弓犭木氵艹纟钅禾口扌日" for c in out) and _COMPONENT_RE.search(out):
        out, index, ends = _join_components(out, index)
    if fold_numerals and any(c in CN_DIGITS for c in out):
        # Substitutions are one character for one, so the index stays valid.
        out = _NUMERAL_RUN.sub(_numerals_to_digits, out)
        out = _MIXED_RUN.sub(_mixed_to_digits, out)
    if fold_numerals and any(c in "oil" for c in out):
        out = _LETTER_DIGITS.sub(_letter_digits, out)
    if fold_numerals and any("a" <= c <= "z" for c in out):
        if _PINYIN_DIGIT_RUN.search(out):
            out, index, ends = _pinyin_digits(out, index, ends)
        out = _MIXED_RUN.sub(_mixed_to_digits, out)
    return Normalized(text, out, tuple(index), ends)


def _pinyin_digits(out: str, index: list[int], ends) -> tuple[str, list[int], tuple[int, ...]]:
    """yaosanba4567 → 1384567: each syllable becomes one digit spanning its letters."""
    ends = list(ends) if ends is not None else [i + 1 for i in index]
    chars, idx, new_ends, pos = [], [], [], 0
    for m in _PINYIN_DIGIT_RUN.finditer(out):
        if m.start() > 0 and out[m.start() - 1].isalpha() and out[m.start() - 1].isascii():
            continue  # inside an English word
        chars.append(out[pos:m.start()])
        idx += index[pos:m.start()]
        new_ends += ends[pos:m.start()]
        i = m.start()
        while i < m.end():
            for syl in sorted(PINYIN_DIGITS, key=len, reverse=True):
                if out.startswith(syl, i) and i + len(syl) <= m.end():
                    chars.append(PINYIN_DIGITS[syl])
                    idx.append(index[i])
                    new_ends.append(ends[i + len(syl) - 1])
                    i += len(syl)
                    break
            else:
                chars.append(out[i])
                idx.append(index[i])
                new_ends.append(ends[i])
                i += 1
        pos = m.end()
    chars.append(out[pos:])
    idx += index[pos:]
    new_ends += ends[pos:]
    return "".join(chars), idx, tuple(new_ends)


def _join_components(out: str, index: list[int]) -> tuple[str, list[int], tuple[int, ...]]:
    """亻尔 → 你: the joined character starts at its first component and ends after its last."""
    chars, idx, ends, pos = [], [], [], 0
    for m in _COMPONENT_RE.finditer(out):
        chars.append(out[pos:m.start()])
        idx += index[pos:m.start()]
        ends += [i + 1 for i in index[pos:m.start()]]
        chars.append(COMPONENTS[m.group()])
        idx.append(index[m.start()])
        ends.append(index[m.end() - 1] + 1)
        pos = m.end()
    chars.append(out[pos:])
    idx += index[pos:]
    ends += [i + 1 for i in index[pos:]]
    return "".join(chars), idx, tuple(ends)


# Letters typed for digits inside a long number (身份证33O1O6I998…: O for 0, I/l for 1).
_LETTER_DIGITS = re.compile(r"(?<![a-z])[0-9oil]{8,}(?![a-z])")
# Numbers read out in pinyin (yao san ba …).
PINYIN_DIGITS = {"ling": "0", "yao": "1", "yi": "1", "er": "2", "san": "3", "si": "4", "wu": "5", "liu": "6",
                 "qi": "7", "ba": "8", "jiu": "9", "dong": "0", "gou": "9", "guai": "7", "lia": "2"}
_PINYIN_DIGIT_RUN = re.compile("(?:" + "|".join(sorted(PINYIN_DIGITS, key=len, reverse=True)) + "){3,}")


def _letter_digits(m: re.Match) -> str:
    run = m.group()
    core = run.strip("oil")  # letters at the edges belong to the words around the number
    if sum(c.isdigit() for c in core) < 6:
        return run
    lead = run[:len(run) - len(run.lstrip("oil"))]
    return lead + core.replace("o", "0").replace("i", "1").replace("l", "1") + run[len(lead) + len(core):]


def has_emoji_chars(text: str) -> bool:
    return any(ch in EMOJI_CHARS for ch in text)
