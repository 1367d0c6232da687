"""WeCom Customer Service (微信客服) sessions: auto-reply where a channel enables it.

On `kf_msg_or_event`, pull new messages with kf/sync_msg (cursor kept in Redis per account), and for
each customer text: answer with the best script via kf/send_msg when its score passes
COPILOT_KF_MIN_SCORE and the customer is not upset (negative sentiment, complaint or any flag);
otherwise hand the session to a human (kf/service_state/trans → the queue). Every message and
reply is recorded in the conversation store, so QA sees what the bot did.
"""
from __future__ import annotations

import logging
import time

from bot import keys
from bot.conversations.intake import take_in
from bot.conversations.records import ArchiveRecord
from bot.gateway.messages import KfMsgOrEvent
from bot.gateway.router import Router
from nlp.pipeline import AnalyzeItem

log = logging.getLogger(__name__)
router = Router()

CUSTOMER_ORIGIN = 3
HUMAN_QUEUE = 2  # service_state: waiting in the queue for a human servicer


async def decide(text: str, nlp, knowledge, min_score: float) -> tuple[str, str | None, dict]:
    """→ ("reply", reply_text, analysis) or ("handover", None, analysis)."""
    [analysis] = await nlp.analyze([AnalyzeItem(text[:5000], "customer")])
    upset = analysis["flagged"] or analysis["sentiment"]["label"] == "negative" or analysis["intent"]["label"] == "complaint"
    if upset or knowledge is None:
        return "handover", None, analysis
    found = await knowledge.suggest(text, k=1)
    if found and found[0].score >= min_score:
        return "reply", found[0].script.reply, analysis
    return "handover", None, analysis


@router.on("event:kf_msg_or_event")
async def kf_messages(event: KfMsgOrEvent, wecom, redis, nlp, knowledge, conversations, queue, settings) -> None:
    if not settings.kf_autoreply or wecom is None:
        return
    open_kfid = event.open_kf_id
    cursor = (await redis.get(keys.kf("cursor", open_kfid)) or b"").decode()
    for _ in range(100):  # bounded: at most 100 pages per event
        page = await wecom.call("POST", "/cgi-bin/kf/sync_msg", {"cursor": cursor, "token": event.token, "limit": 1000,
                                                                 "open_kfid": open_kfid})
        for msg in page.get("msg_list", []):
            if msg.get("origin") != CUSTOMER_ORIGIN or msg.get("msgtype") != "text":
                continue
            if not await redis.set(keys.kf("seen", msg["msgid"]), b"1", nx=True, ex=7 * 86400):
                continue  # already handled (a retried event)
            await handle_customer_text(msg, open_kfid, wecom, nlp, knowledge, conversations, queue, settings)
        cursor = page.get("next_cursor", cursor)
        # The cursor is saved after the page's messages are handled: a crash re-reads, never skips.
        await redis.set(keys.kf("cursor", open_kfid), cursor.encode())
        if not page.get("has_more"):
            break


async def handle_customer_text(msg: dict, open_kfid: str, wecom, nlp, knowledge, conversations, queue, settings) -> str:
    text = msg.get("text", {}).get("content", "")
    customer = msg["external_userid"]
    action, reply, analysis = await decide(text, nlp, knowledge, settings.kf_min_score)
    records = [ArchiveRecord.parse({"msgid": f"kf:{msg['msgid']}", "action": "send", "from": customer, "tolist": [open_kfid],
                                    "msgtime": int(msg.get("send_time", time.time())) * 1000, "msgtype": "text",
                                    "text": {"content": text}})]
    if action == "reply":
        await wecom.call("POST", "/cgi-bin/kf/send_msg", {"touser": customer, "open_kfid": open_kfid, "msgtype": "text",
                                                          "text": {"content": reply}})
        records.append(ArchiveRecord.parse({"msgid": f"kf:reply:{msg['msgid']}", "action": "send", "from": open_kfid,
                                            "tolist": [customer], "msgtime": int(time.time() * 1000), "msgtype": "text",
                                            "text": {"content": reply}}))
    else:
        await wecom.call("POST", "/cgi-bin/kf/service_state/trans", {"open_kfid": open_kfid, "external_userid": customer,
                                                                     "service_state": HUMAN_QUEUE})
    if conversations is not None:
        # Stored and queued like every other record; the decision's analysis goes along, so the
        # pipeline does not analyse the customer's message a second time.
        await take_in(conversations, queue, records, source="kf", analyses={records[0].msgid: analysis})
    log.info("kf message handled", extra={"action": action, "open_kfid": open_kfid})
    return action
