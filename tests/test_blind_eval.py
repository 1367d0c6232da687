"""The blind evaluator's retrieval path: the shipped weights by default, or weights learned for
another encoder from a file — refused when the file was learned with a different encoder."""
import json

import pytest

from knowledge.ranking import DEFAULT_PATH
from training.blind import evaluate_retrieval

SCRIPTS = [
    {"id": "A", "question": "面霜多少钱", "reply": "这款面霜日常价299元。", "tags": ["美妆"]},
    {"id": "B", "question": "几天能到货", "reply": "下单后48小时内发货，一般三天到。", "tags": ["物流"]},
    {"id": "C", "question": "门店几点关门", "reply": "门店每天晚上十点关门。", "tags": ["门店"]},
]
QUERIES = [{"query": "面霜卖多少", "script_id": "A"}, {"query": "啥时候能收到货", "script_id": "B"},
           {"query": "谢谢你呀", "script_id": None}]


@pytest.fixture()
def kb(tmp_path):
    path = tmp_path / "scripts.jsonl"
    path.write_text("\n".join(json.dumps(s, ensure_ascii=False) for s in SCRIPTS), encoding="utf-8")
    return path


def test_ranking_file_for_the_encoder_is_used_and_another_encoders_is_refused(kb, tmp_path):
    shipped = evaluate_retrieval(QUERIES, kb, "use-multilingual")
    same = tmp_path / "same.json"
    same.write_text(DEFAULT_PATH.read_text(encoding="utf-8"), encoding="utf-8")
    assert evaluate_retrieval(QUERIES, kb, "use-multilingual", ranking_path=same) == shipped
    assert shipped["n_queries"] == 2 and shipped["n_chit_chat"] == 1
    other = json.loads(DEFAULT_PATH.read_text(encoding="utf-8"))
    other["encoder"] = "some-other-model"
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps(other), encoding="utf-8")
    with pytest.raises(ValueError, match="another encoder"):
        evaluate_retrieval(QUERIES, kb, "use-multilingual", ranking_path=wrong)
