"""Regional and chat spellings rewritten into standard Mandarin for matching (not for display).

Customers write Wu (侬 阿拉 伐 几钿), Cantonese (唔 喺 嘅 几多钱 睇), south-western and northern
forms (好多钱 咋 啥 俺), internet shorthand and Zhuyin particles (ㄉ ㄇ). The sentence encoder and
the character index were built on standard written Chinese, so "地库停车一个钟头几钿" lands far from
"停车怎么收费" until 几钿 reads 多少钱. The table is ordered longest first; single characters are
only rewritten where they cannot be part of an ordinary word (伐 closing a clause, 唔 before a verb).
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# (regional form, standard form). Multi-character forms first; the regex alternation takes the
# first alternative that matches at a position, so longer forms must precede their prefixes.
_PAIRS: tuple[tuple[str, str], ...] = (
    # Wu (Shanghai, Suzhou, Ningbo)
    ("几钿", "多少钱"), ("多少钿", "多少钱"), ("啥辰光", "什么时候"), ("辰光", "时候"), ("今朝", "今天"),
    ("明朝", "明天"), ("昨日", "昨天"), ("啥地方", "哪里"), ("阿拉", "我们"), ("侬", "你"), ("倷", "你"),
    ("覅", "不要"), ("交关", "很"), ("物事", "东西"), ("困觉", "睡觉"), ("欢喜", "喜欢"), ("几化", "多少"),
    ("晓得伐", "知道吗"), ("好伐", "好吗"), ("可以伐", "可以吗"), ("有伐", "有吗"), ("搿", "这"),
    ("一道", "一起"), ("老灵", "很好"),
    # Cantonese
    ("几多钱", "多少钱"), ("几多", "多少"), ("几钱", "多少钱"), ("系唔系", "是不是"), ("系咪", "是不是"),
    ("有冇", "有没有"), ("得唔得", "行不行"), ("使唔使", "要不要"), ("可唔可以", "可不可以"), ("要唔要", "要不要"),
    ("边度", "哪里"), ("边层", "哪一层"), ("边间", "哪一家"), ("边个", "哪个"), ("边款", "哪款"), ("喺边", "在哪"),
    ("乜嘢", "什么"), ("咩嘢", "什么"), ("点样", "怎样"), ("点解", "为什么"), ("点算", "怎么办"), ("而家", "现在"),
    ("听日", "明天"), ("琴日", "昨天"), ("尋日", "昨天"), ("几时", "什么时候"), ("屋企", "家里"), ("唔该", "谢谢"),
    ("埋单", "结账"), ("平啲", "便宜点"), ("多啲", "多点"), ("少啲", "少点"), ("咁样", "这样"), ("嘅", "的"),
    ("咗", "了"), ("佢哋", "他们"), ("佢", "他"), ("喺", "在"), ("冇", "没有"), ("揾", "找"), ("睇", "看"),
    ("呢个", "这个"), ("呢款", "这款"), ("呢度", "这里"), ("嗰个", "那个"), ("嗰度", "那里"), ("攞", "拿"), ("畀", "给"), ("啲", "些"), ("嘢", "东西"), ("靓", "漂亮"), ("唔", "不"), ("咩", "什么"),
    # South-western, central and northern
    ("好多钱", "多少钱"), ("么子", "什么"), ("冇得", "没有"), ("木有", "没有"), ("神马", "什么"), ("肿么", "怎么"),
    ("咋个", "怎么"), ("咋样", "怎么样"), ("咋办", "怎么办"), ("咋", "怎么"), ("啥时候", "什么时候"), ("啥", "什么"),
    ("俺们", "我们"), ("俺", "我"), ("中不中", "行不行"), ("要得", "好的"), ("晓得", "知道"), ("啷个", "怎么"),
    # Zhuyin particles typed for speed in Taiwan
    ("ㄉ", "的"), ("ㄇ", "吗"), ("ㄅ", "吧"), ("ㄋ", "呢"),
)
# 伐 as the Wu question particle: at the end of a clause only (伐木 and 步伐 stay as they are).
_FA = re.compile(r"(?<=[\u4e00-\u9fff])(?<![步讨征北杀砍采])伐(?=$|[\s,，.。!！?？~～…]|[啦呀])")


@lru_cache(maxsize=1)
def _pattern() -> re.Pattern:
    keys = sorted({k for k, _ in _PAIRS}, key=len, reverse=True)
    return re.compile("|".join(re.escape(k) for k in keys))


@lru_cache(maxsize=1)
def _table() -> dict[str, str]:
    return dict(_PAIRS)


@lru_cache(maxsize=1)
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


def standardise(text: str) -> str:
    """Simplified characters, standard Mandarin words; length may change (use for matching only)."""
    t = _t2s().convert(unicodedata.normalize("NFKC", text))
    t = _FA.sub("吗", t)
    table = _table()
    return _pattern().sub(lambda m: table[m.group(0)], t)
