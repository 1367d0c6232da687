"""The learning loop end to end (issue 12): a new product nickname is misread; a trainer labels
it; a training job in its own process makes a candidate; the gate lets it through; every
process switches to it within seconds; rolling back restores the old behaviour. And the gate
refuses a candidate that is worse."""
from __future__ import annotations

import asyncio
import time

import pytest

from bot.learning.registry import ModelRegistry
from bot.web.appkeys import COMPONENTS
from server import create_app

# "退货宝" is a (made-up) brand's stain remover: the shipped model reads 退货 and answers return_refund.
NICK = "退货宝"
TEACH = [f"{NICK}{q}" for q in (
    "多少毫升一瓶", "能洗羊毛衫吗", "对猫咪有没有刺激", "是进口的吗", "哪里生产的", "香味重不重", "洗完要过清水吗",
    "能不能用在白衬衫上", "有大瓶装吗", "和84比哪个好", "能去血渍吗", "开封以后能放多久", "小孩衣服能用吗",
    "要稀释吗", "是喷的还是倒的", "可以机洗吗", "油渍也能洗掉吗", "对手有伤害吗", "适合羽绒服吗", "味道好闻吗",
    "去黄效果怎么样", "是浓缩的吗", "成分表发我看看", "有没有荧光剂", "红酒渍能洗吗", "放洗衣机里用还是手洗",
    "几岁宝宝能用", "真丝能用吗", "沙发布能用吗", "有替换装吗",
)]
PROBES = [f"{NICK}{q}" for q in ("还有货吗", "怎么用", "保质期多久", "是什么成分", "适合敏感肌吗", "有几个规格")]


async def token(client, admin_headers, role, userid=None):
    body = {"role": role, "name": f"{role} one", **({"userid": userid} if userid else {})}
    resp = await client.post("/api/v1/tokens", json=body, headers=admin_headers)
    return {"Authorization": f"Bearer {(await resp.json())['token']}"}


async def read(client, headers, texts):
    resp = await client.post("/api/v1/analyze", json={"items": [{"text": t} for t in texts]}, headers=headers)
    assert resp.status == 200, await resp.text()
    return (await resp.json())["items"]


def share(results, label):
    return sum(r["intent"]["label"] == label for r in results) / len(results)


async def until(check, timeout=10.0):
    """Poll `check()` until it is truthy; the promotion contract is 'within 10 s'."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("not within the promised time")
        await asyncio.sleep(0.25)


@pytest.fixture
async def pooled(aiohttp_client, settings):
    """The app with a real NLP pool process (the analyses below come from another process)."""
    return await aiohttp_client(create_app(settings.with_overrides(nlp_processes=1), run_workers=False))


async def test_a_nickname_is_learned_promoted_everywhere_and_rolled_back(pooled, admin_headers):
    client, parts = pooled, pooled.app[COMPONENTS]
    trainer = await token(client, admin_headers, "trainer")
    base = next(v for v in (await (await client.get("/api/v1/models?task=intent", headers=trainer)).json())["items"])
    assert base["status"] == "active" and base["kind"] == "base"
    before = await read(client, trainer, PROBES)
    assert share(before, "product_info") <= 0.34 and before[0]["models"]["intent"] == base["version"]

    resp = await client.post("/api/v1/labels", headers=trainer, json={"items": [
        {"task": "intent", "text": t, "label": "product_info"} for t in TEACH]})
    assert (await resp.json())["accepted"] == len(TEACH)
    resp = await client.post("/api/v1/models/train", json={"task": "intent"}, headers=trainer)
    assert resp.status == 202
    job_id = (await resp.json())["job_id"]
    again = await client.post("/api/v1/models/train", json={"task": "intent"}, headers=trainer)
    assert (await again.json())["job_id"] == job_id  # one job per task at a time
    assert (await (await client.get(f"/api/v1/models/jobs/{job_id}", headers=trainer)).json())["status"] == "queued"

    await parts.trainer.run_until_idle(timeout=300)
    job = await (await client.get(f"/api/v1/models/jobs/{job_id}", headers=trainer)).json()
    assert job["status"] == "done" and job["error"] is None, job
    cand = next(v for v in (await (await client.get("/api/v1/models?task=intent", headers=trainer)).json())["items"]
                if v["version"] == job["version"])
    assert cand["status"] == "candidate" and cand["metrics"]["baseline"]["version"] == base["version"]
    assert cand["data"]["labels"] == len(TEACH) and cand["metrics"]["gate"]["n"] > 100
    assert any(k.startswith("label:") for k in cand["data"]["counts"])

    resp = await client.post(f"/api/v1/models/{cand['version']}/promote", json={}, headers=trainer)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["status"] == "active"

    async def learned():
        after = await read(client, trainer, PROBES)
        return after if after[0]["models"]["intent"] == cand["version"] else None

    after = await until(learned)
    assert share(after, "product_info") >= 0.83
    # the web process's own analyzer follows the pointer too
    local = parts.nlp._local

    async def local_switched():
        local.refresh()
        return local.versions.get("intent") == cand["version"]

    await until(local_switched)
    # a stored analysis records the versions that produced it
    from bot.conversations.records import ArchiveRecord
    from tests.test_archive import rec

    stored, _ = await parts.conversations.ingest([ArchiveRecord.parse(rec("nick1", "wmNICK", PROBES[0], t=1))])
    await parts.pipeline.process(stored)
    msg = await (await client.get("/api/v1/conversations", headers=admin_headers)).json()
    conv = msg["items"][0]["id"]
    page = await (await client.get(f"/api/v1/conversations/{conv}/messages", headers=admin_headers)).json()
    assert page["items"][0]["analysis"]["models"]["intent"] == cand["version"]
    models = {v["version"]: v["status"] for v in
              (await (await client.get("/api/v1/models?task=intent", headers=trainer)).json())["items"]}
    assert models == {cand["version"]: "active", base["version"]: "retired"}

    # rollback: promoting the retired base needs no gate
    resp = await client.post(f"/api/v1/models/{base['version']}/promote", headers=trainer)
    assert resp.status == 200, await resp.text()

    async def rolled_back():
        r = await read(client, trainer, PROBES)
        return r if r[0]["models"]["intent"] == base["version"] else None

    assert share(await until(rolled_back), "product_info") == share(before, "product_info")


async def test_the_gate_refuses_a_worse_candidate_with_the_metric_and_only_admin_forces(client, admin_headers, parts):
    trainer = await token(client, admin_headers, "trainer")
    # Poison: 600 writers' questions (none of them in the gate set) labelled greeting.
    from training import corpus
    from training.gate import in_gate

    texts = list(dict.fromkeys(l.text for l in corpus.writer_lines("intent")
                               if l.label not in ("greeting", "other") and not in_gate(l.text)))[:600]
    resp = await client.post("/api/v1/labels", headers=trainer, json={"items": [
        {"task": "intent", "text": t, "label": "greeting"} for t in texts]})
    assert (await resp.json())["accepted"] == len(texts) == 600
    job_id = (await (await client.post("/api/v1/models/train", json={"task": "intent"}, headers=trainer)).json())["job_id"]
    await parts.trainer.run_until_idle(timeout=300)
    job = await parts.models.job(job_id)
    assert job["status"] == "done", job
    resp = await client.post(f"/api/v1/models/{job['version']}/promote", json={}, headers=trainer)
    assert resp.status == 409
    err = (await resp.json())["error"]
    assert err["code"] == "gate_failed" and "macro_f1" in err["message"]
    assert (await client.post(f"/api/v1/models/{job['version']}/promote", json={"force": True},
                              headers=trainer)).status == 403
    resp = await client.post(f"/api/v1/models/{job['version']}/promote", json={"force": True}, headers=admin_headers)
    assert resp.status == 200 and (await resp.json())["status"] == "active"


async def test_registry_inputs_are_validated(client, admin_headers):
    trainer = await token(client, admin_headers, "trainer")
    staff = await token(client, admin_headers, "staff", "xiaowang")
    assert (await client.post("/api/v1/models/train", json={"task": "relay"}, headers=trainer)).status == 400
    assert (await client.post("/api/v1/models/train", json={"task": "weather"}, headers=trainer)).status == 400
    assert (await client.post("/api/v1/models/train", json={"task": "intent", "x": 1}, headers=trainer)).status == 400
    assert (await client.post("/api/v1/models/train", json={"task": "intent"}, headers=staff)).status == 403
    assert (await client.get("/api/v1/models", headers=staff)).status == 403
    assert (await client.get("/api/v1/models?task=nope", headers=trainer)).status == 400
    assert (await client.get("/api/v1/models/jobs/0123456789abcdef", headers=trainer)).status == 404
    assert (await client.get("/api/v1/models/jobs/..%2f", headers=trainer)).status == 404
    assert (await client.post("/api/v1/models/intent-nope/promote", json={}, headers=trainer)).status == 404
    assert (await client.post("/api/v1/models/intent-nope/promote", json={"force": "yes"},
                              headers=admin_headers)).status == 400


async def test_a_job_whose_process_died_runs_again_then_fails(parts):
    from datetime import datetime, timedelta, timezone

    import sqlalchemy as sa

    from storage.sql import training_jobs

    reg: ModelRegistry = parts.models
    job = await reg.enqueue("intent", "test")
    for attempt in (1, 2):
        claimed = await reg.claim()
        assert claimed["id"] == job["id"] and claimed["attempts"] == attempt
        assert await reg.claim() is None  # one at a time
        async with parts.engine.begin() as conn:
            await conn.execute(training_jobs.update().values(
                heartbeat_at=datetime.now(timezone.utc) - timedelta(minutes=5)))
        assert await reg.recover_stale() == 1
    assert (await reg.job(job["id"]))["status"] == "failed"
    assert "interrupted" in (await reg.job(job["id"]))["error"]
    async with parts.engine.connect() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(training_jobs))).scalar_one() == 1


async def test_a_training_process_that_crashes_fails_its_job_with_the_reason(parts, monkeypatch):
    job = await parts.models.enqueue("sentiment", "test")
    # A models dir the child cannot use: it fails before recording anything itself.
    monkeypatch.setattr(parts.trainer, "child_env", lambda: {"PATH": "/usr/bin", "COPILOT_DATA_DIR": "/nonexistent/x",
                                                            "DATABASE_URL": "not-a-url://"})
    await parts.trainer.run_until_idle(timeout=120)
    failed = await parts.models.job(job["id"])
    assert failed["status"] == "failed" and "exited with" in failed["error"]
