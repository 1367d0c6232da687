"""Labelled chat written by independent writers, with provenance per line.

Layout: `training/data/writers/<writer>/<task>.jsonl`, one folder per writer (a helper session
briefed only with the label definitions and a style; see docs/EVALUATION.md). A blind set that
has informed a decision is moved here as a new writer folder, so it trains from then on.

Tasks and line shapes:
- intent, sentiment: {"text", "label", "vertical"?, "style"?}
- sensitive:         {"text", "role", "label": <category>|"clean", "evasion"?}
- relay:             {"thread": [{"sender_name", "text", "label": "join:<n>"|"cancel"|"none"}, ...]}
- retrieval:         {"query", "script_id": str|null}   (null: chit-chat that should get no suggestion)
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
WRITERS = DATA / "writers"


@dataclass(frozen=True)
class Line:
    text: str
    label: str
    source: str            # writer folder (or another source name)
    role: str = "customer"
    evasion: bool = False
    extra: dict = field(default_factory=dict, compare=False, hash=False)


class CorpusError(ValueError):
    pass


def read_jsonl(path: Path) -> list[dict]:
    out = []
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise CorpusError(f"{path}:{n}: {exc}") from None
        if not isinstance(obj, dict):
            raise CorpusError(f"{path}:{n}: not an object")
        out.append(obj)
    return out


def lines_from(path: Path, source: str) -> list[Line]:
    """intent / sentiment / sensitive lines of one file."""
    out = []
    for obj in read_jsonl(path):
        text, label = obj.get("text"), obj.get("label")
        if not isinstance(text, str) or not isinstance(label, str) or not text.strip():
            continue
        out.append(Line(text, label, source, obj.get("role") or "customer", bool(obj.get("evasion")),
                        {k: obj[k] for k in ("vertical", "style") if k in obj}))
    return out


def threads_from(path: Path) -> list[list[dict]]:
    out = []
    for obj in read_jsonl(path):
        thread = obj.get("thread")
        if isinstance(thread, list) and thread and all(
                isinstance(m, dict) and isinstance(m.get("text"), str) and isinstance(m.get("label"), str) for m in thread):
            out.append([{"sender_name": str(m.get("sender_name") or ""), "text": m["text"], "label": m["label"]}
                        for m in thread])
    return out


def writer_dirs(root: Path = WRITERS) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def writer_lines(task: str, root: Path = WRITERS, exclude: tuple[str, ...] = ()) -> list[Line]:
    out = []
    for d in writer_dirs(root):
        if d.name in exclude:
            continue
        path = d / f"{task}.jsonl"
        if path.is_file():
            out += lines_from(path, f"writer:{d.name}")
    return out
