"""Pushes automatic tags to WeCom (`externalcontact/mark_tag`), from the `tag_pushes` outbox.

Each queued change is sent once: the latest change per customer and tag wins (an add undone by a
remove before it was sent is not sent at all), one mark_tag call carries a customer's adds and
removes, through a staff member who follows the customer. WeCom being down leaves the rows
pending for the next run; a WeCom error counts an attempt and fails the row after MAX_ATTEMPTS.
Our tags live in one group of the corp tag library, created on first use."""
from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.wecom_api import WeComAPIError, WeComClient, WeComUnavailable
from storage.sql import customer_staff, dialect_insert, tag_pushes, wecom_corp_tags

log = logging.getLogger("copilot")

TAG_GROUP = "WeCom Copilot"
MAX_ATTEMPTS = 5
BATCH = 200  # rows per run; one call per customer (the schedule runs every few seconds)


class TagPusher:
    def __init__(self, engine: AsyncEngine, wecom: WeComClient | None) -> None:
        self.engine = engine
        self.wecom = wecom

    async def tag_ids(self, names: set[str]) -> dict[str, str]:
        async with self.engine.connect() as conn:
            known = dict((await conn.execute(sa.select(wecom_corp_tags.c.name, wecom_corp_tags.c.tag_id)
                                              .where(wecom_corp_tags.c.name.in_(sorted(names))))).all())
        missing = names - set(known)
        if missing:
            assert self.wecom is not None
            found: dict[str, str] = {}
            for group in await self.wecom.get_corp_tag_list():
                if group.get("group_name") == TAG_GROUP:
                    found.update({t["name"]: t["id"] for t in group.get("tag", []) if t.get("name") in missing})
            still = sorted(missing - set(found))
            if still:
                made = await self.wecom.add_corp_tag(TAG_GROUP, still)
                found.update({t["name"]: t["id"] for t in made.get("tag", [])})
            async with self.engine.begin() as conn:
                await conn.execute(dialect_insert(self.engine, wecom_corp_tags).on_conflict_do_nothing(),
                                   [{"name": n, "tag_id": i} for n, i in found.items()])
            known.update(found)
        return known

    async def run_once(self) -> int:
        """Send one batch; → how many outbox rows were settled."""
        if self.wecom is None:
            return 0
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(tag_pushes).where(tag_pushes.c.status == "pending")
                                       .order_by(tag_pushes.c.id).limit(BATCH))).mappings().all()
        if not rows:
            return 0
        latest: dict[tuple[str, str], dict] = {}
        superseded: list[int] = []
        for r in rows:
            key = (r["customer_id"], r["tag"])
            if key in latest:
                superseded.append(latest[key]["id"])
            latest[key] = r
        by_customer: dict[str, list[dict]] = defaultdict(list)
        for r in latest.values():
            by_customer[r["customer_id"]].append(r)
        try:
            ids = await self.tag_ids({r["tag"] for r in latest.values()})
        except WeComUnavailable:
            return 0
        async with self.engine.connect() as conn:
            follow = dict((await conn.execute(
                sa.select(customer_staff.c.customer_id, sa.func.min(customer_staff.c.staff_id))
                .where(customer_staff.c.customer_id.in_(list(by_customer)), customer_staff.c.deleted_at.is_(None))
                .group_by(customer_staff.c.customer_id))).all())
        done, failed, retry = list(superseded), [], []
        for cid, items in by_customer.items():
            staff = follow.get(cid)
            if staff is None:
                failed += [(r["id"], "no staff member follows this customer") for r in items]
                continue
            add = [ids[r["tag"]] for r in items if r["op"] == "add" and r["tag"] in ids]
            remove = [ids[r["tag"]] for r in items if r["op"] == "remove" and r["tag"] in ids]
            try:
                await self.wecom.mark_tag(staff, cid, add, remove)
                done += [r["id"] for r in items]
            except WeComUnavailable:
                continue  # pending: next run
            except WeComAPIError as exc:
                retry += [(r["id"], r["attempts"] + 1, str(exc)) for r in items]
        now = datetime.now(timezone.utc)
        async with self.engine.begin() as conn:
            if done:
                await conn.execute(tag_pushes.update().where(tag_pushes.c.id.in_(done))
                                   .values(status="done", attempts=tag_pushes.c.attempts + 1, updated_at=now))
            for rid, error in failed:
                await conn.execute(tag_pushes.update().where(tag_pushes.c.id == rid)
                                   .values(status="failed", error=error, updated_at=now))
            for rid, attempts, error in retry:
                await conn.execute(tag_pushes.update().where(tag_pushes.c.id == rid).values(
                    status="failed" if attempts >= MAX_ATTEMPTS else "pending", attempts=attempts,
                    error=error[:500], updated_at=now))
        if retry:
            log.warning("wecom mark_tag failed", extra={"rows": len(retry)})
        return len(done) + len(failed)
