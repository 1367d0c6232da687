"""Shared test constants and helpers: a signed, encrypted WeCom callback request."""
from __future__ import annotations

import time
import uuid

from bot.gateway.crypto import WeComCrypto, signature
from tests.wecom_fake import CORP_ID

TOKEN = "QDG6eK"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"


def crypto(corp_id: str = CORP_ID) -> WeComCrypto:
    return WeComCrypto(TOKEN, AES_KEY, corp_id, max_clock_skew=300)


def text_xml(content: str, msg_id: str | None = None, user: str = "zhangsan", agent: str = "1000002") -> str:
    return (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id or uuid.uuid4().int % 10**19}</MsgId>"
        f"<AgentID>{agent}</AgentID></xml>"
    )


def contact_event_xml(change: str = "add_external_contact", user: str = "zhangsan", ext: str = "wmABC",
                      state: str = "", welcome_code: str = "", create_time: int | None = None) -> str:
    return (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
        f"<CreateTime>{create_time or int(time.time())}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[change_external_contact]]></Event><ChangeType><![CDATA[{change}]]></ChangeType>"
        f"<UserID><![CDATA[{user}]]></UserID><ExternalUserID><![CDATA[{ext}]]></ExternalUserID>"
        f"<State><![CDATA[{state}]]></State><WelcomeCode><![CDATA[{welcome_code}]]></WelcomeCode></xml>"
    )


def sealed_request(plain_xml: str, c: WeComCrypto | None = None, timestamp: str | None = None,
                   nonce: str = "nonce123") -> tuple[dict[str, str], str]:
    """Encrypt and sign like WeCom does: returns (query params, POST body)."""
    c = c or crypto()
    ts = timestamp or str(int(time.time()))
    enc = c.encrypt(plain_xml)
    body = (f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><Encrypt><![CDATA[{enc}]]></Encrypt>"
            f"<AgentID><![CDATA[1000002]]></AgentID></xml>")
    return {"msg_signature": signature(TOKEN, ts, nonce, enc), "timestamp": ts, "nonce": nonce}, body
