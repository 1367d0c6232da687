from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from bot.logs import JsonFormatter, mask_personal
from bot.settings import Settings, SettingsError
from tests.helpers import AES_KEY


def test_defaults_are_safe():
    s = Settings.from_env({})
    assert s.data_dir == Path("./var") and s.redis_url is None and s.wecom_max_clock_skew == 300
    assert s.sql_url.startswith("sqlite+aiosqlite:///") and s.sql_url.endswith("var/copilot.db")
    assert s.embedding_model == "use-multilingual" and s.wecom_api_base == "https://qyapi.weixin.qq.com"
    assert not s.callback_configured


@pytest.mark.parametrize("env,name", [
    ({"WECOM_MAX_CLOCK_SKEW": "soon"}, "WECOM_MAX_CLOCK_SKEW"),
    ({"WECOM_MAX_CLOCK_SKEW": "-1"}, "WECOM_MAX_CLOCK_SKEW"),
    ({"WECOM_ENCODING_AES_KEY": "tooshort"}, "WECOM_ENCODING_AES_KEY"),
    ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
    ({"REDIS_URL": "localhost:6379"}, "REDIS_URL"),
    ({"WECOM_API_BASE": "ftp://x"}, "WECOM_API_BASE"),
    ({"COPILOT_LOG_LEVEL": "LOUD"}, "COPILOT_LOG_LEVEL"),
])
def test_bad_values_name_the_variable(env, name):
    with pytest.raises(SettingsError, match=name):
        Settings.from_env(env)


def test_database_url_driver_chosen():
    assert Settings.from_env({"DATABASE_URL": "postgresql://postgres@h/db"}).sql_url == "postgresql+asyncpg://postgres@h/db"


def test_dotenv_file_read_and_env_wins(tmp_path, monkeypatch):
    dotenv = tmp_path / ".env"
    dotenv.write_text(f"WECOM_CORP_ID=wwfromfile\nWECOM_TOKEN=t\nWECOM_ENCODING_AES_KEY={AES_KEY}\nWECOM_AGENT_ID=5\n")
    monkeypatch.setenv("WECOM_AGENT_ID", "7")
    s = Settings.from_env(dotenv=dotenv)
    assert s.wecom_corp_id == "wwfromfile" and s.callback_configured and s.wecom_agent_id == "7"


def test_secrets_not_in_repr():
    s = Settings.from_env({"WECOM_SECRET": "supersecretvalue", "WECOM_TOKEN": "tok123456"})
    assert "supersecretvalue" not in repr(s) and "tok123456" not in repr(s)


def test_personal_data_masked():
    assert mask_personal("电话13812345678，身份证110101199003074514") == "电话138****5678，身份证110101********4514"
    assert mask_personal("订单号 2023") == "订单号 2023"


def test_json_logs_mask_secrets_and_pii():
    fmt = JsonFormatter(secrets=["app-secret-xyz"])
    rec = logging.LogRecord("t", logging.INFO, "", 0, "called with app-secret-xyz for 13912345678", (), None)
    rec.phone = "13912345678"
    out = json.loads(fmt.format(rec))
    assert out["msg"] == "called with *** for 139****5678" and out["phone"] == "139****5678"


def test_every_variable_is_declared_once_and_documented():
    from dataclasses import fields
    from pathlib import Path

    from bot.settings import Settings

    names = [f.metadata["env"] for f in fields(Settings) if "env" in f.metadata]
    assert len(names) == len(set(names))
    doc = (Path(__file__).resolve().parent.parent / "docs" / "CONFIGURATION.md").read_text()
    assert [n for n in names if f"`{n}`" not in doc] == []
    assert Settings.from_env({}) == Settings()  # the defaults read from an empty environment are the declared ones
