"""Masking personal numbers (mobile, ID-card, bank-card) in message texts for roles that do not
need them (COPILOT_UNMASKED_ROLES). Masks keep the text's length, so analysis offsets still point
at the same characters, and keep the last four digits, so staff can still tell numbers apart.

Two sources of spans: the analysis' `privacy` hits (found after normalisation, so they survive
full-width digits, inserted symbols and Chinese numerals), and, for messages not analysed yet or
numbers the lexicon missed, runs of 11+ digits with single separators."""
from __future__ import annotations

import re
from typing import Iterable

_DIGIT = "0-9０-９"
_NUMBER = re.compile(rf"(?<![{_DIGIT}])[{_DIGIT}](?:[ \-－.·]?[{_DIGIT}]){{9,}}(?:[ \-－]?[XxＸｘ])?(?![{_DIGIT}])")
_KEEP = 4


def _mask_span(span: str) -> str:
    digits = [i for i, ch in enumerate(span) if ch.isdigit()]
    keep = set(digits[-_KEEP:]) if len(digits) > 2 * _KEEP else set()
    return "".join(ch if i in keep or not ch.isalnum() else "*" for i, ch in enumerate(span))


def mask_text(text: str, spans: Iterable[tuple[int, int]] = ()) -> str:
    """`text` with every number-like run and every given (start, end) span masked."""
    todo = sorted([(m.start(), m.end()) for m in _NUMBER.finditer(text)]
                  + [(s, e) for s, e in spans if 0 <= s < e <= len(text)])
    merged: list[list[int]] = []
    for s, e in todo:  # overlapping spans are masked once, as one
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    out, pos = [], 0
    for s, e in merged:
        out += [text[pos:s], _mask_span(text[s:e])]
        pos = e
    out.append(text[pos:])
    return "".join(out)


def mask_message(msg: dict) -> dict:
    """A message as the API answers it (text + analysis), with personal numbers masked."""
    text = msg.get("text")
    if not text:
        return msg
    analysis = msg.get("analysis")
    hits = (analysis or {}).get("sensitive") or []
    masked = mask_text(text, [(h["start"], h["end"]) for h in hits
                              if h.get("category") == "privacy" and isinstance(h.get("start"), int)
                              and isinstance(h.get("end"), int)])
    out = {**msg, "text": masked}
    if analysis:
        out["analysis"] = {**analysis, "sensitive": [
            {**h, "match": masked[h["start"]:h["end"]]} if isinstance(h.get("start"), int) else h for h in hits]}
    return out


def mask_flag(flag: dict) -> dict:
    detail = flag.get("detail")
    if detail:
        return {**flag, "detail": mask_text(detail)}
    return flag
