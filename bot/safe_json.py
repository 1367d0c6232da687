"""JSON from outside (request bodies, JSON Lines, cursors) parsed in one place, with limits.

`json.loads` recurses once per nesting level: a body of 100,000 `[` raises RecursionError, which
is not a ValueError and so escaped every `except ValueError` as a 500. Here the parse is bounded
and the result is checked without recursion, so every caller sees one kind of error, `JsonInputError`
(a ValueError), whatever the input. Strings are also checked for what no store accepts: a NUL
character (PostgreSQL text) or a lone surrogate (not encodable as UTF-8)."""
from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 32  # the deepest legitimate input (a WeCom `mixed` archive record in a batch) is ≈ 6


class JsonInputError(ValueError):
    pass


def _no_constants(name: str) -> Any:
    raise JsonInputError(f"{name} is not valid JSON")


def loads(data: bytes | str, max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON; raise JsonInputError for invalid JSON, NaN/Infinity, nesting deeper than
    `max_depth` (containers count, scalars do not), NUL characters or lone surrogates."""
    try:
        value = json.loads(data, parse_constant=_no_constants)
    except RecursionError:
        raise JsonInputError(f"JSON nested deeper than {max_depth} levels") from None
    except JsonInputError:
        raise
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, too many digits
        raise JsonInputError(f"not valid JSON: {exc}") from None
    check(value, max_depth)
    return value


def check(value: Any, max_depth: int = MAX_DEPTH) -> None:
    """Walk a parsed value iteratively (no recursion, so no RecursionError at any depth)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, str):
            _check_string(v)
        elif isinstance(v, (dict, list)):
            if depth >= max_depth:
                raise JsonInputError(f"JSON nested deeper than {max_depth} levels")
            if isinstance(v, dict):
                for k, child in v.items():
                    _check_string(k)
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in v)


def _check_string(s: str) -> None:
    if "\x00" in s:
        raise JsonInputError("strings may not contain NUL (U+0000)")
    if not s.isascii():
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:
            raise JsonInputError("strings may not contain lone surrogates (U+D800..U+DFFF)") from None
