"""Outbound WeCom API client.

The access token is cached in Redis so every process shares one (WeCom rate-limits
`gettoken`), refreshed before expiry, and refreshed once more when WeCom says it is invalid
(errcode 40014/42001/40001). Network errors and errcode -1 (system busy) are retried with
exponential backoff; any other errcode surfaces as `WeComAPIError`.
"""
from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import redis.asyncio as aioredis

from bot import keys

log = logging.getLogger(__name__)

TOKEN_INVALID = {40014, 42001, 40001}
BUSY = -1
# Refresh this many seconds before WeCom's expires_in so no call races the expiry.
EXPIRY_MARGIN = 300

_DELETE_IF_EQUAL = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class WeComAPIError(Exception):
    def __init__(self, errcode: int, errmsg: str, path: str) -> None:
        super().__init__(f"WeCom {path} errcode={errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg
        self.path = path


class WeComUnavailable(Exception):
    """The API could not be reached after all retries."""


class WeComNotConfigured(Exception):
    pass


@dataclass
class WeComClient:
    session: aiohttp.ClientSession
    redis: aioredis.Redis
    base_url: str
    corp_id: str
    secret: str
    agent_id: str = ""
    retries: int = 3
    backoff_base: float = 0.2
    timeout: float = 10.0

    def __post_init__(self) -> None:
        self._lock = asyncio.Lock()
        # The cache is per secret: app and contact secrets get different tokens.
        label = self.agent_id or "app"
        self._key = keys.wecom("access_token", self.corp_id, label)
        self._lock_key = keys.wecom("access_token_lock", self.corp_id, label)
        self._delete_if_equal = self.redis.register_script(_DELETE_IF_EQUAL)

    # --- token -------------------------------------------------------------------------
    async def access_token(self, stale: str | None = None) -> str:
        cached = await self.redis.get(self._key)
        if cached and cached.decode() != stale:
            return cached.decode()
        async with self._lock:
            if stale:
                await self._delete_if_equal(keys=[self._key], args=[stale])
            cached = await self.redis.get(self._key)
            if cached:
                return cached.decode()
            # Across processes: one fetches, the others wait for its result.
            deadline = time.monotonic() + self.timeout
            owner = secrets.token_hex(8).encode()
            while not await self.redis.set(self._lock_key, owner, nx=True, px=int(self.timeout * 1000)):
                await asyncio.sleep(0.05)
                cached = await self.redis.get(self._key)
                if cached:
                    return cached.decode()
                if time.monotonic() > deadline:
                    break
            try:
                # The holder before us may have stored a token between our last read and our lock.
                cached = await self.redis.get(self._key)
                if cached:
                    return cached.decode()
                data = await self._request("GET", "/cgi-bin/gettoken", {"corpid": self.corp_id, "corpsecret": self.secret}, None)
                token = data["access_token"]
                ttl = max(60, int(data.get("expires_in", 7200)) - EXPIRY_MARGIN)
                await self.redis.set(self._key, token.encode(), ex=ttl)
                log.info("wecom access token refreshed", extra={"ttl": ttl})
                return token
            finally:
                # Only our own lock: after a timeout another process may hold it.
                await self._delete_if_equal(keys=[self._lock_key], args=[owner])

    # --- transport ---------------------------------------------------------------------
    async def _request(self, method: str, path: str, params: dict[str, Any], body: Any,
                       upload: tuple[str, str, bytes] | None = None) -> dict[str, Any]:
        """One logical call with retries on the network and on errcode -1. `upload` = (filename,
        content type, bytes) sends a multipart `media` field instead of a JSON body."""
        url = self.base_url + path
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(self.backoff_base * (2 ** (attempt - 1)))
            try:
                payload: dict[str, Any] = {"json": body}
                if upload is not None:  # a FormData is consumed by a request: one per attempt
                    form = aiohttp.FormData()
                    form.add_field("media", upload[2], filename=upload[0], content_type=upload[1])
                    payload = {"data": form}
                async with self.session.request(
                    method, url, params=params, timeout=aiohttp.ClientTimeout(total=self.timeout), **payload
                ) as resp:
                    if resp.status >= 500:
                        last = WeComUnavailable(f"{path}: HTTP {resp.status}")
                        continue
                    data = await resp.json(content_type=None)
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
                last = WeComUnavailable(f"{path}: {exc.__class__.__name__}")
                continue
            errcode = int(data.get("errcode", 0) or 0)
            if errcode == BUSY:
                last = WeComAPIError(errcode, str(data.get("errmsg", "")), path)
                continue
            if errcode:
                raise WeComAPIError(errcode, str(data.get("errmsg", "")), path)
            return data
        assert last is not None
        raise last

    async def call(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None,
                   upload: tuple[str, str, bytes] | None = None) -> dict[str, Any]:
        token = await self.access_token()
        try:
            return await self._request(method, path, {**(params or {}), "access_token": token}, body, upload)
        except WeComAPIError as exc:
            if exc.errcode not in TOKEN_INVALID:
                raise
            log.info("wecom token rejected; refreshing once", extra={"errcode": exc.errcode})
            token = await self.access_token(stale=token)
            return await self._request(method, path, {**(params or {}), "access_token": token}, body, upload)

    async def upload_media(self, media_type: str, filename: str, content_type: str, data: bytes) -> str:
        """Temporary media (valid 3 days): → its media_id."""
        out = await self.call("POST", "/cgi-bin/media/upload", params={"type": media_type},
                              upload=(filename, content_type, data))
        return str(out["media_id"])

    # --- the calls the product uses ----------------------------------------------------------
    async def send_app_text(self, touser: str, content: str) -> dict[str, Any]:
        return await self.call("POST", "/cgi-bin/message/send", {
            "touser": touser, "msgtype": "text", "agentid": self._agent_int(), "text": {"content": content},
        })

    async def send_app_markdown(self, touser: str, content: str) -> dict[str, Any]:
        return await self.call("POST", "/cgi-bin/message/send", {
            "touser": touser, "msgtype": "markdown", "agentid": self._agent_int(), "markdown": {"content": content},
        })

    async def send_welcome_msg(self, welcome_code: str, text: str) -> dict[str, Any]:
        return await self.call("POST", "/cgi-bin/externalcontact/send_welcome_msg", {
            "welcome_code": welcome_code, "text": {"content": text},
        })

    async def mark_tag(self, userid: str, external_userid: str, add_tag: list[str], remove_tag: list[str] | None = None) -> dict[str, Any]:
        return await self.call("POST", "/cgi-bin/externalcontact/mark_tag", {
            "userid": userid, "external_userid": external_userid, "add_tag": add_tag, "remove_tag": remove_tag or [],
        })

    async def get_corp_tag_list(self) -> list[dict[str, Any]]:
        """The corp's customer tag library: [{"group_id", "group_name", "tag": [{"id", "name"}]}]."""
        return (await self.call("POST", "/cgi-bin/externalcontact/get_corp_tag_list", {}))["tag_group"]

    async def add_corp_tag(self, group_name: str, names: list[str]) -> dict[str, Any]:
        """Adds tags to a group (created when missing): → {"group_id", "group_name", "tag": [{"id", "name"}]}."""
        return (await self.call("POST", "/cgi-bin/externalcontact/add_corp_tag", {
            "group_name": group_name, "tag": [{"name": n} for n in names]}))["tag_group"]

    async def add_contact_way(self, state: str, users: list[str]) -> dict[str, Any]:
        """A 联系我 QR code for `users` whose contacts arrive with `state`: → {"config_id", "qr_code"}."""
        return await self.call("POST", "/cgi-bin/externalcontact/add_contact_way", {
            "type": 1 if len(users) == 1 else 2, "scene": 2, "state": state, "user": users})

    async def get_follow_user_list(self) -> list[str]:
        """The members with the customer-contact permission (客户联系功能的成员)."""
        return list((await self.call("GET", "/cgi-bin/externalcontact/get_follow_user_list")).get("follow_user") or [])

    async def batch_get_by_user(self, userids: list[str], cursor: str = "", limit: int = 100) -> dict[str, Any]:
        """One page of the customers these members (≤ 100) added: {"external_contact_list": [{"external_contact",
        "follow_info"}], "next_cursor"} (limit ≤ 100)."""
        return await self.call("POST", "/cgi-bin/externalcontact/batch/get_by_user",
                               {"userid_list": userids[:100], "cursor": cursor, "limit": min(100, limit)})

    async def get_external_contact(self, external_userid: str) -> dict[str, Any]:
        return await self.call("GET", "/cgi-bin/externalcontact/get", params={"external_userid": external_userid})

    async def appchat_send(self, chatid: str, content: str) -> dict[str, Any]:
        return await self.call("POST", "/cgi-bin/appchat/send", {"chatid": chatid, "msgtype": "text", "text": {"content": content}})

    async def add_group_msg_template(self, sender: str, chat_ids: list[str], content: str) -> dict[str, Any]:
        """企业群发 to customer groups: WeCom asks the owner (`sender`) to confirm before it is sent."""
        return await self.call("POST", "/cgi-bin/externalcontact/add_msg_template", {
            "chat_type": "group", "sender": sender, "chat_id_list": chat_ids, "text": {"content": content},
        })

    def _agent_int(self) -> int:
        try:
            return int(self.agent_id)
        except ValueError:
            raise WeComNotConfigured("WECOM_AGENT_ID must be set (an integer) to send app messages") from None
