"""The segment index: segment counts as a few array operations over dense customer numbers kept
in Redis, instead of joins over a million SQL rows (docs/CUSTOMERS.md, "Segments").

By customer number (`customer_numbers.num`; keys in bot/keys.py):
  status   one byte: 0 no profile, 1 active, 2 lost, 3 anything else
  seen     little-endian uint32 s, coalesce(last_message_at, first_seen_at) // 1000: counts are
           taken at a whole second, where `seen_ms < cut_ms` ⇔ `seen_s < cut_s` (half the bytes
           of milliseconds to read per dormancy count; 4 MB at a million customers)
  channel  little-endian int32, the channel's number in the `channels` hash (0: none)
  tag:<t>  a bitmap, bit n set when customer n has tag t (Redis bit order: high bit first)
Staff filters are one indexed SQL read of that member's customers' numbers.

Exact and current: every change to `customers` or `customer_tags` leaves a note in
`segment_changes` (triggers, storage/segment_changes.py, in the writer's own transaction).
`refresh`, run before every count, reads the notes, then those customers' state (read after the
notes, so it holds their changes or later ones), writes their bytes and bits, and only then
deletes the notes it read: a crash in between leaves them, and the next refresh writes the same
values again. One process refreshes at a time (a Redis lock), so two never write one customer's
bits out of order. An index that is missing (a new or flushed Redis), was built from another SQL
store, or has more than REBUILD_AFTER notes waiting is rebuilt from SQL whole.
"""
from __future__ import annotations

import asyncio
import secrets
import struct
from collections import defaultdict
from typing import TYPE_CHECKING

import numpy as np
import redis.asyncio as aioredis
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot import keys
from bot.customers.profiles import DAY_MS
from storage.sql import customer_numbers, customer_staff, customer_tags, customers, segment_changes, \
    segment_index_state

if TYPE_CHECKING:
    from bot.customers.segments import SegmentFilter

STATUS = {"active": 1, "lost": 2}
OTHER_STATUS = 3
REBUILD_AFTER = 20_000   # notes waiting; beyond this one bulk rebuild beats bit-by-bit writes
CHUNK = 500              # ids per IN (…) (SQLite's bound-parameter limit)
LOCK_MS = 60_000         # a crashed holder blocks refreshes this long at most; rebuilds renew it
LAYOUT = "1"             # written beside the store's token: a new layout rebuilds the index

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_SEEN = sa.func.coalesce(customers.c.last_message_at, customers.c.first_seen_at)


class SegmentIndex:
    def __init__(self, engine: AsyncEngine, redis: aioredis.Redis) -> None:
        self.engine = engine
        self.redis = redis
        self._release = redis.register_script(_RELEASE)

    # --- counting ---------------------------------------------------------------------------
    async def count(self, f: SegmentFilter, now_ms: int) -> int:
        """Customers matching `f` (a SegmentFilter), as SQL holds them now; `now_ms` is a whole
        second (Segments passes one), the resolution of `seen`."""
        if now_ms % 1000:
            raise ValueError("segment counts are taken at a whole second")
        await self.refresh()
        tags = sorted(set(f.tags_all) | set(f.tags_any) | set(f.tags_none))
        by_seen = f.dormant_days is not None or f.active_within_days is not None
        pipe = self.redis.pipeline(transaction=True)  # one consistent view of the index
        pipe.get(keys.segment_index("status"))
        for t in tags:
            pipe.get(keys.segment_tag_bits(t))
        # Only the arrays the filter reads: `seen` is the costliest (4 bytes a customer).
        if by_seen:
            pipe.get(keys.segment_index("seen"))
        if f.channel is not None:
            pipe.get(keys.segment_index("channel"))
            pipe.hget(keys.segment_index("channels"), f.channel)
        raw_status, *rest = await pipe.execute()
        raw_tags, rest = rest[:len(tags)], rest[len(tags):]
        raw_seen = rest.pop(0) if by_seen else None
        raw_channel, channel_no = rest if f.channel is not None else (None, None)
        status = _array(raw_status, np.uint8, 0)
        n = len(status)
        mask = status == STATUS[f.status] if f.status is not None else status != 0
        bits = {t: _bits(r, n) for t, r in zip(tags, raw_tags)}
        for t in f.tags_all:
            mask &= bits[t]
        if f.tags_any:
            mask &= np.logical_or.reduce([bits[t] for t in f.tags_any])
        for t in f.tags_none:
            mask &= ~bits[t]
        if by_seen:
            seen, now_s = _array(raw_seen, np.dtype("<u4"), n), now_ms // 1000
            if f.dormant_days is not None:
                mask &= seen < now_s - f.dormant_days * DAY_MS // 1000
            if f.active_within_days is not None:
                mask &= seen >= now_s - f.active_within_days * DAY_MS // 1000
        if f.channel is not None:
            mask &= _array(raw_channel, np.dtype("<i4"), n) == int(channel_no or -1)
        if f.staff is not None:
            mask &= await self._followed_by(f.staff, n)
        return int(np.count_nonzero(mask))

    async def _followed_by(self, staff: str, n: int) -> np.ndarray:
        async with self.engine.connect() as conn:
            nums = (await conn.execute(
                sa.select(customer_numbers.c.num)
                .select_from(customer_staff.join(customer_numbers,
                                                 customer_numbers.c.customer_id == customer_staff.c.customer_id))
                .where(customer_staff.c.staff_id == staff, customer_staff.c.deleted_at.is_(None)))).scalars().all()
        out = np.zeros(n, bool)
        idx = np.fromiter(nums, np.int64, len(nums))
        out[idx[idx < n]] = True  # a number past the status array is a profile not indexed yet: none
        return out

    # --- keeping it current -------------------------------------------------------------------
    async def refresh(self) -> None:
        """Bring the index up to what SQL holds now (see the module docstring)."""
        token = secrets.token_hex(8)
        while not await self.redis.set(keys.SEGMENT_INDEX_LOCK, token, nx=True, px=LOCK_MS):
            await asyncio.sleep(0.005)
        try:
            async with self.engine.connect() as conn:
                sql_token = (await conn.execute(sa.select(segment_index_state.c.token))).scalar()
                # By the primary key, oldest first: the queue's size swings too fast for the
                # planner's statistics, and a LIMIT over an index does not depend on them.
                notes = (await conn.execute(sa.select(segment_changes.c.id, segment_changes.c.customer_id,
                                                      segment_changes.c.tag)
                                            .order_by(segment_changes.c.id).limit(REBUILD_AFTER + 1))).all()
            built = await self.redis.get(keys.segment_index("built"))
            stale = sql_token is None or built is None or built.decode() != f"{sql_token}/{LAYOUT}"
            if stale or len(notes) > REBUILD_AFTER:
                await self._rebuild()
            elif notes:
                await self._apply(notes)
        finally:
            await self._release(keys=[keys.SEGMENT_INDEX_LOCK], args=[token])

    async def _apply(self, notes) -> None:
        """The noted customers' bytes and bits from their state now. Notes were read before that
        state, so it holds their changes (or later ones); they are deleted, by id, only after
        Redis was written (a note committed meanwhile keeps its row for the next refresh)."""
        noted: dict[str, set[str]] = defaultdict(set)
        for _, cid, tag in notes:
            noted[cid].update([tag] if tag is not None else [])
        ids = sorted(noted)
        async with self.engine.connect() as conn:
            numbered = set()
            for i in range(0, len(ids), CHUNK):
                numbered.update((await conn.execute(sa.select(customer_numbers.c.customer_id).where(
                    customer_numbers.c.customer_id.in_(ids[i:i + CHUNK])))).scalars())
        if len(numbered) < len(ids):  # new profiles among them (or notes of customers without one)
            await self._number([c for c in ids if c not in numbered])
        rows, have = [], defaultdict(set)
        async with self.engine.connect() as conn:
            for i in range(0, len(ids), CHUNK):
                part = ids[i:i + CHUNK]
                rows += (await conn.execute(
                    sa.select(customer_numbers.c.num, customer_numbers.c.customer_id, customers.c.status,
                              customers.c.channel, _SEEN)
                    .select_from(customer_numbers.outerjoin(customers, customers.c.id == customer_numbers.c.customer_id))
                    .where(customer_numbers.c.customer_id.in_(part)))).all()
                for cid, tag in (await conn.execute(sa.select(customer_tags.c.customer_id, customer_tags.c.tag)
                                                    .where(customer_tags.c.customer_id.in_(part)))).all():
                    have[cid].add(tag)
        channels = await self._channel_numbers({r.channel for r in rows if r.channel})
        pipe = self.redis.pipeline(transaction=True)
        for num, cid, status, channel, seen in rows:
            code = 0 if status is None else STATUS.get(status, OTHER_STATUS)  # None: the profile was deleted
            pipe.setrange(keys.segment_index("status"), num, bytes([code]))
            pipe.setrange(keys.segment_index("seen"), num * 4, struct.pack("<I", (seen or 0) // 1000))
            pipe.setrange(keys.segment_index("channel"), num * 4, struct.pack("<i", channels.get(channel, 0)))
            # The tags it has now, and those noted: a noted tag it no longer has is cleared.
            for t in noted[cid] | have[cid]:
                pipe.setbit(keys.segment_tag_bits(t), num, int(t in have[cid]))
            if have[cid]:
                pipe.sadd(keys.segment_index("tags"), *have[cid])
        await pipe.execute()
        done = [n[0] for n in notes]
        async with self.engine.begin() as conn:
            for i in range(0, len(done), CHUNK):
                await conn.execute(segment_changes.delete().where(segment_changes.c.id.in_(done[i:i + CHUNK])))

    async def _number(self, ids: list[str] | None) -> None:
        """Numbers for profiles without one (`ids`, or everyone), committed on their own: a number
        is never handed out twice, so bits from a refresh that failed cannot land on another
        customer. A noted customer with no profile gets none (its profile's insert is noted)."""
        unnumbered = ~sa.exists().where(customer_numbers.c.customer_id == customers.c.id)
        parts = [ids[i:i + CHUNK] for i in range(0, len(ids), CHUNK)] if ids is not None else [None]
        async with self.engine.begin() as conn:
            for part in parts:
                todo = sa.select(customers.c.id).where(unnumbered)
                if part is not None:
                    todo = todo.where(customers.c.id.in_(part))
                await conn.execute(customer_numbers.insert().from_select(["customer_id"], todo.order_by(customers.c.id)))

    async def _channel_numbers(self, names: set[str]) -> dict[str, int]:
        """Channel → its number in the index, numbering channels seen for the first time."""
        names_sorted = sorted(names)
        if not names_sorted:
            return {}
        known = await self.redis.hmget(keys.segment_index("channels"), names_sorted)
        out = {c: int(v) for c, v in zip(names_sorted, known) if v is not None}
        for c in names_sorted:
            if c not in out:  # under the refresh lock: no other process numbers channels meanwhile
                out[c] = await self.redis.hlen(keys.segment_index("channels")) + 1
                await self.redis.hset(keys.segment_index("channels"), c, out[c])
        return out

    async def _rebuild(self) -> None:
        """The whole index from SQL, replacing what Redis held, in one MULTI. `built` goes first
        and comes back last, so a rebuild cut short is started again by the next refresh (the
        notes it deleted are covered by the state it reads after deleting them)."""
        await self.redis.delete(keys.segment_index("built"))
        async with self.engine.begin() as conn:
            await conn.execute(segment_changes.delete())
            sql_token = await self._store_token(conn)
        await self.redis.pexpire(keys.SEGMENT_INDEX_LOCK, LOCK_MS)
        await self._number(None)
        await self.redis.pexpire(keys.SEGMENT_INDEX_LOCK, LOCK_MS)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(
                sa.select(customer_numbers.c.num, customers.c.status, customers.c.channel, _SEEN)
                .select_from(customers.join(customer_numbers, customer_numbers.c.customer_id == customers.c.id)))).all()
            await self.redis.pexpire(keys.SEGMENT_INDEX_LOCK, LOCK_MS)
            tagged = (await conn.execute(
                sa.select(customer_tags.c.tag, customer_numbers.c.num)
                .select_from(customer_tags.join(customer_numbers,
                                                customer_numbers.c.customer_id == customer_tags.c.customer_id)))).all()
            await self.redis.pexpire(keys.SEGMENT_INDEX_LOCK, LOCK_MS)
        n = max((r[0] for r in rows), default=0) + 1
        nums = np.fromiter((r[0] for r in rows), np.int64, len(rows))
        status, seen, channel = np.zeros(n, np.uint8), np.zeros(n, "<u4"), np.zeros(n, "<i4")
        status[nums] = [0 if r[1] is None else STATUS.get(r[1], OTHER_STATUS) for r in rows]
        seen[nums] = [(r[3] or 0) // 1000 for r in rows]
        channel_names = sorted({r[2] for r in rows if r[2]})
        channel_no = {c: i + 1 for i, c in enumerate(channel_names)}
        channel[nums] = [channel_no.get(r[2], 0) for r in rows]
        by_tag: dict[str, list[int]] = defaultdict(list)
        for tag, num in tagged:
            by_tag[tag].append(num)
        old_tags = await self.redis.smembers(keys.segment_index("tags"))
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(keys.segment_index("channels"), keys.segment_index("tags"),
                    *(keys.segment_tag_bits(t.decode()) for t in old_tags))
        pipe.set(keys.segment_index("status"), status.tobytes())
        pipe.set(keys.segment_index("seen"), seen.tobytes())
        pipe.set(keys.segment_index("channel"), channel.tobytes())
        if channel_no:
            pipe.hset(keys.segment_index("channels"), mapping=channel_no)
        for tag, members in by_tag.items():
            bits = np.zeros(n, bool)
            bits[members] = True
            pipe.set(keys.segment_tag_bits(tag), np.packbits(bits).tobytes())
        if by_tag:
            pipe.sadd(keys.segment_index("tags"), *by_tag)
        pipe.set(keys.segment_index("built"), f"{sql_token}/{LAYOUT}")
        await pipe.execute()
        if self.engine.dialect.name == "postgresql":
            # The notes just deleted would stay in the id index until autovacuum, and every
            # refresh reads that index from its start.
            async with self.engine.connect() as conn:
                await (await conn.execution_options(isolation_level="AUTOCOMMIT")).execute(
                    sa.text("VACUUM segment_changes"))

    @staticmethod
    async def _store_token(conn: AsyncConnection) -> str:
        """This SQL store's token (made on the first build)."""
        have = (await conn.execute(sa.select(segment_index_state.c.token))).scalar()
        if have is None:
            have = secrets.token_hex(16)
            await conn.execute(segment_index_state.insert().values(id=1, token=have))
        return have


def _array(raw: bytes | None, dtype, n: int) -> np.ndarray:
    """An index array, zero-padded to `n` entries (Redis strings end at the last number written)."""
    a = np.frombuffer(raw or b"", dtype)
    return np.concatenate([a, np.zeros(n - len(a), dtype)]) if len(a) < n else a[:n] if n else a


def _bits(raw: bytes | None, n: int) -> np.ndarray:
    b = np.unpackbits(np.frombuffer(raw or b"", np.uint8))[:n].astype(bool)
    return np.concatenate([b, np.zeros(n - len(b), bool)]) if len(b) < n else b
