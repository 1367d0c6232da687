"""Sensitive-word checker: Aho-Corasick over normalised text (and over its pinyin, for
homophones), detectors for personal data, an allow-list, and role-aware rules.

Hits are reported with offsets into the ORIGINAL text (docs/API: `POST /api/v1/analyze`).
"""
from __future__ import annotations

import itertools
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable

import ahocorasick

from nlp.context import HitContext
from nlp.normalize import Normalized, has_emoji_chars, normalize

log = logging.getLogger(__name__)

CATEGORIES = ("abuse", "diversion", "ad_law", "privacy")
SEVERITIES = ("high", "medium", "low")
SEVERITY_RANK = {"high": 3, "medium": 2, "low": 1}
BUILTIN_DIR = Path(__file__).resolve().parent / "lexicons"
_CATEGORY_NAME = re.compile(r"^[a-z][a-z0-9_]{1,31}$")


@dataclass(frozen=True)
class Hit:
    category: str
    severity: str
    start: int
    end: int
    match: str
    rule: str

    def to_json(self) -> dict:
        return {"category": self.category, "severity": self.severity, "start": self.start, "end": self.end,
                "match": self.match, "rule": self.rule}


@dataclass(frozen=True)
class Term:
    text: str          # normalised form
    category: str
    severity: str
    roles: str         # any | staff | customer
    rule: str          # "lexicon:<category>:<source term>"


class LexiconError(ValueError):
    pass


# --- lexicon files -------------------------------------------------------------------------
def read_variants(path: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("#"):
                key, _, rest = line.partition("\t")
                out[key.strip()] = rest.split()
    return out


MAX_FORMS = 256  # spellings one lexicon line may expand to ({微信} has 19; two groups 19 x 6)


def expand(term: str, variants: dict[str, list[str]]) -> list[str]:
    """Every spelling of a term with {groups}; refused (before any expansion) past MAX_FORMS."""
    parts = re.split(r"(\{[^}]+\})", term)
    forms = 1
    for p in parts:
        if p.startswith("{") and p.endswith("}"):
            forms *= max(1, len(variants.get(p[1:-1], ())))
            if forms > MAX_FORMS:
                raise LexiconError(f"{term!r} expands to more than {MAX_FORMS} spellings; use fewer variant groups")
    choices = []
    for p in parts:
        if p.startswith("{") and p.endswith("}"):
            key = p[1:-1]
            if key not in variants:
                raise LexiconError(f"unknown variant group {p} in {term!r}")
            # A variant that normalises to nothing (e.g. "+") would turn 加{微信} into a bare 微信.
            choices.append([v for v in variants[key] if normalize(v).text])
        elif p:
            choices.append([p])
    return ["".join(c) for c in itertools.product(*choices)]


def parse_lexicon_line(line: str, category: str) -> tuple[str, str, str] | None:
    line = line.rstrip("\n")
    if not line.strip() or line.lstrip().startswith("#"):
        return None
    cols = line.split("\t")
    term = cols[0].strip()
    severity = (cols[1].strip() if len(cols) > 1 else "medium") or "medium"
    roles = (cols[2].strip() if len(cols) > 2 else "any") or "any"
    if severity not in SEVERITIES:
        raise LexiconError(f"{category}: severity must be high/medium/low, got {severity!r} for {term!r}")
    if roles not in ("any", "staff", "customer"):
        raise LexiconError(f"{category}: roles must be any/staff/customer, got {roles!r} for {term!r}")
    return term, severity, roles


def load_terms(dirs: Iterable[Path]) -> tuple[list[Term], list[str]]:
    dirs = list(dirs)
    variants = read_variants(BUILTIN_DIR / "variants.txt")
    terms: list[Term] = []
    allow: list[str] = []
    for d in dirs:
        if not d.is_dir():
            continue
        for path in sorted(d.glob("*.txt")):
            name = path.stem
            if name == "variants":
                continue
            lines = path.read_text(encoding="utf-8").splitlines()
            if name == "allow":
                for l in lines:
                    # One phrase per line; any tab-separated fields after it (severity, roles) are ignored.
                    phrase = l.split("\t", 1)[0].strip()
                    if phrase and not l.startswith("#"):
                        try:
                            allow += [normalize(form).text for form in expand(phrase, variants)]
                        except LexiconError as exc:
                            log.warning("allow-list line skipped", extra={"file": str(path), "error": str(exc)})
                continue
            if not _CATEGORY_NAME.match(name):
                continue
            for n, line in enumerate(lines, 1):
                try:
                    parsed = parse_lexicon_line(line, name)
                    if parsed is None:
                        continue
                    term, severity, roles = parsed
                    forms = expand(term, variants)
                except LexiconError as exc:
                    # A bad stored line is skipped, never a reason for the service not to start.
                    log.warning("lexicon line skipped", extra={"file": str(path), "line": n, "error": str(exc)})
                    continue
                for form in forms:
                    norm = normalize(form).text
                    if norm:
                        terms.append(Term(norm, name, severity, roles, f"lexicon:{name}:{term}"))
    return terms, allow


# --- pinyin (homophones: 薇信/威信/维信 all read wei xin) ------------------------------------
_PINYIN: dict[str, str] | None = None


def _pinyin_table() -> dict[str, str]:
    global _PINYIN
    if _PINYIN is None:
        from pypinyin.pinyin_dict import pinyin_dict

        table = {}
        for code, readings in pinyin_dict.items():
            first = readings.split(",")[0]
            table[chr(code)] = unicodedata_strip_tones(first)
        _PINYIN = table
    return _PINYIN


def unicodedata_strip_tones(s: str) -> str:
    import unicodedata

    return "".join(c for c in unicodedata.normalize("NFD", s) if not unicodedata.combining(c)).replace("ü", "v")


@lru_cache(maxsize=1)
def _syllables() -> frozenset[str]:
    return frozenset(_pinyin_table().values())


_LATIN_RUN = re.compile(r"[a-z]{2,}")


def segment_pinyin(run: str) -> list[tuple[int, int]] | None:
    """'weixin' → [(0, 3), (3, 6)]: the run as whole pinyin syllables (fewest syllables), or None."""
    syl = _syllables()
    best: list[list[tuple[int, int]] | None] = [None] * (len(run) + 1)
    best[0] = []
    for i in range(len(run)):
        if best[i] is None:
            continue
        for j in range(min(len(run), i + 6), i, -1):
            if run[i:j] in syl and (best[j] is None or len(best[i]) + 1 < len(best[j])):
                best[j] = best[i] + [(i, j)]
    return best[len(run)]


def latin_word_breaks(n: Normalized) -> frozenset[int]:
    """Positions of the normalised text that start a new Latin word in the original (the spaces and
    symbols between words are gone after normalising)."""
    t, idx = n.text, n.index
    return frozenset(i for i in range(1, len(t))
                     if t[i].isascii() and t[i].isalpha() and t[i - 1].isascii() and t[i - 1].isalpha()
                     and idx[i] > idx[i - 1] + 1)


def _pinyin_words(run: str, start: int, breaks: frozenset[int]) -> list[tuple[int, int]]:
    """Syllable spans (absolute) of a Latin run. The whole run when it reads as pinyin ('weixin');
    else, split where the original text had a space or symbol between words ("price zui di jia
    in"), the words that read as pinyin — a lone one-syllable word only beside another pinyin word
    ('gun' or 'fan' in an English sentence is English)."""
    seg = segment_pinyin(run)
    if seg:
        return [(start + a, start + b) for a, b in seg]
    cuts = [0] + [b - start for b in sorted(breaks) if start < b < start + len(run)] + [len(run)]
    words = [(a, b, segment_pinyin(run[a:b])) for a, b in zip(cuts, cuts[1:])]
    out = []
    for k, (a, b, sg) in enumerate(words):
        if not sg:
            continue
        beside = (k > 0 and words[k - 1][2]) or (k + 1 < len(words) and words[k + 1][2])
        if len(sg) >= 2 or beside:
            out += [(start + a + x, start + a + y) for x, y in sg]
    return out


def pinyin_key(text: str, breaks: frozenset[int] = frozenset()) -> tuple[str, list[tuple[int, int]]]:
    """'加我薇信' → '|jia|wo|wei|xin|' and, per syllable, its span in `text`. Romanised runs count
    too ('加我weixin' reads the same); characters without a reading break adjacency. `breaks`:
    positions of `text` where the original had a word boundary inside a Latin run."""
    table = _pinyin_table()
    out, spans = ["|"], []
    latin = {m.start(): m for m in _LATIN_RUN.finditer(text)} if any("a" <= c <= "z" for c in text) else {}
    i = 0
    while i < len(text):
        m = latin.get(i)
        if m is not None:
            for a, b in _pinyin_words(m.group(), i, breaks):
                out.append(text[a:b] + "|")
                spans.append((a, b))
            i = m.end()
            continue
        syl = table.get(text[i])
        if syl is not None:
            out.append(syl + "|")
            spans.append((i, i + 1))
        i += 1
    return "".join(out), spans


# --- detectors for personal data ---------------------------------------------------------------
_MOBILE = re.compile(r"(?<!\d)(?:86)?(1[3-9]\d{9})(?!\d)")
_TW_MOBILE = re.compile(r"(?<!\d)09\d{8}(?!\d)")
_HK_PHONE = re.compile(r"(?<!\d)[569]\d{7}(?!\d)")
_PHONE_CONTEXT = re.compile(r"电话|手机|号码|联系|call|whatsapp|wa|打我|致电|电联")
_TW_ID = re.compile(r"(?<![a-z\d])[a-z][12]\d{8}(?!\d)")
_HK_ID = re.compile(r"(?<![a-z\d])[a-z]{1,2}\d{6}[\da](?![\d])")
_PASSPORT = re.compile(r"(?<![a-z\d])[eg]\d{8}(?!\d)")
_STREET = re.compile(r"[\u4e00-\u9fff]{2,12}(路|街|大道|巷|弄|道)\d{1,5}号")
_BUILDING = re.compile(r"\d{1,3}(栋|幢|号楼|楼|座|单元|门|期|舍)|[a-z]座|\d{3,5}(室|房)?$|\d{3,5}(室|房)")
_ID18 = re.compile(r"(?<!\d)\d{17}[\dx](?!\d)")
_CARD = re.compile(r"(?<!\d)\d{16,19}(?!\d)")
_ADDRESS = re.compile(r"[\u4e00-\u9fff]{1,12}(路|街|大道|巷|弄|村)\d{1,5}号[\u4e00-\u9fffa-z\d]{0,16}?\d{1,4}(室|房|号房)"
                      r"|\d{1,3}(栋|幢|号楼|号院)\d{1,2}单元\d{2,5}(室|房)?"
                      r"|(小区|花园|公寓|大厦|苑)\d{1,3}(栋|幢|号楼)\d{2,5}(室|房)?")
# A WeChat/QQ handle written out: 微信/vx/wx/v + an ID, or QQ + a number.
_WECHAT_ID = re.compile(r"(微信|威信|薇信|vx|wx|v信|v)(号|是|id)?([a-z][a-z0-9_\-]{5,19}|1[3-9]\d{9})(?![a-z0-9])")
_QQ_NUMBER = re.compile(r"(qq|扣扣|扣|企鹅|q)(号|是)?[1-9]\d{4,10}(?!\d)")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10x98765432"
_ID_CONTEXT = re.compile(r"身份证|证件|身份号|身分证|护照|通行证|居留")
_NOT_A_CARD = re.compile(r"订单|单号|快递|运单|物流|编号|流水|序列号|sn|imei")
_CARD_CONTEXT = re.compile(r"卡|银行|账号|帐号|储蓄|信用")


def id_checksum_ok(s: str) -> bool:
    total = sum(int(c) * w for c, w in zip(s[:17], _ID_WEIGHTS))
    return _ID_CHECK[total % 11] == s[17] and s[6:8] in ("19", "20") and 1 <= int(s[10:12]) <= 12


def luhn_ok(s: str) -> bool:
    total = 0
    for i, c in enumerate(reversed(s)):
        d = int(c)
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def detect_personal(norm: str) -> list[tuple[int, int, str, str]]:
    """(start, end, severity, rule) in normalised coordinates."""
    found = []
    for m in _ID18.finditer(norm):
        if id_checksum_ok(m.group()):
            found.append((m.start(), m.end(), "high", "detector:id_card"))
        elif _ID_CONTEXT.search(norm[max(0, m.start() - 8): m.start()]):
            # A mistyped ID is still personal data when the customer says it is one.
            found.append((m.start(), m.end(), "medium", "detector:id_card_context"))
    for m in _MOBILE.finditer(norm):
        found.append((m.start(1), m.end(1), "high", "detector:mobile"))
    for m in _TW_MOBILE.finditer(norm):
        found.append((m.start(), m.end(), "high", "detector:mobile"))
    for m in _HK_PHONE.finditer(norm):
        if _PHONE_CONTEXT.search(norm[max(0, m.start() - 8): m.start()]):
            found.append((m.start(), m.end(), "medium", "detector:phone_context"))
    for pat in (_TW_ID, _HK_ID, _PASSPORT):
        for m in pat.finditer(norm):
            if _ID_CONTEXT.search(norm[max(0, m.start() - 10): m.start()]):
                found.append((m.start(), m.end(), "medium", "detector:id_document"))
    for m in _CARD.finditer(norm):
        s = m.group()
        if any(a <= m.start() < b for a, b, *_ in found):
            continue
        context = norm[max(0, m.start() - 12): m.start()] + norm[m.end(): m.end() + 6]
        if _NOT_A_CARD.search(norm[max(0, m.start() - 8): m.start()]):
            continue  # an order or tracking number
        if luhn_ok(s) and (s.startswith("62") or _CARD_CONTEXT.search(context)):
            found.append((m.start(), m.end(), "high", "detector:bank_card"))
        elif _CARD_CONTEXT.search(context) or s.startswith(("62", "4", "5")):
            # A card number with a slip (or made up) is still a card number when it is called one.
            found.append((m.start(), m.end(), "medium", "detector:bank_card_context"))
    for m in _ADDRESS.finditer(norm):
        if _shop_address(norm, m.start()):
            continue  # a shop's published address, not a person's
        found.append((m.start(), m.end(), "medium", "detector:address"))
    for m in _STREET.finditer(norm):
        # A street number followed by a building or room is somebody's address (a shop's address
        # alone, 中山路88号, is not reported).
        tail = norm[m.end(): m.end() + 24]
        b = _BUILDING.search(tail)
        if b and not any(a <= m.start() < z for a, z, *_ in found) and not _shop_address(norm, m.start()):
            found.append((m.start(), m.end() + b.end(), "medium", "detector:address"))
    return found


_SHOP_ADDRESS = re.compile(r"本店|门店|店址|我们店|我们的店|专柜|店铺|旗舰店|分店|商场|总店|体验店|柜台")
_OPENING_HOURS = re.compile(r"营业时间|营业到|开门时间|\d{1,2}[:：]\d{2}\s*[-~至到]\s*\d{1,2}[:：]\d{2}")


def _shop_address(norm: str, start: int) -> bool:
    return bool(_SHOP_ADDRESS.search(norm[max(0, start - 8): start + 3]) or _OPENING_HOURS.search(norm))


_HANDLE_SEPARATOR = re.compile(r"[\s:：\-_=＝]|号|是")


def detect_handles(norm: str, n: Normalized | None = None) -> list[tuple[int, int, str, str]]:
    found = []
    for m in _WECHAT_ID.finditer(norm):
        prefix, handle = m.group(1), m.group(3)
        if prefix.isascii():
            # A bare v/vx/wx is a handle only as a label: not inside a Latin word (vista sp1,
            # movie2020), the handle carrying a digit or written after a separator (V:abc_123).
            if m.start() > 0 and norm[m.start() - 1].isascii() and norm[m.start() - 1].isalpha():
                continue
            between = n.original[n.span(m.start(1), m.end(1))[1]:n.span(m.start(3), m.start(3) + 1)[0]] if n else ":"
            if not handle.isdigit() and not (_HANDLE_SEPARATOR.search(between) or m.group(2)):
                continue
        found.append((m.start(), m.end(), "high", "detector:wechat_id"))
    found += [(m.start(), m.end(), "high", "detector:qq_number") for m in _QQ_NUMBER.finditer(norm)]
    return found


# --- the checker ---------------------------------------------------------------------------
class SensitiveChecker:
    """Immutable once built; `LexiconSet` swaps in a new one on reload."""

    def __init__(self, terms: list[Term], allow: list[str]) -> None:
        self.terms = terms
        self._auto = ahocorasick.Automaton()
        grouped: dict[str, list[Term]] = {}
        for t in terms:
            grouped.setdefault(t.text, []).append(t)
        for text, ts in grouped.items():
            self._auto.add_word(text, (len(text), tuple(ts)))
        self._auto.make_automaton() if grouped else None
        self._terms_by_text = {text: {t.category for t in ts} for text, ts in grouped.items()}
        self._has_terms = bool(grouped)
        # Homophone automaton: pinyin of CJK terms of ≥ 2 characters for abuse and diversion, and of
        # ≥ 3 characters for ad_law (its 2-character words are common words whose homophones abound).
        self._py = ahocorasick.Automaton()
        py_grouped: dict[str, list[Term]] = {}
        for t in terms:
            min_len = 3 if t.category == "ad_law" else 2
            if t.category in ("diversion", "abuse", "ad_law") and len(t.text) >= min_len \
                    and all("\u4e00" <= c <= "\u9fff" for c in t.text):
                key, spans = pinyin_key(t.text)
                if len(spans) == len(t.text):
                    py_grouped.setdefault(key, []).append(t)
        for key, ts in py_grouped.items():
            self._py.add_word(key, (key.count("|") - 1, tuple(ts)))
        self._has_py = bool(py_grouped)
        if self._has_py:
            self._py.make_automaton()
        self._allow = ahocorasick.Automaton()
        for a in allow:
            if a:
                self._allow.add_word(a, len(a))
        self._has_allow = bool(allow)
        if self._has_allow:
            self._allow.make_automaton()

    def _allowed_spans(self, norm: str) -> list[tuple[int, int]]:
        if not self._has_allow:
            return []
        return [(end - n + 1, end + 1) for end, n in self._allow.iter(norm)]

    def check(self, text: str, role: str = "customer", normalized: Normalized | None = None,
              cleared: list[tuple[str, int, int]] | None = None) -> list[Hit]:
        """Hits in original offsets. `cleared`, when given, collects (category, start, end) of the
        lexicon hits the allow-list or a context rule judged innocent (the learned check defers to that)."""
        hits = self._hits(text, role, normalized or normalize(text), cleared)
        if has_emoji_chars(text):
            # Emoji read as the characters they stand for (威❤ → 威心 → wei xin): a second pass.
            hits += self._hits(text, role, normalize(text, emoji_as_chars=True), cleared)
        return _merge_overlaps(hits, text)

    def _hits(self, text: str, role: str, n: Normalized, cleared: list | None = None) -> list[Hit]:
        norm = n.text
        if not norm:
            return []
        raw: dict[tuple[int, int, str], tuple[str, str]] = {}

        def add(start: int, end: int, t_cat: str, sev: str, rule: str) -> None:
            key = (start, end, t_cat)
            prev = raw.get(key)
            if prev is None or SEVERITY_RANK[sev] > SEVERITY_RANK[prev[0]]:
                raw[key] = (sev, rule)

        def applies(t: Term) -> bool:
            return t.roles == "any" or t.roles == role

        if self._has_terms:
            for end, (length, ts) in self._auto.iter(norm):
                for t in ts:
                    if applies(t):
                        add(end - length + 1, end + 1, t.category, t.severity, t.rule)
        if self._has_py:
            key, spans = pinyin_key(norm, latin_word_breaks(n))
            if len(spans) >= 2:
                # position of each '|' → syllable number
                bars = [i for i, c in enumerate(key) if c == "|"]
                bar_no = {pos: k for k, pos in enumerate(bars)}
                for end, (syllables, ts) in self._py.iter(key):
                    last = bar_no.get(end)
                    if last is None:
                        continue
                    first = last - syllables
                    if any(spans[k][1] != spans[k + 1][0] for k in range(first, last - 1)):
                        continue  # syllables not adjacent in the normalised text
                    s, e = spans[first][0], spans[last - 1][1]
                    for t in ts:
                        if applies(t):
                            add(s, e, t.category, t.severity, t.rule + ":homophone")
        for s, e, sev, rule in detect_personal(norm):
            add(s, e, "privacy", sev, rule)
        for s, e, sev, rule in detect_handles(norm, n):
            add(s, e, "diversion", sev, rule)

        allowed = self._allowed_spans(norm)
        context = HitContext(text, n, self._terms_by_text)
        hits: list[Hit] = []
        for (s, e, cat), (sev, rule) in raw.items():
            listed = any(a <= s and e <= b for a, b in allowed)
            if listed or (rule.startswith("lexicon:") and context.innocent(s, e, cat, rule.endswith(":homophone"))):
                # What the message says about the phrase (allowed, denied, warned against, quoted)
                # holds for the learned check too; a short word inside a longer one does not.
                if cleared is not None and rule.startswith("lexicon:") and (listed or context.framed(s, e, cat)):
                    cleared.append((cat, *n.span(s, e)))
                continue
            os_, oe = n.span(s, e)
            hits.append(Hit(cat, sev, os_, oe, text[os_:oe], rule))
        return hits


def _merge_overlaps(hits: list[Hit], text: str) -> list[Hit]:
    """Overlapping hits of one category become one span (全网最低 + 最低价 → 全网最低价), keeping
    the highest severity and the rule of the longest part."""
    hits.sort(key=lambda h: (h.category, h.start, -(h.end - h.start)))
    out: list[Hit] = []
    for h in hits:
        last = out[-1] if out else None
        if last is not None and last.category == h.category and h.start < last.end:
            longest = last if (last.end - last.start) >= (h.end - h.start) else h
            sev = last.severity if SEVERITY_RANK[last.severity] >= SEVERITY_RANK[h.severity] else h.severity
            end = max(last.end, h.end)
            out[-1] = Hit(h.category, sev, last.start, end, text[last.start:end], longest.rule)
        else:
            out.append(h)
    out.sort(key=lambda h: (h.start, h.category))
    return out


class LexiconSet:
    """Built-in lexicons plus operator additions under `extra_dir`; rebuilt when a file changes
    (checked at most once a second), so every process sharing the data dir sees edits."""

    CHECK_INTERVAL = 1.0

    def __init__(self, extra_dir: Path | None = None) -> None:
        self.extra_dir = extra_dir
        self._lock = threading.Lock()
        self._stamp = None
        self._checked = 0.0
        self._checker: SensitiveChecker | None = None

    def _dirs(self) -> list[Path]:
        return [BUILTIN_DIR] + ([self.extra_dir] if self.extra_dir else [])

    def _current_stamp(self) -> tuple:
        stamp = []
        for d in self._dirs():
            if d.is_dir():
                for p in sorted(d.glob("*.txt")):
                    st = p.stat()
                    stamp.append((str(p), st.st_mtime_ns, st.st_size))
        return tuple(stamp)

    def checker(self) -> SensitiveChecker:
        now = time.monotonic()
        if self._checker is not None and now - self._checked < self.CHECK_INTERVAL:
            return self._checker
        with self._lock:
            self._checked = now
            stamp = self._current_stamp()
            if self._checker is None or stamp != self._stamp:
                terms, allow = load_terms(self._dirs())
                self._checker = SensitiveChecker(terms, allow)
                self._stamp = stamp
            return self._checker

    def reload(self) -> SensitiveChecker:
        with self._lock:
            self._checked = 0.0
            self._stamp = None
        return self.checker()

    # --- operator additions ---------------------------------------------------------------
    def add_terms(self, category: str, entries: list[tuple[str, str, str]]) -> int:
        if self.extra_dir is None:
            raise LexiconError("no directory for operator lexicons")
        if not _CATEGORY_NAME.match(category):
            raise LexiconError("category must be lower-case letters, digits and _ (2..32 chars)")
        variants = read_variants(BUILTIN_DIR / "variants.txt")
        for term, severity, roles in entries:
            if "\t" in term or "\n" in term or not term.strip():
                raise LexiconError(f"invalid term {term!r}")
            parse_lexicon_line(f"{term}\t{severity}\t{roles}", category)
            expand(term, variants)
        self.extra_dir.mkdir(parents=True, exist_ok=True)
        path = self.extra_dir / f"{category}.txt"
        with path.open("a", encoding="utf-8") as fh:
            for term, severity, roles in entries:
                fh.write(f"{term.strip()}\n" if category == "allow" else f"{term.strip()}\t{severity}\t{roles}\n")
            fh.flush()
            os.fsync(fh.fileno())
        self.reload()
        return len(entries)

    def operator_terms(self) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = {}
        if self.extra_dir and self.extra_dir.is_dir():
            for p in sorted(self.extra_dir.glob("*.txt")):
                for line in p.read_text(encoding="utf-8").splitlines():
                    parsed = parse_lexicon_line(line, p.stem) if p.stem != "allow" else None
                    if parsed:
                        out.setdefault(p.stem, []).append({"term": parsed[0], "severity": parsed[1], "roles": parsed[2]})
        return out
