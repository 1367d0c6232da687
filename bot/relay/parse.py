"""Understanding group messages for a relay (自动接龙): join, cancel, or chatter.

Forms understood: 接龙, +1/+2, 接龙2份, 我要两份, 报名 x2, 算我一份, 再来一份, 跟团, 2份 (short),
取消, 不要了, 帮我取消, 取消一份, -1, 减一, and WeChat's native list (`#接龙` + the whole list
with the sender's line appended), whose new line is found by diffing against the relay's
canonical lines rather than by trusting its numbering.
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable

CN_NUM = {"一": 1, "壹": 1, "两": 2, "俩": 2, "二": 2, "贰": 2, "三": 3, "叁": 3, "四": 4, "五": 5, "六": 6,
          "七": 7, "八": 8, "九": 9, "十": 10}
NUM = r"(\d{1,3}|[一壹两俩二贰三叁四五六七八九十])"
UNIT = r"(份|个|盒|件|箱|斤|只|套|袋|瓶|组|单)"


@dataclass(frozen=True)
class RelayIntent:
    action: str          # join | cancel | none
    quantity: int        # for cancel, 0 means "everything I have"
    line: str = ""       # native-list line that carried the sign-up


NONE = RelayIntent("none", 0)


@lru_cache(maxsize=1)
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


def _clean(text: str) -> str:
    t = _t2s().convert(unicodedata.normalize("NFKC", text)).lower()
    t = re.sub(r"\[[^\]]{1,6}\]", "", t)  # WeChat emoji codes
    return re.sub(r"\s+", "", t)


def _num(tok: str | None, default: int = 1) -> int:
    if not tok:
        return default
    if tok.isdigit():
        return int(tok)
    return CN_NUM.get(tok, default)


_QUESTION = re.compile(r"(吗|么|嘛|\?|？|呢|能不能|可不可以|要不要|是不是|怎么|如何|多少|几)$"
                       r"|怎么|如何|要不要|能不能|可以.*吗|多少|几点|几号|哪里|什么")
_CANCEL_QTY = [
    re.compile(r"^-" + NUM + UNIT + r"?$"),
    re.compile(r"^减" + NUM + UNIT + r"?"),
    re.compile(r"(取消|退掉|退出|撤回?|不要)" + NUM + UNIT),
    re.compile(r"(取消|退)" + r"(掉)?" + NUM + UNIT),
]
_CANCEL_ALL = re.compile(r"取消|不要了|退出接龙|退出|我退了|撤了|不参加了|不跟了|算了不要|删掉我|去掉我")
_JOIN_PATTERNS = [
    re.compile(r"^\+" + NUM + UNIT + r"?"),
    re.compile(r"^加" + NUM + r"$"),
    re.compile(r"接龙\+?" + NUM + UNIT),
    re.compile(r"接龙\+" + NUM),
    re.compile(r"[x×*]" + NUM + UNIT + r"?$"),
    re.compile(r"(我要|要|来|订|报名|报|算我|跟团|跟|接|拍|留|帮我接|帮我报|帮我留|给我来|再来|再要|再加|加)" + NUM + UNIT),
    re.compile(r"^" + NUM + UNIT + r"$"),
    re.compile(r"^(我要|要|来|算我)" + NUM + r"$"),
]
_JOIN_PLAIN = re.compile(r"^(\+|接龙|接|报名|跟团|跟|算我一个|算我|我要|要|我也要|我也接|我接|加我|我报名|报)")
_JOIN_ANY = re.compile(r"接龙|报名|跟团|\+\d")
_LIST_LINE = re.compile(r"^\s*(\d{1,4})\s*[.、．:：)）]\s*(.+?)\s*$")


def _intent_from_text(t: str) -> RelayIntent:
    if not t:
        return NONE
    for pat in _CANCEL_QTY:
        m = pat.search(t)
        if m:
            nums = [g for g in m.groups() if g and (g.isdigit() or g in CN_NUM)]
            return RelayIntent("cancel", _num(nums[0] if nums else None))
    if _CANCEL_ALL.search(t) and not t.endswith(("吗", "么", "?")):
        return RelayIntent("cancel", 0)
    if t.startswith("-") and len(t) <= 3:
        return RelayIntent("cancel", 1)
    questionish = bool(_QUESTION.search(t)) and not t.startswith("+")
    for pat in _JOIN_PATTERNS:
        m = pat.search(t)
        if m and not questionish:
            nums = [g for g in m.groups() if g and (g.isdigit() or g in CN_NUM)]
            q = _num(nums[0] if nums else None)
            return RelayIntent("join", q) if 0 < q <= 999 else NONE
    if questionish:
        return NONE
    if _JOIN_PLAIN.match(t) and len(t) <= 12:
        return RelayIntent("join", 1)
    if _JOIN_ANY.search(t) and len(t) <= 16:
        return RelayIntent("join", 1)
    return NONE


def parse_native_list(text: str) -> tuple[str, list[str]] | None:
    """`#接龙` messages → (header, numbered line contents), or None when the text is not one."""
    stripped = text.strip()
    if not (stripped.startswith("#接龙") or stripped.startswith("＃接龙")):
        return None
    header, lines = [], []
    for raw in stripped.splitlines()[1:]:
        m = _LIST_LINE.match(raw)
        if m:
            lines.append(m.group(2))
        elif not lines and raw.strip():
            header.append(raw.strip())
    return "\n".join(header), lines


def new_lines(message_lines: list[str], canonical: Iterable[str]) -> list[str]:
    """Lines of this message that the relay has not seen (multiset difference; numbering ignored)."""
    seen = Counter(_clean(l) for l in canonical)
    out = []
    for line in message_lines:
        key = _clean(line)
        if seen[key] > 0:
            seen[key] -= 1
        else:
            out.append(line)
    return out


def line_quantity(line: str) -> int:
    t = _clean(line)
    m = re.search(NUM + UNIT, t) or re.search(r"[x×*+]" + NUM, t)
    return _num(m.group(1)) if m else 1


def understand(text: str, canonical_lines: Iterable[str] = (), sender_name: str = "") -> RelayIntent:
    native = parse_native_list(text)
    if native is None:
        return _intent_from_text(_clean(text))
    _header, lines = native
    canonical = list(canonical_lines)
    added = new_lines(lines, canonical)
    if added:
        # The sender appended their line (or lines: take them all as one sign-up of their sum).
        qty = sum(line_quantity(l) for l in added)
        return RelayIntent("join", max(1, qty), "\n".join(added))
    if sender_name:
        # No new line and the sender's own line is gone: they removed themselves.
        had = [l for l in canonical if _clean(sender_name) and _clean(sender_name) in _clean(l)]
        kept = [l for l in lines if _clean(sender_name) and _clean(sender_name) in _clean(l)]
        if had and not kept:
            return RelayIntent("cancel", 0)
    return NONE
