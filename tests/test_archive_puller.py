"""The archive puller against a real shared library with WeCom's SDK ABI (compiled here), with
real RSA (PKCS#1 v1.5) for the per-message random keys."""
from __future__ import annotations

import base64
import json
import shutil
import subprocess

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from bot.conversations.archive_puller import ArchivePuller
from bot.conversations.finance_sdk import CtypesFinanceSdk, SdkError
from storage.sql import archive_parked, messages
from server import make_worker

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc to build the fake SDK library")


@pytest.fixture(scope="module")
def sdk_library(tmp_path_factory):
    from pathlib import Path

    out = tmp_path_factory.mktemp("sdk") / "libfakefinance.so"
    src = Path(__file__).parent / "fixtures" / "fake_finance_sdk.c"
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", "-o", str(out), str(src)], check=True)
    return str(out)


KEY_V1 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
KEY_V2 = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def seal(record: dict, seq: int, key, ver: int) -> str:
    random_key = f"rk{seq:08d}secretkey"
    cipher = bytes(b ^ ord(random_key[i % len(random_key)]) for i, b in enumerate(json.dumps(record).encode())).hex()
    enc_key = base64.b64encode(key.public_key().encrypt(random_key.encode(), padding.PKCS1v15())).decode()
    item = {"seq": seq, "msgid": record["msgid"], "publickey_ver": ver, "encrypt_random_key": enc_key,
            "encrypt_chat_msg": cipher}
    return f"{seq}\t{json.dumps(item)}\n"


def record(i: int, text: str) -> dict:
    return {"msgid": f"arc{i}", "action": "send", "from": "wmCUST" if i % 2 else "zhangsan",
            "tolist": ["zhangsan" if i % 2 else "wmCUST"], "roomid": "", "msgtime": 1_700_000_000_000 + i,
            "msgtype": "text", "text": {"content": text}}


async def test_pull_decrypt_park_and_retry(sdk_library, tmp_path, monkeypatch, parts):
    data = tmp_path / "chat.tsv"
    lines = [seal(record(i, f"消息{i}" if i != 3 else "加我微信"), i, KEY_V1, 1) for i in range(1, 6)]
    lines.append(seal(record(6, "新密钥加密的消息"), 6, KEY_V2, 2))  # key v2 not configured yet
    lines += [seal(record(i, f"消息{i}"), i, KEY_V1, 1) for i in range(7, 9)]
    data.write_text("".join(lines))
    monkeypatch.setenv("FAKE_SDK_DATA", str(data))
    monkeypatch.setenv("FAKE_SDK_NET_FAILS", "2")  # first two calls: network error 10001
    sdk = CtypesFinanceSdk(sdk_library, "ww0123456789abcdef", "archive-secret")
    slept = []

    async def no_sleep(s):
        slept.append(s)

    puller = ArchivePuller(sdk, {1: KEY_V1}, parts.conversations, parts.queue, batch=3, sleep=no_sleep)
    assert await puller.pull_all() == 8
    assert slept == [0.5, 1.0]  # backoff on 10001
    async with parts.engine.connect() as conn:
        stored = sorted((await conn.execute(sa.select(messages.c.seq))).scalars())
        parked = (await conn.execute(sa.select(archive_parked.c.seq, archive_parked.c.error))).all()
    assert stored == [1, 2, 3, 4, 5, 7, 8]
    assert parked[0][0] == 6 and "publickey_ver 2" in parked[0][1]
    assert await puller.cursor() == 8 and await puller.pull_once() == 0  # nothing re-pulled, nothing skipped
    # the key appears: the parked record is recovered
    puller.keys[2] = KEY_V2
    assert await puller.retry_parked() == 1
    async with parts.engine.connect() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(archive_parked))).scalar() == 0
        text6 = (await conn.execute(sa.select(messages.c.text).where(messages.c.seq == 6))).scalar()
    assert text6 == "新密钥加密的消息"
    # everything pulled is analysed by the workers
    await make_worker(parts).drain()
    flags = await parts.conversations.list_flags("open", None, None, None, None, None, None, None, 50)
    assert any(f["msgid"] == "arc3" for f in flags[0])
    sdk.close()


async def test_crash_between_pull_and_store_repulls(sdk_library, tmp_path, monkeypatch, parts):
    data = tmp_path / "chat.tsv"
    data.write_text("".join(seal(record(i, f"m{i}"), i, KEY_V1, 1) for i in range(1, 4)))
    monkeypatch.setenv("FAKE_SDK_DATA", str(data))
    sdk = CtypesFinanceSdk(sdk_library, "ww0123456789abcdef", "archive-secret")
    puller = ArchivePuller(sdk, {1: KEY_V1}, parts.conversations, parts.queue, batch=10)
    original = parts.conversations.ingest

    async def crash(*a, **k):
        raise RuntimeError("process died before storing")

    monkeypatch.setattr(parts.conversations, "ingest", crash)
    with pytest.raises(RuntimeError):
        await puller.pull_once()
    assert await puller.cursor() == 0
    monkeypatch.setattr(parts.conversations, "ingest", original)
    assert await puller.pull_once() == 3 and await puller.cursor() == 3


def test_media_is_binary_and_chunked(sdk_library):
    import asyncio

    sdk = CtypesFinanceSdk(sdk_library, "ww0123456789abcdef", "archive-secret")
    puller = ArchivePuller(sdk, {}, None, None)
    data = asyncio.run(puller.fetch_media("file1"))
    assert data == bytes(i % 256 for i in range(1000))  # NUL bytes included, 4 chunks joined
    sdk.close()


def test_init_error_is_typed(sdk_library):
    with pytest.raises(SdkError) as err:
        CtypesFinanceSdk(sdk_library, "ww0123456789abcdef", "bad")
    assert err.value.code == 10002
