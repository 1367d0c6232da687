"""Understanding group messages for a relay (自动接龙): join, cancel, or chatter.

Forms understood: 接龙, +1/+2, 接龙2份, 我要两份, 报名 x2, 算我一份, 再来一份, 跟团, 2份 (short),
取消, 不要了, 帮我取消, 取消一份, -1, 减一, and WeChat's native list (`#接龙` + the whole list
with the sender's line appended). A list is diffed against every line already seen in this
relay's lists (numbering ignored), and each new line is credited to the name written on it: the
sender's own line to the sender, a line for a friend to that friend.
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable

CN_NUM = {"一": 1, "壹": 1, "两": 2, "俩": 2, "仨": 3, "二": 2, "贰": 2, "三": 3, "叁": 3, "四": 4, "五": 5, "六": 6,
          "七": 7, "八": 8, "九": 9, "十": 10}
NUM = r"((?<![\d.])\d{1,3}|[一壹两俩仨二贰三叁四五六七八九十]{1,3})"  # not the 3 of "0.3克"
UNIT = (r"(份儿|人份|份|个|盒|件|箱|斤|只|套|袋|瓶|组|单|包|罐|桶|条|块|对|双|支|杯|张|本|台|提|把|听|板|串|束|枚|颗"
        r"|公斤|kg|斤装|副|饼|粒|片|捆|人|位|车|份子|桌|间|辆|床|顶|扎|坛|篮|兜|筐|排|卷|锅|碗|根|头|尾|口|樽|针|席|篓|克(?!拉)|部(?!分|门)|打(?!折|包|开|电话|车))")


@dataclass(frozen=True)
class RelayIntent:
    action: str          # join | cancel | none | set (the sender's new total: "改成两份")
    quantity: int        # for cancel, 0 means "everything I have"
    line: str = ""       # native-list line that carried the sign-up


NONE = RelayIntent("none", 0)


@lru_cache(maxsize=1)
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


def _clean(text: str) -> str:
    t = _t2s().convert(unicodedata.normalize("NFKC", text)).lower()
    t = re.sub(r"\[[^\]]{1,6}\]", "", t)  # WeChat emoji codes
    t = re.sub(r"(?<=\d)\s+(?=\d)", "，", t)  # "+1 120码" is +1 and a size, not +1120
    return re.sub(r"\s+", "", t)


def clean_name(name: str) -> str:
    """A display name as list lines are matched (NFKC, simplified, lower case, no spaces)."""
    return _clean(name)


def _num(tok: str | None, default: int = 1) -> int:
    """'3' → 3, '两' → 2, '十' → 10, '十二' → 12, '二十' → 20, '二十五' → 25."""
    if not tok:
        return default
    if tok.isdigit():
        return int(tok)
    if len(tok) == 1:
        return CN_NUM.get(tok, default)
    if "十" in tok and tok.count("十") == 1:
        tens, _, ones = tok.partition("十")
        t = CN_NUM.get(tens, 0) if tens else 1
        o = CN_NUM.get(ones, 0) if ones else 0
        return t * 10 + o if t < 10 and o < 10 else default
    if tok[0] in "俩仨":
        return CN_NUM[tok[0]]  # "我要俩一个给我自己": 俩 stands alone, the 一个 that follows is a split
    return default


_QUESTION = re.compile(r"(?<!不)([\u4e00-\u9fff])[不没唔]\1"  # 多不多, 好不好, 有没有: an A-not-A question
                       r"|(吗|么|嘛|\?|？|呢|能不能|可不可以|要不要|是不是|怎么|如何|多少|几|不|没|没有|不咯|伐|冇)$"
                       r"|怎么|如何|要不要|能不能|可以.*吗|多少|几点|几号|哪里|什么|多久|多长时间|啥时候|什么时候|是多大|多大的|多重"
                       r"|几(张|份|个|盒|箱|位|斤|袋|件|瓶)|能领|能要几|能买几|多钱|哪个|哪款|哪种|咋个|咋样|咋办|咋付"
                       r"|是.{1,8}还是|系咪|系唔系|定系|^请问|咋不|咋没|几块|几多|几钱|咩")
_CANCEL_QTY = [
    re.compile(r"^-" + NUM + UNIT + r"?(?![\d.℃°度])"),
    re.compile(r"^减" + NUM + UNIT + r"?"),
    re.compile(r"(?<![\d满加增])减(\d)$"),  # "我那2杯减1"
    re.compile(r"(?<![\d满加增])减(?:返|番|咗)?" + NUM + UNIT + r"(?!钱)"),  # "王哥 减一只", "我减一盒 4盒就好" (not 满300减50块)
    re.compile(r"(取消|退掉|退出|撤回?|不要|减掉|减去|减脱|去掉|删掉)" + NUM + UNIT),
    re.compile(r"(我|我这个?|我那个?|我的|俺这个?|俺那个?)少" + NUM + UNIT),  # "我这个少一板": one fewer
    re.compile(r"(取消|退)" + r"(掉)?" + NUM + UNIT),
    re.compile(r"(少要|少来|少订|少拿|少报)" + NUM + UNIT + "?"),
    re.compile(r"(?<!我的)(?<!俺的)(?<![我俺咱])那()" + UNIT + r"(先)?(不要|不贴|不做|不买|不弄|不去|退掉|删掉|去掉|取消|莫记|别记)了?(?!.*(吗|么|\?|？))"),  # one of the sender's units
    re.compile(r"去掉(他|她|我妈|我爸|.{1,3})那()" + UNIT),
    re.compile(r"(?<=[件个盒条支瓶包袋箱份张台双副罐斤])去" + NUM + UNIT + r"|去" + NUM + UNIT + r"剩"),  # "俺那两件去一件", "去一条 剩一条"
    re.compile(r"(?:^|[^a-z])(?:minus|kurang) ?(\d{1,2}|one|satu)(?!\d)"),  # "minus 1 lah", Malay "kurang satu"
    re.compile(r"(?<![多减至最缺])少" + NUM + UNIT + r"$"),  # "想了想我新抱不戴这些 少一条"
]
_CANCEL_ALL = re.compile(r"取消|不要了|不要咧|不要哒|不要嘞|不要喽|不要咯|唔要喇|退出接龙|退出|我退了|撤了|不参加了|不跟了|算了不要|删掉我|去掉我|不整了|覅了|唔要|"
                         r"cancel|不用了|不要啦|不去了|来不了|去不了|不参加|删了我|把我删|把我去掉|^我?撤回(?!.*[吗么?？])|(?<!能)(?<!可以)撤回吧?$|撤了吧?$|名字(去了|去掉|划掉|删了)|先?莫记|别记了"
                         r"|(撤回|撤销|收回)(刚才|之前|上面)?的?(\+\d|接龙|报名)|(\+\d|接龙|报名)的?(撤回|撤销|收回|不算)|(\+\d|接龙)(点|按|发|打)错"
                         r"|(点|按|发|打)错了"
                         r"|(甭|别|不用|无需|不必)(再)?(给我|帮我|给俺|帮俺)?(留|要|记|登记|算)了|(别|甭)(给我|帮我)?(留|要|算)(了|啦|吧)"
                         r"|把我.{0,6}(去了|去掉|划了|撤了)|我(那|的).{0,4}(别要了|甭要了|不要啦|去了吧)"
                         r"|嫑了|唔爱了|毋买了?$|勿要了|毋免|^算了$|take ?me ?off|drop ?me|莫要了|pass ?(了|掉)|^(那|那就)?算了吧?[，,].{0,12}(不.{1,2}了|没人|下次)")  # Shaanxi 嫑 (don't want), Hakka 唔爱, Minnan 毋买
_JOIN_PATTERNS = [
    re.compile(r"^\+" + NUM + UNIT + r"?"),
    re.compile(r"^加" + NUM + r"$"),
    re.compile(r"接龙\+?" + NUM + UNIT),
    re.compile(r"接龙\+" + NUM),
    re.compile(r"[x×*]" + NUM + UNIT + r"?(?!\d)"),
    re.compile(r"(?<!\d)\+" + NUM + r"(?![\d.])"),
    re.compile(r"(我要|要|来|订|报名|报|算我|跟团|跟|接|拍|留|帮我接|帮我报|帮我留|给我来|再来|再要|再加|加|登记|记|预定|预订"
               r"|帮我登记|帮忙登记|帮我记|给我留|给我记|给我报|给我订|帮我订|麻烦留|麻烦登记|整|给我整|给俺整|俺要|俺也要"
               r"|阿拉要|阿拉也要|我也整|我也要|我|俺|阿拉|咱|偶|me|搞|那搞|给我搞|再办|我办|给我办|给我约|帮我约|拎|试)" + NUM + UNIT),
    re.compile(r"(再要|再加|加|要)多()" + UNIT + r"(?![\d一两二三四五六七八九十])"),  # Cantonese "再要多件": one more
    re.compile(r"^" + NUM + UNIT + r"(?![\d]|小时|个?月|天|钟|年|周|星期|岁|次|以上|以内|左右|色|颜色|种|款|口味|味|尺码)"),
    re.compile(r"(俩|两|仨|三)(人|个人|口人)"),
    re.compile(r"^(我要|要|来|算我)" + NUM + r"$"),
    re.compile(r"^接龙\+?" + NUM + r"$"),
    re.compile(r"(要|来|整|订|留|给我|报)(俩|仨)"),
    re.compile(r"(报|留|算|买|要|加)埋.{0,8}?" + NUM + UNIT),  # Cantonese 埋: also ("帮我阿妈都留埋一支")
    re.compile(r"(报|算|加)埋()"),
    re.compile(r"(畀|俾)我?" + NUM + UNIT),  # Cantonese "畀两盒我", "俾两个我": give me two
    re.compile(r"(畀|俾)()" + UNIT + r"我"),  # "俾支我": give me one
    re.compile(r"^扣(\d{1,2})(?!\d)"),  # "扣1", "扣2": internet slang for +1, +2
    re.compile(r"^再\+?(\d)$"),  # "再1": one more
    re.compile(r"^(\d)$"),  # a bare "1" or "2" in a relay thread is a +1, a +2 (every writer labels it so)
    re.compile(r"帮.{0,10}带" + NUM + UNIT),  # "帮我隔壁阿姨带一包": a sign-up for someone not in the group
    re.compile(r"(给我来|来|整|给我整)()(张|份|盒|件|瓶|箱|袋|包|个)$"),  # "给我来张"
    re.compile(r"(整|也来|来|再加|加)()(件|张|双|套|副|台|条)(?!人|\d)"),  # "给俺家闺女整件卡其色160", "再给我加条XL"
    re.compile(r"(俩|两)个?都(整|要|做|报)"),
    re.compile(r"(?<![才刚已])(再配|配)" + NUM + UNIT + r"(?!月|天|年|礼拜|星期)"),
    re.compile(r"(我也|俺也|攒|多拿|再拿|tambah ?)" + NUM + UNIT),
    re.compile(r"(给|帮|替).{1,6}(买|办|订)(?!了|过|的)" + NUM + UNIT),  # "那再帮我爸办一张"
    re.compile(r"(加多|多加|再多|再添|添)" + NUM + UNIT + "?"),
    re.compile(r"(报名|接龙|要|来|订|算|跟).*?" + NUM + UNIT),
]
_JOIN_PLAIN = re.compile(r"^(\+|接龙|接|报名|跟团|跟|算我一个|算我|我要|要|我也要|我也接|我接|加我|我报名|报|整一个|整个|"
                         r"俺要|俺也要|阿拉要|阿拉也要|我也来|帮我记|帮俺记|给我记|me|我我我|算俺)")
_JOIN_ANY = re.compile(r"接龙|报名|跟团|\+\d")
_MORE = re.compile(r"(再帮|再给|再来|还要|另外|也要|也来|也接|帮我.{1,4}?(拍|接|报|要|来|留))\D{0,10}?" + NUM + UNIT)
_JOIN_EAGER = re.compile(r"^(我报名|报名|算我|我要报名|我也报名)")
_FIRST_PERSON = re.compile(r"我(?!们)|俺|阿拉|咱(?!们)|偶|^me|本人|算上")
# An organiser announcing a sign-up ("大闸蟹团 接龙 周三发货", "需要的报名"), not joining it.
_ANNOUNCE = re.compile(r"需要的|要的|想要的|有需要|欢迎|开始|开团|团购|拼团|(?<![跟参入])团(?!长)|秒杀|清仓|内购|到货|限购|限\d|名额|[¥￥$]|\d+元|"
                       r"买.送.|\d折|免费|后面写|写数量|写上|格式|落单|领取|预订|预定|截止|原价|特价|福袋|礼包|抢购|上新|活动|"
                       r"截单|统一发|统一配送|汇总|已满|满了|限报|每人限|按个|按斤|按份|按盒|按箱|^收到|已登记|已记录|记下了|"
                       r"已帮你|帮您登记|限量|接龙写|报名写|写.{0,2}数|x件数|件数|按接龙顺序|要嘅接龙|接龙价|接龙时|接龙的时候|备注|凑够|发链接|拼单|满\d+(杯|件|份|个|盒|元)|包邮|新货|斤装\d+|装\d{2,}"
                       r"|一(箱|盒|袋|包|件|提|组)\d+(罐|瓶|个|袋|盒|包|支|片|粒|只|斤)|一(箱|盒|袋|包|件|提|组)\d{2,}|\d+(次|罐|瓶|粒|片)(卡|装)")
_TOTAL = re.compile(r"(一共|总共|共|合计)" + NUM + UNIT + "?")
_LIST_LINE = re.compile(r"^\s*(\d{1,4})(?:\s*[.、．:：)）](?!\d)\s*|\s+)(.+?)\s*$")


# "改成两副", "减到1盒", "加到五件": the sender's new total, not units on top.
_RESTATE = re.compile(r"(减做|改咗做|改咗|改成|改为|改做|改返|改回|改一下要|改下要|改一下|改|减成|减到|减为|加到|变成|换成|就只要)[+x×*]?" + NUM + UNIT + "?(?![\d]|x{0,3}l(?![a-z])|xs|(?<=\d)(的|码|号|cm|度))")
# "我那两箱退掉吧", "我那单帮我删了吧", "我的划掉吧": withdrawing one's own sign-up.
_CANCEL_MINE = re.compile(r"(我那|我的|我这|俺那|把我|我嗰|我𠮶|我个|帮我).{0,8}(退掉|退了|删了|删掉|删咗|划掉|去掉|撤掉|先撤|撤了|撤咗|退咗|取消)")
_SAME_AS_ABOVE = re.compile(r"^(同上|同款|一样的?|跟一个|跟一份|跟一单|me ?too|我也一样)[!！~～。.]*$")
_BARE_COUNT = re.compile(r"^(俩|仨|两个|两份)[!！~～。.]*$")
# A short line naming a variant and a quantity, with nothing else to it.
_SHORT_ITEM = re.compile(r"^[^\d一壹两俩仨二贰三叁四五六七八九十+第到有还最多少单每约试下钱几只剩就才已周期拜了发]{0,5}?" + NUM + UNIT +
                         r"(?!小时|个月|月|天|钟|年|周|星期|点|号|块|元|钱|度|岁|码|寸|克|ml|公里|米|字|人|色|颜色|种|款|口味|味|次)"
                         r"(?![^\d]*(左右|才|哦|了|呀|吗|啊|起|以上|以内))[^\d]{0,6}$")
_CONFIRM_TAIL = re.compile(r"(行吗|可以吗|好吗|行不|行不行|可以不|ok吗|好不好|中不中|中不|得不得|得唔得|好唔好|(?<![一壹两俩二三四五六七八九十\d])对吧|哈|呀|哦|噢|啊|吧)+[?？]*$")
# A softening particle after a quantity is no question ("我也要一箱嘛", "来一盒咯").
_SOFT_TAIL = re.compile(UNIT + r"(嘛|咯|哟|噻|撒)+$")
# English sign-ups: "count me in", "count me 1", "2 pcs for me", "me and my mum, 2 pax", "i take 1".
_ENGLISH_JOIN = re.compile(r"^count ?me ?(in)?(\d{1,2})?$|^(\d{1,2}) ?(pcs|pc|pax|sets?|boxes|box|packs?|bottles?|bags?|cups?)"
                           r"|(?<![\d.])(\d{1,2}) ?(pcs|pax)$|(?:^|[^a-z])i ?(take|want|need|'ll take) ?(\d{1,2}|one|two)(?![\d])"
                           r"|give ?me ?(\d{1,2}|one|two)(?![\d])|^(\d{1,2}) ?(bundles?|units?|tins?|cans?|jars?|sets?)"
                           r"|^(?:nak|mau|want) ?(\d{1,2})(?!\d)")
_THEN_JOIN = re.compile(r"^(行|好|ok|嗯)?(那就|就要|那要|那来|那给我|那)" + NUM + UNIT + r"(?!.*(吗|么|\?|？|不要|不用|不买|没))")
_BARE_WITH_THANKS = re.compile(r"^(\d{1,2})(谢谢|谢啦|thx|thanks|ty)$")
# "本来想要一箱 看了价格还是算了": a change of mind; it withdraws whatever the sender holds.
_CHANGED_MIND = re.compile(r"(本来|原本|本想|想了想|考虑了一下).{0,16}(还是)?(算了|不要了|不买了|不跟了|不参加了)")
# An organiser's tally or a staff member confirming someone else's entry, not a sign-up.
_STATUS = re.compile(r"还剩\d|还有\d+个?(位置|名额)|剩余\d|剩\d+(份|个|箱|位|张|袋|盒|斤)|(目前|现在)(一共|共|总共|\d)|已经(算上|登记|记上)|截了"
                     r"|(给|帮)(您|你|侬)(记|登记|改|报|留|加|减|备注|算)|(您|你|侬|大家)(直接)?(打|发|回复|回)个?\+\d|接龙(只是|就是)登记|接龙的?优先|[^我]的取消了")
# "刚才那个2不算 我就要1份": a retraction that states the new total.
_RETRACT_THEN = re.compile(r"(不算|作废|说错|打错|写错).{0,14}?(就|只)?(要|来|订|留)" + NUM + UNIT + "?")
_CORRECTION = re.compile(r"不对|说错了|哦不|噢不|不不")
_ENGLISH_ME = re.compile(r"(?:^|[^a-z])me[ ，]?(\d{1,2})(?!\d)")
# Japanese and Korean counts typed by customers abroad.
_FOREIGN_NUM = {"一つ": 1, "ひとつ": 1, "1つ": 1, "二つ": 2, "ふたつ": 2, "2つ": 2, "三つ": 3, "みっつ": 3, "3つ": 3,
                "한": 1, "하나": 1, "두": 2, "둘": 2, "세": 3, "셋": 3}
_FOREIGN_COUNT = re.compile(r"(一つ|ひとつ|1つ|二つ|ふたつ|2つ|三つ|みっつ|3つ)|(?<![가-힣])(한|하나|두|둘|세|셋) ?개")
_AGREE = re.compile(r"^\+1(同感|同意|赞|说得对|确实|真的|附议|太对了|同问|同求)|^(同问|同求|同感)\+1")


# "110 一套", "深灰43码两对", "130来2，120来1": a size (children's heights, shoe sizes) and a count each.
_SIZE_ITEM = re.compile(r"^(?:那|那就)?[\u4e00-\u9fffa-z]{0,3}?(?:\d{2,3}(码|号|cm|的|度)?|\d{1,2}(寸))(?:(?![分钟小时天块元钱岁年月号点])[\u4e00-\u9fff]){0,3}?(?:(来|要|[x×*])" + NUM + UNIT + "?|" + NUM + UNIT + ")$")


_EN_COUNT = r"(\d{1,2}|one|two|three)"
_EN_NUM = {"one": 1, "two": 2, "three": 3}
_EN_SET = re.compile(r"\breduce (?:it |mine )?to " + _EN_COUNT + r"\b|\btukar ?jadi ?" + _EN_COUNT + r"|\bkurang ?jadi ?" + _EN_COUNT
                     + r"|\bonly " + _EN_COUNT + r"\b.{0,12}\bfor me\b|\bjust " + _EN_COUNT + r" (?:(?:case|pair|box|bottle|pack|set)s? )?(?:for me\b|$)")
_EN_JOIN = re.compile(r"\b(?:put me down|sign me up|add me)(?: for)? " + _EN_COUNT + r"\b"
                      r"|\bi(?:'ll| will|'d like to)? (?:take|want|need|get|order|book) " + _EN_COUNT + r"\b"
                      r"|\b(?:keep|book|reserve|save) (?:me )?" + _EN_COUNT + r"\b|^(?:ok |okay |then |me )?" + _EN_COUNT + r" ?(?:pcs?|sets?|boxes|box|packs?|bottles?|bags?|pairs?)\b"
                      r"|\b" + _EN_COUNT + r" ?(?:pcs?|sets?|pairs?)$"
                      r"|\b" + _EN_COUNT + r" for me\b|^(?:ok |okay )?then " + _EN_COUNT + r"$"
                      r"|\badd " + _EN_COUNT + r" more\b|\b" + _EN_COUNT + r" more\b(?! (?:question|day|week|minute|hour))"
                      r"|^(?:ok |okay |then )?" + _EN_COUNT + r" (?:please|pls|plz)\b|\b" + _EN_COUNT + r" (?:please|pls|plz)$")
_EN_JOIN_ONE = re.compile(r"\b(?:i'?m in|put me down|sign me up|add me|count me)\b|^(?:ok |okay |then )?one for (?:me|my)\b")


def _english_said(spaced: str) -> RelayIntent | None:
    """English sign-ups ("put me down for one", "1 pls", "add one more for my dad", "I'm in") and
    restated totals ("only 1 for me"); None when the message says none of these."""
    e = spaced.replace("，", " ")
    if not re.search(r"[a-z]{2}", e) or re.search(r"\?|？|吗|么|cancel|minus|kurang|remove|drop|off the|not needed|don'?t", e) or \
            re.match(r"(can|could|how|what|when|where|is|are|do|does|any)\b", e):
        return None
    for pat, action in ((_EN_SET, "set"), (_EN_JOIN, "join")):
        m = pat.search(e)
        if m:
            n = next(g for g in m.groups() if g)
            return RelayIntent(action, _EN_NUM.get(n) or int(n))
    return RelayIntent("join", 1) if _EN_JOIN_ONE.search(e) else None


def _size_counts(t: str) -> int:
    parts = [p for p in re.split(r"[，,、+；;]|和", t) if p]
    found = [_SIZE_ITEM.match(p) for p in parts]
    if not parts or not all(found):
        return 0
    return sum(_num(m.group(4) or m.group(6)) for m in found)


def _clauses(spaced: str) -> list[str]:
    """The writer's clauses: split at their spaces (already commas), punctuation and after a question mark."""
    return [c for c in re.split(r"(?<=[?？])|[，,。!！~～；;]|\.(?!\d)|(?<!\d)\.", spaced) if c] if spaced else []  # not 1.67


# What a count is not: a total aimed at ("加多5粒 凑够10粒"), a spec before the count ("一斤的两盒",
# "那-10的两箱"), the 2 of a 2XL.
_AIMED_AT = re.compile(r"凑(够|齐|满)" + NUM + UNIT + "?")
_SPEC_BEFORE_COUNT = re.compile(r"(?:" + NUM + r"(?:斤|kg|公斤|克|g|ml|升|寸|码)|-?\d{1,2}(?:度|°|℃)?)的(?=[，,]?" + NUM + UNIT + ")")
_NUMBERED_XL = re.compile(r"(?<!\d)([2-5])xl")
_WEIGHED = re.compile(r"^(.{1,6}?)" + NUM + r"(?:斤|kg|公斤)[，,]?" + NUM + r"(盒|袋|包|支|瓶|罐|只|份|粒|片)$")
_CONNECTOR = r"和|跟|与|同|、"


def _without_non_counts(t: str) -> str:
    t = _SPEC_BEFORE_COUNT.sub("", _AIMED_AT.sub("", t) or t) or t
    return _NUMBERED_XL.sub(lambda m: "x" * int(m.group(1)) + "l", t)


def _variants_then_each(parts: list[str], t: str) -> RelayIntent | None:
    """"灰蓝L 灰蓝2XL 各一件", "Max 11岁 Lucy 8岁 各一副": count-less clauses, then 各N for each."""
    if len(parts) < 3 or _QUESTION.search(t):
        return None
    last = re.fullmatch(r"各" + NUM + UNIT, _clean(parts[-1]))
    named = [p for p in parts[:-1] if not re.search(NUM + UNIT, _clean(p))]
    if not last or len(named) != len(parts) - 1 or len(named) > 6:
        return None
    people = len([p for p in named if not re.fullmatch(r"\d{1,2}岁", _clean(p))])
    return RelayIntent("join", people * _num(last.group(1))) if people >= 2 else None


def _one_each(t: str, spaced: str, got: RelayIntent) -> RelayIntent:
    """A count that stands for each of several people or variants: "给我和我妈各接一件", Hakka
    "𠊎同阿姆各一箱", "我跟我婆婆一人一张", "我爸我妈各一副", "左250右275 各一盒"; with no verb
    ("我外孙和外孙女各一套") too. Not when the total was said ("两张 我跟我老婆各一张")."""
    if got.action == "join":
        each = re.search(r"(" + _CONNECTOR + r").{0,6}各", t)
        if not each and len(re.findall(NUM + UNIT, t.replace("一人", ""))) == 1:
            each = re.search(r"(" + _CONNECTOR + r").{0,6}一人(?=" + NUM + UNIT + ")", t)
            if each and _num(re.match(NUM, t[each.end():]).group(1)) != got.quantity:
                each = None  # the count read was a total ("我和室友一人一个 +2")
        if not each:
            each = re.search(r"左.{0,16}右.{0,12}各(?=" + NUM + UNIT + ")", t) or re.match(
                r"^(那|我要|给我|我)?(左.{1,5}右.{1,5}|我爸我妈|我妈我爸|爸妈|我爸妈|[\u4e00-\u9fff]{2}[\u4e00-\u9fff]{2}"
                r"|[\u4e00-\u9fff]{2})各" + NUM + UNIT, t)
        counted = re.match(NUM, t[each.end():]) if each else None
        if not each or (counted and _num(counted.group(1)) != got.quantity):
            return got
        q = got.quantity * max(2, 1 + len(re.findall(_CONNECTOR, t[:each.end()])))
        return RelayIntent("join", q, got.line) if q <= 999 else NONE
    if got.action != "none" or _TENTATIVE.search(t) or any(_QUESTION.search(_clean(c)) for c in (_clauses(spaced) or [t])):
        return got
    alone = re.search(r"(?:(" + _CONNECTOR + r").{0,6}(?:各|一人)|^[\u4e00-\u9fffa-z]{2,8}?各)" + NUM + UNIT, t)
    if not alone:
        return got
    q = _num(alone.group(2)) * max(2, 1 + len(re.findall(_CONNECTOR, t[:alone.end()])))
    return RelayIntent("join", q) if 0 < q <= 999 else NONE


def _intent_from_text(t: str, spaced: str = "") -> RelayIntent:
    t, spaced = _without_non_counts(t), _without_non_counts(spaced) if spaced else spaced
    parts = _clauses(spaced)
    listed = _variants_then_each(parts, t)
    if listed:
        return listed
    weighed = _WEIGHED.match(t)
    if weighed:  # "咪咪7斤 一盒": the pet's weight, then the count
        return RelayIntent("join", _num(weighed.group(3)))
    sized = _size_counts(spaced or t)
    if 0 < sized <= 999:
        return RelayIntent("join", sized)
    if spaced and not (_QUESTION.search(t) or _CANCEL_ALL.search(t) or _RESTATE.search(t) or _CANCEL_MINE.search(t)
                       or any(p.search(t) for p in _CANCEL_QTY) or re.search(r"给|帮|带|各|其中|另外|再", t)):
        several = _item_clauses(parts, at_least=2, variants_only=True)
        if several.action == "join":
            return several  # "鸡蛋一箱 茶一包", "按呢，清香2罐，浓香1罐": every item counts
        units, pairs = inventory(spaced)
        if pairs >= 2 and not _ANNOUNCE.search(t) and not _TENTATIVE.search(t):
            return RelayIntent("join", units)  # "螺蛳粉5 番茄2", "黑色M 1 白色L 2": an order written as a list
    return _one_each(t, spaced, _read_text(t, spaced))


# A variant and a bare count, nothing else: "黑1", "茶色也来1"; in Latin letters the count stands apart
# ("AirPods 1", not "iPhone15") and is small.
_VARIANT_COUNT = re.compile(r"^(?:那|那就)?[\u4e00-\u9fff](?<![第周楼号层点月年天期])[\u4e00-\u9fff]{0,3}(?<![第周楼号层点月年天期拜])"
                            r"(?:也来|也要|来|要)?(\d)$")
_SERVICE_TIMES = re.compile(r"^(?:[\u4e00-\u9fffa-z]{1,8}?，?)?" + NUM + r"次$")
_MORE_TIMES = re.compile(r"(再加|再来|也来|也搞|也做|也要|要|来|加|搞|报|做)" + NUM + r"次(?!了|都|就|没|还|卡|性)")
_LATIN_VARIANT_COUNT = re.compile(r"^[a-z][a-z0-9]{1,15}，([1-5])$")
_FAMILY_TICKETS = re.compile(r"^(?:我们?|我家|俺家|我哋)?(?:" + NUM + r"大)?(?:" + NUM + r"(?:小|细|娃|孩))?(?:人|位)?$")


_ASSENT = r"^(那好嘛|好嘛|好吧|行嘛|行吧|好的嘛|好勒|好嘞)"  # assent before an order, not a question
_HOMOPHONE_UNITS = {"和": "盒", "河": "盒", "评": "瓶", "平": "瓶", "幅": "副", "带": "袋", "香": "箱"}


def _read_text(t: str, spaced: str = "") -> RelayIntent:
    if not t:
        return NONE
    t = re.sub(r"(?<=[两二三四五六七八九十俩])([和河评平幅带])(?=$|[，,]|跟|给)|(?<=[一两二三四五六七八九十俩])(香)(?=[\u4e00-\u9fff]{1,3}(?!味|水|气))",
               lambda m: _HOMOPHONE_UNITS[m.group(1) or m.group(2)], t)
    t = re.sub(_ASSENT + r"(?=[，,]?.)", "", t)
    spaced = re.sub(_ASSENT + r"[，,]", "", spaced)
    if re.fullmatch(r"(?:好|我要|ok)?\d{1,2}(?:#|栋|号楼|幢|座)-?\d{3,4}[\u4e00-\u9fff]{1,3}\d{4}", t):
        return RelayIntent("join", 1)  # a room, a surname and a phone tail: the sign-up the list asked for
    family = _FAMILY_TICKETS.match(t)
    if family and (family.group(1) or family.group(2)) and ("大" in t or len(t) > 2):
        return RelayIntent("join", _num(family.group(1), 0) + _num(family.group(2), 0))  # "两大一小": three places
    if _AGREE.match(t):
        return NONE  # "+1 同感": agreeing with someone, not signing up
    if re.match(r"^\+\d{1,2}是.*(吗|么|意思|\?|？)", t):
        return NONE  # "+1 是一颗的意思吗": asking what a +1 stands for
    t = re.sub(r"[^\w+\-?？]+$", "", t) or t  # trailing emoji and punctuation say nothing ("能吃吗😭")
    t = re.sub(r"^咁(样)?(?=我|要|\d|[一两二三四五六七八九十]|报|试|来)", "那", t)  # Cantonese 咁 "then": "咁2箱"
    if _CHANGED_MIND.search(t) or re.search(r"不接龙了|不跟团了", t):
        return RelayIntent("set", 0)
    meant = re.search(r"(打错|搞错|说错|写错|语音).{0,8}?(是|系)" + NUM + UNIT + r"|^(?:哈+|啊|哦|噢)?[,，]?" + NUM + UNIT + r"[,，]?不是", t)
    if meant:
        return RelayIntent("set", _num(meant.group(3) or meant.group(5)))
    fix = _CORRECTION.search(t)
    if fix and re.search(NUM + UNIT, t[fix.end():]):
        return _intent_from_text(t[fix.end():])  # "我要一盒 不对 我要两盒": the corrected ask counts
    if _STATUS.search(t):
        return NONE
    retract = _RETRACT_THEN.search(t)
    if retract:
        return RelayIntent("set", _num(retract.group(4)))
    t = _SOFT_TAIL.sub(lambda m: m.group(1), t)
    asked = t.endswith(("吗", "么", "?", "？"))
    t = _CONFIRM_TAIL.sub("", t) or t  # "…一共四颗行吗" asks for a confirmation, not a question about the relay
    mine = re.search(r"make ?(mine|it) ?(\d{1,2})(?!\d)", t)
    if mine:
        return RelayIntent("set", int(mine.group(2)))  # "actually make mine 2", "make it 4"
    if re.search(r"count ?me ?in", t) and not _QUESTION.search(t):
        times = re.search(r"count ?me ?in[^\d]{0,3}?[x×*]?(\d{1,2})(?!\d)", t)
        return RelayIntent("join", int(times.group(1)) if times else 1)  # "count me in x3"
    foreign = _FOREIGN_COUNT.search(spaced or t)
    if foreign and not _QUESTION.search(t):
        return RelayIntent("join", _FOREIGN_NUM[foreign.group(1) or foreign.group(2)])  # 一つお願いします, 두 개요
    units = re.search(r"(?:^|[^\d.a-z])(\d{1,2})[ ，]?(pcs|pc|pax|sets?|boxes|box|packs?|bottles?|bags?|cups?|cars?|units?|cases?|pairs?|ctns?)(?![a-z])",
                      spaced or t)
    if units and not _QUESTION.search(t) and "?" not in (spaced or t):
        return RelayIntent("join", int(units.group(1)))  # "got it, 1 box"
    me = _ENGLISH_ME.search(spaced or t)
    if me and not _QUESTION.search(t):
        return RelayIntent("join", int(me.group(1)))  # "ok me 2", "me 2 one for my gf"
    english = _ENGLISH_JOIN.search(t)
    if english and not t.endswith(("?", "？")):
        nums = [g for g in english.groups() if g and (g.isdigit() or g in ("one", "two"))]
        q = {"one": 1, "two": 2}.get(nums[0], None) if nums else 1
        return RelayIntent("join", q if q is not None else int(nums[0]))
    said = _english_said(spaced or t)
    if said is not None:
        return said
    then = _THEN_JOIN.match(t) or _BARE_WITH_THANKS.match(t)
    if then:
        # "那就两本" after a staff answer states the sender's total: a sign-up when they hold nothing
        # yet, nothing new when they already hold it
        q = _num(next(g for g in then.groups() if g and (g.isdigit() or all(c in CN_NUM for c in g))))
        return RelayIntent("set" if then.re is _THEN_JOIN and then.group(2).startswith("那就") else "join", q)
    if spaced and _QUESTION.search(t):
        parts = _clauses(spaced)
        first = next(iter(parts), "")
        if len(parts) > 2 and re.fullmatch(r"接龙|报名|\+\d|我要|我也要", _clean(first)) and (
                _PURE_QUANTITY.match(_clean(parts[1])) or re.fullmatch(r"\+\d", _clean(parts[1]))):
            first = first + parts[1]  # "接龙 一箱", then the question
        if first and first != spaced:
            head = _intent_from_text(_clean(first))
            if head.action == "join" and re.search(NUM + UNIT + r"|^[^讲说是]{0,10}\+\d{1,2}$", _clean(first)) and not re.search(r"太|不|没", first) \
                    and not re.search(r"\d(kg|公斤)$", _clean(first)) \
                    and (re.search(r"要|来|报|接|给我|算我|留|订|\+|整|拿|爱", first) or _PURE_QUANTITY.match(_clean(first))
                         or _ITEM_CLAUSE.match(_clean(first))):  # not "换4条tyre 一共几钱": a price asked
                return head  # "我要三盒 能送护理液吗": a sign-up, then a question
    if re.search(r"就我(一个人|自己)(来|去)?$", t):
        return RelayIntent("set", 1)  # "我妈那天有事，就我一个人来"
    enough = re.search(r"(只要|就我|就要)?" + NUM + UNIT + r"(就好|就够了?|就行|就可以|就得了|就中)|(只要|就我|只爱|净系要?|那就|都系|都是|还是|俺就|我就|太多了?.{0,6}?|放不下.{0,6}?|吃不完.{0,6}?|用不完.{0,6}?)" + NUM + UNIT + r"(就够了?|了|吧)?$", t)
    if enough and not _QUESTION.search(t[enough.end():]) and not re.search(r"是.{0,8}还是", t):
        q = _num(enough.group(2) or enough.group(6))
        return RelayIntent("set", q) if 0 < q <= 999 else NONE  # "一瓶就好", "我只要一套就够了", "就我一副"
    only = re.search(r"只(要|来|剩|做|报)[\u4e00-\u9fffa-z]{0,6}?(那|一)" + UNIT + r"(了|吧)?$", t)
    if only and not _QUESTION.search(t):
        return RelayIntent("set", 1)
    size_only = re.search(r"改成?\d{2,3}.{0,3}还是" + NUM + UNIT, t)
    if size_only:
        return RelayIntent("set", _num(size_only.group(1)))  # "把我的32改成33，还是一双": a size changed, not the count
    total_now = ([m for m in _RESTATE.finditer(t)] or [None])[-1]
    if total_now and not total_now.group(3) and re.fullmatch(r"\d{2,}", total_now.group(2)):
        total_now = None
    if total_now and not _QUESTION.search(t[total_now.end():]):
        q = _num(total_now.group(2))
        return RelayIntent("set", q) if 0 <= q <= 999 else NONE
    asks_why = re.search(r"怎么|为什么|为啥|谁|(?<!不)([\u4e00-\u9fff])[不没唔]\1", t)  # "小丁怎么不要了" asks about someone else
    if _CANCEL_MINE.search(t) and not t.endswith(("吗", "么", "?")) and not asks_why:
        return RelayIntent("cancel", 0)
    for pat in _CANCEL_QTY:
        m = pat.search(t)
        if m and m.group(0).startswith("不要") and "不，要" in (spaced or ""):
            continue
        if m and not re.search(r"(吗|么|嘛|呢|\?|？)$", t) and not re.match(r".{0,3}(吗|么|嘛|呢|\?|？)", t[m.end():]) \
                and not re.search(r"有没有|有冇|(?<!不)([\u4e00-\u9fff])不\1|留.{0,3}不", t):
            # "-35够吗 我们那边零下四十": asks about a temperature
            nums = [g for g in m.groups() if g and (g.isdigit() or all(c in CN_NUM for c in g))]
            return RelayIntent("cancel", _num(nums[0] if nums else None))
    if _CANCEL_ALL.search(t) and not asked and not t.endswith(("吗", "么", "?")) and not asks_why:
        return RelayIntent("cancel", 0)
    if t.startswith("-") and len(t) <= 3:
        return RelayIntent("cancel", 1)
    # A question is not a sign-up, even with a +1 inside it ("现在+1还来得及吗"); a sign-up that
    # starts with +N and then asks something ("+1 什么时候到") still is one.
    clauses = _clauses(spaced)
    asks_then_joins = bool(clauses) and re.search(r"(算我|我要|给我来|给我|来|要)" + NUM, _clean(clauses[-1]))
    asked_at = next((i for i, c in enumerate(clauses) if _QUESTION.search(_clean(c))), None)
    joins_after = asked_at is not None and any(
        re.search(r"(算我|我要|我也要|给我来|给我|来|要|再加)" + NUM + UNIT, _clean(c)) and not _QUESTION.search(_clean(c))
        and not re.search(r"不|没", c) for c in clauses[asked_at + 1:])
    questionish = (bool(_QUESTION.search(t)) and not joins_after or
                   (not asks_then_joins and not joins_after and any(_QUESTION.search(_clean(c)) for c in clauses[:-1]))) \
        and not re.match(r"^\+\d{1,3}(份|个)?([,，。.!！~～]|$)", spaced or t)
    if re.search(r"寻思|问问|考虑(?!好)|商量(?!好)|再说吧|(先|暂时|暂)不(接龙|报名|报|接|参加)(?!了)|[?？]有(的话)?就(要|来)", t) and not re.search(r"\+\d|先(给我|要|来)" + NUM + UNIT, t):
        return NONE  # "我寻思要两袋 等我问问我媳妇": not decided yet
    if _ANNOUNCE.search(t) and not _FIRST_PERSON.search(t) and not t.startswith("+") \
            and not (len(t) <= 8 and re.search(r"\+\d{1,2}$", t)):
        return NONE
    # on the spaced text too: "sorry -1, 2 is enough" is cleaned to "sorry-1,…"
    minus = re.search(r"(?<![\da-z])-(\d{1,2})(?![\d.的度°℃cm])", t) or \
        re.search(r"(?<![\da-z])-(\d{1,2})(?![\d.的度°℃cm])", spaced or "")
    if minus and not questionish:
        return RelayIntent("cancel", int(minus.group(1)))
    total = _TOTAL.search(t)
    if total and not questionish and (_FIRST_PERSON.search(t[:total.start()]) or total.start() == 0
                                      or re.search(r"各" + NUM + UNIT, t[:total.start()]) or t[:total.start()].endswith("那就")):
        q = _num(total.group(2))
        return RelayIntent("set", q) if 0 < q <= 999 else NONE  # "那就一共三瓶了": the total, not three more
    each_plus = [m for m in (re.match(r"^(?:ok|then|那|好|嗯)*\+(\d{1,2})(?![\d.])", _clean(c)) for c in clauses) if m]
    if len(each_plus) >= 2 and not questionish:  # "ok then +1 strawberry, +1 niunan": one +N per flavour
        return RelayIntent("join", sum(int(m.group(1)) for m in each_plus))
    plus = re.findall(r"\+(\d{1,3})(?![\d.])", t)
    if len(plus) > 1 and re.match(r"^(\+\d{1,3})+[^+\d]", t) and not questionish:
        q = sum(int(x) for x in plus)  # "+1+1 我和我妈" (a bare "+1+1" is emphasis: one)
        return RelayIntent("join", q) if 0 < q <= 999 else NONE
    for pat in _JOIN_PATTERNS:
        m = pat.search(t)
        if m and not questionish:
            nums = [g for g in m.groups() if g and (g.isdigit() or all(c in CN_NUM for c in g))]
            q = _num(nums[0] if nums else None)
            more = _MORE.search(t, m.end())
            if more:  # "我要1组 再帮我闺蜜拍1组": one message, two sign-ups
                q += _num(more.group(3))  # group 2 is the verb inside 帮我…要
            return RelayIntent("join", q) if 0 < q <= 999 else NONE
    if questionish:
        return NONE
    if _SAME_AS_ABOVE.match(t):
        return RelayIntent("join", 1)
    bare = _BARE_COUNT.match(t)
    if bare:
        return RelayIntent("join", _num(bare.group(1)[0]))
    visits = [c for c in clauses if re.fullmatch(NUM + r"次", _clean(c))]
    if visits and len(clauses) <= 5 and not _QUESTION.search(t) and not re.search(r"不|没|别|说了|每|半年|一年", t):
        return RelayIntent("join", _num(re.match(NUM, _clean(visits[0])).group(1)))
    times = _SERVICE_TIMES.match(re.split(r"[，,。.!！]", t)[0]) or _SERVICE_TIMES.match(clauses[0] if clauses else "") \
        or (_MORE_TIMES.search(t) if not _QUESTION.search(t) and not re.search(r"不|没|别", t) else None)
    if times and not _ANNOUNCE.search(t):
        return RelayIntent("join", _num(times.group(1)))  # "Luna 两次", "jiu jiu 1 ci": visits of a service card
    variant = _VARIANT_COUNT.match(t) or _LATIN_VARIANT_COUNT.match(spaced or "")
    if variant and not _ANNOUNCE.search(t):
        return RelayIntent("join", int(variant.group(1)))  # "黑1", "茶色也来1", "AirPods 1"
    item = re.sub(r"^(那就|那)(?=[^\d一壹两俩仨二贰三叁四五六七八九十])", "", t)  # "那就黑色2XL一件"
    short = _SHORT_ITEM.match(item)
    if short and not _ANNOUNCE.search(t):
        q = line_quantity(item)  # "白m两件", "去屑款一份", "那行一箱鸡肉的", "黑色l一件", "L一包 XL一包"
        return RelayIntent("join", q) if 0 < q <= 999 else NONE
    if _JOIN_PLAIN.match(t) and (len(t) <= 12 or _JOIN_EAGER.match(t)) and not re.search(r"没人|没有|说了|不理", t):
        return RelayIntent("join", 1)
    if _JOIN_ANY.search(t) and len(t) <= 16:
        return RelayIntent("join", 1)
    got = _item_clauses(clauses)
    if got.action == "none" and spaced and not _ANNOUNCE.search(t) and not _TENTATIVE.search(t):
        listed, pairs = inventory(spaced)
        if pairs >= 1 and 0 < listed <= 20:
            return RelayIntent("join", listed)  # "ICU 护手霜3", "C款 1", "43码 1"
    if got.action == "none" and re.search(r"(报上|那我要了|^我要了)$", t):
        return RelayIntent("join", 1)  # "那中 给我报上": no count, one
    return got


# Orders written as an inventory, counts without units: an item and its count per clause
# ("螺蛳粉5", "次卡3"), or an item clause followed by one that is only its count ("红色120 1", "C款 1").
# Counts with units are the item clauses' (_item_clauses); tallies, money and shares are left alone.
_INV_ITEM_COUNT = re.compile(r"^(?P<item>[\u4e00-\u9fffa-z][\u4e00-\u9fffa-z0-9.\-]{0,9}?)(?:[x×*]|(?<=[\u4e00-\u9fff]))(?<![\d.\-])(?P<n>\d{1,2})$")
_INV_COUNT = re.compile(r"^[x×*]?(?P<n>\d{1,2})(?:" + UNIT + r")?$|^(?P<cn>[一两二三四五六七八九十俩]{1,2})" + UNIT + r"$")
_INV_LEAD = re.compile(r"^(ok|好的?|行|嗯|那就|那|我要|要|来|我)+")
_INV_NOT_ITEM = re.compile(r"[点号月日周天岁度楼栋层室围]$|(圈口|尺码|身高|体重|码数|尾号|手机)$|^(第|周|礼拜|星期)")
_INV_NOT_ORDER = re.compile(r"一共|总共|合计|共计|一人|每人|dollar|块|元|钱|[¥￥$]|分钟|小时|change|still|改|换")


def inventory(spaced: str) -> tuple[int, int]:
    """(units, item-count pairs) of a message written as a list of items and bare counts."""
    if _INV_NOT_ORDER.search(spaced):
        return 0, 0
    total = pairs = 0
    pending = False
    previous = last = ""
    for c in re.split(r"[，,、;；]+", spaced):
        c = _INV_LEAD.sub("", re.sub(r"[^\w+\-.×*]+$", "", c)) if c else c
        if not c:
            continue
        previous, last = last, c
        m = _INV_ITEM_COUNT.match(c) or re.match(r"^(?P<item>[a-z])(?P<n>\d)$", c)  # "A2 B1": styles A and B
        if m and not _INV_NOT_ITEM.search(m.group("item")):
            total, pairs, pending = total + int(m.group("n")), pairs + 1, False
            continue
        m = _INV_COUNT.match(c)
        if m and not pending and previous and (re.fullmatch(r"[a-e]", previous) or
                                               (re.fullmatch(r"[a-z]{2,12}", previous) and not m.group(0).isdigit())):
            pending = True
        if m and pending and m.group(0).isdigit() and int(m.group(0)) > 10:
            pending = False  # "吴浩 23 XL 一套": a shirt number beside a name, not 23 of them
        elif m and pending:
            total, pairs, pending = total + _num(m.group("n") or m.group("cn")), pairs + 1, False
        elif m:
            return 0, 0  # a count with no item before it: not an inventory
        else:
            pending = len(c) <= 12 and not _INV_NOT_ITEM.search(c) and bool(re.search(r"[\u4e00-\u9fff]", c))
    return (total, pairs) if 0 < total <= 999 else (0, 0)


# A clause that is only a quantity ("一箱", "那两罐", "2盒"): with a name, a building or a remark
# beside it ("8栋刘 一箱", "3座陳太 2盒 唔該", "老公同意了 两罐") it is the sign-up.
_PURE_QUANTITY = re.compile(r"^(那|那就|我|就|还是|先)?([a-z]{1,3}码?|\d{2,3}码)?" + NUM + UNIT + r"$")
_ITEM_CLAUSE = re.compile(r"^(?!.*(?:一顿|一人|每人|一次|一天|一个月))[\u4e00-\u9fffa-z]{1,6}?(?:(?P<n>" + NUM[1:-1] + r")" + UNIT + r"|[x×*](?P<x>\d{1,2})|(?P<b>俩|仨)"
                          r"|(?<=[\u4e00-\u9fff])(?<!接龙|报名)(?<![接加报要来围口码号高重斤岁度长宽寸])(?P<x2>\d))$")  # "太陽鏡2" beside "鏡架5副"
_TENTATIVE = re.compile(r"不|没|别|太多|太少|问问|寻思|考虑|看看|再说|够吗|多了|少了|买咗|买了|买过|已经|删|有就|有的话")


def _variant_name(clause: str) -> bool:
    """Whether an item clause names what it counts ("我要裙子一条", "太阳镜2"), not only restates a
    sign-up ("我要两份", "接龙2份")."""
    name = re.split(r"[x×*]?\d|" + NUM, clause, maxsplit=1)[0]
    name = re.sub(r"(来|要|拿|整)$", "", re.sub(r"^(那|那就)?(我要|我来|给我来|来|要)", "", name))
    return bool(name) and not re.search(r"要|接龙|报名|报|来|就是|我|塞", name)


def _item_clauses(clauses: list[str], at_least: int = 1, variants_only: bool = False) -> RelayIntent:
    """`variants_only`: every item names a variant ("清香2罐"), none restates a sign-up ("我要两份 接龙2份")."""
    cleaned = [c for c in (re.sub(r"[^\w+\-]+$", "", _clean(c)) for c in clauses) if c]  # "两罐🙏"
    if not 1 <= len(cleaned) <= 6 or sum(map(len, cleaned)) > 40:
        return NONE
    if any(_TENTATIVE.search(c) or _QUESTION.search(c) or re.search(r"一共|总共|共计|合计|^共", c) for c in cleaned):
        return NONE  # doubts, questions and tallies ("潘老师1 阿毛3 一共4盒")
    matched = [(c, _ITEM_CLAUSE.match(c)) for c in cleaned]
    items = [m for _c, m in matched if m]
    rest = [c for c, m in matched if not m]
    if at_least > 1 and len(items) < at_least:
        return NONE
    if variants_only and any(not _variant_name(m.string) for m in items):
        return NONE
    # One clause per item, the others a name, a room or a remark with no count in them:
    # "五花2斤 糟辣椒3瓶", "7-601 布洛芬1瓶 口罩1盒", "白色 x1，蓝色 x1", "27号院 挂机俩".
    if items and not any(re.search(NUM + UNIT, c) or (re.search(r"给|帮|带", c) and not (len(items) >= 2 and re.fullmatch(r"(给|帮|替)(我|俺)?[\u4e00-\u9fff]{1,3}", c)))
                           for c in rest) \
            and (len(items) > 1 or len(cleaned) > 1):
        q = sum(_num(m.group("n") or m.group("x") or m.group("b") or m.group("x2")) for m in items)
        return RelayIntent("join", q) if 0 < q <= 999 else NONE
    if len(cleaned) < 2:
        return NONE
    found = [m for m in map(_PURE_QUANTITY.match, cleaned) if m]
    if len(found) != 1:
        return NONE
    q = _num(found[0].group(3))
    return RelayIntent("join", q) if 0 < q <= 999 else NONE


_EXAMPLE_LINE = re.compile(r"示例|样例|範例|范例|^例[:：]|^格式[:：]|^例如")


def parse_native_list(text: str) -> tuple[str, list[str]] | None:
    """`#接龙` messages → (header, numbered line contents), or None when the text is not one."""
    stripped = text.strip()
    if not stripped.lstrip("#＃").startswith(("接龙", "接龍")) or stripped[:1] not in "#＃":
        return None
    header, lines = [], []
    for raw in stripped.splitlines()[1:]:
        m = _LIST_LINE.match(raw)
        if m and _EXAMPLE_LINE.search(m.group(2)):
            continue  # "1. 小美 示例 M": the organiser's example of how to write a line
        if m:
            lines.append(m.group(2))
        elif not lines and raw.strip():
            header.append(raw.strip())
    return "\n".join(header), lines


def new_lines(message_lines: list[str], seen: Iterable[str] | Counter) -> list[str]:
    """Lines of this message not seen before (multiset difference; numbering ignored)."""
    left = Counter(seen) if isinstance(seen, Counter) else Counter(_clean(l) for l in seen)
    out = []
    for line in message_lines:
        key = _clean(line)
        if left[key] > 0:
            left[key] -= 1
        else:
            out.append(line)
    return out


def line_quantity(line: str, name: str = "") -> int:
    t = _clean(line)
    if name and t.startswith(_clean(name)):
        t = t[len(_clean(name)):]  # 赵六 两盒: the 六 is the name's, not a number
    # "2张（两只狗）": the parenthesis explains, it does not add; a separator stays ("Mate60(UV膜) 1张" is 1)
    t = re.sub(r"[(（【\[].*?([)）】\]]|$)", "，", t).strip("，")
    unmeasured = re.sub(r"\d+(\.\d+)?(kg|公斤|g|ml|l|cm|mm|寸|码|号|斤装)(?![a-z])", "", t)
    if unmeasured != t and re.search(NUM + UNIT, unmeasured):
        t = unmeasured  # "中型15kg 1袋" is one bag
    units = re.findall(NUM + UNIT, t)
    if len(units) > 2 and _num(units[0][0]) == sum(_num(n) for n, _u in units[1:]):
        return _num(units[0][0])  # "2只 一只整只 一只斩件": the count, then how each is wanted
    if len(units) > 1 and len({u for _n, u in units}) == 1 and not re.search(r"给|帮|带|其中|里面", t):
        return sum(_num(n) for n, _u in units)  # "卡其L 1件 白S 1件" (not "两张 一张给我儿子", "2张 两台车")
    m = re.search(NUM + UNIT, t) or re.search(r"[x×*+]" + NUM, t) or re.search(r"(?<![\d.\-])(\d{1,2})$", t) \
        or re.search(r"(俩|仨)$", t) or re.search(r"(?<![\d.])(\d{1,2}|[一两二三四五六七八九十]{1,3})(g|克)$", t)  # gold beans sell by the gram
    return _num(m.group(1)) if m else 1


@dataclass(frozen=True)
class Credit:
    """One change a native-list line makes, credited to the name written on it."""

    action: str      # join | cancel
    quantity: int    # for cancel, 0 means "everything"
    name: str        # the name on the line; "" when it is the sender's own line
    line: str
    total: int | None = None  # the units the line says the person now holds, when it restates them
    answered: bool = True     # False: another member's line above the sender's own (copied, not added by them)


_LINE_CANCEL = re.compile(r"取消|不要了|退出|退了|撤销|撤回|^-\d+(?![.\d])|\s-\d+(?![.\d])")
_NAME_TAIL = re.compile(r"([+＋x×*]\d.*|\d{1,3}" + UNIT + r".*|[一壹两俩二贰三叁四五六七八九十]{1,3}" + UNIT + r".*"
                        r"|(取消|不要了|退出|撤销|撤回).*)$")


def line_name(line: str) -> str:
    """'王五 2份' → '王五', '小李+1' → '小李', '阿花(帮我妈接)3盒' → '阿花', '四只猫的铲屎官 3箱' → itself."""
    t = unicodedata.normalize("NFKC", line).strip()
    parts = re.split(r"\s+", t, maxsplit=1)
    t = re.sub(r"[(（\[【].*$", "", parts[0])
    if len(parts) > 1 and t:
        return t.strip(" ,，:：-")  # written "name quantity": the first word is the name, numerals and all
    return _NAME_TAIL.sub("", t).strip(" ,，:：-")


def same_person(a: str, b: str) -> bool:
    # separators differ between a display name and a list line ("雁塔-老马" writes "雁塔 老马 2盒")
    a, b = re.sub(r"[\W_]+", "", _clean(a)), re.sub(r"[\W_]+", "", _clean(b))
    if not a or not b:
        return False
    return a == b or (min(len(a), len(b)) >= 2 and (a in b or b in a))


def names_person(line_name_: str, person: str) -> bool:
    """Whether a list line's name stands for `person` (a display name): the same name, or one
    inside the other (Jerry / 途观-Jerry, 11栋王奶奶 / 王奶奶)."""
    return same_person(line_name_, person)


def held_by(name: str, held: dict[str, int], listed: frozenset[str] = frozenset()) -> tuple[str, int] | None:
    """The entry (clean name, units) a list line's name refers to, exact names first; a loose match
    skips names that have their own line in the list (老李媳妇 is not 老李 when 老李 is listed)."""
    key = _clean(name)
    if key in held:
        return key, held[key]
    return next(((k, q) for k, q in held.items() if k not in listed and names_person(name, k)), None)


def list_credits(lines: list[str], seen: Counter, sender_name: str = "",
                 held: dict[str, int] | None = None, withdrawn: Iterable[str] = (),
                 organiser: bool = False) -> list[Credit]:
    """What a native list changes, against the multiset of lines seen in this relay's lists and the
    units each name already holds (`held`: clean display name → units, the sender's included).

    A new line is an addition unless it stands for units the person already holds: their earlier
    line is gone from this list (they edited it), or they signed up by text and this is the first
    list that shows them. Then it states their total, and only the difference is credited.

    `withdrawn`: clean names that cancelled by text. WeChat keeps their line in the list others
    copy, so another member's re-post showing it is stale, not a new sign-up.

    `organiser`: the sender runs the relay; their own line without a count heads the list
    (`without_organiser_heading`)."""
    held = held or {}
    withdrawn = set(withdrawn)
    left = Counter(seen)
    fresh, at = [], []
    for i, line in enumerate(lines):
        key = _clean(line)
        if left[key] > 0:
            left[key] -= 1
        else:
            fresh.append(line)
            at.append(i)
    current = Counter(_clean(l) for l in lines)
    names = [line_name(line) for line in fresh]
    exact_own = any(n and _clean(n) == _clean(sender_name) for n in names)
    listed = frozenset(_clean(line_name(l)) for l in lines)
    # Members append their lines at the end, so the sender added what follows their own line; what
    # precedes it came with the list they copied.
    own_at = next((i for i, l in enumerate(lines) if (n := line_name(l)) and (
        _clean(n) == _clean(sender_name) if exact_own else names_person(n, sender_name))), None) if sender_name else None
    credits = []
    for i, line, name in zip(at, fresh, names):
        own = not name or (_clean(name) == _clean(sender_name) if exact_own else names_person(name, sender_name))
        person = sender_name if own else name
        who = "" if own else name
        entry = held.get(_clean(sender_name)) if own else (held_by(name, held, listed) or (None, None))[1]
        have = entry or 0
        if not own and not have and _clean(name) in withdrawn:
            continue
        answered = own or own_at is None or i > own_at
        earlier = [k for k, c in seen.items() if c > 0 and (names_person(line_name(k), person) if person else False)]
        edited = [k for k in earlier if current[k] < seen[k]]
        restates = bool(edited) or (have > 0 and not earlier)
        if _LINE_CANCEL.search(line):
            credits.append(Credit("cancel", 0, who, line, answered=answered))
            continue
        qty = line_quantity(line, name)
        if qty == 0 and re.search(r"(?<![\d.])0(?![\d.])", _clean(line)):
            if have or edited:
                credits.append(Credit("cancel", 0, who, line, answered=answered))  # "Jerry 0": taken off
        elif 0 < qty <= 999:
            if not restates:
                credits.append(Credit("join", qty, who, line, answered=answered))
            elif qty > have:
                credits.append(Credit("join", qty - have, who, line, total=qty, answered=answered))
            elif qty < have:
                credits.append(Credit("cancel", have - qty, who, line, total=qty, answered=answered))
    if sender_name and not any(not c.name for c in credits):
        # The sender's own line is gone: they removed themselves.
        had = any(names_person(line_name(k), sender_name) for k, c in seen.items() if c > 0)
        kept = any(names_person(line_name(l), sender_name) for l in lines)
        if had and not kept:
            credits.append(Credit("cancel", 0, "", ""))
    # The list that opens the relay: nothing seen before and only the organiser's own lines in it (a
    # first list that already holds other people's lines is a re-post the reader came in on).
    opening = not any(seen.values()) and all(not line_name(l) or names_person(line_name(l), sender_name) for l in lines)
    return without_organiser_heading(credits, opening=opening) if organiser else credits


def without_organiser_heading(credits: list[Credit], opening: bool = False) -> list[Credit]:
    """An organiser's own list line heads the list and signs nobody up: in the list that opens the
    relay ("#接龙 … 1. 萍姐 1盒", nothing seen before it) whatever it says, later only without a
    count ("1. 团长阿May", "1. 阿芳 帮街坊代收"). An organiser who wants units of their own writes so
    (_ORGANISER_SELF) or adds a line to a later list. Writers split on the opening line; the
    relay brief (docs/EVALUATION.md) defines the opening list as none."""
    return [c for c in credits if c.name or c.action != "join"
            or (not opening and re.search(r"\d|" + NUM + UNIT, _clean(c.line)))]


def summarise(credits: list[Credit], sender_name: str = "", organiser: bool = False) -> RelayIntent:
    """One answer for a whole message: the units it adds, else a cancellation, else nothing.

    Lines the sender evidently added (their own and those after it) are answered; other members'
    lines copied above theirs are credited to those members, not answered. The organiser writes
    lists for others (a member who can't use the list, the first line to start it): only their
    own line is theirs."""
    if organiser:  # their own line only (list_credits has dropped a count-less heading line)
        credits = [c for c in credits if not c.name]
    mine = [c for c in credits if c.answered]
    if mine:
        credits = mine
    joins = [c for c in credits if c.action == "join"]
    if joins:  # an edited line is answered with the total it now states
        return RelayIntent("join", sum(c.total or c.quantity for c in joins), "\n".join(c.line for c in joins))
    cancels = [c for c in credits if c.action == "cancel"]
    if len(cancels) == 1 and cancels[0].total:
        return RelayIntent("cancel", cancels[0].quantity)  # reduced, not withdrawn
    if cancels:
        return RelayIntent("cancel", 0)
    return NONE


def resolve(intent: RelayIntent, have: int) -> tuple[RelayIntent, RelayIntent]:
    """A text intent against the units the sender holds → (the answer, the ledger change).

    A new total ("改成两份") becomes the join or cancellation that reaches it, answered with the total
    as an edited list line is."""
    if intent.action == "set":
        if intent.quantity > have:
            return RelayIntent("join", intent.quantity), RelayIntent("join", intent.quantity - have)
        if intent.quantity < have:
            change = RelayIntent("cancel", have - intent.quantity if intent.quantity else 0)
            return change, change
        return NONE, NONE
    return intent, intent


def remember_lines(seen: Counter, lines: Iterable[str]) -> dict[str, int]:
    """Fold a list's lines into `seen` (keeping, per line, the most copies any list had);
    returns the keys whose count grew."""
    grown = {}
    for key, n in Counter(_clean(l) for l in lines).items():
        if n > seen[key]:
            seen[key] = n
            grown[key] = n
    return grown


# What an organiser writes that is their own sign-up: first person and a quantity or a sign-up word.
_ORGANISER_SELF = re.compile(r"(我自己|我也|算我|给我自己|我家也|俺也).{0,6}(要|来|报|算|接|留|订|" + NUM + UNIT + ")")


def understand(text: str, canonical_lines: Iterable[str] = (), sender_name: str = "",
               organiser: bool = False) -> RelayIntent:
    """`organiser`: the sender runs the relay (the staff member who opened it, or a staff account).
    Their messages answer, confirm, tally and remind ("对 +1就是一箱", "可以 写+2就行", "收到 给你记上");
    only an explicit sign-up of their own counts."""
    native = parse_native_list(text)
    if native is None:
        if organiser and not _ORGANISER_SELF.search(_clean(text)):
            return NONE
        text = from_pinyin(text)
        t, name = _clean(text), _clean(sender_name)
        if name and len(name) >= 2 and t.startswith(name) and len(t) > len(name):
            t = t[len(name):]  # "栗子 2颗" from 栗子: the sender wrote their own name first
        return _intent_from_text(t, _spaced(text))
    return summarise(list_credits(native[1], Counter(_clean(l) for l in canonical_lines), sender_name,
                                  organiser=organiser), sender_name, organiser)


# Members who type pinyin ("wo yao yi xiang", "qu xiao ba"): the relay words and counts, back in
# characters. Only whole messages in Latin letters are read this way, and only these syllables
# (jiu, ba, qi are left alone: 就/酒/九, 吧/八, 起/七).
_PINYIN = {"wo": "我", "yao": "要", "lai": "来", "gei": "给", "bao": "包",
           "yi": "一", "liang": "两", "er": "二", "san": "三", "si": "四", "wu": "五", "liu": "六", "shi": "十",
           "xiang": "箱", "he": "盒", "fen": "份", "zhang": "张", "tai": "台", "ge": "个", "jian": "件",
           "ping": "瓶", "dai": "袋", "ci": "次", "tao": "套", "jin": "斤", "shuang": "双", "zhi": "支",
           "wei": "位", "ge ren": "个人",
           "qu xiao": "取消", "bu yao le": "不要了", "bu yao": "不要", "jie long": "接龙", "bao ming": "报名"}
_PINYIN_WORD = re.compile(r"\b(" + "|".join(sorted(map(re.escape, _PINYIN), key=len, reverse=True)) + r")\b")
_PINYIN_RELAY = re.compile(r"\b(wo yao|yao|lai|qu xiao|bu yao|jie long|bao ming)\b")


def from_pinyin(text: str) -> str:
    t = text.strip().lower()
    if not t or not re.fullmatch(r"[a-z0-9 ,.!?~'+\-]+", t) or not (
            _PINYIN_RELAY.search(t) or re.search(r"\b\d{1,2} (ping|tai|fen|wei|ge|he|xiang|zhang|jian|dai|bao|tao|jin)\b", t)):
        return text
    t = _PINYIN_WORD.sub(lambda m: _PINYIN[m.group(1)], t)
    t = re.sub(r"(?<=\d) (?=[\u4e00-\u9fff])", "", t)  # "1 ping" → "1瓶"
    return re.sub(r"(?<=[\u4e00-\u9fff]) (?=[\u4e00-\u9fff])", "", t)  # one word again: "我要一张"


def _spaced(text: str) -> str:
    """The cleaned text with whitespace kept as a separator (for telling '+1 几点到' from '怎么+1')."""
    return re.sub(r"\s+", "，", _t2s().convert(unicodedata.normalize("NFKC", text)).lower().strip())


_PRICED_CALL = re.compile(r"(接龙|接龍|报名|报.?数|group ?buy|拼团|团购).*(\d{2,}|百|千)|(\d{2,}|百|千).*(接龙|接龍|报名|报数|group ?buy)")


def opens_relay(text: str) -> bool:
    """Whether a thread's first message is an organiser's announcement (a list, or a call to sign up
    with a price or the usual notice words), not a member's question or sign-up."""
    if parse_native_list(text) is not None:
        return True
    t = _clean(text)
    if re.search(r"(吗|么|呢|\?|？)$", t):
        return False
    return bool(_ANNOUNCE.search(t) or _PRICED_CALL.search(t))


class RelayReader:
    """Reads one relay's group messages in order, remembering every list line it has seen and the
    units each name holds (what the ledger knows in the service)."""

    def __init__(self, reviewer=None) -> None:
        self.seen: Counter = Counter()
        self.held: dict[str, int] = {}
        self.withdrawn: set[str] = set()
        self.organiser: str | None = None  # who posted the opening announcement
        self.reviewer = reviewer            # bot/relay/review.py: a learned second reading of texts
        self.last_reading = None            # the last text message as the reviewer saw it (for training)

    def read(self, text: str, sender_name: str = "") -> RelayIntent:
        who = _clean(sender_name)
        if self.organiser is None:  # the opening post announces the relay, unless it is itself a sign-up
            self.organiser = who if opens_relay(text) else ""
        organiser = bool(who) and who == self.organiser
        native = parse_native_list(text)
        if native is None:
            from bot.relay.review import Reading, needs_review

            held = self.held.get(who, 0)
            answer, change = resolve(understand(text, sender_name=sender_name, organiser=organiser), held)
            self.last_reading = Reading(text, answer, held, organiser)
            if self.reviewer is not None and needs_review(text):
                reviewed = self.reviewer.review(self.last_reading)
                if reviewed != answer:
                    answer = change = reviewed
            self._apply(who, change.action, change.quantity)
            if change.action == "cancel" and who not in self.held:
                self.withdrawn.add(who)  # as the ledger: added to only (see RelayLedger.mark_withdrawn)
            return answer
        self.last_reading = None
        credits = list_credits(native[1], self.seen, sender_name, self.held, self.withdrawn, organiser)
        remember_lines(self.seen, native[1])
        for c in credits:
            self._apply(_clean(c.name or sender_name), c.action, c.quantity)
        return summarise(credits, sender_name, organiser)

    def _apply(self, who: str, action: str, quantity: int) -> None:
        if action == "join":
            self.held[who] = self.held.get(who, 0) + quantity
        elif action == "cancel":
            left = 0 if quantity == 0 else self.held.get(who, 0) - quantity
            if left > 0:
                self.held[who] = left
            else:
                self.held.pop(who, None)
