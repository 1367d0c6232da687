"""The one CSV writer for exports (relay lists, scripts): every string cell that a spreadsheet
would run as a formula (=, +, -, @, tab, CR first) is prefixed with a quote (CSV injection)."""
from __future__ import annotations

import csv
import io
from typing import Any, Iterable, Sequence

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def csv_text(rows: Iterable[Sequence[Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    for row in rows:
        writer.writerow([neutralise(v) for v in row])
    return buf.getvalue()
