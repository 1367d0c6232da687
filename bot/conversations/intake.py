"""The one way conversation records come in (archive API, SDK puller, parked retries, 客服): store
them, then queue the new ids for the analysis pipeline on the event stream. Storing is the durable
step; a queueing failure (Redis down) only delays analysis until the requeue job
(`requeue-unanalysed` in bot/jobs.py) queues stored-but-unanalysed messages again."""
from __future__ import annotations

import logging
import time
from typing import Any, Iterable, Mapping, Sequence

from redis.exceptions import RedisError

from bot.conversations.records import ArchiveRecord
from bot.gateway.event_queue import Envelope, EventQueue

log = logging.getLogger(__name__)

SOURCE = "archive"  # the stream source (and kind) of analysis batches; the worker routes it to the pipeline


def analysis_batch(msgids: Sequence[str], analyses: Mapping[str, dict] | None = None) -> Envelope:
    """The envelope of one analysis batch; `analyses` carries results already computed (by 客服's
    reply decision), so the pipeline does not analyse those messages again."""
    fields: dict[str, Any] = {"msgids": list(msgids)}
    if analyses:
        fields["analyses"] = {m: analyses[m] for m in msgids if m in analyses}
    return Envelope(SOURCE, SOURCE, fields, time.time())


def batch_contents(envelope: Envelope) -> tuple[list[str], dict[str, dict]]:
    """→ (msgids, analyses already known) of an analysis batch."""
    return list(envelope.fields["msgids"]), dict(envelope.fields.get("analyses") or {})


async def queue_for_analysis(queue: EventQueue, msgids: Sequence[str],
                             analyses: Mapping[str, dict] | None = None) -> bool:
    """Queue stored messages for analysis; False (logged) when Redis is unavailable."""
    if not msgids:
        return True
    try:
        await queue.append(analysis_batch(msgids, analyses))
    except RedisError:
        log.warning("records stored but not queued (Redis unavailable)", extra={"records": len(msgids)})
        return False
    return True


async def take_in(store, queue: EventQueue, records: Iterable[ArchiveRecord], source: str = "archive",
                  analyses: Mapping[str, dict] | None = None) -> tuple[list[str], int]:
    """Store `records` (idempotent by msgid) and queue the newly stored ones for analysis.
    Returns (msgids newly stored, duplicates)."""
    stored, duplicates = await store.ingest(list(records), source=source)
    await queue_for_analysis(queue, stored, analyses)
    return stored, duplicates
