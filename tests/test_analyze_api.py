"""POST /api/v1/analyze as docs/openapi.yaml describes it, and the lexicon admin endpoints."""
from __future__ import annotations

import pytest

INTENTS = {"greeting", "price_inquiry", "promotion", "product_info", "purchase_intent", "relay_signup", "shipping",
           "return_refund", "complaint", "membership", "store_visit", "other"}


@pytest.fixture
async def staff_headers(client, admin_headers):
    resp = await client.post("/api/v1/tokens", json={"role": "staff", "name": "s", "userid": "zhangsan"}, headers=admin_headers)
    return {"Authorization": f"Bearer {(await resp.json())['token']}"}


async def test_single_text_contract(client, staff_headers):
    text = "亲，加 我 V 信 吧，全网最低价"
    resp = await client.post("/api/v1/analyze", json={"text": text, "role": "staff"}, headers=staff_headers)
    assert resp.status == 200
    body = await resp.json()
    assert set(body) == {"intent", "sentiment", "sensitive", "flagged", "models"}
    assert set(body["models"]) == {"intent", "sentiment", "sensitive"}
    assert body["intent"]["label"] in INTENTS and 0 <= body["intent"]["score"] <= 1
    assert body["sentiment"]["label"] in {"positive", "neutral", "negative"}
    assert body["flagged"] is True
    found = {(h["category"], h["match"]) for h in body["sensitive"]}
    assert ("diversion", "加 我 V 信") in found and ("ad_law", "全网最低价") in found
    for h in body["sensitive"]:
        assert text[h["start"]:h["end"]] == h["match"]
        assert h["severity"] in {"high", "medium", "low"} and h["rule"]


async def test_role_defaults_to_customer(client, staff_headers):
    body = await (await client.post("/api/v1/analyze", json={"text": "全网最低价吗"}, headers=staff_headers)).json()
    assert body["sensitive"] == [] and body["flagged"] is False


@pytest.mark.parametrize("text,label", [
    ("这款面霜多少钱", "price_inquiry"), ("什么时候发货呀", "shipping"), ("接龙+1", "relay_signup"),
    ("我想退货", "return_refund"), ("你们店在哪里", "store_visit"), ("积分怎么兑换", "membership"),
])
async def test_intents_of_plain_messages(client, staff_headers, text, label):
    body = await (await client.post("/api/v1/analyze", json={"text": text}, headers=staff_headers)).json()
    assert body["intent"]["label"] == label


async def test_complaint_with_negative_sentiment_is_flagged(client, staff_headers):
    body = await (await client.post("/api/v1/analyze", json={"text": "面霜用了过敏，质量太差了，我要投诉"},
                                    headers=staff_headers)).json()
    assert body["intent"]["label"] == "complaint" and body["sentiment"]["label"] == "negative"
    assert body["flagged"] is True


async def test_batch_in_order(client, staff_headers):
    items = [{"text": "你好"}, {"text": "傻逼"}, {"text": "最好的产品", "role": "staff"}]
    resp = await client.post("/api/v1/analyze", json={"items": items}, headers=staff_headers)
    assert resp.status == 200
    out = (await resp.json())["items"]
    assert len(out) == 3
    assert out[0]["sensitive"] == [] and out[1]["sensitive"][0]["category"] == "abuse"
    assert out[2]["sensitive"][0]["category"] == "ad_law"


@pytest.mark.parametrize("body,fragment", [
    ({"text": ""}, "text"),
    ({"text": "   "}, "empty"),
    ({"text": "x" * 5001}, "5000"),
    ({"text": "hi", "role": "boss"}, "role"),
    ({"items": []}, "items"),
    ({"items": [{"text": "a"}] * 1001}, "1000"),
    ({"items": [{"text": "ok"}, {"text": ""}]}, "items.1"),
    ({"txt": "typo"}, "text"),
    ([1, 2], "dictionary"),
])
async def test_validation_errors(client, staff_headers, body, fragment):
    resp = await client.post("/api/v1/analyze", json=body, headers=staff_headers)
    assert resp.status == 400
    err = (await resp.json())["error"]
    assert err["code"] == "invalid_request" and fragment in err["message"]


async def test_bad_json_and_auth(client, staff_headers):
    resp = await client.post("/api/v1/analyze", data="{", headers={**staff_headers, "Content-Type": "application/json"})
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "bad_json"
    assert (await client.post("/api/v1/analyze", json={"text": "hi"})).status == 401


async def test_an_allowed_phrase_stops_its_match_through_the_api_and_only_there(client, admin_headers, staff_headers):
    async def hits(text):
        r = await client.post("/api/v1/analyze", json={"text": text, "role": "staff"}, headers=staff_headers)
        return [h["match"] for h in (await r.json())["sensitive"]]

    assert await hits("9号分店的门店微信号是多少") == ["微信号"]
    resp = await client.post("/api/v1/lexicons/allow", json={"terms": [{"term": "门店微信号"}]}, headers=admin_headers)
    assert resp.status == 201
    assert await hits("9号分店的门店微信号是多少") == []
    assert "私人微信号" in await hits("加我私人微信号，私下转账便宜")


async def test_operator_lexicon_via_api(client, admin_headers, staff_headers):
    text = "下次去隔壁老王家买更便宜"
    before = await (await client.post("/api/v1/analyze", json={"text": text, "role": "staff"}, headers=staff_headers)).json()
    assert before["sensitive"] == []
    resp = await client.post("/api/v1/lexicons/competitor", json={"terms": [{"term": "隔壁老王", "severity": "medium",
                                                                            "roles": "staff"}]}, headers=admin_headers)
    assert resp.status == 201
    after = await (await client.post("/api/v1/analyze", json={"text": text, "role": "staff"}, headers=staff_headers)).json()
    assert [(h["category"], h["match"]) for h in after["sensitive"]] == [("competitor", "隔壁老王")]
    listing = await (await client.get("/api/v1/lexicons", headers=admin_headers)).json()
    assert listing["operator_terms"]["competitor"][0]["term"] == "隔壁老王"
    assert listing["categories"]["diversion"] > 100
    # staff may analyze but not edit lexicons; bad input is refused
    assert (await client.post("/api/v1/lexicons/abuse", json={"terms": [{"term": "x"}]}, headers=staff_headers)).status == 403
    bad = await client.post("/api/v1/lexicons/Bad-Name", json={"terms": [{"term": "x"}]}, headers=admin_headers)
    assert bad.status == 400 and (await bad.json())["error"]["code"] == "invalid_lexicon"
    bad = await client.post("/api/v1/lexicons/abuse", json={"terms": [{"term": "x", "severity": "extreme"}]}, headers=admin_headers)
    assert bad.status == 400
