"""Helpers shared by the benchmark scripts."""
from __future__ import annotations

import socket


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (benchmarks only ever talk to loopback)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
