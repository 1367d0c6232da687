"""Bearer tokens with roles (docs/CONSOLE.md, "Who sees what"; README, set-up). Tokens are random, shown once, and stored as SHA-256."""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.sql import api_tokens, aware_iso

ROLES = ("admin", "trainer", "qa", "staff")


@dataclass(frozen=True)
class Principal:
    token_id: str
    name: str
    role: str
    userid: str | None = None  # staff: the WeCom userid whose conversations this principal may see

    @property
    def member_scope(self) -> str | None:
        """The member whose conversations this principal is limited to (staff), or None for all.
        A staff principal without a userid is limited to nothing."""
        return (self.userid or "") if self.role == "staff" else None

    def may(self, *roles: str) -> bool:
        return self.role == "admin" or self.role in roles


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return "wcp_" + secrets.token_urlsafe(32)


def load_or_create_admin_token(configured: str | None, data_dir: Path) -> tuple[str, bool]:
    """The admin token: COPILOT_ADMIN_TOKEN, else the one stored under the data dir, else a new one.
    Returns (token, created_now)."""
    if configured:
        return configured, False
    path = data_dir / "admin_token"
    if path.is_file():
        return path.read_text().strip(), False
    data_dir.mkdir(parents=True, exist_ok=True)
    token = new_token()
    # O_EXCL: when web and worker start together only one writes; the other re-reads.
    try:
        fd = path.open("x")
    except FileExistsError:
        return path.read_text().strip(), False
    with fd:
        path.chmod(0o600)
        fd.write(token + "\n")
    return token, True


class TokenStore:
    CACHE_SECONDS = 5.0

    def __init__(self, engine: AsyncEngine, admin_token: str) -> None:
        self._engine = engine
        self._admin_hash = hash_token(admin_token)
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._active: dict[str, tuple[float, bool]] = {}

    def known_valid(self, token: str) -> Principal | None:
        """The principal of a token that authenticated within CACHE_SECONDS (no I/O), else None."""
        hit = self._cache.get(hash_token(token))
        return hit[1] if hit and hit[1] is not None and hit[0] > time.monotonic() else None

    async def authenticate(self, token: str) -> Principal | None:
        digest = hash_token(token)
        now = time.monotonic()
        if hmac.compare_digest(digest, self._admin_hash):
            who = Principal("admin", "admin", "admin")
            self._cache[digest] = (now + self.CACHE_SECONDS, who)
            return who
        hit = self._cache.get(digest)
        if hit and hit[0] > now:
            return hit[1]
        async with self._engine.connect() as conn:
            row = (await conn.execute(
                sa.select(api_tokens.c.id, api_tokens.c.name, api_tokens.c.role, api_tokens.c.userid)
                .where(api_tokens.c.token_hash == digest, api_tokens.c.revoked_at.is_(None))
            )).first()
        principal = Principal(row.id, row.name, row.role, row.userid) if row else None
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (now + self.CACHE_SECONDS, principal)
        return principal

    async def is_active(self, token_id: str) -> bool:
        """Whether a token (by id) is still valid; used to end console sessions of revoked tokens."""
        if token_id == "admin" or token_id.startswith("wecom:"):
            return True
        now = time.monotonic()
        hit = self._active.get(token_id)
        if hit and hit[0] > now:
            return hit[1]
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(api_tokens.c.id).where(
                api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None)))).first()
        self._active[token_id] = (now + self.CACHE_SECONDS, row is not None)
        return row is not None

    async def create(self, role: str, name: str, created_by: str, userid: str | None = None) -> tuple[dict, str]:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        if role == "staff" and not userid:
            raise ValueError("a staff token needs the member's WeCom userid")
        token = new_token()
        row = {
            "id": uuid.uuid4().hex,
            "name": name,
            "role": role,
            "token_hash": hash_token(token),
            "created_at": datetime.now(timezone.utc),
            "created_by": created_by,
            "revoked_at": None,
            "userid": userid or None,
        }
        async with self._engine.begin() as conn:
            await conn.execute(api_tokens.insert().values(**row))
        return self._public(row), token

    async def list(self) -> list[dict]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(sa.select(api_tokens).order_by(api_tokens.c.created_at))).mappings().all()
        return [self._public(dict(r)) for r in rows]

    async def revoke(self, token_id: str) -> bool:
        async with self._engine.begin() as conn:
            res = await conn.execute(
                api_tokens.update()
                .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=datetime.now(timezone.utc))
            )
        self._cache.clear()
        self._active.clear()
        return res.rowcount > 0

    @staticmethod
    def _public(row: dict) -> dict:
        return {
            "id": row["id"],
            "name": row["name"],
            "role": row["role"],
            "userid": row.get("userid"),
            "created_at": aware_iso(row.get("created_at")),
            "created_by": row.get("created_by"),
            "revoked": row.get("revoked_at") is not None,
        }
