"""Staff command to open a relay from the app: `开团 大闸蟹 50份 每人限2 今晚20点截止 群wrAbc123`."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from bot.relay.parse import CN_NUM

_CN = r"[一两二三四五六七八九]?十[一二三四五六七八九]?|[一两二三四五六七八九]"
_STOCK = re.compile(r"(\d+|" + _CN + r")\s*(份|个|盒|件|箱|斤|只|套|袋|瓶|组|单)")
_LIMIT = re.compile(r"(每人|限购|每人限)\s*限?\s*(\d+|" + _CN + ")")
_CHAT = re.compile(r"群\s*[:：]?\s*([A-Za-z0-9_\-]{6,64})")
_TIME = re.compile(r"(今天|今晚|明天|明晚)?\s*(\d{1,2})\s*[点:：]\s*(\d{1,2})?\s*分?\s*(截止|结束)")


@dataclass(frozen=True)
class OpenCommand:
    title: str
    stock: int
    per_user_limit: int
    ends_at: datetime | None
    chat_id: str | None


def _n(tok: str) -> int:
    """'50' → 50, '二十' → 20, '十五' → 15, '两' → 2."""
    if tok.isdigit():
        return int(tok)
    if "十" in tok:
        tens, _, ones = tok.partition("十")
        return (CN_NUM.get(tens, 1) if tens else 1) * 10 + (CN_NUM.get(ones, 0) if ones else 0)
    return CN_NUM.get(tok, 0)


def parse_open_command(text: str, now: datetime, tz: tzinfo) -> OpenCommand | None:
    t = text.strip()
    if not t.startswith(("开团", "开接龙")):
        return None
    body = t[2:] if t.startswith("开团") else t[3:]
    stock_m = _STOCK.search(body)
    if not stock_m:
        return None
    limit_m = _LIMIT.search(body)
    chat_m = _CHAT.search(body)
    ends_at = None
    time_m = _TIME.search(body)
    if time_m:
        day, hour, minute = time_m.group(1) or "今天", int(time_m.group(2)), int(time_m.group(3) or 0)
        if day in ("今晚", "明晚") and hour < 12:
            hour += 12
        local_now = now.astimezone(tz)
        ends_at = local_now.replace(hour=hour % 24, minute=minute % 60, second=0, microsecond=0)
        if day.startswith("明"):
            ends_at += timedelta(days=1)
    title = body
    for m in (stock_m, limit_m, chat_m, time_m):
        if m:
            title = title.replace(m.group(0), " ")
    title = re.sub(r"\s+", " ", title).strip(" ，,") or "接龙"
    return OpenCommand(title[:100], _n(stock_m.group(1)), _n(limit_m.group(2)) if limit_m else 1, ends_at,
                       chat_m.group(1) if chat_m else None)
