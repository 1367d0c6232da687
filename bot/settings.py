"""Typed configuration read from the environment (and an optional .env file).

Every variable is listed in docs/CONFIGURATION.md. Values are validated once at start; a bad value raises
SettingsError naming the variable, so the process refuses to start with a clear message.
"""
from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Mapping

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


def _roles(env: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = env.get(name)
    if raw is None:
        return default
    roles = tuple(r.strip() for r in raw.split(",") if r.strip())
    unknown = [r for r in roles if r not in ("admin", "trainer", "qa", "staff")]
    if unknown:
        raise SettingsError(f"{name} lists unknown roles: {', '.join(unknown)} (known: admin, trainer, qa, staff)")
    return roles


def _timezone(env: Mapping[str, str], name: str, default: str) -> str:
    value = _str(env, name, default) or default
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"{name} is not a known time zone: {value!r}") from None
    return value


# --- how a variable is read ----------------------------------------------------------------
Parse = Callable[[Mapping[str, str], str, Any], Any]


def var(name: str, default: Any, parse: Parse | None = None, *, secret: bool = False) -> Any:
    """A setting read from the environment variable `name`; `default` when it is unset or empty."""
    return field(default=default, repr=not secret, metadata={"env": name, "parse": parse or _str})


def one_of(*choices: str) -> Parse:
    def parse(env: Mapping[str, str], name: str, default: str) -> str:
        raw = env.get(name, "").strip().lower() or default
        if raw not in choices:
            raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
        return raw
    return parse


def integer(minimum: int = 0) -> Parse:
    return lambda env, name, default: _int(env, name, default, minimum)


def number(minimum: float = 0.0) -> Parse:
    return lambda env, name, default: _float(env, name, default, minimum)


def _path(env: Mapping[str, str], name: str, default: Path | None) -> Path | None:
    raw = _str(env, name)
    return Path(raw) if raw else default


def _aes_key(env: Mapping[str, str], name: str, default: str | None) -> str | None:
    value = _str(env, name, default)
    if value is not None:
        validate_encoding_aes_key(value)
    return value


def _database_url(env: Mapping[str, str], name: str, default: str | None) -> str | None:
    value = _str(env, name, default)
    return normalise_database_url(value) if value is not None else None


def _sla_hours(env: Mapping[str, str], name: str, default: tuple[float, ...]) -> tuple[float, ...]:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        values = tuple(float(x) for x in raw.split(","))
    except ValueError:
        raise SettingsError(f"{name} must be three hours for high,medium,low, e.g. 2,8,24; got {raw!r}") from None
    if len(values) != 3 or any(not 0 < v <= 24 * 90 for v in values):
        raise SettingsError(f"{name} must be three hours for high,medium,low (each 0 < h <= 2160); got {raw!r}")
    return values


def _redis_url(env: Mapping[str, str], name: str, default: str | None) -> str | None:
    value = _str(env, name, default)
    if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
        raise SettingsError(f"{name} must start with redis://, rediss:// or unix://, got {value!r}")
    return value


def _http_url(env: Mapping[str, str], name: str, default: str) -> str:
    value = _str(env, name, default) or default
    if not value.startswith(("http://", "https://")):
        raise SettingsError(f"{name} must be an http(s) URL, got {value!r}")
    return value.rstrip("/")


def _log_level(env: Mapping[str, str], name: str, default: str) -> str:
    value = (_str(env, name, default) or default).upper()
    if value not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise SettingsError(f"{name} must be DEBUG, INFO, WARNING or ERROR, got {value!r}")
    return value


@dataclass(frozen=True)
class Settings:
    """Every setting once: its attribute, environment variable and default (docs/CONFIGURATION.md)."""

    # --- process and stores ---
    data_dir: Path = var("COPILOT_DATA_DIR", Path("./var"), _path)
    host: str = var("COPILOT_HOST", "0.0.0.0")
    port: int = var("COPILOT_PORT", 8080, integer(0))
    redis_url: str | None = var("REDIS_URL", None, _redis_url)
    database_url: str | None = var("DATABASE_URL", None, _database_url)
    log_level: str = var("COPILOT_LOG_LEVEL", "INFO", _log_level)
    timezone: str = var("COPILOT_TIMEZONE", "Asia/Shanghai", _timezone)

    # --- WeCom callback and outbound API ---
    wecom_corp_id: str | None = var("WECOM_CORP_ID", None)
    wecom_token: str | None = var("WECOM_TOKEN", None, secret=True)
    wecom_encoding_aes_key: str | None = var("WECOM_ENCODING_AES_KEY", None, _aes_key, secret=True)
    wecom_max_clock_skew: int = var("WECOM_MAX_CLOCK_SKEW", 300, integer(0))
    wecom_agent_id: str | None = var("WECOM_AGENT_ID", None)
    wecom_secret: str | None = var("WECOM_SECRET", None, secret=True)
    wecom_api_base: str = var("WECOM_API_BASE", "https://qyapi.weixin.qq.com", _http_url)
    api_timeout: float = var("WECOM_API_TIMEOUT", 10.0, number(0.1))
    api_retries: int = var("WECOM_API_RETRIES", 3, integer(0))

    # --- gateway and workers ---
    dedupe_ttl: int = var("COPILOT_DEDUPE_TTL", 86_400, integer(60))
    max_body_bytes: int = var("COPILOT_MAX_BODY_BYTES", 1 << 20, integer(1024))
    worker_concurrency: int = var("COPILOT_WORKERS", 1, integer(0))
    claim_idle_ms: int = var("COPILOT_CLAIM_IDLE_MS", 60_000, integer(0))
    max_deliveries: int = var("COPILOT_MAX_DELIVERIES", 5, integer(1))
    stream_name: str = keys.EVENTS_STREAM  # not configurable; benchmarks override it

    # --- access: tokens, login limits, masking ---
    admin_token: str | None = var("COPILOT_ADMIN_TOKEN", None, secret=True)
    auth_failures_per_ip: int = var("COPILOT_AUTH_FAILURES_PER_IP", 20, integer(1))
    auth_failures_global: int = var("COPILOT_AUTH_FAILURES_GLOBAL", 200, integer(1))
    auth_failure_window: int = var("COPILOT_AUTH_FAILURE_WINDOW", 60, integer(1))
    unmasked_roles: tuple[str, ...] = var("COPILOT_UNMASKED_ROLES", ("admin", "qa"), _roles)

    # --- NLP and knowledge ---
    embedding_model: str = var("COPILOT_EMBEDDING_MODEL", "use-multilingual")
    models_dir_override: Path | None = var("COPILOT_MODELS_DIR", None, _path)
    nlp_processes: int = var("COPILOT_NLP_PROCESSES", 1, integer(0))
    nlp_dense_heads: bool = var("COPILOT_NLP_DENSE_HEADS", True, _bool)
    # A learned second reading of relay messages after the rules (bot/relay/review.py); off: rules only.
    relay_reviewer: bool = var("COPILOT_RELAY_REVIEWER", True, _bool)
    # The learning loop (docs/EVALUATION.md): promotion gate and the nightly retraining.
    gate_tolerance: float = var("COPILOT_GATE_TOLERANCE", 0.01, number(0.0))
    training_hour: int = var("COPILOT_TRAINING_HOUR", 3, integer(0))
    training_min_new_labels: int = var("COPILOT_TRAINING_MIN_NEW_LABELS", 20, integer(1))

    # --- conversation archive, QA flags, 客服 ---
    finance_sdk: str | None = var("WECOM_FINANCE_SDK", None)
    archive_secret: str | None = var("WECOM_ARCHIVE_SECRET", None, secret=True)
    archive_private_keys: str | None = var("WECOM_ARCHIVE_PRIVATE_KEYS", None, secret=True)
    flag_window: int = var("COPILOT_FLAG_WINDOW", 3600, integer(0))
    unanswered_sla_minutes: int = var("COPILOT_UNANSWERED_SLA_MINUTES", 30, integer(1))
    kf_autoreply: bool = var("COPILOT_KF_AUTOREPLY", False, _bool)
    kf_min_score: float = var("COPILOT_KF_MIN_SCORE", 0.75, number(0.0))

    # --- the sample brand (python server.py --demo; bot/demo.py) ---
    demo: bool = var("COPILOT_DEMO", False, _bool)

    # --- work orders (docs/EXPERIENCE.md) ---
    work_order_owner: str = var("COPILOT_WORK_ORDER_OWNER", "")
    work_order_sla_hours: tuple[float, ...] = var("COPILOT_WORK_ORDER_SLA_HOURS", (2.0, 8.0, 24.0), _sla_hours)
    public_url: str = var("COPILOT_PUBLIC_URL", "")

    # --- nearest-store routing (docs/GROWTH.md) ---
    store_routing: str = var("COPILOT_STORE_ROUTING", "suggest", one_of("off", "suggest", "transfer"))

    # --- relays ---
    relay_announce_interval: float = var("COPILOT_RELAY_ANNOUNCE_INTERVAL", 3.0, number(0.0))

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
    def versions_dir(self) -> Path:
        """The model registry's artefacts and active pointer (nlp/active.py)."""
        return self.data_dir / "model_versions"

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
        return cls(**{f.name: f.metadata["parse"](env, f.metadata["env"], f.default)
                      for f in fields(cls) if "env" in f.metadata})


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
