"""A local fake of WeCom's API server (an aiohttp app) for outbound calls in tests.

It issues access tokens, expires them on demand, injects failures, and records every call."""
from __future__ import annotations

import itertools
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

CORP_ID = "ww0123456789abcdef"


@dataclass
class FakeWeCom:
    secrets: set[str] = field(default_factory=lambda: {"app-secret"})
    expires_in: int = 7200
    tokens: set[str] = field(default_factory=set)
    calls: list[tuple[str, dict[str, Any], Any]] = field(default_factory=list)
    token_requests: int = 0
    used_welcome_codes: set[str] = field(default_factory=set)
    kf_messages: list[dict] = field(default_factory=list)  # served by kf/sync_msg, 2 per page
    group_chats: dict[str, dict] = field(default_factory=dict)  # chat_id -> {"name", "owner", "member_list"}
    users: dict[str, dict] = field(default_factory=dict)  # user/get answers: {"direct_leader": [...]}
    templates: dict[str, dict] = field(default_factory=dict)  # add_msg_template tasks by msgid
    not_friends: set[str] = field(default_factory=set)       # external ids add_msg_template fails for
    strict_tags: bool = False  # True: mark_tag refuses tag ids not in the corp tag library (40068)
    corp_tags: dict[str, dict] = field(default_factory=dict)  # group_id -> {"name", "tags": {name: id}}
    customer_tags: dict[tuple[str, str], set[str]] = field(default_factory=dict)  # (userid, external) -> tag ids
    # batch/get_by_user: (userid, external) -> {"name", "createtime", "state"}; tags from customer_tags
    contacts: dict[tuple[str, str], dict] = field(default_factory=dict)
    # path -> list of queued failures: an int errcode, "http500", or "drop" (close the connection)
    failures: dict[str, list[Any]] = field(default_factory=lambda: defaultdict(list))
    _counter: Any = field(default_factory=lambda: itertools.count(1))

    def fail_next(self, path: str, *failures: Any) -> None:
        self.failures[path].extend(failures)

    def confirm(self, sender: str, at: int) -> None:
        """The staff member confirms their 企业群发 tasks in the WeCom client (unix seconds)."""
        for t in self.templates.values():
            if t.get("sender") == sender:
                t["confirmed_at"] = at

    def expire_all(self) -> None:
        self.tokens.clear()

    def bodies(self, path: str) -> list[Any]:
        return [body for p, _q, body in self.calls if p == path]

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/cgi-bin/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path == "/cgi-bin/media/upload":  # multipart: the `media` field
            form = await request.post()
            media = form.get("media")
            self.calls.append((path, dict(request.query), {"filename": getattr(media, "filename", None)}))
            if request.query.get("access_token") not in self.tokens:
                return web.json_response({"errcode": 42001, "errmsg": "access_token expired"})
            if media is None or request.query.get("type") not in ("image", "voice", "video", "file"):
                return web.json_response({"errcode": 40004, "errmsg": "invalid media type"})
            return web.json_response({"errcode": 0, "errmsg": "ok", "type": request.query["type"],
                                      "media_id": f"media{next(self._counter)}", "created_at": str(int(time.time()))})
        body = await request.json() if request.can_read_body else None
        self.calls.append((path, dict(request.query), body))
        queued = self.failures.get(path)
        if queued:
            failure = queued.pop(0)
            if failure == "http500":
                return web.Response(status=500, text="oops")
            if failure == "drop":
                assert request.transport is not None
                request.transport.close()
                return web.Response(status=500)
            return web.json_response({"errcode": failure, "errmsg": "injected"})
        if path == "/cgi-bin/gettoken":
            self.token_requests += 1
            if request.query.get("corpid") != CORP_ID or request.query.get("corpsecret") not in self.secrets:
                return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
            token = f"tok{next(self._counter)}"
            self.tokens.add(token)
            return web.json_response({"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": self.expires_in})
        token = request.query.get("access_token")
        if token not in self.tokens:
            return web.json_response({"errcode": 42001, "errmsg": "access_token expired"})
        if path == "/cgi-bin/kf/sync_msg":
            start = int((body or {}).get("cursor") or 0)
            page = self.kf_messages[start:start + 2]
            nxt = start + len(page)
            return web.json_response({"errcode": 0, "errmsg": "ok", "next_cursor": str(nxt),
                                      "has_more": 1 if nxt < len(self.kf_messages) else 0, "msg_list": page})
        if path == "/cgi-bin/auth/getuserinfo":
            if request.query.get("code") != "good-code":
                return web.json_response({"errcode": 40029, "errmsg": "invalid code"})
            return web.json_response({"errcode": 0, "errmsg": "ok", "userid": "zhangsan"})
        if path == "/cgi-bin/ticket/get":
            return web.json_response({"errcode": 0, "errmsg": "ok", "ticket": "agent-ticket-1", "expires_in": 7200})
        if path == "/cgi-bin/externalcontact/get":
            ext = request.query.get("external_userid", "")
            if not ext.startswith("wm"):
                return web.json_response({"errcode": 84061, "errmsg": "not external contact"})
            return web.json_response({"errcode": 0, "errmsg": "ok", "external_contact": {"external_userid": ext, "name": "客户"}})
        if path == "/cgi-bin/externalcontact/transfer_customer":
            body = await request.json()
            return web.json_response({"errcode": 0, "errmsg": "ok", "customer": [
                {"external_userid": e, "errcode": 0} for e in body.get("external_userid") or []]})
        if path == "/cgi-bin/externalcontact/get_follow_user_list":
            return web.json_response({"errcode": 0, "errmsg": "ok", "follow_user": sorted(
                {u for u, _e in self.contacts} | {g["owner"] for g in self.group_chats.values() if g.get("owner")})})
        if path == "/cgi-bin/externalcontact/groupchat/list":
            body = await request.json()
            owners = (body.get("owner_filter") or {}).get("userid_list")
            if not owners:
                return web.json_response({"errcode": 81017, "errmsg": "too many members, give owner_filter"})
            ids = sorted(c for c, g in self.group_chats.items() if g.get("owner") in owners)
            start, limit = int(body.get("cursor") or 0), min(1000, int(body.get("limit") or 100))
            page = ids[start:start + limit]
            nxt = start + len(page)
            return web.json_response({"errcode": 0, "errmsg": "ok", "next_cursor": str(nxt) if nxt < len(ids) else "",
                                      "group_chat_list": [{"chat_id": c, "status": 0} for c in page]})
        if path == "/cgi-bin/externalcontact/batch/get_by_user":
            body = await request.json()
            users, limit = body.get("userid_list") or [], min(100, int(body.get("limit") or 50))
            if not users or len(users) > 100:
                return web.json_response({"errcode": 40058, "errmsg": "invalid userid_list"})
            rows = sorted(k for k in self.contacts if k[0] in users)
            start = int(body.get("cursor") or 0)
            page = rows[start:start + limit]
            nxt = start + len(page)
            return web.json_response({"errcode": 0, "errmsg": "ok", "next_cursor": str(nxt) if nxt < len(rows) else "",
                                      "external_contact_list": [
                {"external_contact": {"external_userid": e, "name": self.contacts[(u, e)].get("name", ""), "type": 1},
                 "follow_info": {"userid": u, "createtime": self.contacts[(u, e)].get("createtime", 0),
                                 "state": self.contacts[(u, e)].get("state", ""),
                                 "tag_id": sorted(self.customer_tags.get((u, e), ()))}} for u, e in page]})
        if path == "/cgi-bin/externalcontact/get_corp_tag_list":
            return web.json_response({"errcode": 0, "errmsg": "ok", "tag_group": [
                {"group_id": gid, "group_name": g["name"], "tag": [{"id": tid, "name": n} for n, tid in g["tags"].items()]}
                for gid, g in self.corp_tags.items()]})
        if path == "/cgi-bin/externalcontact/add_corp_tag":
            name = (body or {}).get("group_name") or ""
            gid = next((k for k, g in self.corp_tags.items() if g["name"] == name), None)
            if gid is None:
                gid = f"et-group-{next(self._counter)}"
                self.corp_tags[gid] = {"name": name, "tags": {}}
            group = self.corp_tags[gid]
            made = []
            for t in (body or {}).get("tag") or []:
                if t["name"] in group["tags"]:
                    return web.json_response({"errcode": 40071, "errmsg": "UserTag Name Already Exist"})
                group["tags"][t["name"]] = f"et-{next(self._counter)}"
                made.append({"id": group["tags"][t["name"]], "name": t["name"]})
            return web.json_response({"errcode": 0, "errmsg": "ok", "tag_group": {
                "group_id": gid, "group_name": name, "tag": made}})
        if path == "/cgi-bin/externalcontact/mark_tag":
            known = {tid for g in self.corp_tags.values() for tid in g["tags"].values()}
            if self.strict_tags and any(t not in known for t in [*body.get("add_tag", []), *body.get("remove_tag", [])]):
                return web.json_response({"errcode": 40068, "errmsg": "invalid tagid"})
            key = (body["userid"], body["external_userid"])
            have = self.customer_tags.setdefault(key, set())
            have |= set(body.get("add_tag", []))
            have -= set(body.get("remove_tag", []))
            return web.json_response({"errcode": 0, "errmsg": "ok"})
        if path == "/cgi-bin/externalcontact/add_msg_template":
            msgid = f"msg{next(self._counter)}"
            self.templates[msgid] = {**(body or {}), "confirmed_at": None}
            return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": msgid,
                                      "fail_list": [e for e in (body or {}).get("external_userid", []) if e in self.not_friends]})
        if path == "/cgi-bin/externalcontact/get_groupmsg_task":
            t = self.templates.get((body or {}).get("msgid"))
            if t is None:
                return web.json_response({"errcode": 41063, "errmsg": "msgid not found"})
            return web.json_response({"errcode": 0, "errmsg": "ok", "next_cursor": "", "task_list": [
                {"userid": t.get("sender"), "status": 2 if t["confirmed_at"] else 0, "send_time": t["confirmed_at"] or 0}]})
        if path == "/cgi-bin/externalcontact/get_groupmsg_send_result":
            t = self.templates.get((body or {}).get("msgid"))
            if t is None:
                return web.json_response({"errcode": 41063, "errmsg": "msgid not found"})
            if t.get("chat_type") == "group":
                return web.json_response({"errcode": 0, "errmsg": "ok", "next_cursor": "", "send_list": [
                    {"chat_id": c, "userid": t.get("sender"), "status": 1 if t["confirmed_at"] else 0,
                     "send_time": t["confirmed_at"] or 0} for c in t.get("chat_id_list", [])]})
            start, limit = int(body.get("cursor") or 0), int(body.get("limit") or 500)
            ext = [e for e in t.get("external_userid", []) if e not in self.not_friends]
            page = ext[start:start + limit] if t["confirmed_at"] else []
            nxt = str(start + limit) if t["confirmed_at"] and start + limit < len(ext) else ""
            return web.json_response({"errcode": 0, "errmsg": "ok", "next_cursor": nxt, "send_list": [
                {"external_userid": e, "userid": t.get("sender"), "status": 1, "send_time": t["confirmed_at"]} for e in page]})
        if path == "/cgi-bin/externalcontact/groupchat/get":
            chat = self.group_chats.get((body or {}).get("chat_id"))
            if chat is None:
                return web.json_response({"errcode": 40050, "errmsg": "chatid not found"})
            return web.json_response({"errcode": 0, "errmsg": "ok", "group_chat": {"chat_id": body["chat_id"], **chat}})
        if path == "/cgi-bin/user/get":
            uid = request.query.get("userid", "")
            if uid not in self.users:
                return web.json_response({"errcode": 60111, "errmsg": "userid not found"})
            return web.json_response({"errcode": 0, "errmsg": "ok", "userid": uid, **self.users[uid]})
        if path == "/cgi-bin/externalcontact/add_contact_way":
            if not (body or {}).get("user") or (body or {}).get("scene") not in (1, 2):
                return web.json_response({"errcode": 40058, "errmsg": "invalid parameter"})
            n = next(self._counter)
            return web.json_response({"errcode": 0, "errmsg": "ok", "config_id": f"cfg{n}",
                                      "qr_code": f"https://wework.qpic.cn/wwpic/qr{n}.png"})
        if path == "/cgi-bin/externalcontact/send_welcome_msg":
            if not (body or {}).get("welcome_code"):
                return web.json_response({"errcode": 41051, "errmsg": "invalid welcome_code"})
            if body["welcome_code"] in self.used_welcome_codes:
                return web.json_response({"errcode": 41051, "errmsg": "welcome_code used"})
            self.used_welcome_codes.add(body["welcome_code"])
        return web.json_response({"errcode": 0, "errmsg": "ok"})
