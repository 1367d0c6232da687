"""Interactive work first: bulk work (archive ingestion, analysis batches) pauses between its
batches while interactive requests (relay sign-ups) are being answered.

On a machine with few cores the event loop is the scarce resource: a 1,000-record archive batch
costs tens of milliseconds of loop time (JSON, record parsing, statement building), and with
several import clients those batches take the loop from a flash sale (issue 11, finding 7). While
the sale is active each bulk batch first waits twice as long as the previous one took, which
bounds the bulk work's share; the bulk work
still progresses (at least a third of the time) and catches up when the sale goes quiet.
Nothing is dropped or reordered: pausing only delays a batch before it starts."""
from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager
from typing import AsyncIterator

ACTIVE_FOR = 0.5  # s after the last interactive request during which bulk work pauses
WAIT_PER_BUSY = 2.0  # a bulk batch waits this many times the previous batch's duration (≤ 1/3 share)
MAX_WAIT = 2.0  # s, the longest a batch waits


class Foreground:
    def __init__(self, active_for: float = ACTIVE_FOR, wait_per_busy: float = WAIT_PER_BUSY,
                 max_wait: float = MAX_WAIT) -> None:
        self.active_for, self.wait_per_busy, self.max_wait = active_for, wait_per_busy, max_wait
        self._last = float("-inf")
        self._last_batch = 0.0

    def touch(self) -> None:
        """An interactive request is being handled."""
        self._last = time.monotonic()

    @property
    def active(self) -> bool:
        return time.monotonic() - self._last < self.active_for

    @asynccontextmanager
    async def bulk(self) -> AsyncIterator[None]:
        """Around one bulk batch: wait first while interactive work is active; time the batch."""
        if self.active:
            await asyncio.sleep(min(self.max_wait, self.wait_per_busy * self._last_batch))
        t0 = time.monotonic()
        try:
            yield
        finally:
            self._last_batch = time.monotonic() - t0
