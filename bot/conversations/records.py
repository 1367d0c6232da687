"""Conversation-archive records (会话存档 chatdata, decrypted) as typed values.

Unknown msgtypes are kept raw, never rejected. Who is staff and who is a customer is decided by
the id: external contacts' ids start with `wo` or `wm` (and bots with `wb`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

ACTIONS = ("send", "recall", "switch")
# The columns' limits (storage/sql.py): a value beyond them would fail the whole batch's
# transaction, so it is refused here, per record.
MAX_ID = 128
MAX_MSGTYPE = 32
MAX_SEQ = (1 << 63) - 1
MAX_MSGTIME = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z: analytics turn msgtime into dates


class RecordError(ValueError):
    pass


def role_of(user_id: str) -> str:
    return "customer" if user_id[:2] in ("wo", "wm") else "staff"


def extract_text(msgtype: str, rec: Mapping[str, Any]) -> str | None:
    """The text a person wrote or would read, for the types that carry one."""
    body = rec.get(msgtype)
    if not isinstance(body, Mapping):
        body = {}
    if msgtype == "text":
        return str(body.get("content", ""))
    if msgtype == "markdown":
        return str(body.get("content", ""))
    if msgtype == "link":
        return " ".join(str(body.get(k, "")) for k in ("title", "description") if body.get(k))
    if msgtype == "location":
        return " ".join(str(body.get(k, "")) for k in ("title", "address") if body.get(k))
    if msgtype == "mixed":
        items = body.get("item") if isinstance(body.get("item"), list) else []
        parts = []
        for it in items:
            if isinstance(it, Mapping) and it.get("type") == "text":
                content = it.get("content")
                if isinstance(content, str):
                    import json

                    try:
                        content = json.loads(content).get("content", content)
                    except (ValueError, AttributeError):
                        pass
                parts.append(str(content))
        return "\n".join(parts) or None
    if msgtype == "meeting":
        return str(body.get("topic", "")) or None
    return None


@dataclass(frozen=True)
class ArchiveRecord:
    msgid: str
    action: str
    sender: str
    tolist: tuple[str, ...]
    roomid: str
    msgtime: int
    msgtype: str
    text: str | None
    raw: Mapping[str, Any]
    seq: int | None = None

    @property
    def role(self) -> str:
        return role_of(self.sender)

    @property
    def recalls(self) -> str | None:
        if self.action == "recall" or self.msgtype == "revoke":
            body = self.raw.get("revoke")
            if isinstance(body, Mapping) and body.get("pre_msgid"):
                return str(body["pre_msgid"])
        return None

    @property
    def conversation(self) -> tuple[str, str, str | None, str | None, list[dict]]:
        """(id, kind, staff_id, customer_id, participants)."""
        if self.roomid:
            people = sorted({self.sender, *self.tolist} - {""})
            return (f"g:{self.roomid}", "group", None, None,
                    [{"id": p, "role": role_of(p)} for p in people])
        other = self.tolist[0] if self.tolist else ""
        pair = sorted({self.sender, other} - {""})
        staff = next((p for p in pair if role_of(p) == "staff"), None)
        customer = next((p for p in pair if role_of(p) == "customer"), None)
        return ("p:" + "|".join(pair), "private", staff, customer, [{"id": p, "role": role_of(p)} for p in pair])

    @classmethod
    def parse(cls, rec: Any, seq: int | None = None) -> "ArchiveRecord":
        if not isinstance(rec, Mapping):
            raise RecordError("record must be an object")
        msgid = rec.get("msgid")
        if not isinstance(msgid, str) or not msgid or len(msgid) > 128:
            raise RecordError("msgid must be a non-empty string (≤ 128 chars)")
        action = rec.get("action", "send")
        if action not in ACTIONS:
            raise RecordError(f"action must be one of {', '.join(ACTIONS)}")
        msgtime = rec.get("msgtime", rec.get("time"))
        if isinstance(msgtime, bool) or not isinstance(msgtime, int) or not 0 <= msgtime <= MAX_MSGTIME:
            raise RecordError("msgtime must be a non-negative integer (milliseconds) before the year 10000")
        sender = rec.get("from", "")
        if action != "switch" and (not isinstance(sender, str) or not sender):
            raise RecordError("from must be a non-empty string")
        if not isinstance(sender, str):
            sender = str(rec.get("user", ""))
        tolist = rec.get("tolist", [])
        if not isinstance(tolist, list) or not all(isinstance(t, str) and len(t) <= MAX_ID for t in tolist):
            raise RecordError(f"tolist must be a list of strings (each ≤ {MAX_ID} chars)")
        roomid = rec.get("roomid", "") or ""
        if not isinstance(roomid, str) or len(roomid) > MAX_ID:
            raise RecordError(f"roomid must be a string (≤ {MAX_ID} chars)")
        msgtype = rec.get("msgtype", "switch" if action == "switch" else "")
        if not isinstance(msgtype, str) or not msgtype or len(msgtype) > MAX_MSGTYPE:
            raise RecordError(f"msgtype must be a non-empty string (≤ {MAX_MSGTYPE} chars)")
        sender = sender or str(rec.get("user", ""))
        if len(sender) > MAX_ID:
            raise RecordError(f"from must be at most {MAX_ID} chars")
        s = rec.get("seq", seq)
        if s is not None and (isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= MAX_SEQ):
            raise RecordError("seq must be a non-negative 64-bit integer")
        return cls(msgid, action, sender, tuple(tolist), roomid, msgtime, msgtype,
                   extract_text(msgtype, rec), dict(rec), s)
