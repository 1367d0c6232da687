"""WeCom callback cryptography (企业微信 加解密方案).

signature = sha1(sorted(token, timestamp, nonce, encrypt) joined)
ciphertext = AES-256-CBC(key = b64decode(EncodingAESKey + "="), iv = key[:16],
                         PKCS#7 to 32-byte blocks,
                         16 random bytes + uint32 BE length + message + receiveid)

Two defects common in public SDKs are avoided on purpose: signatures are compared in
constant time, and a pad byte outside 1..32 (or inconsistent padding) is rejected.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
import time
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from bot.settings import validate_encoding_aes_key

BLOCK = 32


class CallbackCryptoError(Exception):
    """Base of all callback verification failures; `reason` is a short metric label."""

    reason = "crypto"


class SignatureError(CallbackCryptoError):
    reason = "signature"


class TimestampError(CallbackCryptoError):
    reason = "timestamp"


class DecryptError(CallbackCryptoError):
    reason = "decrypt"


class ReceiverError(CallbackCryptoError):
    reason = "receiveid"


def signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    parts = sorted([token, timestamp, nonce, encrypt])
    return hashlib.sha1("".join(parts).encode("utf-8")).hexdigest()


def pkcs7_pad(data: bytes, block: int = BLOCK) -> bytes:
    n = block - len(data) % block
    return data + bytes([n]) * n


def pkcs7_unpad(data: bytes, block: int = BLOCK) -> bytes:
    if not data or len(data) % 16:
        raise DecryptError("ciphertext length is not a multiple of the AES block")
    n = data[-1]
    if n < 1 or n > block or n > len(data):
        raise DecryptError("invalid padding byte")
    if data[-n:] != bytes([n]) * n:
        raise DecryptError("inconsistent padding")
    return data[:-n]


@dataclass(frozen=True)
class EncryptedReply:
    encrypt: str
    signature: str
    timestamp: str
    nonce: str

    def to_xml(self) -> str:
        return (
            "<xml><Encrypt><![CDATA[{e}]]></Encrypt><MsgSignature><![CDATA[{s}]]></MsgSignature>"
            "<TimeStamp>{t}</TimeStamp><Nonce><![CDATA[{n}]]></Nonce></xml>"
        ).format(e=self.encrypt, s=self.signature, t=self.timestamp, n=self.nonce)


class WeComCrypto:
    def __init__(self, token: str, encoding_aes_key: str, receive_id: str, max_clock_skew: int = 300) -> None:
        self._token = token
        self._key = validate_encoding_aes_key(encoding_aes_key)
        self._iv = self._key[:16]
        self._receive_id = receive_id.encode("utf-8")
        self._max_skew = max_clock_skew

    # --- verification -------------------------------------------------------------------
    def verify(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str, now: float | None = None) -> None:
        try:
            expected = signature(self._token, timestamp, nonce, encrypt)
            given = (msg_signature or "").lower().encode()
        except UnicodeEncodeError:  # a lone surrogate: no string WeCom signs (found by tests/fuzz)
            raise SignatureError("parameters are not valid UTF-8 text") from None
        if not hmac.compare_digest(expected.encode(), given):
            raise SignatureError("msg_signature does not match")
        if self._max_skew:
            # Digits only and at most 12 of them: int() of hundreds of digits works, but comparing
            # it with a float clock raised OverflowError (a 500 instead of a 403).
            if not isinstance(timestamp, str) or not timestamp.isascii() or not timestamp.isdigit() \
                    or len(timestamp) > 12:
                raise TimestampError("timestamp is not an integer of at most 12 digits")
            ts = int(timestamp)
            now = time.time() if now is None else now
            if abs(int(now) - ts) > self._max_skew:
                raise TimestampError("timestamp outside the allowed clock skew")

    # --- AES ----------------------------------------------------------------------------
    def decrypt(self, encrypt: str) -> str:
        try:
            raw = base64.b64decode(encrypt, validate=True)
        except (binascii.Error, ValueError):
            raise DecryptError("Encrypt is not base64") from None
        if not raw or len(raw) % 16:
            raise DecryptError("ciphertext length is not a multiple of the AES block")
        decryptor = Cipher(algorithms.AES(self._key), modes.CBC(self._iv)).decryptor()
        plain = pkcs7_unpad(decryptor.update(raw) + decryptor.finalize())
        if len(plain) < 20:
            raise DecryptError("plaintext too short")
        (length,) = struct.unpack(">I", plain[16:20])
        if 20 + length > len(plain):
            raise DecryptError("declared length exceeds plaintext")
        message = plain[20 : 20 + length]
        receive_id = plain[20 + length :]
        if not hmac.compare_digest(receive_id, self._receive_id):
            raise ReceiverError("receiveid does not match the configured corp id")
        try:
            return message.decode("utf-8")
        except UnicodeDecodeError:
            raise DecryptError("message is not UTF-8") from None

    def encrypt(self, message: str, random_prefix: bytes | None = None) -> str:
        prefix = random_prefix if random_prefix is not None else os.urandom(16)
        if len(prefix) != 16:
            raise ValueError("random prefix must be 16 bytes")
        body = message.encode("utf-8")
        plain = pkcs7_pad(prefix + struct.pack(">I", len(body)) + body + self._receive_id)
        encryptor = Cipher(algorithms.AES(self._key), modes.CBC(self._iv)).encryptor()
        return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode("ascii")

    # --- the two callback shapes -------------------------------------------------------------
    def verify_url(self, msg_signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        self.verify(msg_signature, timestamp, nonce, echostr)
        return self.decrypt(echostr)

    def open(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> str:
        self.verify(msg_signature, timestamp, nonce, encrypt)
        return self.decrypt(encrypt)

    def seal(self, message: str, nonce: str, timestamp: str | None = None) -> EncryptedReply:
        """Encrypt and sign a passive reply."""
        timestamp = timestamp or str(int(time.time()))
        enc = self.encrypt(message)
        return EncryptedReply(enc, signature(self._token, timestamp, nonce, enc), timestamp, nonce)
