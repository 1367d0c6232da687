"""Sensitive-word checker: each evasion family, offsets, allow-list, roles, reload."""
from __future__ import annotations

import time

import pytest

from nlp.sensitive import LexiconError, LexiconSet, id_checksum_ok, luhn_ok


@pytest.fixture(scope="module")
def checker():
    return LexiconSet().checker()


def cats(checker, text, role="customer"):
    hits = checker.check(text, role)
    for h in hits:
        assert text[h.start:h.end] == h.match  # offsets are exact in the original
    return {h.category for h in hits}


@pytest.mark.parametrize("text", [
    "加我微信", "加 我 V 信", "加我VX", "加我ｗｘ", "加我威信", "加我薇信", "加我維信", "加-我-微-信",
    "加我[呲牙]微信", "加我微❤信", "加我weixin", "加我威芯",  # homophone via pinyin
    "私下轉賬給我", "加我扣扣", "V:abc_12345", "qq 12345678",
])
def test_diversion_evasions(checker, text):
    assert "diversion" in cats(checker, text, "staff")


@pytest.mark.parametrize("text", ["傻逼", "傻 逼", "煞笔", "傻*B", "SB", "腦殘", "草 泥 马", "nmsl"])
def test_abuse_evasions(checker, text):
    assert "abuse" in cats(checker, text)


@pytest.mark.parametrize("text", ["全网最低价", "全網最低價", "销量第①", "１００％有效", "国 家 级", "全网最底价", "七天见效"])
def test_ad_law_applies_to_staff_only(checker, text):
    assert "ad_law" in cats(checker, text, "staff")
    assert "ad_law" not in cats(checker, text, "customer")


@pytest.mark.parametrize("text,rule", [
    ("手机 138 1234 5678", "detector:mobile"),
    ("幺三八一二三四五六七八", "detector:mobile"),
    ("１３８-１２３４-５６７８", "detector:mobile"),
    ("身份证110101199003074514", "detector:id_card"),
    ("卡号6222 0202 0011 2233 446", "detector:bank_card"),
    ("北京市朝阳区建国路88号现代城3号楼1202室", "detector:address"),
])
def test_privacy_detectors(checker, text, rule):
    hits = checker.check(text)
    assert any(h.rule == rule and h.category == "privacy" for h in hits), hits


@pytest.mark.parametrize("text", [
    "可以用微信支付吗", "最近有活动吗", "第一次买", "订单号20231122123456789", "价格是138元", "13:50到店",
    "一共299", "快递单号SF1234567890123", "关注微信公众号", "加入购物车", "qq糖有吗", "v领还是圆领", "我要两份",
])
def test_hard_negatives_not_flagged(checker, text):
    assert cats(checker, text, "staff") == set()


def test_checksums():
    assert id_checksum_ok("110101199003074514") and not id_checksum_ok("110101199003074515")
    assert luhn_ok("6222020200112233446") and not luhn_ok("6222020200112233447")


def test_mobile_inside_longer_number_not_flagged(checker):
    assert cats(checker, "订单 2138123456789 已发") == set()


def test_longest_hit_wins_and_severity(checker):
    hits = checker.check("加我个人微信", "staff")
    assert [(h.match, h.severity) for h in hits] == [("加我个人微信", "high")]


def test_operator_terms_reload_without_restart(tmp_path):
    lex = LexiconSet(tmp_path / "lexicons")
    assert cats(lex.checker(), "团长暗号单") == set()
    lex.add_terms("diversion", [("暗号单", "high", "any")])
    assert "diversion" in cats(lex.checker(), "团长暗号单")
    # A second process (another LexiconSet on the same dir) sees the edit within a second.
    other = LexiconSet(tmp_path / "lexicons")
    lex.add_terms("competitor", [("某某家", "low", "staff")])
    time.sleep(1.1)
    assert "competitor" in cats(other.checker(), "去某某家买", "staff")


def test_operator_terms_validated(tmp_path):
    lex = LexiconSet(tmp_path / "lexicons")
    with pytest.raises(LexiconError):
        lex.add_terms("Bad Name", [("x", "high", "any")])
    with pytest.raises(LexiconError):
        lex.add_terms("abuse", [("x", "urgent", "any")])
    with pytest.raises(LexiconError):
        lex.add_terms("abuse", [("{nope}", "high", "any")])


# --- evasions added for independent writers' language ---------------------------------------
@pytest.mark.parametrize("text,category,role", [
    ("加我 wei xin 吧", "diversion", "staff"),          # romanised pinyin with a space
    ("加我威❤", "diversion", "staff"),                  # an emoji standing for a character
    ("你个垃圾 laji", "abuse", "customer"),
    ("亻尔女马的", "abuse", "customer"),                # characters written as their components
    ("我电话 1三8 0013 8000", "privacy", "customer"),  # digits mixed with Chinese numerals
])
def test_more_evasions(checker, text, category, role):
    assert category in cats(checker, text, role)


@pytest.mark.parametrize("text,role", [
    ("这个usb线多长", "customer"),          # a Latin term inside a longer Latin word
    ("滚筒洗衣机有货吗", "customer"),       # a one-character term inside an everyday word
    ("这家靠谱吗", "customer"),
    ("笨死我了 又下错单", "customer"),      # self-deprecation
    ("请勿相信任何私下转账的要求", "staff"),  # a staff warning that negates the diversion
    ("我们从不承诺最低价", "staff"),
])
def test_context_keeps_innocent_text_clean(checker, text, role):
    assert cats(checker, text, role) == set()


def test_self_reference_rule_does_not_excuse_insults_at_others(checker):
    assert "abuse" in cats(checker, "你真蠢")
    assert "abuse" in cats(checker, "我看你就是个傻逼")


def test_variant_explosion_is_refused_before_expanding(tmp_path):
    """Ten variant groups would be 19^10 spellings: refused at once, nothing written."""
    lex = LexiconSet(tmp_path)
    t0 = time.perf_counter()
    with pytest.raises(LexiconError, match="spellings"):
        lex.add_terms("abuse", [("{微信}" * 10, "high", "any")])
    assert time.perf_counter() - t0 < 0.5
    assert not (tmp_path / "abuse.txt").exists()


def test_a_stored_explosive_line_does_not_stop_loading(tmp_path):
    (tmp_path / "abuse.txt").write_text("{微信}{微信}{微信}{微信}{微信}{微信}\thigh\tany\n隔壁老王\tmedium\tany\n",
                                        encoding="utf-8")
    checker = LexiconSet(tmp_path).checker()
    assert "abuse" in {h.category for h in checker.check("隔壁老王来了")}


@pytest.mark.parametrize("text,role", [
    ("团购价以小程序为准 不要听信任何私下报价", "staff"),              # a warning against private offers
    ("我微信钱包里还有钱 直接用微信支付可以吧", "customer"),           # the customer's own wallet
    ("我的微信号就是这个 不用加别的", "customer"),
    ("过年发红包 你们有卖红包袋吗", "customer"),                      # red envelopes as goods
    ("温馨提示：群里任何人让你加私人微信转账都是骗子 认准官方小程序", "staff"),
    ("我在你们商场迷路了 像个傻子一样转了三圈哈哈", "customer"),       # a simile about oneself
    ("我这人有病 一看到打折就走不动道", "customer"),
    ("这个是百分之百羊毛 标签上写着", "staff"),                      # composition, not efficacy
    ("国家级这个说法我们不用 师傅是高级工艺美术师", "staff"),
    ("医保个人账户里还有多少钱 能查吗", "customer"),
    ("戒指内圈刻我俩名字缩写 L&Z 就行", "customer"),                 # a stray letter is an initial
    ("haha I'm so bodoh, ordered 2 same shirt", "customer"),
    ("我在B1第一家店门口等你 快点来哈", "customer"),
])
def test_warnings_own_accounts_similes_and_initials_stay_clean(checker, text, role):
    assert cats(checker, text, role) == set()


@pytest.mark.parametrize("text,category", [
    ("侬只戆大 人话听伐懂啊", "abuse"),         # the writer's space ends the word: no 大人 to hide in
    ("柜姐跟个傻子一样 问啥都不知道", "abuse"),  # a simile about someone else is still an insult
    ("发红包给我 我帮你插队", "diversion"),
    ("我的微信号是abc123", "diversion"),
])
def test_the_same_shapes_aimed_at_others_still_flag(checker, text, category):
    assert category in cats(checker, text, "staff")
