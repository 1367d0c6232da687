"""Helpers shared by the benchmark scripts."""
from __future__ import annotations

import socket


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (benchmarks only ever talk to loopback)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(port: int, attempts: int = 600, delay: float = 0.1) -> None:
    """Block until the server on 127.0.0.1:`port` answers /healthz; raise if it never does."""
    import time
    import urllib.request

    for _ in range(attempts):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return
        except OSError:
            time.sleep(delay)
    raise RuntimeError(f"server on port {port} did not become healthy")
