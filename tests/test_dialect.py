"""Regional spellings read as standard Mandarin for matching suggestions."""
import pytest

from nlp.dialect import standardise


@pytest.mark.parametrize("text,expected", [
    ("地库停车一个钟头几钿", "地库停车一个钟头多少钱"),        # Wu
    ("无印良品喺边层", "无印良品在哪层"),                    # Cantonese
    ("這瓶酒系唔系正貨", "这瓶酒是不是正货"),               # traditional characters too
    ("面膜没拆 推得掉伐", "面膜没拆 推得掉吗"),              # 伐 closing a clause is a question
    ("咋个付钱嘛", "怎么付钱嘛"),
    ("喜欢ㄉ款式", "喜欢的款式"),
])
def test_regional_forms_become_standard(text, expected):
    assert standardise(text) == expected


@pytest.mark.parametrize("text", ["步伐轻快", "伐木工人", "杀菌洗手液", "一共两箱", "我要两份"])
def test_ordinary_words_are_left_alone(text):
    assert standardise(text) == text


async def test_a_wu_question_finds_the_script_written_in_standard_chinese(tmp_path):
    """Only the standard form shares characters with the script: 几钿 has none of 多少钱's."""
    from training.retrieval import knowledge_base_of

    scripts = [
        {"id": "PRICE", "question": "这个多少钱", "reply": "这款日常价199元。", "tags": ["美妆"]},
        {"id": "HOURS", "question": "营业时间", "reply": "每天10点到22点营业。", "tags": ["美妆"]},
    ]

    async def run(kb):
        return [s.script.id for s in await kb.suggest("几钿", k=1, mode="lexical")]

    assert await knowledge_base_of(scripts, "use-multilingual", run, ranking=None) == ["PRICE"]
