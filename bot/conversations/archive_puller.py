"""Pulls the conversation archive after the last stored seq, decrypts, stores, queues analysis.

The cursor is derived from what is stored (max seq of stored messages and parked records), so a
crash between pull and store re-pulls instead of skipping. Records that cannot be decrypted yet
(unknown `publickey_ver`, SDK error 10007) are parked, not dropped, and retried when the key
appears. Network errors (10001) are retried with backoff.
"""
from __future__ import annotations

import asyncio
import base64
import logging
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from bot import keys
from bot.conversations.finance_sdk import NETWORK_ERROR, FinanceSdk, SdkError
from bot.conversations.records import ArchiveRecord, RecordError
from bot.conversations.store import ConversationStore
from bot.conversations.intake import queue_for_analysis, take_in
from storage.sql import archive_parked, insert_ignore, messages

log = logging.getLogger(__name__)


def load_private_keys(spec: str) -> dict[int, rsa.RSAPrivateKey]:
    """`1=/keys/v1.pem,2=/keys/v2.pem` → {publickey_ver: key}."""
    keys = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        ver, _, path = part.partition("=")
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{path} is not an RSA private key")
        keys[int(ver)] = key
    return keys


class ArchivePuller:
    def __init__(self, sdk: FinanceSdk, keys: dict[int, rsa.RSAPrivateKey], store: ConversationStore, queue,
                 batch: int = 1000, retries: int = 5, backoff: float = 0.5,
                 sleep: Callable[[float], object] = asyncio.sleep) -> None:
        self.sdk = sdk
        self.keys = keys
        self.store = store
        self.queue = queue
        self.batch = batch
        self.retries = retries
        self.backoff = backoff
        self.sleep = sleep
        self._lock = asyncio.Lock()

    async def _call(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    async def cursor(self) -> int:
        async with self.store.engine.connect() as conn:
            a = (await conn.execute(sa.select(sa.func.max(messages.c.seq)))).scalar() or 0
            b = (await conn.execute(sa.select(sa.func.max(archive_parked.c.seq)))).scalar() or 0
        return max(a, b)

    def _open(self, item: dict) -> dict:
        """Decrypt one item: RSA (PKCS#1 v1.5) for the random key, then the SDK for the message."""
        ver = int(item.get("publickey_ver", 0))
        key = self.keys.get(ver)
        if key is None:
            raise SdkError(10007, f"no private key for publickey_ver {ver}")
        random_key = key.decrypt(base64.b64decode(item["encrypt_random_key"]), padding.PKCS1v15())
        return self.sdk.decrypt_data(random_key, item["encrypt_chat_msg"])

    async def _get_chat_data(self, seq: int) -> list[dict]:
        for attempt in range(self.retries + 1):
            try:
                return await self._call(self.sdk.get_chat_data, seq, self.batch)
            except SdkError as exc:
                if exc.code != NETWORK_ERROR or attempt == self.retries:
                    raise
                await self.sleep(self.backoff * 2 ** attempt)
        return []

    async def pull_once(self) -> int:
        """One batch; returns how many items were handled (0 when the archive is drained)."""
        async with self._lock:
            seq = await self.cursor()
            items = await self._get_chat_data(seq)
            records, parked = [], []
            for item in items:
                try:
                    record = await self._call(self._open, item)
                    records.append(ArchiveRecord.parse({**record, "seq": int(item["seq"])}))
                except (SdkError, RecordError, ValueError, KeyError) as exc:
                    parked.append({"seq": int(item["seq"]), "msgid": str(item.get("msgid", "")),
                                   "publickey_ver": int(item.get("publickey_ver", 0) or 0), "payload": item,
                                   "error": str(exc)[:2000], "attempts": 1, "updated_at": datetime.now(timezone.utc)})
            if parked:
                async with self.store.engine.begin() as conn:
                    await conn.execute(insert_ignore(self.store.engine, archive_parked), parked)
                log.warning("archive records parked", extra={"count": len(parked)})
            await take_in(self.store, self.queue, records)
            return len(items)

    async def pull_all(self, max_batches: int = 1000) -> int:
        total = 0
        for _ in range(max_batches):
            n = await self.pull_once()
            total += n
            if n < self.batch:
                break
        return total

    async def retry_parked(self) -> int:
        """Try parked records again (e.g. after a new private key was configured)."""
        async with self.store.engine.connect() as conn:
            rows = (await conn.execute(sa.select(archive_parked).order_by(archive_parked.c.seq).limit(5000))).mappings().all()
        recovered = []
        for row in rows:
            try:
                record = await self._call(self._open, row["payload"])
                recovered.append((row["seq"], ArchiveRecord.parse({**record, "seq": int(row["seq"])})))
            except (SdkError, RecordError, ValueError, KeyError) as exc:
                async with self.store.engine.begin() as conn:
                    await conn.execute(archive_parked.update().where(archive_parked.c.seq == row["seq"]).values(
                        attempts=archive_parked.c.attempts + 1, error=str(exc)[:2000], updated_at=datetime.now(timezone.utc)))
        if recovered:
            stored, _ = await self.store.ingest([r for _s, r in recovered])
            async with self.store.engine.begin() as conn:
                await conn.execute(archive_parked.delete().where(archive_parked.c.seq.in_([s for s, _r in recovered])))
            # Queued after the parked rows are gone: stored-but-unqueued is caught up by the requeue job.
            await queue_for_analysis(self.queue, stored)
        return len(recovered)

    async def fetch_media(self, sdkfileid: str, max_chunks: int = 10_000) -> bytes:
        """A media file, chunk by chunk until is_finish, as bytes."""
        parts, index = [], ""
        for _ in range(max_chunks):
            for attempt in range(self.retries + 1):
                try:
                    data, index, finished = await self._call(self.sdk.get_media_data, sdkfileid, index)
                    break
                except SdkError as exc:
                    if exc.code != NETWORK_ERROR or attempt == self.retries:
                        raise
                    await self.sleep(self.backoff * 2 ** attempt)
            parts.append(data)
            if finished:
                return b"".join(parts)
        raise SdkError(-1, "GetMediaData: too many chunks")


PULL_LOCK = keys.ARCHIVE_PULL_LOCK


async def pull_if_free(puller: "ArchivePuller", redis, retry_parked: bool = False) -> int:
    """Pull unless another process is pulling right now (one puller per corp at a time)."""
    if not await redis.set(PULL_LOCK, b"1", nx=True, px=120_000):
        return 0
    try:
        n = await puller.pull_all()
        if retry_parked:
            n += await puller.retry_parked()
        return n
    finally:
        await redis.delete(PULL_LOCK)
