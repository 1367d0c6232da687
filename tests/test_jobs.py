"""The named schedule of periodic jobs (bot/jobs.py)."""
import asyncio

from bot.jobs import SCHEDULE, Job, run_schedule


def test_schedule_names_are_unique_and_intervals_positive():
    names = [j.name for j in SCHEDULE]
    assert len(names) == len(set(names))
    assert all(j.every > 0 for j in SCHEDULE)


async def test_jobs_run_at_their_intervals_and_a_failure_does_not_stop_the_others():
    runs: list[str] = []

    async def fast(_parts):
        runs.append("fast")

    async def broken(_parts):
        runs.append("broken")
        raise RuntimeError("boom")

    async def late(_parts):
        runs.append("late")

    stop = asyncio.Event()
    jobs = [Job("fast", 0.05, fast), Job("broken", 0.05, broken), Job("late", 10.0, late, first_after=10.0)]
    task = asyncio.create_task(run_schedule(None, stop, jobs))
    await asyncio.sleep(0.28)
    stop.set()
    await asyncio.wait_for(task, 1)
    assert 4 <= runs.count("fast") <= 7
    assert runs.count("broken") == runs.count("fast")
    assert "late" not in runs
