"""Fixtures: real Redis and SQL (the machine's services when REDIS_URL / DATABASE_URL are set,
otherwise embedded Redis and SQLite), the real app through aiohttp's test client, and a fake
WeCom API server."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import redis.asyncio as aioredis
import sqlalchemy as sa

from bot.settings import Settings, normalise_database_url
from storage.sql import make_engine, metadata
from bot.web.appkeys import COMPONENTS
from server import create_app
from tests.helpers import AES_KEY, TOKEN
from tests.wecom_fake import CORP_ID, FakeWeCom

ADMIN = "test-admin-token-0123456789"
# Trained once and reused across runs (the artefact carries a fingerprint of the training data,
# so a change to the data retrains it).
MODELS_DIR = Path(__file__).resolve().parent.parent / "var" / "test-models"


async def _reset_external_services() -> None:
    """Each test starts from empty stores (like arq's flushed-Redis fixtures)."""
    if os.environ.get("REDIS_URL"):
        r = aioredis.Redis.from_url(os.environ["REDIS_URL"])
        await r.flushdb()
        await r.aclose()
    if os.environ.get("DATABASE_URL"):
        engine = make_engine(normalise_database_url(os.environ["DATABASE_URL"]))
        async with engine.begin() as conn:
            await conn.run_sync(metadata.drop_all)
            await conn.execute(sa.text("SELECT 1"))
        await engine.dispose()


@pytest.fixture
def base_settings(tmp_path: Path) -> Settings:
    env = {
        "COPILOT_DATA_DIR": str(tmp_path / "var"),
        "COPILOT_ADMIN_TOKEN": ADMIN,
        "WECOM_CORP_ID": CORP_ID,
        "WECOM_TOKEN": TOKEN,
        "WECOM_ENCODING_AES_KEY": AES_KEY,
        "WECOM_SECRET": "app-secret",
        "WECOM_AGENT_ID": "1000002",
        "WECOM_API_RETRIES": "2",
        "COPILOT_MODELS_DIR": str(MODELS_DIR),
        "COPILOT_NLP_PROCESSES": "0",
        "COPILOT_RELAY_ANNOUNCE_INTERVAL": "0.05",
    }
    for name in ("REDIS_URL", "DATABASE_URL"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    return Settings.from_env(env)


@pytest.fixture
async def fake_wecom(aiohttp_server):
    fake = FakeWeCom()
    server = await aiohttp_server(fake.app())
    fake.base_url = str(server.make_url("")).rstrip("/")
    return fake


@pytest.fixture
async def settings(base_settings: Settings, fake_wecom: FakeWeCom) -> Settings:
    await _reset_external_services()
    return base_settings.with_overrides(wecom_api_base=fake_wecom.base_url)


@pytest.fixture
async def client(aiohttp_client, settings: Settings):
    """The real app (workers not started: tests drive them with `drain`)."""
    return await aiohttp_client(create_app(settings, run_workers=False))


@pytest.fixture
def parts(client):
    return client.app[COMPONENTS]


@pytest.fixture
def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN}"}
