"""The periodic jobs of every worker-running process, as a named schedule. Every job is
idempotent, so several processes may run the same schedule; one that must run in one process
only takes a Redis lock first."""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Awaitable, Callable, Sequence

from bot import keys
from bot.conversations.archive_puller import pull_if_free

if TYPE_CHECKING:
    from bot.components import Components

log = logging.getLogger("copilot")

HOUR, DAY = 3600.0, 86400.0


@dataclass(frozen=True)
class Job:
    name: str
    every: float  # seconds between runs
    run: Callable[["Components"], Awaitable[object]]
    first_after: float = 0.0  # seconds after start of the first run


async def close_due_relays(parts: "Components") -> None:
    await parts.relays.close_due()


async def requeue_unanalysed(parts: "Components") -> None:
    """Stored-but-unanalysed messages (Redis was down when they were stored) are queued again."""
    await parts.pipeline.requeue_stale(parts.queue)


async def sweep_unanswered(parts: "Components") -> None:
    await parts.pipeline.sweep_unanswered()


async def mine_scripts(parts: "Components") -> None:
    if await parts.redis.set(keys.MINING_DAILY, b"1", nx=True, ex=20 * 3600):  # once a day, in one process
        from knowledge.mining import mine

        await mine(parts.engine, parts.knowledge, int((time.time() - 30 * DAY) * 1000))


async def pull_archive(parts: "Components") -> None:
    """The archive timer; `msgaudit_notify` pulls sooner (bot/handlers/archive.py)."""
    if parts.puller is not None:
        await pull_if_free(parts.puller, parts.redis)


async def retry_parked_archive(parts: "Components") -> None:
    if parts.puller is not None:
        await pull_if_free(parts.puller, parts.redis, retry_parked=True)


async def run_training_jobs(parts: "Components") -> None:
    await parts.trainer.tick()


async def sync_active_models(parts: "Components") -> None:
    """The pointer file follows the registry even when a promotion's own write was lost."""
    await parts.models.sync_pointer()


async def nightly_training(parts: "Components") -> None:
    """At COPILOT_TRAINING_HOUR (local time), once a day: a training job for each task with at
    least COPILOT_TRAINING_MIN_NEW_LABELS labels newer than its active version."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    s = parts.settings
    now = datetime.now(ZoneInfo(s.timezone))
    if now.hour != s.training_hour:
        return
    if not await parts.redis.set(keys.training_nightly(now.date().isoformat()), b"1", nx=True, ex=23 * 3600):
        return
    for task in ("intent", "sentiment", "sensitive"):
        n = await parts.models.new_labels_since_active(task)
        if n >= s.training_min_new_labels:
            job = await parts.models.enqueue(task, "schedule:nightly")
            log.info("nightly training queued", extra={"task": task, "new_labels": n, "job_id": job["id"]})


async def in_one_process(parts: "Components", lock: str, ttl: int, work: Callable[[], Awaitable[object]]) -> None:
    """Run `work` unless another process holds `lock` (a Redis key that expires after `ttl` s)."""
    if await parts.redis.set(lock, b"1", nx=True, ex=ttl):
        try:
            await work()
        finally:
            await parts.redis.delete(lock)


async def evaluate_tag_rules(parts: "Components") -> None:
    """Every rule over everyone (dormancy changes with time alone)."""
    await in_one_process(parts, keys.TAG_RULES_LOCK, 600, parts.tag_rules.evaluate)


async def refresh_segment_index(parts: "Components") -> None:
    """Counts refresh the index themselves; this keeps the change notes short between counts."""
    await parts.segments.index.refresh()


async def push_tags(parts: "Components") -> None:
    async def drain() -> None:
        while await parts.tag_pusher.run_once():
            pass

    await in_one_process(parts, keys.TAG_PUSH_LOCK, 120, drain)


async def send_campaigns(parts: "Components") -> None:
    await in_one_process(parts, keys.CAMPAIGN_LOCK, 300, parts.campaigns.send_due)


async def refresh_campaigns(parts: "Components") -> None:
    """Results of the 50 newest sent campaigns, from WeCom."""
    for c in await parts.campaigns.list(50):
        if c and c["status"] == "sent":
            await parts.campaigns.refresh(c["id"])


async def settle_fission(parts: "Components") -> None:
    """Fission invites past their retention window count (or not)."""
    await parts.fission.settle()


async def work_order_alerts(parts: "Components") -> None:
    """New work orders to their owners, missed SLAs to the owners' leaders; each once (claimed in SQL)."""
    await parts.work_orders.alert_and_escalate()


async def run_sop(parts: "Components") -> None:
    """Group SOP posts now due become group 群发 tasks and owner reminders (bot/groups/sop.py)."""
    await in_one_process(parts, keys.SOP_LOCK, 300, parts.sop.run_due)


async def track_sop(parts: "Components") -> None:
    await in_one_process(parts, keys.SOP_LOCK, 300, parts.sop.track)


async def assign_negative_topics(parts: "Components") -> None:
    """Named topics for new negative customer messages (bot/conversations/negative_topics.py)."""
    async def work() -> None:
        while await parts.negative_topics.assign_new() == 500:
            pass

    await in_one_process(parts, keys.NEGATIVE_TOPICS_LOCK, 600, work)


async def sync_customers_now(parts: "Components") -> bool:
    """One WeCom sync of customers (bot/customers/sync.py) and customer groups (bot/groups/store.py)
    unless one is running; its report (or its error) is kept for GET /api/v1/customers/sync. False
    when another process holds the lock."""
    import json
    from datetime import datetime, timezone

    from bot.customers.sync import CustomerSync

    if parts.wecom is None or not await parts.redis.set(keys.CUSTOMER_SYNC_LOCK, b"1", nx=True, ex=6 * 3600):
        return False
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    await parts.redis.set(keys.CUSTOMER_SYNC_LAST, json.dumps({"status": "running", "started_at": started}))
    try:
        report = await CustomerSync(parts.engine, parts.wecom).run()
        done = {"status": "done", **report.to_json(), **await parts.groups.sync(report.member_ids)}
    except Exception as exc:  # noqa: BLE001 - reported, and tried again on the next day
        log.exception("customer sync failed")
        done = {"status": "failed", "error": str(exc)[:300]}
    finally:
        await parts.redis.delete(keys.CUSTOMER_SYNC_LOCK)
    done.update(started_at=started, finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    await parts.redis.set(keys.CUSTOMER_SYNC_LAST, json.dumps(done))
    return True


async def sync_customers(parts: "Components") -> None:
    """Daily, in one process: customers and WeCom tags that no event told us about."""
    if parts.wecom is not None and await parts.redis.set(keys.CUSTOMER_SYNC_DAILY, b"1", nx=True, ex=20 * 3600):
        await sync_customers_now(parts)


SCHEDULE: tuple[Job, ...] = (
    Job("close-due-relays", every=5.0, run=close_due_relays),
    Job("requeue-unanalysed", every=60.0, run=requeue_unanalysed),
    Job("sweep-unanswered", every=60.0, run=sweep_unanswered),
    Job("mine-scripts", every=DAY, run=mine_scripts, first_after=HOUR),
    Job("retry-parked-archive", every=600.0, run=retry_parked_archive),
    Job("pull-archive", every=60.0, run=pull_archive),
    Job("training-jobs", every=2.0, run=run_training_jobs),
    Job("sync-active-models", every=3.0, run=sync_active_models),
    Job("nightly-training", every=300.0, run=nightly_training, first_after=60.0),
    Job("evaluate-tag-rules", every=600.0, run=evaluate_tag_rules, first_after=30.0),
    Job("push-tags", every=5.0, run=push_tags),
    Job("refresh-segment-index", every=60.0, run=refresh_segment_index, first_after=30.0),
    Job("send-campaigns", every=10.0, run=send_campaigns),
    Job("refresh-campaigns", every=900.0, run=refresh_campaigns, first_after=120.0),
    Job("settle-fission", every=600.0, run=settle_fission, first_after=60.0),
    Job("work-order-alerts", every=30.0, run=work_order_alerts),
    Job("run-sop", every=60.0, run=run_sop),
    Job("track-sop", every=600.0, run=track_sop, first_after=300.0),
    Job("sync-customers", every=HOUR, run=sync_customers, first_after=600.0),
    Job("negative-topics", every=300.0, run=assign_negative_topics, first_after=120.0),
)


async def run_schedule(parts: "Components", stop: asyncio.Event, jobs: Sequence[Job] = SCHEDULE,
                       clock: Callable[[], float] = time.monotonic) -> None:
    """Run each job when it is due, one after another, until `stop` is set. A failing job is
    logged and tried again at its next time; the others go on."""
    start = clock()
    due = {job.name: start + job.first_after for job in jobs}
    while not stop.is_set():
        for job in jobs:
            if stop.is_set():
                return
            if clock() >= due[job.name]:
                due[job.name] += job.every * max(1, int((clock() - due[job.name]) // job.every) + 1)
                try:
                    await job.run(parts)
                except Exception:  # noqa: BLE001 - keep the schedule going
                    log.exception("periodic job failed", extra={"job": job.name})
        try:
            await asyncio.wait_for(stop.wait(), max(0.0, min(due.values()) - clock()))
        except asyncio.TimeoutError:
            pass
