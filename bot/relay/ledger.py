"""RelayLedger: the exact, atomic state of a relay.

Check-and-reserve is one Lua call covering stock, the per-user limit, msgid idempotency and the
waitlist; cancellation returns stock and promotes the waitlist in order in the same call. Each
call appends an event (with a per-relay sequence number) to a Redis stream; the caller persists
it to SQL before answering, and the Redis state can be rebuilt from those SQL events when Redis
has lost it. So nothing acknowledged is lost and the sum of confirmed units never exceeds stock.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from bot import keys
from storage.script_batcher import ScriptBatcher

FIELDS = ("meta", "conf", "wait", "waitq", "names", "since", "at", "msg", "ev", "lines")


def relay_keys(relay_id: str) -> list[str]:
    return [keys.relay(relay_id, f) for f in FIELDS]


# Shared Lua prelude: key names and helpers.
_PRELUDE = """
local meta, conf, wait, waitq, names, since, at, msg, ev, lines =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10]
local function num(v) return tonumber(v or '0') or 0 end
local m = redis.call('HMGET', meta, 'stock', 'limit', 'waitlist', 'status', 'total')
if not m[1] then return redis.error_reply('NORELAY') end
local stock, limit, wl, status, total = tonumber(m[1]), tonumber(m[2]), m[3] == '1', m[4], num(m[5])
local changes = {}
local function replayed(msgid)
  if msgid == '' then return nil end
  local prev = redis.call('HGET', msg, msgid)
  if prev then return '{"r":' .. prev .. '}' end
end
local function confirm(who, qty, seq, now)
  local before = num(redis.call('HGET', conf, who))
  redis.call('HINCRBY', conf, who, qty)
  if before == 0 then redis.call('HSET', since, who, seq); redis.call('HSET', at, who, now) end
end
"""

_JOIN = _PRELUDE + """
local sender, name, qty, msgid, now, line = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5], ARGV[6]
local again = replayed(msgid)
if again then return again end
local seq = redis.call('HINCRBY', meta, 'seq', 1)
local have = num(redis.call('HGET', conf, sender))
local waiting = num(redis.call('HGET', wait, sender))
local give, short, res = 0, 0, 'rejected'
if status ~= 'closed' then
  local want = math.min(qty, limit - have - waiting)
  if want > 0 then
    give = math.max(0, math.min(want, stock - total))
    if wl then short = want - give end
    if give > 0 then
      confirm(sender, give, seq, now)
      total = total + give
      redis.call('HSET', meta, 'total', total)
    end
    if short > 0 then
      if waiting == 0 then redis.call('RPUSH', waitq, sender) end
      redis.call('HINCRBY', wait, sender, short)
    end
    if give == want then res = 'confirmed' elseif give > 0 then res = 'partial'
    elseif short > 0 then res = 'waitlisted' end
    if give > 0 or short > 0 then table.insert(changes, {sender, give, short}) end
    if total >= stock and status == 'open' then status = 'sold_out'; redis.call('HSET', meta, 'status', status) end
  end
end
redis.call('HSET', names, sender, name)
if line ~= '' then redis.call('HINCRBY', lines, line, 1) end
local response = cjson.encode({action = 'join', quantity = qty, status = res,
  confirmed_quantity = have + give, remaining = stock - total})
if msgid ~= '' then redis.call('HSET', msg, msgid, response) end
local event = cjson.encode({seq = seq, kind = 'join', sender = sender, name = name,
  msgid = msgid, changes = changes, response = cjson.decode(response), line = line, at = now,
  status = status})
redis.call('XADD', ev, '*', 'e', event)
return '{"r":' .. response .. ',"e":' .. event .. '}'
"""

_CANCEL = _PRELUDE + """
local sender, name, qty, msgid, now = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local again = replayed(msgid)
if again then return again end
local seq = redis.call('HINCRBY', meta, 'seq', 1)
local have = num(redis.call('HGET', conf, sender))
local waiting = num(redis.call('HGET', wait, sender))
local res, cw, cc = 'ignored', 0, 0
if status == 'closed' then
  res = 'rejected'
else
  local todo = qty
  if todo <= 0 then todo = have + waiting end
  -- Waitlisted units go first: a customer trimming a sign-up keeps what is confirmed.
  cw = math.min(todo, waiting)
  cc = math.min(todo - cw, have)
  if cw > 0 then
    if waiting - cw == 0 then redis.call('HDEL', wait, sender); redis.call('LREM', waitq, 0, sender)
    else redis.call('HINCRBY', wait, sender, -cw) end
  end
  if cc > 0 then
    if have - cc == 0 then redis.call('HDEL', conf, sender); redis.call('HDEL', since, sender); redis.call('HDEL', at, sender)
    else redis.call('HINCRBY', conf, sender, -cc) end
    total = total - cc
  end
  if cw > 0 or cc > 0 then
    res = 'cancelled'
    table.insert(changes, {sender, -cc, -cw})
  end
  -- Freed stock goes to the waitlist, in arrival order.
  local free = stock - total
  while free > 0 do
    local head = redis.call('LINDEX', waitq, 0)
    if not head then break end
    local w = num(redis.call('HGET', wait, head))
    local take = math.min(w, free)
    if take > 0 then
      confirm(head, take, seq, now)
      total = total + take
      free = free - take
      table.insert(changes, {head, take, -take})
    end
    if w - take <= 0 then redis.call('LPOP', waitq); redis.call('HDEL', wait, head)
    else redis.call('HINCRBY', wait, head, -take) end
  end
  redis.call('HSET', meta, 'total', total)
  if status == 'sold_out' and total < stock then status = 'open'; redis.call('HSET', meta, 'status', status) end
  if status == 'open' and total >= stock then status = 'sold_out'; redis.call('HSET', meta, 'status', status) end
end
local response = cjson.encode({action = 'cancel', quantity = cw + cc, status = res,
  confirmed_quantity = have - cc, remaining = stock - total})
if msgid ~= '' then redis.call('HSET', msg, msgid, response) end
local event = cjson.encode({seq = seq, kind = 'cancel', sender = sender, name = name,
  msgid = msgid, changes = changes, response = cjson.decode(response), line = '', at = now,
  status = status})
redis.call('XADD', ev, '*', 'e', event)
return '{"r":' .. response .. ',"e":' .. event .. '}'
"""

_CLOSE = _PRELUDE + """
local now = ARGV[1]
if status == 'closed' then return '{}' end
local seq = redis.call('HINCRBY', meta, 'seq', 1)
redis.call('HSET', meta, 'status', 'closed')
local event = cjson.encode({seq = seq, kind = 'close', sender = '', name = '', msgid = '',
  changes = {}, line = '', at = now, status = 'closed'})
redis.call('XADD', ev, '*', 'e', event)
return '{"e":' .. event .. '}'
"""


class RelayMissing(Exception):
    """Redis holds no state for this relay (never created, or lost with a Redis restart)."""


@dataclass(frozen=True)
class RelaySnapshot:
    status: str
    stock: int
    total: int
    entries: list[dict]
    waitlist: list[dict]
    lines: list[str]

    @property
    def remaining(self) -> int:
        return self.stock - self.total


class RelayLedger:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._join = ScriptBatcher(redis, _JOIN)
        self._cancel = ScriptBatcher(redis, _CANCEL)
        self._close = ScriptBatcher(redis, _CLOSE)

    async def _run(self, script: ScriptBatcher, relay_id: str, args: list[Any]):
        try:
            return await script(relay_keys(relay_id), args)
        except ResponseError as exc:
            if "NORELAY" in str(exc):
                raise RelayMissing(relay_id) from None
            raise

    async def init(self, relay_id: str, stock: int, limit: int, waitlist: bool, status: str = "open") -> None:
        await self.redis.hset(keys.relay(relay_id, "meta"), mapping={
            "stock": stock, "limit": limit, "waitlist": "1" if waitlist else "0", "status": status, "total": 0, "seq": 0,
        })

    async def exists(self, relay_id: str) -> bool:
        return bool(await self.redis.exists(keys.relay(relay_id, "meta")))

    async def join(self, relay_id: str, sender: str, name: str, qty: int, msgid: str, now: float,
                   line: str = "") -> tuple[dict, dict | None]:
        """→ (response, event); the event is None when the msgid was already handled."""
        out = json.loads(await self._run(self._join, relay_id, [sender, name, qty, msgid, repr(now), line]))
        return out["r"], out.get("e")

    async def cancel(self, relay_id: str, sender: str, name: str, qty: int, msgid: str,
                     now: float) -> tuple[dict, dict | None]:
        out = json.loads(await self._run(self._cancel, relay_id, [sender, name, qty, msgid, repr(now)]))
        return out["r"], out.get("e")

    async def close(self, relay_id: str, now: float) -> dict | None:
        return json.loads(await self._run(self._close, relay_id, [repr(now)])).get("e")

    async def seen_lines(self, relay_id: str):
        """Every native-list line seen in this relay (cleaned, with the most copies one list had),
        plus the lines that were credited (those survive a rebuild from SQL)."""
        from collections import Counter

        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.relay(relay_id, "seen"))
            pipe.hgetall(keys.relay(relay_id, "lines"))
            seen, credited = await pipe.execute()
        from bot.relay.parse import remember_lines

        out = Counter({k.decode(): int(n) for k, n in seen.items()})
        remember_lines(out, [l.decode() for l, n in credited.items() for _ in range(int(n))])
        return out

    async def remember_seen(self, relay_id: str, grown: dict[str, int]) -> None:
        if grown:
            await self.redis.hset(keys.relay(relay_id, "seen"), mapping=grown)

    async def withdrawn(self, relay_id: str) -> set[str]:
        """Clean names that cancelled by text (their line lingers in the lists others copy)."""
        return {k.decode() for k in await self.redis.smembers(keys.relay(relay_id, "gone"))}

    async def mark_withdrawn(self, relay_id: str, name: str) -> None:
        """Only ever added to: a member who signs up again holds units, and a line for someone who
        holds units is never taken for a withdrawn one (parse.list_credits)."""
        if name:
            await self.redis.sadd(keys.relay(relay_id, "gone"), name)

    async def remembered(self, relay_id: str, msgid: str) -> dict | None:
        raw = await self.redis.hget(keys.relay(relay_id, "msg"), msgid)
        return json.loads(raw) if raw else None

    async def events_after(self, relay_id: str, seq: int) -> list[dict]:
        """Events in Redis with a sequence number above `seq` (for catching SQL up after a crash)."""
        out = []
        for _id, fields in await self.redis.xrange(keys.relay(relay_id, "ev")):
            e = json.loads(fields[b"e"])
            if e["seq"] > seq:
                out.append(e)
        return out

    async def holding(self, relay_id: str, sender_id: str) -> int:
        """Units one sender holds, confirmed and waiting."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hget(keys.relay(relay_id, "conf"), sender_id)
            pipe.hget(keys.relay(relay_id, "wait"), sender_id)
            conf, wait = await pipe.execute()
        return int(conf or 0) + int(wait or 0)

    async def snapshot(self, relay_id: str) -> RelaySnapshot:
        k = lambda f: keys.relay(relay_id, f)  # noqa: E731
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(k("meta"))
            pipe.hgetall(k("conf"))
            pipe.hgetall(k("wait"))
            pipe.lrange(k("waitq"), 0, -1)
            pipe.hgetall(k("names"))
            pipe.hgetall(k("since"))
            pipe.hgetall(k("at"))
            pipe.hgetall(k("lines"))
            meta, conf, wait, waitq, names, since, at, lines = await pipe.execute()
        if not meta:
            raise RelayMissing(relay_id)
        d = lambda b: b.decode()  # noqa: E731
        entries = sorted(
            ({"sender_id": d(s), "sender_name": d(names.get(s, b"")), "quantity": int(q),
              "at": float(at.get(s, b"0")), "_since": int(since.get(s, b"0"))} for s, q in conf.items() if int(q) > 0),
            key=lambda e: (e["_since"], e["sender_id"]),
        )
        for i, e in enumerate(entries, 1):
            e["position"] = i
            del e["_since"]
        waiting = [{"position": i, "sender_id": d(s), "sender_name": d(names.get(s, b"")), "quantity": int(wait.get(s, b"0"))}
                   for i, s in enumerate(waitq, 1)]
        line_list = [d(l) for l, n in lines.items() for _ in range(int(n))]
        return RelaySnapshot(d(meta[b"status"]), int(meta[b"stock"]), int(meta.get(b"total", b"0")), entries, waiting, line_list)

    async def rebuild(self, relay_id: str, stock: int, limit: int, waitlist: bool, events: list[dict]) -> None:
        """Recreate the Redis state from the durable event log (ordered by seq)."""
        conf: dict[str, int] = {}
        wait: dict[str, int] = {}
        wait_since: dict[str, int] = {}
        since: dict[str, int] = {}
        at: dict[str, float] = {}
        names: dict[str, str] = {}
        msgs: dict[str, str] = {}
        lines: dict[str, int] = {}
        status, seq = "open", 0
        for e in events:
            seq = e["seq"]
            if e.get("sender"):
                names[e["sender"]] = e.get("name", "")
            for who, dconf, dwait in e["changes"]:
                before = conf.get(who, 0)
                conf[who] = before + dconf
                if before == 0 and conf[who] > 0:
                    since[who], at[who] = seq, float(e["at"])
                if conf[who] <= 0:
                    conf.pop(who, None), since.pop(who, None), at.pop(who, None)
                wb = wait.get(who, 0)
                wait[who] = wb + dwait
                if wb == 0 and wait[who] > 0:
                    wait_since[who] = seq
                if wait[who] <= 0:
                    wait.pop(who, None), wait_since.pop(who, None)
            if e.get("msgid") and e.get("response") is not None:
                msgs[e["msgid"]] = json.dumps(e["response"], ensure_ascii=False)
            if e.get("line"):
                lines[e["line"]] = lines.get(e["line"], 0) + 1
            status = e.get("status") or status
        total = sum(conf.values())
        k = lambda f: keys.relay(relay_id, f)  # noqa: E731
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(*relay_keys(relay_id))
            pipe.hset(k("meta"), mapping={"stock": stock, "limit": limit, "waitlist": "1" if waitlist else "0",
                                          "status": status, "total": total, "seq": seq})
            for name, data in (("conf", conf), ("since", since), ("at", at), ("names", names), ("msg", msgs),
                               ("wait", wait), ("lines", lines)):
                if data:
                    pipe.hset(k(name), mapping={kk: (repr(v) if isinstance(v, float) else v) for kk, v in data.items()})
            queue = sorted(wait, key=lambda w: wait_since[w])
            if queue:
                pipe.rpush(k("waitq"), *queue)
            await pipe.execute()
