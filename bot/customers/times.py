"""Datetimes at the API boundary: with an offset, in a sane range, as UTC."""
from __future__ import annotations

from datetime import datetime, timezone


def aware_utc(v: datetime, name: str) -> datetime:
    if v.tzinfo is None:
        raise ValueError(f"{name} must include a timezone offset, e.g. 2026-12-12T20:00:00+08:00")
    try:  # years 1 and 9999 overflow when moved to UTC
        v = v.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError(f"{name} is out of range") from None
    if not 2000 <= v.year <= 2999:
        raise ValueError(f"{name} must be between the years 2000 and 2999")
    return v
