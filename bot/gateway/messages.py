"""Typed WeCom callback messages and events, parsed from decrypted XML.

Types register themselves by decorator into a map keyed by MsgType (or "event:<Event>"),
the same design as wechatpy's parser. Unknown types parse into `UnknownMessage`: they
are logged and acknowledged, never an error. All models are frozen and keep the full
field dict in `raw`, so a field WeCom adds later is not lost.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring


class XmlError(ValueError):
    """The body is not well-formed, safe WeCom XML."""


def parse_xml_fields(text: str | bytes) -> dict[str, str]:
    """Flat `<xml><Name>value</Name>…</xml>` → dict. Nested elements are kept as their inner XML text.

    defusedxml refuses DTDs, entity declarations and external references (billion laughs, XXE).
    """
    try:
        root = fromstring(text, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (ParseError, DefusedXmlException) as exc:
        raise XmlError(f"malformed or unsafe XML: {exc.__class__.__name__}") from None
    if root.tag != "xml":
        raise XmlError("root element must be <xml>")
    fields: dict[str, str] = {}
    for child in root:
        if len(child):
            # e.g. <SendPicsInfo><Count>..</Count>…</SendPicsInfo>: keep children flat as Parent.Child
            for sub in child.iter():
                if sub is not child and sub.text and sub.text.strip():
                    fields[f"{child.tag}.{sub.tag}"] = sub.text.strip()
        fields[child.tag] = (child.text or "").strip()
    return fields


def _to_int(value: str | None) -> int:
    try:
        return int(value) if value not in (None, "") else 0
    except ValueError:
        return 0


def _to_float(value: str | None) -> float:
    try:
        return float(value) if value not in (None, "") else 0.0
    except ValueError:
        return 0.0


_REGISTRY: dict[str, type["WeComMessage"]] = {}
_TYPES: dict[type, dict[str, object]] = {}


def _field_types(cls: type) -> dict[str, object]:
    types = _TYPES.get(cls)
    if types is None:
        types = _TYPES[cls] = {f.name: f.type for f in dataclasses.fields(cls)}
    return types


def register(key: str):
    def deco(cls: type[WeComMessage]) -> type[WeComMessage]:
        cls.type_key = key
        _REGISTRY[key] = cls
        return cls

    return deco


@dataclass(frozen=True)
class WeComMessage:
    """Common header of every callback payload."""

    XML: ClassVar[dict[str, str]] = {}
    type_key: ClassVar[str] = ""

    to_user: str = ""
    from_user: str = ""
    create_time: int = 0
    msg_type: str = ""
    agent_id: str = ""
    raw: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def kind(self) -> str:
        """Routing key: the MsgType for messages, `event:<Event>` for events."""
        return self.type_key or (f"event:{self.raw.get('Event', '')}" if self.msg_type == "event" else self.msg_type)

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> "WeComMessage":
        kwargs: dict[str, Any] = {
            "to_user": fields.get("ToUserName", ""),
            "from_user": fields.get("FromUserName", ""),
            "create_time": _to_int(fields.get("CreateTime")),
            "msg_type": fields.get("MsgType", ""),
            "agent_id": fields.get("AgentID", ""),
            "raw": dict(fields),
        }
        types = _field_types(cls)
        for xml_name, attr in cls.XML.items():
            value = fields.get(xml_name)
            t = types.get(attr)
            if t in ("int", int):
                kwargs[attr] = _to_int(value)
            elif t in ("float", float):
                kwargs[attr] = _to_float(value)
            else:
                kwargs[attr] = value or ""
        return cls(**kwargs)


@dataclass(frozen=True)
class UnknownMessage(WeComMessage):
    pass


# --- messages ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _Message(WeComMessage):
    msg_id: str = ""


@register("text")
@dataclass(frozen=True)
class TextMessage(_Message):
    XML: ClassVar[dict[str, str]] = {"MsgId": "msg_id", "Content": "content"}
    content: str = ""


@register("image")
@dataclass(frozen=True)
class ImageMessage(_Message):
    XML: ClassVar[dict[str, str]] = {"MsgId": "msg_id", "PicUrl": "pic_url", "MediaId": "media_id"}
    pic_url: str = ""
    media_id: str = ""


@register("voice")
@dataclass(frozen=True)
class VoiceMessage(_Message):
    XML: ClassVar[dict[str, str]] = {"MsgId": "msg_id", "MediaId": "media_id", "Format": "format"}
    media_id: str = ""
    format: str = ""


@register("video")
@dataclass(frozen=True)
class VideoMessage(_Message):
    XML: ClassVar[dict[str, str]] = {"MsgId": "msg_id", "MediaId": "media_id", "ThumbMediaId": "thumb_media_id"}
    media_id: str = ""
    thumb_media_id: str = ""


@register("file")
@dataclass(frozen=True)
class FileMessage(_Message):
    XML: ClassVar[dict[str, str]] = {"MsgId": "msg_id", "MediaId": "media_id", "FileName": "file_name"}
    media_id: str = ""
    file_name: str = ""


@register("location")
@dataclass(frozen=True)
class LocationMessage(_Message):
    XML: ClassVar[dict[str, str]] = {
        "MsgId": "msg_id", "Location_X": "latitude", "Location_Y": "longitude", "Scale": "scale", "Label": "label",
    }
    latitude: float = 0.0
    longitude: float = 0.0
    scale: int = 0
    label: str = ""


@register("link")
@dataclass(frozen=True)
class LinkMessage(_Message):
    XML: ClassVar[dict[str, str]] = {
        "MsgId": "msg_id", "Title": "title", "Description": "description", "Url": "url", "PicUrl": "pic_url",
    }
    title: str = ""
    description: str = ""
    url: str = ""
    pic_url: str = ""


# --- events -------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Event(WeComMessage):
    event: str = ""
    change_type: str = ""


@register("event:change_external_contact")
@dataclass(frozen=True)
class ExternalContactEvent(_Event):
    """add_external_contact / edit_external_contact / del_external_contact / del_follow_user / …"""

    XML: ClassVar[dict[str, str]] = {
        "Event": "event", "ChangeType": "change_type", "UserID": "user_id", "ExternalUserID": "external_user_id",
        "State": "state", "WelcomeCode": "welcome_code", "Source": "source", "FailReason": "fail_reason",
    }
    user_id: str = ""
    external_user_id: str = ""
    state: str = ""
    welcome_code: str = ""
    source: str = ""
    fail_reason: str = ""


@register("event:change_external_chat")
@dataclass(frozen=True)
class ExternalChatEvent(_Event):
    """create / update / dismiss of a customer group."""

    XML: ClassVar[dict[str, str]] = {
        "Event": "event", "ChangeType": "change_type", "ChatId": "chat_id", "UpdateDetail": "update_detail",
        "JoinScene": "join_scene", "QuitScene": "quit_scene", "MemChangeCnt": "mem_change_cnt",
    }
    chat_id: str = ""
    update_detail: str = ""
    join_scene: int = 0
    quit_scene: int = 0
    mem_change_cnt: int = 0


@register("event:msgaudit_notify")
@dataclass(frozen=True)
class MsgAuditNotifyEvent(_Event):
    XML: ClassVar[dict[str, str]] = {"Event": "event"}


@register("event:kf_msg_or_event")
@dataclass(frozen=True)
class KfMsgOrEvent(_Event):
    XML: ClassVar[dict[str, str]] = {"Event": "event", "Token": "token", "OpenKfId": "open_kf_id"}
    token: str = ""
    open_kf_id: str = ""


@register("event:enter_agent")
@dataclass(frozen=True)
class EnterAgentEvent(_Event):
    XML: ClassVar[dict[str, str]] = {"Event": "event", "EventKey": "event_key"}
    event_key: str = ""


def kind_of(fields: Mapping[str, str]) -> str:
    """Routing key straight from the fields: MsgType, or `event:<Event>`."""
    msg_type = fields.get("MsgType", "")
    return f"event:{fields.get('Event', '')}" if msg_type == "event" else msg_type


def message_from_fields(fields: Mapping[str, str]) -> WeComMessage:
    return _REGISTRY.get(kind_of(fields), UnknownMessage).from_fields(fields)


def parse_message(xml: str | bytes) -> WeComMessage:
    return message_from_fields(parse_xml_fields(xml))


def dedupe_key(fields: Mapping[str, str]) -> str:
    """Stable identity of a callback across WeCom's retries.

    Messages carry MsgId. Events do not, and FromUserName + CreateTime collides when WeCom
    sends two events in the same second, so the key names the event's subject instead.
    """
    msg_id = fields.get("MsgId")
    if msg_id:
        return f"msg:{msg_id}"
    subject = fields.get("ExternalUserID") or fields.get("ChatId") or fields.get("OpenKfId") or ""
    parts = [
        fields.get("Event", fields.get("MsgType", "")),
        fields.get("ChangeType", ""),
        fields.get("UserID", "") or fields.get("FromUserName", ""),
        subject,
        fields.get("CreateTime", ""),
        fields.get("Token", "") or fields.get("EventKey", ""),
    ]
    return "evt:" + "|".join(parts)
