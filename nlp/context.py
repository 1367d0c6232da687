"""Context rules that keep a lexicon word from firing where it means something innocent.

- a Latin term inside a longer Latin word (sb in usb, nb in nba);
- a short term inside a longer everyday word (滚 in 滚筒, 贱 in 贱卖, 杀 in 杀菌): a hit of one or
  two characters is dropped when a longer word around it is in jieba's dictionary and is not itself
  a lexicon word (chat words the dictionary lacks, such as 靠谱, go in allow.txt);
- self-deprecation: an insult aimed at 我 with nobody else named (笨死我了, 我真是个猪脑子);
- negation: a diversion or advertising-law phrase that a clause warns against or denies
  (请勿相信任何私下转账, 我们不敢说是最低价).
- a one-character insult used as an ordinary verb (靠马路的房间, 滚动): it counts only standing alone
  or beside a pronoun or particle (靠！, 你滚, 真蠢);
- a homophone or a short insult that cuts through a dictionary word of the sentence (电池时间 has no
  吃屎 in it; 妈妈的 has no 妈的);
- a homophone that is itself an ordinary word (垃圾 read as 辣鸡, 纸张 as 智障, 码的 as 妈的) is not
  an evasion for insults or advertising claims (for diversion it is: 威信 for 微信).
- a phrase quoted to talk about it ('包治百病'的广告), refused right after it (私下交易我这边不接的),
  a superlative qualified (最好的之一), someone else calling (快递员给我打电话), health talk
  (有病还是要看医生), and a wait that is service (你等着哈 我查下库存);
Only lexicon hits are subject to these; detectors (phone numbers, IDs, handles) are not.
"""
from __future__ import annotations

import re
from functools import lru_cache

from nlp.normalize import Normalized

_OTHER_PERSON = re.compile(r"你|您|他|她|它|tm|ta|店|客服|老板|导购|你们|这人|那人|垃圾店")
# Cues that a clause warns against or denies what follows ("不要在这说了加我微信" is no warning,
# so a bare 不要/别/不 is not a cue).
_NEGATION = re.compile(r"(请勿|切勿|谨防|严禁|禁止|不会|绝不|从不|从来不|不可以|不能|不得|警惕|谨慎|拒绝|不支持|不接受|"
                       r"不存在|没有|并非|不是|防止|以防|避免|不敢|谈不上|不提供|不要相信|不要轻信|别相信|别信|别轻信|"
                       r"不要私下|别私下|不要向|不要给|不要添加|不要加|别加|提防|小心|不要听信|别听信|勿信|不要信)[^，。！？,.!?;；\s]{0,8}$")
_BEFORE_ALONE = set("你您他她它真太好很个就是死")
_AFTER_ALONE = set("了啊吧呀蛋死你他她的得开货人")
# A bare negation right before the phrase (不要私下转给任何人, 没法保证十年, 不搞最低价).
_ASKS = re.compile(r"能不能|可不可以|可不可|要不要|是不是|行不行|会不会|有没有|好不好|肯不肯|愿不愿意|方不方便"
                   r"|不过|不然|不管|不少|不错|不久|不如|不断|不仅|不只|不光|要不然")  # and words that only start with 不
# 能不能/可不可以/有没有 ask, they do not deny: the 不/没 of an A-not-A question is no negation.
_NEGATION_NEAR = re.compile(r"((?<![能可要是行会有])不|(?<!有)没|别|勿|非|无法|没法|不可能|不搞|不宣传|不具备|不做|不承诺|不敢|冇|唔|未曾|从未)"
                            r"[^，。！？,.!?;；\s]{0,4}$")
# Refused right after the phrase (私下交易我这边不接的, 个人号不方便给的, 私人微信冇嘅).
_REFUSED_AFTER = re.compile(r"[^，。！？,.!?;；]{0,6}?(不接|不方便|不能给|不提供|不给|不加|不可以|不行|不允许|不做|没有的|冇嘅|冇㗎|唔得|唔方便)")
# The phrase quoted to talk about it ('包治百病'的广告, 唔會講「根治」).
_QUOTED = re.compile(r"^[^\'\"“”‘’「」『』《》，。]{0,3}[\'\"”’」』》]")
_QUOTE_OPEN = re.compile(r"[\'\"“‘「『《][^\'\"“”‘’「」『』《》，。]{0,3}$")
_MENTION = re.compile(r"说|讲|講|話|话|广告|說法|说法|宣传|这种|这个词|字眼|不是|没|冇|唔|别|不会|不能")
# A superlative qualified into an ordinary claim (最好的之一).
_QUALIFIED_AFTER = re.compile(r"^.{0,2}之一")
# Somebody else calling the customer (快递员给我打电话): not a request to move off the channel.
_THIRD_PARTY_CALLER = re.compile(r"(快递|快递员|小哥|师傅|骑手|司机|物流|客服|他|她|老公|老婆|我妈|我爸|同事|朋友)[^，。！？,.!?]{0,4}$")
# The phone as a thing (我的手机壳破了, 我的手机摔了), not a number to call.
_DEVICE_AFTER = re.compile(r"^(壳|殼|膜|套|屏|支架|坏|壞|丢|摔|没电|沒電|充电|卡了|碎|进水|死机|黑屏|掉了|袋|封)")
# Red envelopes as goods (红包袋, 利是封), not money sent privately.
_RED_PACKET_GOODS = re.compile(r"红包(袋|封|壳|套)|利是封|利事封")
# The customer's own wallet or account named to pay here (我微信钱包里还有钱, 我的微信号就是这个).
_OWN_ACCOUNT_AFTER = re.compile(r"^(号)?(钱包|零钱|支付|余额|里的钱|里还有|付款|付吧|付可以|绑的|绑定|就是这个|就是现在这个)")
# Health talk, not an insult (有病还是要看医生).
_HEALTH = re.compile(r"医生|医院|就医|看病|治病|吃药|药物|症状|保健品")
# A wait that is service (你等着哈 我查下库存), not a threat.
_BENIGN_WAIT = re.compile(r"^(哈|啊|呀|哦|噢|一下|下|会儿|一会|片刻)|^[^，。！？,.!?]{0,2}(我|马上)(查|看|问|找|去|帮|给)")
# A clause that names the phrase to deny it (说能根治的都是骗人的, 百分百隔热是不可能的).
_DENIED_AFTER = re.compile(r".{0,8}?(是骗人的|都是骗|是骗子|是假的|不可信|别信|都别信|不可能|不存在|不靠谱|是违法的|违规"
                           r"|还得去|得去医院|要去医院|需要去医院|还是要去|建议就医|建议去医院)")
# Whole-message frames: a warning against off-channel dealing, or a disclaimer of a banned claim.
# Staff who divert a customer do not tell them to report it.
_WARNING = re.compile(r"冒充|别上当|谨防|认准|举报|投诉|请勿|切勿|不要相信|别相信|别信|听信|诈骗|官方小程序|官方渠道|只走|"
                      r"以官方|只有这一个|不是我们的人|一律|小程序下单|禁止|移出群|踢出|是不是骗子|是骗子吗|不是官方|冒用|统一回复|保护隐私")
_DISCLAIMER = re.compile(r"广告法|不敢承诺|不能承诺|不承诺|不会跟你讲|不跟您讲|不跟你讲|不乱说|不能这么说|没这么说|"
                         r"客人自己说|顾客说|别信|不能说|不敢说|不会说|不宣传|不保证|不能保证|无法保证|没法保证|因人而异|"
                         r"投资需谨慎|投资请谨慎|唔会同你讲|唔会讲|唔敢讲|唔保证|不这么宣传|不这样宣传|不这么说|说法我们不用|这个说法我们不|"
                         r"网上的说法|不敢打包票|不能打包票|不打包票|不能代替药物|不能替代药物|不代替药物|统一回复")
# Advice to see a doctor (要配合医生治疗), not a claim that the product treats.
_MEDICAL_ADVICE = re.compile(r"(医生|医院|就医|配合|遵医嘱|醫生|醫院)[^，。！？,.!?]{0,3}$")
# For the learned check only the explicit warnings: its diversions themselves name 官方渠道 and 小程序.
_EXPLICIT_WARNING = re.compile(r"谨防|别上当|冒充|诈骗|不要相信|别相信|别信|请勿|切勿|禁止|是不是骗子|是骗子吗|举报")
# A number that is not a person's: a shop line or hotline, an order, parcel, invoice, tax or chip number.
_PUBLIC_NUMBER = re.compile(r"(座机|店里电话|门店电话|客服|热线|服务台|服务中心|总机|订单|单号|快递|运单|物流|税号|芯片|"
                            r"编号|会员号|工号|型号|序列号|流水|批号|sn|imei)[^\d]{0,4}$")
_PERSONAL_LABEL = re.compile(r"身份证|手机|银行卡|卡号|护照|住址|家里")
_HOTLINE = re.compile(r"^(400|800)")
# A homophone spelt entirely with the commonest characters is a sentence, not an evasion (发你吗 ≠ 尼玛).
_COMMON_CHARS = set("你您我他她它的得地了吗嘛么呢吧啊呀是在有和就也都还这那个骂码去")
# Accusations that are abuse only when aimed at the person or shop addressed.
_DIRECTED_ONLY = {"骗子"}
_SECOND_PERSON = re.compile(r"你|您|客服|店|老板|导购|你们")
# Someone described as a fraudster in a warning (都是骗子, 有骗子冒充), not the person addressed.
_FRAUD_WARNING = re.compile(r"(都|就)是骗子|有骗子|骗子冒充|冒充|温馨提示|提醒|注意|千万别信|谨防")
# A simile about oneself (像个傻子一样转了三圈).
_SIMILE_BEFORE = re.compile(r"(像个|像|跟个|好像个|活像)$")
_SIMILE_AFTER = re.compile(r"^(一样|似的|一般)")
# What a material or content is made of (百分之百羊毛), not an efficacy claim.
_COMPOSITION_AFTER = re.compile(r"^的?(纯)?(羊毛|羊绒|棉|纯棉|蚕丝|真丝|桑蚕丝|牛皮|真皮|纯金|足金|纯银|纯铜|果汁|原浆|鲜榨|进口|正品)")
# A public account that is not a person's (医保个人账户, 公积金个人账户).
_PUBLIC_ACCOUNT_BEFORE = re.compile(r"(医保|社保|公积金|养老金|个税)$")
_ENGLISH_NEGATION_BEFORE = re.compile(r"(don't|do not|dont|never|not|no|won't|cannot|can't|pls don't|please don't)\s+(\w+\s+){0,2}$", re.I)
_ENGLISH_SELF_BEFORE = re.compile(r"(i'm|i am|im|me|myself|my own)\s+(\w+\s+){0,2}$", re.I)
_CLAUSE = re.compile(r"[，。！？,.!?;；\n\s]")


def model_hit_innocent(text: str, norm: str, category: str, start: int, end: int) -> bool:
    """The learned check's hit (original offsets; `norm` the message's normalised text) in a frame
    that makes it innocent: a warning or
    disclaimer, or, for personal data, only public or business numbers. (Not a negation before it:
    the claims themselves are full of them — 没有之一, 无副作用, 没有更低的了.)"""
    if category == "diversion" and _EXPLICIT_WARNING.search(text):
        return True
    if category == "ad_law" and (_DISCLAIMER.search(text) or _DISCLAIMER.search(norm)):
        return True
    if category == "privacy":
        runs = list(re.finditer(r"[\dA-Za-z-]*\d[\dA-Za-z-]{5,}", text[start:end]))
        def public(m) -> bool:
            before = text[max(0, start + m.start() - 10):start + m.start()].lower()
            return not _PERSONAL_LABEL.search(before) and bool(_PUBLIC_NUMBER.search(before) or _HOTLINE.match(m.group()))

        return bool(runs) and all(public(m) for m in runs)
    return False


MIN_WORD_FREQ = 3  # jieba dictionary counts below this are mostly noise


@lru_cache(maxsize=1)
def _dictionary() -> dict[str, int]:
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba.dt.FREQ


class HitContext:
    """Lazily computed facts about one message, shared by the checks of all its hits."""

    def __init__(self, text: str, n: Normalized, terms: dict[str, set[str]]) -> None:
        self.text = text
        self.n = n
        self.terms = terms
        self._tokens: list[tuple[int, int, str]] | None = None
        self._breaks: set[int] | None = None

    def breaks(self) -> set[int]:
        """Normalised positions where the original text had whitespace before the character: the
        writer's own word boundary ("侬只戆大 人话听伐懂啊" has no 大人 in it)."""
        if self._breaks is None:
            norm, text = self.n.text, self.n.original
            self._breaks = {i for i in range(1, len(norm))
                            if text[self.n.span(i - 1, i)[1]:self.n.span(i, i + 1)[0]].isspace()}
        return self._breaks

    def tokens(self) -> list[tuple[int, int, str]]:
        if self._tokens is None:
            import jieba

            _dictionary()
            norm, cuts = self.n.text, sorted(self.breaks())
            self._tokens = []
            for lo, hi in zip([0, *cuts], [*cuts, len(norm)]):  # tokenised between the writer's spaces
                self._tokens += [(lo + a, lo + b, w) for w, a, b in jieba.tokenize(norm[lo:hi], HMM=False)]
        return self._tokens

    def cuts_word(self, s: int, e: int, category: str) -> bool:
        for a, b, w in self.tokens():
            if a >= e:
                break
            if b - a > 1 and (a < s < b or a < e < b) and category not in self.terms.get(w, ()):
                return True
        return False

    def inside_word(self, s: int, e: int, category: str) -> bool:
        norm, freq = self.n.text, _dictionary()
        for a in range(max(0, s - 3), s + 1):
            for b in range(e, min(len(norm), a + 4) + 1):
                if (a, b) == (s, e) or b - a <= e - s or any(a < i < b for i in self.breaks()):
                    continue
                w = norm[a:b]
                if freq.get(w, 0) >= MIN_WORD_FREQ and category not in self.terms.get(w, ()):
                    return True
        return False

    def innocent(self, s: int, e: int, category: str, homophone: bool = False) -> bool:
        norm = self.n.text
        word = norm[s:e]
        if homophone and not word.isascii():
            if all(c in _COMMON_CHARS for c in word):
                return True
            if _dictionary().get(word, 0) >= MIN_WORD_FREQ and category not in self.terms.get(word, ()):
                return True  # literal variants (威信 for 微信) are lexicon terms, not homophones
            if self.cuts_word(s, e, category):
                return True
        elif category == "abuse" and e - s <= 3 and not word.isascii() and self.cuts_word(s, e, category):
            return True
        if e - s == 1 and category == "abuse" and not word.isascii() and not self._stands_alone(s, e):
            return True
        if word.isascii():
            os_, _oe = self.n.span(s, e)
            before_raw = self.n.original[max(0, os_ - 30):os_]
            if category in ("diversion", "ad_law") and _ENGLISH_NEGATION_BEFORE.search(before_raw):
                return True  # "we don't use personal PayNow"
            if category == "abuse" and _ENGLISH_SELF_BEFORE.search(before_raw) and not re.search(r"\byou\b|\bu\b", self.text, re.I):
                return True  # "I'm so bodoh"
            if category == "abuse" and len(word) == 1 and not re.fullmatch(r"\W*(你|您|tm)?\s*\w\W*", self.text.lower()):
                return True  # a stray letter (L&Z) is an initial, not an insult
            # Inside a longer Latin word of the original text (sb in usb); the normaliser drops the
            # spaces between words, so "price zui di jia in" must be judged on the original.
            os_, oe = self.n.span(s, e)
            text = self.n.original
            return (os_ > 0 and text[os_ - 1].isascii() and text[os_ - 1].isalpha()) or \
                   (oe < len(text) and text[oe].isascii() and text[oe].isalpha())
        if e - s <= 2 and self.inside_word(s, e, category):
            return True
        if category == "abuse" and not re.search(r"我|你|您|他|她", word) and self._self_directed(s, e):
            return True
        if category in ("diversion", "ad_law") and self._negated(s, e):
            return True
        if category in ("diversion", "ad_law", "abuse") and self._mentioned(s, e):
            return True
        if category == "diversion" and self._third_party_call(s, e, word):
            return True
        if category == "diversion" and _DEVICE_AFTER.match(self._after(s, e)):
            return True
        if category == "diversion" and _OWN_ACCOUNT_AFTER.match(self._after(s, e)) and (
                word.startswith("我") or re.search(r"(我|俺)的?$", self._clause(s, e)[0])):
            return True
        if category == "diversion" and "红包" in word and _RED_PACKET_GOODS.search(self.n.text):
            return True
        if category == "ad_law" and _QUALIFIED_AFTER.match(self._clause(s, e)[1]):
            return True
        if category == "abuse" and word == "有病" and _HEALTH.search(self.text):
            return True
        if category == "abuse" and word.endswith(("等着", "等你")) and (
                _BENIGN_WAIT.search(self._after(s, e)) or re.search(r"快点?来|来哈|不见不散|见哈|马上到", self._after(s, e))):
            return True
        if (category == "diversion" and (_WARNING.search(self.text) or _WARNING.search(self.n.text))) or \
                (category == "ad_law" and (_DISCLAIMER.search(self.text) or _DISCLAIMER.search(self.n.text))):
            return True
        if category == "ad_law" and _MEDICAL_ADVICE.search(self._clause(s, e)[0]):
            return True
        if category == "abuse" and word in _DIRECTED_ONLY:
            before, after = self._clause(s, e)
            if not _SECOND_PERSON.search(before + after) or _FRAUD_WARNING.search(self.text):
                return True
        if category == "abuse":
            before, after = self._clause(s, e)
            simile = _SIMILE_BEFORE.search(before)
            if simile and _SIMILE_AFTER.match(after) and "我" in self.text and \
                    (not before[:simile.start()] or "我" in before[:simile.start()]):
                return True  # about oneself; "柜姐跟个傻子一样" is not
        if category == "ad_law" and _COMPOSITION_AFTER.match(self._after(s, e)):
            return True
        if category == "diversion" and _PUBLIC_ACCOUNT_BEFORE.search(self._clause(s, e)[0]):
            return True
        if category == "privacy" and not any(c.isdigit() or ("a" <= c <= "z") for c in norm[e:e + 4]):
            return True  # 身份证号是/验证码是 without the number itself
        if category == "ad_law" and word[:1] == "最" and e < len(norm) and norm[e].isdigit():
            return True  # a specification (最高1400转, 最大3kg), not a claim
        return False

    def framed(self, s: int, e: int, category: str) -> bool:
        """Innocent because of what the message says around the phrase, not because of its letters."""
        if category in ("diversion", "ad_law") and self._negated(s, e):
            return True
        if category in ("diversion", "ad_law", "abuse") and self._mentioned(s, e):
            return True
        return (category == "diversion" and bool(_WARNING.search(self.text) or _WARNING.search(self.n.text))) or \
            (category == "ad_law" and bool(_DISCLAIMER.search(self.text) or _DISCLAIMER.search(self.n.text)))

    def _stands_alone(self, s: int, e: int) -> bool:
        norm, text = self.n.text, self.n.original
        os_, oe = self.n.span(s, e)
        left_ok = s == 0 or norm[s - 1] in _BEFORE_ALONE or bool(_CLAUSE.match(text[os_ - 1:os_]) or
                                                                  text[os_ - 1:os_] in "!！")
        right_ok = e == len(norm) or norm[e] in _AFTER_ALONE or bool(_CLAUSE.match(text[oe:oe + 1]) or
                                                                      text[oe:oe + 1] in "!！")
        return left_ok and right_ok

    def _clause(self, s: int, e: int) -> tuple[str, str]:
        """The text of the hit's clause before and after it (clauses end at punctuation and spaces)."""
        start, end = self.n.span(s, e)
        before = _CLAUSE.split(self.text[max(0, start - 16):start])[-1]
        after = _CLAUSE.split(self.text[end:end + 16])[0]
        return before, after

    def _self_directed(self, s: int, e: int) -> bool:
        before, after = self._clause(s, e)
        clause = re.sub(r"我这个?人", "我", before + after)  # 我这人有病: the speaker, not 这人
        return ("我" in clause or "自己" in clause) and not _OTHER_PERSON.search(clause)

    def _negated(self, s: int, e: int) -> bool:
        before, after = self._clause(s, e)
        before = _ASKS.sub("", before)  # 能不能/有没有 ask, they do not deny
        return bool(_NEGATION.search(before) or _NEGATION_NEAR.search(before) or _DENIED_AFTER.match(after) or
                    _REFUSED_AFTER.match(self._after(s, e)))

    def _after(self, s: int, e: int) -> str:
        """Up to 16 characters of the original text after the hit (across spaces, not sentences)."""
        end = self.n.span(s, e)[1]
        return re.split(r"[。！？!?\n]", self.text[end:end + 16])[0]

    def _mentioned(self, s: int, e: int) -> bool:
        start, end = self.n.span(s, e)
        return bool(_QUOTE_OPEN.search(self.text[max(0, start - 4):start]) and _QUOTED.match(self.text[end:end + 4])
                    and _MENTION.search(self.text))

    def _third_party_call(self, s: int, e: int, word: str) -> bool:
        before, _after = self._clause(s, e)
        return word.startswith("给我") and bool(_THIRD_PARTY_CALLER.search(before))
