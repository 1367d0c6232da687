"""Relay message understanding on a labelled set of real-world forms, and the native list."""
from __future__ import annotations

from pathlib import Path

import pytest

from bot.relay.command import parse_open_command
from bot.relay.parse import new_lines, understand

ROWS = [l.rstrip("\n").split("\t") for l in (Path(__file__).parent / "fixtures" / "relay_messages.tsv")
        .read_text(encoding="utf-8").splitlines() if l.strip() and not l.startswith("#")]


def test_labelled_set_is_large_enough():
    assert len(ROWS) >= 150
    assert {r[0] for r in ROWS} == {"join", "cancel", "none"}


@pytest.mark.parametrize("action,qty,text", ROWS)
def test_labelled_messages(action, qty, text):
    got = understand(text)
    assert (got.action, got.quantity) == (action, int(qty))


BASE = "#接龙\n大闸蟹团购 每人限2\n\n1. 张三 2份\n2. 李四"


def test_native_list_new_line_is_the_signup():
    got = understand(BASE + "\n3. 王五 2份", ["张三 2份", "李四"])
    assert (got.action, got.quantity, got.line) == ("join", 2, "王五 2份")


def test_two_customers_appending_3_to_the_same_base_both_count():
    canonical = ["张三 2份", "李四"]
    a = understand(BASE + "\n3. 王五", canonical)
    canonical.append(a.line)
    b = understand(BASE + "\n3. 赵六 1份", canonical)  # also numbered 3., built on the old base
    assert (a.action, a.line) == ("join", "王五") and (b.action, b.line, b.quantity) == ("join", "赵六 1份", 1)


def test_native_list_repost_without_change_is_none():
    assert understand(BASE, ["张三 2份", "李四"]).action == "none"


def test_native_list_renumbered_is_not_new():
    assert understand("#接龙\n1. 李四\n2. 张三 2份", ["张三 2份", "李四"]).action == "none"


def test_native_list_own_line_removed_is_cancel():
    got = understand("#接龙\n1. 张三 2份", ["张三 2份", "李四"], sender_name="李四")
    assert (got.action, got.quantity) == ("cancel", 0)


def test_new_lines_multiset():
    assert new_lines(["a", "a", "b"], ["a"]) == ["a", "b"]


def test_open_command():
    from datetime import datetime, timedelta, timezone

    tz = timezone(timedelta(hours=8))
    cmd = parse_open_command("开团 大闸蟹 五十份 每人限2 今晚8点截止 群wrAbc1234", datetime(2026, 11, 22, 4, tzinfo=timezone.utc), tz)
    assert (cmd.title, cmd.stock, cmd.per_user_limit, cmd.chat_id) == ("大闸蟹", 50, 2, "wrAbc1234")
    assert cmd.ends_at.hour == 20 and cmd.ends_at.utcoffset() == timedelta(hours=8)
    assert parse_open_command("今天开团吗", datetime.now(timezone.utc), tz) is None
    assert parse_open_command("开团 没有数量", datetime.now(timezone.utc), tz) is None


def test_reposted_native_list_credits_each_new_line_to_its_name():
    """A list the service has not seen before (signed up in WeChat's own relay) is not all the
    sender's: each line counts for the name on it."""
    from bot.relay.parse import RelayReader, list_credits
    from collections import Counter

    text = "#接龙\n草莓团\n1. 张三 2份\n2. 李四 +1\n3. 王五 3份"
    credits = list_credits(parse(text), Counter(), "王五")
    assert [(c.action, c.quantity, c.name) for c in credits] == [
        ("join", 2, "张三"), ("join", 1, "李四"), ("join", 3, "")]
    reader = RelayReader()
    reader.read(text, "王五")
    # The next repost adds one line: only it counts, even though the earlier lines were never credited.
    got = reader.read(text + "\n4. 赵六 两盒", "赵六")
    assert (got.action, got.quantity) == ("join", 2)


def test_reader_keeps_what_each_name_holds():
    """The evaluation's reader mirrors the ledger: copies of text sign-ups, edited lines and new totals."""
    from bot.relay.parse import RelayReader

    reader = RelayReader()
    assert reader.read("接龙 两箱", "梅姐").quantity == 2
    got = reader.read("#接龙\n1. 梅姐 2箱\n2. 林师傅 1箱", "3栋林师傅")
    assert (got.action, got.quantity) == ("join", 1)
    got = reader.read("#接龙\n1. 梅姐 2箱\n2. 林师傅 2箱", "3栋林师傅")
    assert (got.action, got.quantity) == ("join", 2)  # answered with the total the line now states
    # Her own line and her mother-in-law's: 秋菊婆婆 is somebody else than 秋菊.
    got = reader.read("#接龙\n1. 梅姐 2箱\n2. 林师傅 2箱\n3. 秋菊 1箱\n4. 秋菊婆婆 1箱", "秋菊")
    assert (got.action, got.quantity) == ("join", 2)
    assert reader.held == {"梅姐": 2, "3栋林师傅": 2, "秋菊": 1, "秋菊婆婆": 1}
    got = reader.read("我那两箱改成一箱", "梅姐")
    assert (got.action, got.quantity) == ("cancel", 1) and reader.held["梅姐"] == 1


@pytest.mark.parametrize("text,expected", [
    ("同上", ("join", 1)), ("俩", ("join", 2)), ("去屑款 一份", ("join", 1)), ("黑色L一件", ("join", 1)),
    ("三个小时左右", ("none", 0)), ("还有20颗左右", ("none", 0)), ("超好用 我第三瓶了", ("none", 0)),
    ("2台能便宜点吗 给我老家亲戚带的", ("none", 0)), ("还有名额吗 算我一台", ("join", 1)),
    ("我那两箱退掉吧 家里不吃了", ("cancel", 0)), ("那我改成两副吧", ("set", 2)),
    ("那我也来一对吧", ("join", 1)), ("我也要一箱嘛", ("join", 1)), ("行 那就两台", ("set", 2)), ("1 谢谢", ("join", 1)),
    ("count me in", ("join", 1)), ("2 pcs for me", ("join", 2)), ("me and my mum, 2 pax", ("join", 2)),
    ("how much for 2 boxes?", ("none", 0)), ("这个对吧", ("none", 0)), ("要洗好久嘛", ("none", 0)),
])
def test_short_sign_ups_questions_and_new_totals(text, expected):
    got = understand(text)
    assert (got.action, got.quantity) == expected


def test_cancel_line_inside_a_native_list():
    from bot.relay.parse import RelayReader

    reader = RelayReader()
    reader.read("#接龙\n1. 张三 2份\n2. 李四", "李四")
    got = reader.read("#接龙\n1. 张三 2份\n2. 李四\n3. 李四 取消", "李四")
    assert got.action == "cancel"


@pytest.mark.parametrize("text,expected", [
    ("现在+1还来得及吗", ("none", 0)),
    ("+1 什么时候到货", ("join", 1)),
    ("刚才的+1撤回", ("cancel", 0)),
    ("不好意思+1发错了", ("cancel", 0)),
    ("帮我登记两份", ("join", 2)),
    ("麻烦给我留两包", ("join", 2)),
    ("我要十二份", ("join", 12)),
    ("接龙 十份", ("join", 10)),
])
def test_quantity_words_polite_forms_questions_retractions(text, expected):
    got = understand(text)
    assert (got.action, got.quantity) == expected


def parse(text):
    from bot.relay.parse import parse_native_list

    return parse_native_list(text)[1]


@pytest.mark.parametrize("text,expected", [
    ("甭给我留了，闺女说她那儿有", ("cancel", 0)), ("我那俩别要了 老伴儿已经买了", ("cancel", 0)),
    ("本来想要一箱 看了价格还是算了", ("set", 0)), ("给我留俩🙏", ("join", 2)), ("我和我妈各一副", ("join", 2)),
    ("红蓝黑三个色", ("none", 0)), ("两个月的小猫能吃吗😭", ("none", 0)), ("3个月以上再吃哦", ("none", 0)),
    ("够呛 -40的下周到", ("none", 0)), ("洗澡次卡 10次 接龙价", ("none", 0)), ("我要两打 拎去楼下烧烤", ("join", 2)),
    ("我要一盒 不对 我要两盒", ("join", 2)), ("好 一共4只 星期六早上8点嚟拎", ("none", 0)), ("小丁怎么不要了", ("none", 0)),
    ("ok me 2", ("join", 2)), ("刚才那个2不算 我就要1份", ("set", 1)), ("我那个少要一袋吧", ("cancel", 1)),
    ("刘奶奶 好 我给您记两盒", ("none", 0)), ("一个人能领几张", ("none", 0)), ("公司发了两盒 吃不完😂", ("none", 0)),
])
def test_changes_of_mind_corrections_tallies_and_quantity_look_alikes(text, expected):
    got = understand(text)
    assert (got.action, got.quantity) == expected


def test_list_lines_numbered_without_punctuation_and_measures_inside_a_line():
    from bot.relay.parse import RelayReader

    reader = RelayReader()
    got = reader.read("#接龙\n猫粮秒杀\n1 喵喵妈 1\n2 豆豆 2\n3 小鱼 1袋", "小鱼")
    assert (got.action, got.quantity) == ("join", 1)
    reader = RelayReader()
    reader.read("#接龙 狗粮团\n1. 豆豆麻麻 中型15kg 1袋", "豆豆麻麻")
    got = reader.read("#接龙 狗粮团\n1. 豆豆麻麻 中型15kg 1袋\n2. Max爸 中型15kg 2袋", "Max爸")
    assert (got.action, got.quantity) == ("join", 2)
    got = reader.read("#接龙 狗粮团\n1. 豆豆麻麻 中型15kg 1袋\n2. Max爸 中型15kg 1袋", "Max爸")
    assert (got.action, got.quantity) == ("cancel", 1) and reader.held["max爸"] == 1


def test_a_copied_list_answers_for_the_senders_lines_and_keeps_withdrawn_members_out():
    """Lines above the sender's own came with the list they copied; a member who cancelled by text
    still shows in lists others copy and is not signed up again; a relative's line below one's own
    is not taken for one's own (老李媳妇 is not 老李)."""
    from bot.relay.parse import RelayReader

    reader = RelayReader()
    reader.read("2张", "小赵")
    reader.read("接龙", "阿兰")
    assert reader.read("我那张不要了 月底不在家", "阿兰").action == "cancel"
    got = reader.read("#接龙\n美食券69\n1. 小赵 2\n2. 阿兰 1\n3. 小钱 2", "小钱")
    assert (got.action, got.quantity) == ("join", 2)
    assert reader.held == {"小赵": 2, "小钱": 2}

    reader = RelayReader()
    reader.read("接龙 二箱", "老李")
    reader.read("报名 一箱", "小罗")
    got = reader.read("#接龙\n阿克苏苹果\n1. 老李 2箱\n2. 小罗 1箱\n3. 老李媳妇 1箱", "老李")
    assert (got.action, got.quantity) == ("join", 1)
    assert reader.held == {"老李": 2, "小罗": 1, "老李媳妇": 1}


@pytest.mark.parametrize("text,expected", [
    ("唔好意思 我改返一個", ("set", 1)), ("额那一斤不要咧 娃他爸已经买咧", ("cancel", 0)), ("我那两盒都不要哒", ("cancel", 0)),
    ("王伯伯 您直接打 +1 就可以了喔", ("none", 0)), ("到店付 接龙只是登记", ("none", 0)), ("南丰蜜桔 五斤装39 包邮 接龙咯", ("none", 0)),
    ("接龙是按瓶还是按套啊", ("none", 0)), ("+1是直接扣钱还是到店付", ("none", 0)), ("接龍係咪喺度打名就得", ("none", 0)),
    ("再添一斤 给娃外婆寄过去", ("join", 1)), ("一つお願いします～", ("join", 1)), ("count me in x3", ("join", 3)),
    ("got it, 1 box", ("join", 1)), ("actually make it 4", ("set", 4)), ("sorry -1, 2 is enough", ("cancel", 1)),
    ("2 boxes or 3?", ("none", 0)),
])
def test_regional_cancels_staff_instructions_either_or_questions_and_foreign_counts(text, expected):
    got = understand(text)
    assert (got.action, got.quantity) == expected


def test_reader_takes_the_opener_as_organiser_and_reads_sizes_and_examples():
    """The evaluation's reader: the announcement's sender answers questions without signing up; an
    example line in the organiser's list is no sign-up; sizes with counts are read as counts."""
    from bot.relay.parse import RelayReader

    reader = RelayReader()
    assert reader.read("秋季童装套装69一套 接龙写尺码", "童装店阿霞").action == "none"
    assert reader.read("#接龙\n童装套装\n\n1. 示例 阿霞 110", "童装店阿霞").action == "none"
    assert reader.read("110 一套", "阿莲").quantity == 1
    assert reader.read("130来2，120来1", "嘟嘟").quantity == 3
    assert reader.read("深灰43码两对", "何生").quantity == 2
    assert reader.read("+1是一套的意思吗", "小雅").action == "none"
    assert reader.read("对 +1就是一套", "童装店阿霞").action == "none"
    assert reader.read("我报俩 俩孩子", "刘姐").quantity == 2
    assert reader.read("畀兩盒我呀，唔該", "黃太").quantity == 2
    assert reader.read("要幾耐？我中午得一個鐘", "梁生").action == "none"
    assert reader.read("请问是生茶吗？接龙前想确认一下。", "杨老师").action == "none"
    assert reader.read("ok D24 give me one, 谢谢", "Ken").quantity == 1
    # a member who opened with a question is no organiser
    other = RelayReader()
    assert other.read("防晒买一送一还有吗", "小红").action == "none"
    assert other.read("接龙2份 跟室友分", "小红").quantity == 2


def test_quantity_clauses_dialect_cancels_and_a_member_removing_their_own_line():
    """A bare quantity beside a name or a remark is the sign-up; 减 after a name reduces; Shaanxi and
    Hakka "don't want" cancel; a member who re-posts the list without their line withdraws; a
    model number in brackets does not run into the count; grams count gold beans."""
    from bot.relay.parse import RelayReader, line_quantity, understand

    assert understand("5号楼王 两盒").quantity == 2
    assert understand("孩子他爸同意了 三罐🙏").quantity == 3
    assert understand("L码一件 天冷了囤着").quantity == 1
    assert understand("我寻思 两袋 问问老婆").action == "none"
    assert understand("-20够吗 东北冬天零下三十").action == "none"   # a temperature, asked
    assert understand("30斤一箱太多 有小箱的吗").action == "none"
    assert understand("满300减50块 划算").action == "none"       # a promotion, not a reduction
    c = understand("老板 减一盒 吃不完")
    assert (c.action, c.quantity) == ("cancel", 1)
    assert understand("我那份嫑了").action == "cancel"
    assert understand("𠊎同老妹各两包").quantity == 4
    assert line_quantity("李姐 小米Mate60(钢化) 1张") == 1
    assert line_quantity("阿珠 二十克") == 20
    reader = RelayReader()
    head = "#接龙\n冬笋 5斤一箱\n例 城南 阿芬 1箱\n\n"
    assert reader.read(head + "1. 团长阿芬 1箱", "团长阿芬").action == "none"  # the organiser's opening list
    assert reader.read(head + "1. 团长阿芬 1箱\n2. 城东 小周 1箱", "城东-小周").quantity == 1
    reader = RelayReader()
    reader.read("冬笋到了 5斤一箱 要的接龙", "团长阿芬")
    assert reader.read(head + "1. 城东 小周 1箱", "城东-小周").quantity == 1
    assert reader.read(head + "1. 城东 小周 1箱\n2. 城西 老陆 2箱", "城西-老陆").quantity == 2
    assert reader.read(head + "1. 城东 小周 1箱", "城西-老陆").action == "cancel"


def test_name_size_count_lines_errands_and_regional_confirmations():
    """"name size count remark" lines, a sign-up carried for a neighbour (帮…带), Henan 中不中 as a
    confirmation, Cantonese 退咗 for one's own, "+1 同问" agreeing with a question, 捆 as a unit."""
    from bot.relay.parse import understand

    assert understand("李小雨 130 两套 一套换洗").quantity == 2
    assert understand("帮楼下张阿姨带两包 她不会用微信").quantity == 2
    assert understand("给我留一袋啊 我明天下午去拿中不中").quantity == 1
    assert understand("我嗰份退咗先 下次再讲").action == "cancel"
    assert understand("+1 同问").action == "none"
    assert understand("那给俺来两捆").quantity == 2


def test_variant_lines_enough_restates_slang_and_the_organisers_heading():
    """One clause per variant sums; "一瓶就好"/"就我一副" restate a total; a size change keeps the count;
    扣2 and a bare 1 sign up; 俩 followed by a split is two; a bracket after a count keeps the count;
    the organiser's own count-less line heads the list."""
    from bot.relay.parse import RelayReader, line_quantity, resolve, understand

    assert understand("深灰M一件 燕麦L一件").quantity == 2
    assert understand("扣2 跟同事拼").quantity == 2
    assert understand("1").quantity == 1
    assert understand("+1 同求").action == "none"
    assert understand("我要俩 一个自己用一个送我妈").quantity == 2
    assert understand("那搞一件白色XL").quantity == 1
    assert line_quantity("阿May 3（两包帮同事带）", "阿May") == 3
    for text, held, want in (("一瓶就好 谢谢", 2, ("cancel", 1)), ("老公不去了 就我一副", 2, ("cancel", 1)),
                             ("把我的32改成33，还是一双", 1, ("none", 0))):
        _answer, change = resolve(understand(text), held)
        assert (change.action, change.quantity) == want, text
    reader = RelayReader()
    assert reader.read("#接龙\n冻干团购 89元\n\n1. 团长小敏", "团长小敏").action == "none"
    assert reader.read("#接龙\n冻干团购 89元\n\n1. 团长小敏\n2. 阿福 2", "阿福").quantity == 2


def test_item_per_clause_orders_and_workplace_lines():
    """Items of different kinds in one order sum ("鸡蛋一箱 茶一包"); a room, a staff number or a
    remark beside one item leaves its count; a sign-up stated twice is one; tallies and questions
    about sizes are none; one +N per flavour sums; Shanghainese 减脱, 我这个少一板, "pass 了" and a
    "就我一个人" restate or cancel; a question is not cancelled by its confirmation tail."""
    from bot.relay.parse import resolve, understand

    assert understand("腊肠2斤 萝卜糕1盒").quantity == 3
    assert understand("好嘅，芝麻1罐，花生2罐").quantity == 3
    assert understand("5-302 退烧贴1盒 棉签2包").quantity == 3
    assert understand("30418 李伟 电风扇1台").quantity == 1
    assert understand("我要两份 接龙2份").quantity == 2
    assert understand("粉色x1，白色x2").quantity == 3
    assert understand("2栋大院 柜机俩").quantity == 2
    assert understand("收到 李姐1 阿强3 一共4盒").action == "none"
    assert understand("两盒送的小样是多大的").action == "none"
    assert understand("-30℃够用吗 东北冷").action == "none"
    assert understand("8点前来不了，10点可以吗").action == "none"
    assert understand("ok +1 original, +1 spicy").quantity == 2
    assert understand("小李，屋里还有，减脱一瓶好伐").action == "cancel"
    assert understand("我这个少一板").action == "cancel"
    assert understand("想了想 没地方放 pass 了").action == "cancel"
    _a, change = resolve(understand("老公那天加班，就我一个人来"), 2)
    assert (change.action, change.quantity) == ("cancel", 1)


def test_pinyin_english_bare_counts_variants_and_restated_totals():
    """Round 7 forms (t17): pinyin typed for characters, English sign-ups and totals, bare counts,
    a variant with a bare count, adults-and-children tickets, Cantonese/Hakka/Wu/Minnan words, the
    talking-done 商量好了, and a size written after 改成 that is not a count."""
    from bot.relay.parse import RelayReader, from_pinyin, understand

    assert from_pinyin("wo yao yi zhang") == "我要一张"
    assert from_pinyin("jiu jiu 1 ci") == "jiu jiu 1 ci"          # no relay word: left alone
    assert (understand("wo yao liang he").action, understand("wo yao liang he").quantity) == ("join", 2)
    assert understand("qu xiao ba, wo xia ge yue ban jia le").action == "cancel"
    for text, q in (("Ok I'll take 1", 1), ("Cool, put me down for one", 1), ("1 pls", 1), ("I need two", 2),
                    ("Add one more black XL for my dad", 1), ("I'm in. Model 3 Highland", 1), ("5", 5),
                    ("黑1", 1), ("茶色也来1", 1), ("AirPods 1", 1), ("两大一细", 3), ("2大1小", 3),
                    ("我要两樽", 2), ("咪咪 一针", 1), ("Luna 两次", 2), ("商量好了 来一台 武夷绿洲", 1),
                    ("报埋我个女 晴晴 6岁", 1), ("那我改成140的，要两件", 2)):
        got = understand(text)
        assert (got.action, got.quantity) == ("join", q), text
    for text in ("i want a refund", "one more question", "iPhone15", "3楼1", "第1", "老纪你咋不给我也整一件",
                 "any more left?"):
        assert understand(text).action == "none", text
    for text in ("我勿要了", "我毋免啊", "please take me off the list"):
        assert understand(text).action == "cancel", text
    assert understand("so only 1 for me").action == "set"
    reader = RelayReader()
    reader.read("团购 鱼油 59一瓶 要的接龙", "团长")
    assert reader.read("我要两盒", "二嫂子").quantity == 2
    lowered = reader.read("俺家老头说他不戴 那就一副吧", "二嫂子")       # held 2, now 1
    assert (lowered.action, lowered.quantity) == ("cancel", 1)
    assert reader.read("咁我转44码，都系一副", "二嫂子").action == "none"  # a size change keeps the count


def test_inventory_orders_mixed_item_units_and_partial_removals():
    """Orders written as an inventory with bare counts (t16), items with and without units side by
    side, 去一件 / minus 1 as one fewer, 俾支我, and 还是一盒 as the same count; tallies, shares and
    prices are not inventories."""
    from bot.relay.parse import inventory, understand

    for text, q in (("螺蛳粉5 番茄2", 7), ("黑色M 1 白色L 2", 3), ("红色120 1 藏青120 1", 2), ("ICU 护手霜3", 3),
                    ("C款 1", 1), ("43码 1", 1), ("湘A 3721 防冻液1 玻璃水2", 3), ("鏡架5副 太陽鏡2", 7),
                    ("我要裙子一条 上衣一件", 2), ("俺闺女一个 俺儿一个 接龙2", 2), ("俾支我", 1), ("2 cars, my dad one and mine", 2)):
        got = understand(text)
        assert (got.action, got.quantity) == ("join", q), text
    assert inventory("潘老师1，阿毛3，邵姐2，一共6盒") == (0, 0)   # a tally
    assert inventory("wah，lau，88，dollar") == (0, 0)
    for text in ("明天10点", "168是半斤还是一斤", "980是一副还是一片", "3栋 2"):
        assert understand(text).action == "none", text
    assert understand("外婆天天带娃去 一张").action == "join"
    for text, q in (("俺那两件去一件", 1), ("去一条 剩一条", 1), ("wife say diet，minus 1 lah", 1)):
        got = understand(text)
        assert (got.action, got.quantity) == ("cancel", q), text
    assert understand("上衣莫要了 去年那件还新得很").action == "cancel"
    assert understand("那我刚才那盒换成大号的，还是一盒").action == "set"


def test_visits_sizes_homophones_corrections_and_partial_withdrawals():
    """Round 7 forms (t18–t20): visits of a service card (次) only where they count visits, cake
    sizes and dioptres beside a count, voice-input homophones of units, a sender restating what they
    meant, not signing up yet, 给…买, one of the sender's units withdrawn, restated totals with +/x,
    Cantonese 拎/试/部/咁/再要多件, grams, and a price question is not a sign-up."""
    from bot.relay.parse import understand

    for text, q in (("2次 5Q21", 2), ("我堂客的车也搞一次 3K77", 1), ("再加一次纯色 给我妈", 1), ("6寸一个", 1),
                    ("4寸两个", 2), ("21一支 28一支", 2), ("那110红色一套 140红色一套", 2), ("我要流心奶黄两和", 2),
                    ("给我老娘买一份她腰不好", 1), ("女 驼色L 1件 黑色L 1件", 2), ("A2 B1", 3), ("接龙5克", 5),
                    ("咁試兩支先", 2), ("咁2箱，星期三帶Milo嚟", 2), ("再要多件米白M俾媽咪", 1), ("好，一部，九龍城", 1),
                    ("2 cases please", 2), ("鱼油+1，另外想问有无腥味的吗", 1)):
        got = understand(text)
        assert (got.action, got.quantity) == ("join", q), text
    for text in ("跟服务台说了两次没人管", "商场二楼嗰间美甲做一次几钱", "那先不接龙 验了再讲", "大概40分钟一台",
                 "换4条tyre 一共几钱 boss", "金毛30kg 要几盒够半年？", "一克拉的钻戒大概啥价位", "有冇得分期？有就要一部",
                 "老公偷偷买咗一部 🙄 我删咗", "金重跟票上写的差了0.3克 你们这秤准吗", "伊拉讲+1 就是一盒对伐"):
        assert understand(text).action == "none", text
    for text, q in (("语音打错哒 是两盒", 2), ("哈哈 一盒 不是一河", 1), ("我+1改成+2", 2), ("报名x1 改成x2", 2),
                    ("三箱俺家放不下 两箱吧", 2), ("小吕你记错了 俺就一台", 1)):
        got = understand(text)
        assert (got.action, got.quantity) == ("set", q), text
    got = understand("崽俚房间那台先不要 他下学期住校")
    assert (got.action, got.quantity) == ("cancel", 1)
    assert understand("我的那份不要了").quantity == 0   # the sender's whole sign-up


def test_b19_forms_pinyin_units_assent_cantonese_take_back_and_the_help_count():
    """Forms b19 showed once opened (round 7): pinyin counts with a unit and no relay word, 好嘛
    before an order, 减返, 同问+1, 香 for 箱 by voice, 给我来张, 配一副, a question is no cancellation,
    and the second sign-up in "我要2颗 帮我老妈也要2颗" counted with its own number."""
    from bot.relay.parse import understand

    for text, q in (("wuliangye 1 ping, merci", 1), ("hao, 2 tai, yi tai gei wo ma", 2), ("1 wei, merci", 1),
                    ("好嘛 猫粮两袋", 2), ("小英我要一香脐橙", 1), ("给我来张", 1), ("那我再配一副新的吧", 1),
                    ("我要2颗 帮我老妈也要2颗", 4)):
        got = understand(text)
        assert (got.action, got.quantity) == ("join", q), text
    assert understand("我减返一件 淨係要黑色S").action == "cancel"
    for text in ("同问+1 周末节假日能用吗", "-25的有没有 便宜点不"):
        assert understand(text).action == "none", text


def test_b20_forms_totals_only_one_of_the_names_and_questions_between():
    """Forms b20 showed once opened (round 7): a stated total is the sender's total, "只要姐姐一套"
    keeps one, "减1" after a count, a sign-up across clauses before a question, a size change to
    3XL, a verb before the count, "不" ending a question before "要两台"."""
    from bot.relay.parse import RelayReader, understand

    reader = RelayReader()
    reader.read("维生素D 团购 要的接龙", "李医生")
    assert reader.read("我婆婆要两瓶", "小芳").quantity == 2
    got = reader.read("我婆婆又说给我公公也要一瓶 那就一共三瓶了", "小芳")
    assert (got.action, got.quantity) == ("join", 3)  # the list line's total, one more in the ledger
    assert reader.held["小芳"] == 3
    assert understand("左右500度 各兩盒 共4盒").quantity == 4
    assert understand("弟弟的先不配了 只要姐姐一套").action == "set"
    got = understand("实习生说她不喝奶茶 我那2杯减1")
    assert (got.action, got.quantity) == ("cancel", 1)
    for text, q in (("接龙 一箱 甜不甜哦", 1), ("那儿童口罩来两包 感冒灵一盒", 3), ("白银能送不 要两台", 2),
                    ("ok 那 S白色1 L黑色1，另一件给男朋友", 2)):
        got = understand(text)
        assert (got.action, got.quantity) == ("join", q), text
    assert understand("男款那套换成3XL吧 老头子又胖了").action == "none"
    assert understand("眼镜才配一个月 镜片就脱膜了 质量太差").action == "none"


def test_one_each_without_a_verb_and_the_last_restatement():
    """"我外孙和外孙女各一套" and "我爸我妈各一副" are one each; "我跟我婆婆一人一张" is two when no
    total is given (and stays two when it is: "两张 我和我儿子一人一张"); of two restatements the last
    counts; several items for someone named first all count."""
    from bot.relay.parse import understand

    for text, q in (("我外孙和外孙女各一套，刻 乐乐 和 安安", 2), ("我爸我妈各一副", 2), ("我跟我婆婆一人一张 记我名字", 2),
                    ("两张 我和我儿子一人一张", 2), ("给我爸 王满仓 西沟村 立普妥4盒 阿司匹林2盒", 6)):
        got = understand(text)
        assert (got.action, got.quantity) == ("join", q), text
    got = understand("我改一下 1副改成2副")
    assert (got.action, got.quantity) == ("set", 2)
    assert understand("浩浩他妈说已经在医院配了 撤回吧").action == "cancel"
    assert understand("大伙儿注意了，一袋够做十碗，十五块一袋，想带回家的明儿下班前报个数").action == "none"


def test_t21_t22_forms_seats_visits_letters_and_questions_before_a_sign_up():
    """Round 7 (t21, t22): seats (席), a visit count among a name and a floor, a style letter and a
    Latin product name before their counts, a sign-up in a clause after a question, 整件/加条 as one,
    两个都报, 报上, 只来/只做 one, 左…右…各一盒, a total already said before 各, a total aimed at
    (凑够10粒), shirt numbers and sizes that are not counts."""
    from bot.relay.parse import understand

    for text, q in (("林美玲 2席", 2), ("小陈 17楼 1次", 1), ("B 1", 1), ("IPA 2打 小麦 2打 年会用", 4),
                    ("可以寄伦敦吗 要3盒 帮室友带的", 3), ("给俺家闺女整件卡其色160", 1), ("好看 再给我加条XL给我妈", 1),
                    ("那我和我家老秦两个都报", 2), ("那中 给我报上", 1), ("我要左250右275 各一盒", 2),
                    ("两张 我跟我老婆各一张", 2), ("加多5粒 凑够10粒", 5), ("那生熟各一饼", 2), ("那先给我一瓶 我回去问问医生", 1),
                    ("还能带个朋友吗 再加1张", 1), ("那再帮我爸办一张", 1)):
        got = understand(text)
        assert (got.action, got.quantity) == ("join", q), text
    for text in ("吴浩 23 XL 一套",):
        assert understand(text).quantity == 1, text
    for text in ("我185 75kg 着咩码", "学长 7号好像有人要了 我换成11"):
        assert understand(text).action == "none", text
    assert understand("兴庆区 小的那台上个月刚做过 只做一台").action == "set"
    assert understand("想了想我新抱不戴这些 少一条").action == "cancel"
    assert understand("老伴儿膝盖疼不想出门 把她名字去了吧").action == "cancel"


def test_b21_to_b24_forms_specs_sizes_each_eye_and_registrations():
    """Forms the round's final sets showed once opened (round 7, after their published read): a spec
    before the count (一斤的两盒, -10的两箱), 2XL as a size, a pet's weight then the count, left and
    right eyes one each, variants listed before 各, a room with a surname and a phone tail, English
    and Malay (keep 1 set, one pc, 1 for me, tukar jadi 2, kurang satu, reduce to 1), 我也一台,
    攒/多拿, 减做, 就得了, 不接龙了, one of the sender's units 退掉."""
    from bot.relay.parse import understand

    for text, q in (("安宁 一斤的两盒", 2), ("那-10的两箱", 2), ("那就黑色2XL一件", 1), ("咪咪7斤 一盒", 1),
                    ("我左-3.00 右-3.25 各两盒", 4), ("灰蓝L 灰蓝2XL 各一件", 2), ("Max 11岁 Lucy 8岁 各一副", 2),
                    ("5#-1802 陈 8836", 1), ("can 帮我 keep 1 set, I collect next week", 1), ("gold 100 one pc", 1),
                    ("ok 1 for me", 1), ("ok then 1", 1), ("我也一台吧 支架能调就行", 1), ("那给我女儿攒两颗", 2),
                    ("小陆 再帮我多拿一盒", 1), ("那就两张吧 省得不够刷", 2), ("老覃 2篓", 2), ("接龙 +1 有鸭肉的吗", 1)):
        got = understand(text)
        assert (got.action, got.quantity) in (("join", q), ("set", q)), text
    for text, q in (("eh Jessie 我可以 tukar jadi 2支 kah", 2), ("hmm actually reduce to 1", 1), ("3箱减做1箱", 1),
                    ("我只要一台就得了", 1)):
        got = understand(text)
        assert (got.action, got.quantity) == ("set", q), text
    for text in ("我 husband 说 office 有 supply，jadi 我的 kurang satu", "sorry my wife already bought some, cancel one box",
                 "我狗的那盒退掉 上礼拜刚打过针", "我那张先莫记 下个月换车了"):
        assert understand(text).action == "cancel", text
    for text in ("last time one box inside got one seed only 😂", "Jason 我那 2 pack 可以邮去 Penang 吗", "阿美 1條 手圍15"):
        assert understand(text).quantity in (0, 1), text
    assert understand("要得 那我先试小样 不接龙了").action == "set"  # nothing held: nothing; held: withdrawn


def test_punctuation_only_messages_are_nothing_and_never_raise():
    """A group message of only punctuation ("。。。", "~~", "，") has no clauses; reading it must not
    fail (it did: an index into the empty clause list)."""
    from bot.relay.parse import RelayReader, understand

    reader = RelayReader()
    for text in ("。。。", "~~", "，", "!!", "...", "？", "  "):
        assert understand(text).action == "none", text
        assert reader.read(text, "阿芳").action == "none", text
