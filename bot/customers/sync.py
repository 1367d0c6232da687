"""Bringing in the customers a brand already had before the service was installed, and WeCom's own
customer tags: every member with the customer-contact permission (externalcontact/
get_follow_user_list), their customers page by page (externalcontact/batch/get_by_user, 100
members and 100 customers a call), the corp tag library to name tag ids (get_corp_tag_list).

Profiles, follow relations and channels are upserted as the contact events would have made them;
WeCom tags are kept with source `wecom`. After a complete run, a `wecom` tag that no follower
carries any more is removed; tags from rules, the API or channels are never touched, and the
service's own tag group (pushed by tag rules) is not read back.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.customers.profiles import is_customer_id
from bot.customers.tag_push import TAG_GROUP
from storage.sql import customer_staff, customer_tags, customers, dialect_insert

log = logging.getLogger(__name__)

MEMBERS_PER_CALL = 100  # batch/get_by_user: userid_list holds at most 100 members
PAGE = 100              # and answers at most 100 customers a page


@dataclass(frozen=True)
class FollowedCustomer:
    """One customer as one member follows them (an item of batch/get_by_user)."""
    customer_id: str
    name: str
    staff_id: str
    added_at_ms: int
    state: str | None
    tags: tuple[str, ...]


@dataclass
class SyncReport:
    members: int = 0
    pages: int = 0
    relations: int = 0
    customers: set[str] = field(default_factory=set)
    member_ids: list[str] = field(default_factory=list)  # who was synced (the group sync reuses it)
    tags_removed: int = 0
    complete: bool = False

    def to_json(self) -> dict:
        return {"members": self.members, "pages": self.pages, "relations": self.relations,
                "customers": len(self.customers), "tags_removed": self.tags_removed, "complete": self.complete}


def parse_page(page: dict, tag_names: dict[str, str]) -> list[FollowedCustomer]:
    out = []
    for item in page.get("external_contact_list") or []:
        contact, follow = item.get("external_contact") or {}, item.get("follow_info") or {}
        cid, staff = str(contact.get("external_userid") or ""), str(follow.get("userid") or "")
        if not is_customer_id(cid) or not staff:
            continue
        tags = tuple(sorted({tag_names[t] for t in follow.get("tag_id") or [] if t in tag_names}))
        out.append(FollowedCustomer(cid, str(contact.get("name") or "")[:200], staff,
                                    int(follow.get("createtime") or 0) * 1000, str(follow.get("state") or "") or None,
                                    tags))
    return out


class CustomerSync:
    def __init__(self, engine: AsyncEngine, wecom) -> None:
        self.engine = engine
        self.wecom = wecom

    async def tag_names(self) -> dict[str, str]:
        """WeCom tag id → name, leaving out the service's own group (those tags come from rules)."""
        return {t["id"]: str(t["name"])[:64] for g in await self.wecom.get_corp_tag_list()
                if g.get("group_name") != TAG_GROUP for t in g.get("tag") or [] if t.get("id") and t.get("name")}

    async def run(self, members: Sequence[str] | None = None) -> SyncReport:
        started = datetime.now(timezone.utc)
        report = SyncReport()
        names = await self.tag_names()
        everyone = members is None
        members = list(members) if members is not None else await self.wecom.get_follow_user_list()
        report.members, report.member_ids = len(members), members
        for i in range(0, len(members), MEMBERS_PER_CALL):
            batch, cursor = members[i:i + MEMBERS_PER_CALL], ""
            while True:
                page = await self.wecom.batch_get_by_user(batch, cursor, PAGE)
                rows = parse_page(page, names)
                await self.store(rows, started)
                report.pages += 1
                report.relations += len(rows)
                report.customers.update(r.customer_id for r in rows)
                cursor = str(page.get("next_cursor") or "")
                if not cursor:
                    break
        if everyone:
            report.tags_removed = await self.drop_stale_tags(started)
        report.complete = True
        log.info("customers synced from WeCom", extra=report.to_json())
        return report

    async def store(self, rows: Sequence[FollowedCustomer], synced_at: datetime) -> None:
        """One page in one transaction; repeating a page changes nothing."""
        if not rows:
            return
        now = datetime.now(timezone.utc)
        first: dict[str, FollowedCustomer] = {}
        for r in rows:
            if r.customer_id not in first or r.added_at_ms < first[r.customer_id].added_at_ms:
                first[r.customer_id] = r
        async with self.engine.begin() as conn:
            ins = dialect_insert(self.engine, customers)
            await conn.execute(ins.on_conflict_do_update(index_elements=["id"], set_={
                "name": sa.func.coalesce(sa.func.nullif(ins.excluded.name, ""), customers.c.name),
                "first_seen_at": sa.func.least(customers.c.first_seen_at, ins.excluded.first_seen_at)
                if self.engine.dialect.name == "postgresql" else
                sa.func.min(customers.c.first_seen_at, ins.excluded.first_seen_at),
                "channel": sa.func.coalesce(customers.c.channel, ins.excluded.channel),
                "status": "active", "updated_at": now}),
                [{"id": c, "name": r.name, "status": "active", "channel": r.state, "first_seen_at": r.added_at_ms,
                  "updated_at": now} for c, r in sorted(first.items())])
            sins = dialect_insert(self.engine, customer_staff)
            await conn.execute(sins.on_conflict_do_update(
                index_elements=["customer_id", "staff_id"],
                set_={"deleted_at": None, "state": sa.func.coalesce(customer_staff.c.state, sins.excluded.state)}),
                [{"customer_id": r.customer_id, "staff_id": r.staff_id, "added_at": r.added_at_ms, "state": r.state}
                 for r in sorted(rows, key=lambda r: (r.customer_id, r.staff_id))])
            tagged = sorted({(r.customer_id, t) for r in rows for t in r.tags})
            if tagged:
                tins = dialect_insert(self.engine, customer_tags)
                # A tag another source already set stays that source's; a WeCom tag is marked as seen.
                await conn.execute(tins.on_conflict_do_update(
                    index_elements=["customer_id", "tag"],
                    set_={"added_at": sa.case((customer_tags.c.source == "wecom", tins.excluded.added_at),
                                              else_=customer_tags.c.added_at)}),
                    [{"customer_id": c, "tag": t, "source": "wecom", "added_at": synced_at} for c, t in tagged])

    async def drop_stale_tags(self, started: datetime) -> int:
        """WeCom tags not seen in a complete run were removed in WeCom."""
        async with self.engine.begin() as conn:
            res = await conn.execute(customer_tags.delete().where(customer_tags.c.source == "wecom",
                                                                  customer_tags.c.added_at < started))
            return res.rowcount or 0
