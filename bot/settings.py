"""Typed configuration read from the environment (and an optional .env file).

Names follow SPEC §1. Values are validated once at start; a bad value raises
SettingsError naming the variable, so the process refuses to start with a clear message.
"""
from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping

from bot import keys


class SettingsError(ValueError):
    """A configuration value is missing or malformed."""


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be >= {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, minimum: float = 0.0) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be >= {minimum}, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be true/false, got {raw!r}")


def _str(env: Mapping[str, str], name: str, default: str | None = None) -> str | None:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    return raw.strip()


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("./var")
    host: str = "0.0.0.0"
    port: int = 8080
    redis_url: str | None = None
    database_url: str | None = None
    admin_token: str | None = field(default=None, repr=False)

    wecom_corp_id: str | None = None
    wecom_token: str | None = field(default=None, repr=False)
    wecom_encoding_aes_key: str | None = field(default=None, repr=False)
    wecom_max_clock_skew: int = 300
    wecom_agent_id: str | None = None
    wecom_secret: str | None = field(default=None, repr=False)
    wecom_api_base: str = "https://qyapi.weixin.qq.com"

    embedding_model: str = "use-multilingual"
    models_dir_override: Path | None = None
    nlp_processes: int = 1
    nlp_dense_heads: bool = True

    # Gateway and workers (not in SPEC; documented in docs/CONFIGURATION.md).
    dedupe_ttl: int = 86_400
    max_body_bytes: int = 1 << 20
    stream_name: str = keys.EVENTS_STREAM
    worker_concurrency: int = 1
    claim_idle_ms: int = 60_000
    max_deliveries: int = 5
    api_timeout: float = 10.0
    api_retries: int = 3
    log_level: str = "INFO"
    timezone: str = "Asia/Shanghai"
    flag_window: int = 3600
    finance_sdk: str | None = None
    kf_autoreply: bool = False
    kf_min_score: float = 0.75
    archive_secret: str | None = field(default=None, repr=False)
    archive_private_keys: str | None = field(default=None, repr=False)
    unanswered_sla_minutes: int = 30
    relay_announce_interval: float = 3.0
    auth_failures_per_ip: int = 20
    auth_failures_global: int = 200
    auth_failure_window: int = 60
    unmasked_roles: tuple[str, ...] = ("admin", "qa")

    @property
    def callback_configured(self) -> bool:
        return bool(self.wecom_corp_id and self.wecom_token and self.wecom_encoding_aes_key)

    @property
    def outbound_configured(self) -> bool:
        return bool(self.wecom_corp_id and self.wecom_secret)

    @property
    def models_dir(self) -> Path:
        return self.models_dir_override or self.data_dir / "models"

    @property
    def lexicon_dir(self) -> Path:
        return self.data_dir / "lexicons"

    @property
    def sql_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'copilot.db').resolve()}"

    def with_overrides(self, **changes: object) -> "Settings":
        return replace(self, **changes)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, dotenv: Path | None = None) -> "Settings":
        """Build settings from `env` (default: os.environ merged over an optional .env file)."""
        if env is None:
            merged: dict[str, str] = {}
            dotenv = dotenv if dotenv is not None else Path(".env")
            if dotenv.is_file():
                from dotenv import dotenv_values

                merged.update({k: v for k, v in dotenv_values(dotenv).items() if v is not None})
            merged.update(os.environ)
            env = merged

        aes_key = _str(env, "WECOM_ENCODING_AES_KEY")
        if aes_key is not None:
            validate_encoding_aes_key(aes_key)
        database_url = _str(env, "DATABASE_URL")
        if database_url is not None:
            database_url = normalise_database_url(database_url)
        redis_url = _str(env, "REDIS_URL")
        if redis_url is not None and not redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError(f"REDIS_URL must start with redis://, rediss:// or unix://, got {redis_url!r}")
        api_base = _str(env, "WECOM_API_BASE", cls.wecom_api_base)
        assert api_base is not None
        if not api_base.startswith(("http://", "https://")):
            raise SettingsError(f"WECOM_API_BASE must be an http(s) URL, got {api_base!r}")
        log_level = (_str(env, "COPILOT_LOG_LEVEL", "INFO") or "INFO").upper()
        if log_level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise SettingsError(f"COPILOT_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {log_level!r}")
        return cls(
            data_dir=Path(_str(env, "COPILOT_DATA_DIR", "./var") or "./var"),
            host=_str(env, "COPILOT_HOST", "0.0.0.0") or "0.0.0.0",
            port=_int(env, "COPILOT_PORT", 8080, 0),
            redis_url=redis_url,
            database_url=database_url,
            admin_token=_str(env, "COPILOT_ADMIN_TOKEN"),
            wecom_corp_id=_str(env, "WECOM_CORP_ID"),
            wecom_token=_str(env, "WECOM_TOKEN"),
            wecom_encoding_aes_key=aes_key,
            wecom_max_clock_skew=_int(env, "WECOM_MAX_CLOCK_SKEW", 300, 0),
            wecom_agent_id=_str(env, "WECOM_AGENT_ID"),
            wecom_secret=_str(env, "WECOM_SECRET"),
            wecom_api_base=api_base.rstrip("/"),
            embedding_model=_str(env, "COPILOT_EMBEDDING_MODEL", "use-multilingual") or "use-multilingual",
            models_dir_override=Path(m) if (m := _str(env, "COPILOT_MODELS_DIR")) else None,
            nlp_processes=_int(env, "COPILOT_NLP_PROCESSES", 1, 0),
            nlp_dense_heads=_bool(env, "COPILOT_NLP_DENSE_HEADS", True),
            dedupe_ttl=_int(env, "COPILOT_DEDUPE_TTL", 86_400, 60),
            max_body_bytes=_int(env, "COPILOT_MAX_BODY_BYTES", 1 << 20, 1024),
            worker_concurrency=_int(env, "COPILOT_WORKERS", 1, 0),
            claim_idle_ms=_int(env, "COPILOT_CLAIM_IDLE_MS", 60_000, 0),
            max_deliveries=_int(env, "COPILOT_MAX_DELIVERIES", 5, 1),
            api_timeout=_float(env, "WECOM_API_TIMEOUT", 10.0, 0.1),
            api_retries=_int(env, "WECOM_API_RETRIES", 3, 0),
            log_level=log_level,
            timezone=_timezone(env),
            flag_window=_int(env, "COPILOT_FLAG_WINDOW", 3600, 0),
            finance_sdk=_str(env, "WECOM_FINANCE_SDK"),
            kf_autoreply=_bool(env, "COPILOT_KF_AUTOREPLY", False),
            kf_min_score=_float(env, "COPILOT_KF_MIN_SCORE", 0.75, 0.0),
            archive_secret=_str(env, "WECOM_ARCHIVE_SECRET"),
            archive_private_keys=_str(env, "WECOM_ARCHIVE_PRIVATE_KEYS"),
            unanswered_sla_minutes=_int(env, "COPILOT_UNANSWERED_SLA_MINUTES", 30, 1),
            relay_announce_interval=_float(env, "COPILOT_RELAY_ANNOUNCE_INTERVAL", 3.0, 0.0),
            auth_failures_per_ip=_int(env, "COPILOT_AUTH_FAILURES_PER_IP", 20, 1),
            auth_failures_global=_int(env, "COPILOT_AUTH_FAILURES_GLOBAL", 200, 1),
            auth_failure_window=_int(env, "COPILOT_AUTH_FAILURE_WINDOW", 60, 1),
            unmasked_roles=_roles(env, "COPILOT_UNMASKED_ROLES", ("admin", "qa")),
        )


def _roles(env: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = env.get(name)
    if raw is None:
        return default
    roles = tuple(r.strip() for r in raw.split(",") if r.strip())
    unknown = [r for r in roles if r not in ("admin", "trainer", "qa", "staff")]
    if unknown:
        raise SettingsError(f"{name} lists unknown roles: {', '.join(unknown)} (known: admin, trainer, qa, staff)")
    return roles


def _timezone(env: Mapping[str, str]) -> str:
    name = _str(env, "COPILOT_TIMEZONE", "Asia/Shanghai") or "Asia/Shanghai"
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"COPILOT_TIMEZONE is not a known time zone: {name!r}") from None
    return name


def validate_encoding_aes_key(value: str) -> bytes:
    """EncodingAESKey is 43 chars of base64 without its trailing '='; it decodes to a 32-byte AES key."""
    if len(value) != 43:
        raise SettingsError(f"WECOM_ENCODING_AES_KEY must be 43 characters, got {len(value)}")
    try:
        key = base64.b64decode(value + "=", validate=True)
    except (binascii.Error, ValueError):
        raise SettingsError("WECOM_ENCODING_AES_KEY is not valid base64") from None
    if len(key) != 32:
        raise SettingsError("WECOM_ENCODING_AES_KEY must decode to 32 bytes")
    return key


def normalise_database_url(url: str) -> str:
    """Accept plain postgresql:// and sqlite:// URLs and pick the async driver for them."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url.split(":///", 1)[1]
    if url.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
        return url
    raise SettingsError(
        f"DATABASE_URL must be postgresql+asyncpg://… or sqlite+aiosqlite:///…, got scheme {url.split(':', 1)[0]!r}"
    )
