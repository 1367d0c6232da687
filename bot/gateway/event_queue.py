"""The durable hand-off between the ack path and the workers: one Redis Stream.

`accept` de-duplicates and appends in one Lua call, so a retry that reaches Redis after a
crash between the two steps can neither be lost nor be queued twice. Workers read through a
consumer group, acknowledge (and delete) after handling, and re-claim entries left pending
by a crashed consumer with XAUTOCLAIM.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from bot import keys
from storage.script_batcher import ScriptBatcher

# KEYS[1] dedupe key, KEYS[2] stream; ARGV[1] ttl seconds, ARGV[2] payload
_ACCEPT = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', tonumber(ARGV[1])) then
  return redis.call('XADD', KEYS[2], '*', 'p', ARGV[2])
end
return false
"""


@dataclass(frozen=True)
class Envelope:
    """What travels on the stream: where it came from and the raw field dict."""

    source: str
    kind: str
    fields: dict[str, Any]
    received_at: float

    def dumps(self) -> str:
        return json.dumps(
            {"source": self.source, "kind": self.kind, "fields": self.fields, "received_at": self.received_at},
            ensure_ascii=False,
            separators=(",", ":"),
        )

    @classmethod
    def loads(cls, data: bytes | str) -> "Envelope":
        obj = json.loads(data)
        return cls(obj["source"], obj["kind"], obj["fields"], float(obj["received_at"]))


@dataclass(frozen=True)
class StreamEntry:
    entry_id: str
    envelope: Envelope | None  # None when the payload could not be decoded
    raw: bytes
    deliveries: int = 1


@dataclass
class EventQueue:
    redis: aioredis.Redis
    stream: str
    dedupe_ttl: int
    group: str = keys.CONSUMER_GROUP
    _accept: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self._accept = ScriptBatcher(self.redis, _ACCEPT)

    async def ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def accept(self, dedupe_key: str, envelope: Envelope) -> str | None:
        """Queue the envelope unless its key was seen within the TTL. Returns the entry id, or None for a duplicate.
        Concurrent calls share one pipelined round trip (ScriptBatcher)."""
        entry_id = await self._accept([keys.dedupe(dedupe_key), self.stream], [self.dedupe_ttl, envelope.dumps()])
        return entry_id.decode() if entry_id else None

    async def append(self, envelope: Envelope) -> str:
        """Queue without de-duplication (callers that de-duplicate elsewhere, e.g. by SQL msgid)."""
        entry_id = await self.redis.xadd(self.stream, {"p": envelope.dumps()})
        return entry_id.decode()

    @staticmethod
    def _entry(entry_id: bytes | str, data: dict, deliveries: int = 1) -> StreamEntry:
        eid = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
        raw = data.get(b"p") or data.get("p") or b""
        try:
            env = Envelope.loads(raw)
        except (ValueError, KeyError, TypeError):
            env = None
        return StreamEntry(eid, env, raw if isinstance(raw, bytes) else raw.encode(), deliveries)

    async def read(self, consumer: str, count: int = 64, block_ms: int = 1000) -> list[StreamEntry]:
        resp = await self.redis.xreadgroup(self.group, consumer, {self.stream: ">"}, count=count, block=block_ms)
        out: list[StreamEntry] = []
        for _stream, entries in resp or []:
            for entry_id, data in entries:
                if data is not None:
                    out.append(self._entry(entry_id, data))
        return out

    async def claim_stale(self, consumer: str, min_idle_ms: int, count: int = 64) -> list[StreamEntry]:
        """Take over entries another consumer read but never acknowledged (it crashed or hung)."""
        out: list[StreamEntry] = []
        start = "0-0"
        while True:
            resp = await self.redis.xautoclaim(self.stream, self.group, consumer, min_idle_ms, start_id=start, count=count)
            next_start, claimed = resp[0], resp[1]
            for entry_id, data in claimed:
                if data is None:  # deleted while pending
                    await self.redis.xack(self.stream, self.group, entry_id)
                    continue
                pending = await self.redis.xpending_range(self.stream, self.group, min=entry_id, max=entry_id, count=1)
                deliveries = int(pending[0]["times_delivered"]) if pending else 1
                out.append(self._entry(entry_id, data, deliveries))
            next_start = next_start.decode() if isinstance(next_start, bytes) else next_start
            if next_start == "0-0" or len(out) >= count:
                return out
            start = next_start

    async def ack(self, *entry_ids: str) -> None:
        if not entry_ids:
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(self.stream, self.group, *entry_ids)
            pipe.xdel(self.stream, *entry_ids)
            await pipe.execute()

    async def dead_letter(self, entry: StreamEntry, error: str) -> None:
        """Park an entry that keeps failing, so it stops blocking the stream but is not lost."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(keys.dead_letter(self.stream), {"p": entry.raw, "error": error[:2000], "id": entry.entry_id})
            pipe.xack(self.stream, self.group, entry.entry_id)
            pipe.xdel(self.stream, entry.entry_id)
            await pipe.execute()

    async def depth(self) -> dict[str, int]:
        length = await self.redis.xlen(self.stream)
        try:
            pending = await self.redis.xpending(self.stream, self.group)
            pending_n = int(pending["pending"]) if pending else 0
        except ResponseError:
            pending_n = 0
        dead = await self.redis.xlen(keys.dead_letter(self.stream))
        return {"length": int(length), "pending": pending_n, "dead": int(dead)}
