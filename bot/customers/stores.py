"""Stores and the nearest ones to a point (docs/CUSTOMERS.md, "Nearest store").

Points are kept as unit vectors in a k-d tree (scipy's cKDTree): the straight-line (chord)
distance between unit vectors orders points exactly as the great-circle distance does, so the k
nearest by chord are the k nearest on the sphere, and each chord converts back to metres. The
tree is rebuilt in a process when the stores changed (a version counter in Redis, bumped on
every write, read at most once a second)."""
from __future__ import annotations

import asyncio
import math
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Sequence

import numpy as np
import redis.asyncio as aioredis
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import keys
from storage.sql import dialect_insert, stores

EARTH_RADIUS_M = 6_371_008.8
VERSION_KEY = f"{keys.PREFIX}stores:version"  # bumped on every write; each process rebuilds its tree
VERSION_CHECK_SECONDS = 1.0  # other processes see a change within a second
_HOURS = re.compile(r"^([01]\d|2[0-4]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d$")


class StoreInput(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    id: str = Field(pattern=r"^[A-Za-z0-9_\-:.]{1,64}$")
    name: str = Field(min_length=1, max_length=200)
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    lng: float = Field(ge=-180, le=180, allow_inf_nan=False)
    hours: str | None = Field(default=None, max_length=64)
    staff: list[str] = Field(default_factory=list, max_length=100)
    group_chat_id: str | None = Field(default=None, max_length=128)

    @field_validator("hours")
    @classmethod
    def _hours(cls, v: str | None) -> str | None:
        if v is not None and not _HOURS.match(v):
            raise ValueError('hours must look like "10:00-22:00"')
        return v


def unit(lat: np.ndarray, lng: np.ndarray) -> np.ndarray:
    la, lo = np.radians(lat), np.radians(lng)
    return np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], axis=-1)


def chord_to_m(chord: np.ndarray) -> np.ndarray:
    return 2 * EARTH_RADIUS_M * np.arcsin(np.clip(chord / 2, 0, 1))


def haversine_m(lat1: float, lng1: float, lat2: np.ndarray, lng2: np.ndarray) -> np.ndarray:
    """The brute-force reference (bench/stores_bench.py, tests)."""
    p1, p2 = math.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(lng2) - math.radians(lng1)
    a = np.sin(dp / 2) ** 2 + math.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(a))


@dataclass
class _Index:
    version: int
    ids: list[str]
    names: list[str]
    tree: object | None


class StoreDirectory:
    def __init__(self, engine: AsyncEngine, redis: aioredis.Redis) -> None:
        self.engine = engine
        self.redis = redis
        self._index: _Index | None = None
        self._lock = asyncio.Lock()
        self._checked = float("-inf")

    async def add(self, items: list[StoreInput]) -> int:
        if not items:
            return 0
        now = datetime.now(timezone.utc)
        rows = {s.id: {**s.model_dump(), "updated_at": now} for s in items}
        ins = dialect_insert(self.engine, stores)
        async with self.engine.begin() as conn:
            await conn.execute(ins.on_conflict_do_update(index_elements=["id"], set_={
                c: ins.excluded[c] for c in ("name", "lat", "lng", "hours", "staff", "group_chat_id", "updated_at")}),
                list(rows.values()))
        await self.redis.incr(VERSION_KEY)
        self._checked = float("-inf")  # this process sees its own write at once
        return len(rows)

    async def list(self, ids: Sequence[str] | None = None) -> list[dict]:
        """Every store, or only those with these ids."""
        stmt = sa.select(stores).order_by(stores.c.id)
        if ids is not None:
            stmt = stmt.where(stores.c.id.in_(list(ids)))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).mappings().all()
        return [{k: r[k] for k in ("id", "name", "lat", "lng", "hours", "staff", "group_chat_id")} for r in rows]

    async def _current(self) -> _Index:
        now = time.monotonic()
        if self._index is not None and now - self._checked < VERSION_CHECK_SECONDS:
            return self._index
        version = int(await self.redis.get(VERSION_KEY) or 0)
        self._checked = now
        if self._index is not None and self._index.version == version:
            return self._index
        async with self._lock:
            if self._index is not None and self._index.version == version:
                return self._index
            from scipy.spatial import cKDTree

            async with self.engine.connect() as conn:
                rows = (await conn.execute(sa.select(stores.c.id, stores.c.name, stores.c.lat, stores.c.lng)
                                           .order_by(stores.c.id))).all()
            tree = cKDTree(unit(np.array([r.lat for r in rows]), np.array([r.lng for r in rows]))) if rows else None
            self._index = _Index(version, [r.id for r in rows], [r.name for r in rows], tree)
            return self._index

    async def nearest(self, lat: float, lng: float, k: int = 3) -> list[dict]:
        index = await self._current()
        if index.tree is None:
            return []
        k = min(k, len(index.ids))
        dist, pos = index.tree.query(unit(np.array([lat]), np.array([lng]))[0], k=k)
        dist, pos = np.atleast_1d(dist), np.atleast_1d(pos)
        return [{"id": index.ids[i], "name": index.names[i], "distance_m": round(float(m), 1)}
                for i, m in zip(pos, chord_to_m(dist))]
