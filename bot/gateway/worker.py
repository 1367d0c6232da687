"""Stream consumer: read → parse → route → acknowledge; re-claim what crashed consumers left."""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Mapping

from bot.gateway.event_queue import EventQueue, StreamEntry
from bot.gateway.messages import message_from_fields
from bot.gateway.router import Router

log = logging.getLogger(__name__)

# Other sources (archive records, relay messages) register their own envelope handler here.
SourceHandler = Callable[[StreamEntry, Mapping[str, Any]], Awaitable[None]]


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass
class StreamWorker:
    queue: EventQueue
    router: Router
    deps: Mapping[str, Any]
    name: str = field(default_factory=consumer_name)
    claim_idle_ms: int = 60_000
    max_deliveries: int = 5
    batch: int = 32
    sources: dict[str, SourceHandler] = field(default_factory=dict)
    on_result: Callable[[str], None] | None = None  # metric hook: "ok" | "error" | "dead"

    async def handle(self, entry: StreamEntry) -> None:
        env = entry.envelope
        if env is None:
            raise ValueError("undecodable stream payload")
        if env.source == "callback":
            await self.router.dispatch(message_from_fields(env.fields), self.deps)
        elif env.source in self.sources:
            await self.sources[env.source](entry, self.deps)
        else:
            raise ValueError(f"no handler for source {env.source!r}")

    async def process(self, entries: list[StreamEntry]) -> int:
        """Handle entries in order; each is acknowledged as soon as it is done, so a crash
        re-delivers only what was not finished (at-least-once)."""
        ok = 0
        for entry in entries:
            try:
                await self.handle(entry)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any handler failure is retried or parked, never dropped
                if entry.envelope is None or entry.deliveries >= self.max_deliveries:
                    log.error("dead-lettering stream entry", extra={"entry": entry.entry_id, "error": repr(exc)})
                    await self.queue.dead_letter(entry, repr(exc))
                    self._count("dead")
                else:
                    log.warning(
                        "handler failed; entry stays pending for retry",
                        extra={"entry": entry.entry_id, "deliveries": entry.deliveries, "error": repr(exc)},
                    )
                    self._count("error")
                continue
            await self.queue.ack(entry.entry_id)
            ok += 1
            self._count("ok")
        return ok

    def _count(self, result: str) -> None:
        if self.on_result is not None:
            self.on_result(result)

    async def step(self, block_ms: int = 1000) -> int:
        """One round: re-claim stale entries, then read new ones. Returns entries fetched."""
        entries = await self.queue.claim_stale(self.name, self.claim_idle_ms, self.batch)
        if not entries:
            entries = await self.queue.read(self.name, self.batch, block_ms)
        if entries:
            await self.process(entries)
        return len(entries)

    async def run(self, stop: asyncio.Event) -> None:
        await self.queue.ensure_group()
        log.info("worker started", extra={"consumer": self.name})
        while not stop.is_set():
            try:
                await self.step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis hiccup: back off and keep consuming
                log.error("worker step failed", extra={"error": repr(exc)})
                await asyncio.sleep(1.0)
        log.info("worker stopped", extra={"consumer": self.name})

    async def drain(self, max_rounds: int = 1000) -> int:
        """Burst mode (tests, CLI): handle until nothing is left to read or claim."""
        await self.queue.ensure_group()
        total = 0
        for _ in range(max_rounds):
            n = await self.step(block_ms=1)
            if n == 0:
                break
            total += n
        return total
