"""Child processes that die with their parent (Linux): the embedded Redis and the NLP pool.

`prctl(PR_SET_PDEATHSIG, SIGTERM)` asks the kernel to send SIGTERM to a process when the thread
that started it exits, so a SIGKILLed service leaves no orphans (SIGTERM lets Redis write its
AOF first). It must run in the child; children must therefore be started from a long-lived thread
(the event loop's). Elsewhere than Linux these helpers do nothing."""
from __future__ import annotations

import ctypes
import os
import signal
import sys
from typing import Any

PR_SET_PDEATHSIG = 1
_prctl: Any = None


def _bind() -> Any:
    global _prctl
    if _prctl is None and sys.platform.startswith("linux"):
        _prctl = ctypes.CDLL(None, use_errno=True).prctl
    return _prctl


def die_with_parent(sig: int = signal.SIGTERM, parent_pid: int | None = None) -> bool:
    """In the calling (child) process: get `sig` when the parent dies. When `parent_pid` is given
    and the parent is already gone (it died before this ran), exit at once."""
    prctl = _bind()
    if prctl is None:
        return False
    prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)
    return True


def preexec_die_with_parent() -> Any:
    """A `preexec_fn` for subprocess.Popen (bound here, in the parent, so the child only calls it)."""
    _bind()
    parent = os.getpid()
    return lambda: die_with_parent(signal.SIGTERM, parent)


class DiesWithParent:
    """Wraps a picklable value (a pool initializer's argument) so that the process that unpickles
    it — a spawned pool worker receiving its initargs — first calls `die_with_parent`. Attribute
    reads go to the wrapped value, so the parent uses it as before.

    Used for the NLP pool's config: its initializer lives in nlp/service.py, which this wrapper
    leaves alone; calling `die_with_parent()` in that initializer would do the same directly."""

    def __init__(self, value: Any) -> None:
        object.__setattr__(self, "_value", value)

    def __getattr__(self, name: str) -> Any:
        return getattr(object.__getattribute__(self, "_value"), name)

    def __reduce__(self):
        return (_unwrap_in_child, (object.__getattribute__(self, "_value"), os.getpid()))


def _unwrap_in_child(value: Any, parent_pid: int) -> Any:
    if os.getpid() != parent_pid:  # unpickled in another process: a child
        die_with_parent(signal.SIGTERM, parent_pid)
    return value
