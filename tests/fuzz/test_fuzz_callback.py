"""Fuzz targets: the callback's XML parsing and crypto never raise anything but their typed errors,
and sealing/signing round-trips."""
from __future__ import annotations

import base64
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import example, given, strategies as st

from bot.gateway.crypto import CallbackCryptoError, DecryptError, WeComCrypto, pkcs7_pad, pkcs7_unpad, signature
from bot.gateway.messages import XmlError, dedupe_key, kind_of, message_from_fields, parse_xml_fields
from bot.settings import validate_encoding_aes_key
from tests.helpers import AES_KEY, TOKEN
from tests.wecom_fake import CORP_ID

CRYPTO = WeComCrypto(TOKEN, AES_KEY, CORP_ID, max_clock_skew=300)
KEY = validate_encoding_aes_key(AES_KEY)

TAGS = st.sampled_from(["ToUserName", "FromUserName", "CreateTime", "MsgType", "Content", "MsgId", "AgentID", "Event",
                        "ChangeType", "UserID", "ExternalUserID", "ChatId", "State", "WelcomeCode", "Encrypt",
                        "OpenKfId", "Token", "Latitude", "Location_X", "Scale", "PicUrl", "MediaId", "x", "xml"])
TEXT = st.text(max_size=40)


def _cdata_safe(s: str) -> str:
    return s.replace("]]>", "]]")


@st.composite
def xmlish(draw) -> str:
    """Well-formed-ish WeCom XML: random known and unknown fields, CDATA or escaped text, nesting,
    numbers of any size; sometimes a broken tail, a DTD or an entity."""
    parts = []
    for _ in range(draw(st.integers(0, 8))):
        tag = draw(TAGS)
        value = draw(st.one_of(TEXT, st.integers().map(str), st.just("9" * draw(st.integers(1, 5000)))))
        style = draw(st.integers(0, 2))
        if style == 0:
            parts.append(f"<{tag}><![CDATA[{_cdata_safe(value)}]]></{tag}>")
        elif style == 1:
            esc = value.replace("&", "&amp;").replace("<", "&lt;")
            parts.append(f"<{tag}>{esc}</{tag}>")
        else:
            parts.append(f"<{tag}><Count>{len(value)}</Count><Item><V>{_cdata_safe(value)}</V></Item></{tag}>")
    body = "<xml>" + "".join(parts) + "</xml>"
    damage = draw(st.integers(0, 5))
    if damage == 1:
        body = body[: draw(st.integers(0, len(body)))]
    elif damage == 2:
        body = '<!DOCTYPE xml [<!ENTITY a "aaaa">]>' + body.replace("</xml>", "&a;</xml>")
    elif damage == 3:
        body = body.replace("<xml>", "<root>", 1)
    return body


def _fields_ok(fields: dict) -> None:
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in fields.items())
    kind_of(fields)
    message_from_fields(fields)
    assert isinstance(dedupe_key(fields), str)


@given(st.one_of(st.binary(max_size=2000), st.text(max_size=2000)))
def test_parse_xml_of_anything_raises_only_xml_error(data):
    try:
        fields = parse_xml_fields(data)
    except XmlError:
        return
    _fields_ok(fields)


@given(xmlish())
def test_parse_xmlish_raises_only_xml_error_and_types_every_message(text):
    try:
        fields = parse_xml_fields(text.encode("utf-8", "surrogatepass"))
    except XmlError:
        return
    _fields_ok(fields)


@given(st.one_of(st.text(alphabet=st.characters(exclude_categories=()), max_size=600), st.binary(max_size=600).map(lambda b: base64.b64encode(b).decode())))
def test_decrypt_of_anything_raises_only_crypto_errors(encrypt):
    try:
        out = CRYPTO.decrypt(encrypt)
    except CallbackCryptoError:
        return
    assert isinstance(out, str)


@given(prefix=st.binary(min_size=16, max_size=16), length=st.integers(0, 2**32 - 1), body=st.binary(max_size=300),
       receiver=st.binary(max_size=40), pad=st.booleans())
def test_decrypt_of_crafted_plaintexts(prefix, length, body, receiver, pad):
    """Right key and block structure, wrong insides: a declared length past the end, any receiveid,
    bodies that are not UTF-8, bad padding."""
    plain = prefix + struct.pack(">I", length) + body + receiver
    plain = pkcs7_pad(plain) if pad else plain + b"\x00" * (-len(plain) % 16)
    enc = Cipher(algorithms.AES(KEY), modes.CBC(KEY[:16])).encryptor()
    token = base64.b64encode(enc.update(plain) + enc.finalize()).decode()
    try:
        out = CRYPTO.decrypt(token)
    except CallbackCryptoError:
        return
    assert receiver == CORP_ID.encode() and length == len(body)
    assert out == body.decode("utf-8")


@given(st.binary(max_size=200))
def test_unpad_raises_only_decrypt_error(data):
    try:
        out = pkcs7_unpad(data)
    except DecryptError:
        return
    assert data.startswith(out) and 1 <= len(data) - len(out) <= 32


# Any code point, lone surrogates included (st.text leaves them out by default).
ANY_TEXT = st.text(alphabet=st.characters(exclude_categories=()), max_size=60)


@given(sig=ANY_TEXT, ts=st.one_of(ANY_TEXT, st.integers(0).map(str)), nonce=ANY_TEXT,
       encrypt=st.one_of(ANY_TEXT, st.text(max_size=200)))
@example(sig="\udc80", ts="1", nonce="n", encrypt="e")
@example(sig="a", ts="1", nonce="\ud800", encrypt="e")
def test_open_with_arbitrary_query_raises_only_crypto_errors(sig, ts, nonce, encrypt):
    """Before the fix a lone surrogate raised UnicodeEncodeError out of verify()."""
    try:
        CRYPTO.open(sig, ts, nonce, encrypt)
    except CallbackCryptoError:
        pass


@given(message=st.text(max_size=2000), nonce=st.text(alphabet="abcdefghij0123456789", min_size=1, max_size=16))
def test_seal_then_open_round_trips(message, nonce):
    message = message.encode("utf-8", "replace").decode("utf-8")  # a str WeCom could send: no lone surrogates
    sealed = CRYPTO.seal(message, nonce)
    assert sealed.signature == signature(TOKEN, sealed.timestamp, nonce, sealed.encrypt)
    assert CRYPTO.open(sealed.signature, sealed.timestamp, nonce, sealed.encrypt) == message
    assert CRYPTO.verify_url(sealed.signature.upper(), sealed.timestamp, nonce, sealed.encrypt) == message
    # A sealed reply is itself parseable XML with the same fields.
    fields = parse_xml_fields(sealed.to_xml())
    assert fields["Encrypt"] == sealed.encrypt and fields["MsgSignature"] == sealed.signature


@given(message=st.text(min_size=1, max_size=200), flip=st.integers(0, 10_000))
def test_a_changed_ciphertext_or_signature_is_refused(message, flip):
    message = message.encode("utf-8", "replace").decode("utf-8")
    sealed = CRYPTO.seal(message, "n1")
    enc = list(sealed.encrypt)
    i = flip % len(enc)
    enc[i] = "A" if enc[i] != "A" else "B"
    tampered = "".join(enc)
    try:
        CRYPTO.open(sealed.signature, sealed.timestamp, "n1", tampered)
    except CallbackCryptoError as exc:
        assert exc.reason == "signature"
    else:
        raise AssertionError("a tampered Encrypt passed the signature check")
