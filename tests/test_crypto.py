"""Known-answer and interoperability tests for the WeCom callback crypto."""
from __future__ import annotations

import base64
import struct

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from bot.gateway.crypto import (DecryptError, ReceiverError, SignatureError, TimestampError, WeComCrypto, pkcs7_pad,
                        signature)
from bot.settings import SettingsError
from tests.helpers import AES_KEY, TOKEN, crypto
from tests.wecom_fake import CORP_ID

# Computed independently with the OpenSSL command line (see docs/ARCHITECTURE.md §Crypto):
#   key = base64(AES_KEY + "="), iv = key[:16], plaintext = "0123456789abcdef" + 00000005 + "hello"
#   + corp id, padded with 21 bytes of 0x15, then `openssl enc -aes-256-cbc -nopad`.
KNOWN_CIPHERTEXT = "sKqRbbiSUnDhFHOvPjtUMWsghvAyuYj1kUZy6gwk4sobaL2kwIGGr40ADLj9DM07hKZ7To6FAyx5QlDTvzXzJQ=="
# printf '%s' 1409659813ENCQDG6eKnonce123 | sha1sum
KNOWN_SIGNATURE = "d3c541bc30fec7c277de1c687b715da22f00d278"


def raw_encrypt(plain: bytes) -> str:
    key = base64.b64decode(AES_KEY + "=")
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(enc.update(plain) + enc.finalize()).decode()


def test_known_answer_encrypt_and_decrypt():
    c = crypto()
    assert c.encrypt("hello", random_prefix=b"0123456789abcdef") == KNOWN_CIPHERTEXT
    assert c.decrypt(KNOWN_CIPHERTEXT) == "hello"


def test_known_answer_signature():
    assert signature(TOKEN, "1409659813", "nonce123", "ENC") == KNOWN_SIGNATURE


def test_round_trip_unicode():
    c = crypto()
    msg = "<xml><Content><![CDATA[你好，加我微信😀]]></Content></xml>"
    assert c.decrypt(c.encrypt(msg)) == msg


def test_wechatpy_encrypts_we_decrypt():
    from wechatpy.enterprise.crypto import WeChatCrypto

    theirs = WeChatCrypto(TOKEN, AES_KEY, CORP_ID)
    xml = "<xml><ToUserName>x</ToUserName><Content><![CDATA[团购 +1 两份]]></Content></xml>"
    sealed = theirs.encrypt_message(xml, "nonce42", "1700000000")
    from defusedxml.ElementTree import fromstring

    root = fromstring(sealed)
    enc = root.find("Encrypt").text
    sig = root.find("MsgSignature").text
    c = WeComCrypto(TOKEN, AES_KEY, CORP_ID, max_clock_skew=0)
    assert c.open(sig, "1700000000", "nonce42", enc) == xml


def test_we_encrypt_wechatpy_decrypts():
    from wechatpy.enterprise.crypto import WeChatCrypto

    theirs = WeChatCrypto(TOKEN, AES_KEY, CORP_ID)
    reply = crypto().seal("<xml><Content>收到</Content></xml>", "nonce9", "1700000001")
    assert theirs.decrypt_message(reply.to_xml(), reply.signature, reply.timestamp, reply.nonce) == \
        "<xml><Content>收到</Content></xml>"


def test_wrong_signature_rejected():
    c = crypto()
    enc = c.encrypt("x")
    ts = "1700000000"
    good = signature(TOKEN, ts, "n", enc)
    c = WeComCrypto(TOKEN, AES_KEY, CORP_ID, max_clock_skew=0)
    assert c.open(good.upper(), ts, "n", enc) == "x"  # hex case does not matter
    with pytest.raises(SignatureError):
        c.open("0" * 40, ts, "n", enc)
    with pytest.raises(SignatureError):
        c.open(good, ts, "other-nonce", enc)


def test_stale_timestamp_rejected():
    c = crypto()
    enc = c.encrypt("x")
    sig = signature(TOKEN, "1000", "n", enc)
    with pytest.raises(TimestampError):
        c.open(sig, "1000", "n", enc)
    assert WeComCrypto(TOKEN, AES_KEY, CORP_ID, max_clock_skew=0).open(sig, "1000", "n", enc) == "x"
    sig2 = signature(TOKEN, "abc", "n", enc)
    with pytest.raises(TimestampError):
        c.open(sig2, "abc", "n", enc)


def test_receiveid_mismatch_rejected():
    other = crypto("wwSOMEONEELSE")
    with pytest.raises(ReceiverError):
        crypto().decrypt(other.encrypt("x"))


@pytest.mark.parametrize("pad", [0, 33, 255])
def test_pad_byte_out_of_range_rejected(pad):
    body = b"0123456789abcdef" + struct.pack(">I", 1) + b"x" + CORP_ID.encode()
    filler = (-len(body) - 1) % 32
    plain = body + b"\x00" * filler + bytes([pad])
    with pytest.raises(DecryptError):
        crypto().decrypt(raw_encrypt(plain))


def test_inconsistent_padding_rejected():
    body = b"0123456789abcdef" + struct.pack(">I", 1) + b"x" + CORP_ID.encode()
    padded = bytearray(pkcs7_pad(body))
    padded[-2] ^= 0xFF
    with pytest.raises(DecryptError):
        crypto().decrypt(raw_encrypt(bytes(padded)))


def test_length_field_beyond_plaintext_rejected():
    body = b"0123456789abcdef" + struct.pack(">I", 10_000) + b"x" + CORP_ID.encode()
    with pytest.raises(DecryptError):
        crypto().decrypt(raw_encrypt(pkcs7_pad(body)))


@pytest.mark.parametrize("bad", ["not base64!!", "", base64.b64encode(b"short").decode()])
def test_garbage_ciphertext_rejected(bad):
    with pytest.raises(DecryptError):
        crypto().decrypt(bad)


@pytest.mark.parametrize("key", ["short", "!" * 43, AES_KEY[:-1] + "*"])
def test_bad_aes_key_is_a_settings_error(key):
    with pytest.raises(SettingsError):
        WeComCrypto(TOKEN, key, CORP_ID)
