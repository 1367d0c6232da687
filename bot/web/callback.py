"""GET/POST /wecom/callback: verify, decrypt, parse, de-duplicate, enqueue, ack.

Nothing slow happens here: the handlers run in workers that consume the stream."""
from __future__ import annotations

import logging
import time

from aiohttp import web
from redis.exceptions import RedisError

from bot.gateway.crypto import CallbackCryptoError
from bot.gateway.event_queue import Envelope
from bot.gateway.messages import XmlError, dedupe_key, kind_of, parse_xml_fields
from bot.web.appkeys import CRYPTO, METRICS, QUEUE, SETTINGS
from bot.web.requests import read_limited

log = logging.getLogger(__name__)


def _text(status: int, body: str) -> web.Response:
    return web.Response(status=status, text=body, content_type="text/plain")


def _crypto(request: web.Request):
    crypto = request.app.get(CRYPTO)
    if crypto is None:
        raise web.HTTPServiceUnavailable(text="callback not configured: set WECOM_CORP_ID, WECOM_TOKEN, WECOM_ENCODING_AES_KEY")
    return crypto


def _query(request: web.Request, *names: str) -> list[str]:
    values = [request.query.get(n, "") for n in names]
    missing = [n for n, v in zip(names, values) if not v]
    if missing:
        request.app[METRICS].callback_rejected.labels("params").inc()
        raise web.HTTPBadRequest(text=f"missing query parameter(s): {', '.join(missing)}")
    return values


def _reject(request: web.Request, exc: CallbackCryptoError) -> web.Response:
    request.app[METRICS].callback_rejected.labels(exc.reason).inc()
    log.warning("callback rejected", extra={"reason": exc.reason, "peer": request.remote})
    return _text(403, f"rejected: {exc.reason}")


async def verify_url(request: web.Request) -> web.Response:
    crypto = _crypto(request)
    sig, ts, nonce, echostr = _query(request, "msg_signature", "timestamp", "nonce", "echostr")
    try:
        plain = crypto.verify_url(sig, ts, nonce, echostr)
    except CallbackCryptoError as exc:
        return _reject(request, exc)
    return _text(200, plain)


async def receive(request: web.Request) -> web.Response:
    crypto = _crypto(request)
    settings = request.app[SETTINGS]
    metrics = request.app[METRICS]
    sig, ts, nonce = _query(request, "msg_signature", "timestamp", "nonce")
    body = await read_limited(request, settings.max_body_bytes)
    if body is None:
        metrics.callback_rejected.labels("too_large").inc()
        return _text(413, "body too large")
    try:
        outer = parse_xml_fields(body)
    except XmlError as exc:
        metrics.callback_rejected.labels("xml").inc()
        return _text(400, str(exc))
    encrypt = outer.get("Encrypt", "")
    if not encrypt:
        metrics.callback_rejected.labels("xml").inc()
        return _text(400, "missing <Encrypt>")
    try:
        plain = crypto.open(sig, ts, nonce, encrypt)
    except CallbackCryptoError as exc:
        return _reject(request, exc)
    try:
        fields = parse_xml_fields(plain)
    except XmlError as exc:
        metrics.callback_rejected.labels("xml").inc()
        return _text(400, str(exc))

    try:
        entry = await request.app[QUEUE].accept(dedupe_key(fields), Envelope("callback", kind_of(fields), fields, time.time()))
    except RedisError:
        # Not acknowledged: WeCom retries, so nothing is lost while Redis is away.
        log.exception("could not enqueue callback")
        metrics.callbacks.labels("unavailable").inc()
        return _text(503, "temporarily unavailable")
    metrics.callbacks.labels("accepted" if entry else "duplicate").inc()
    return _text(200, "success")
