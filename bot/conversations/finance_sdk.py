"""The conversation-archive SDK (会话存档 Finance SDK) behind a small interface.

`CtypesFinanceSdk` loads WeCom's C library (libWeWorkFinanceSdk_C.so) when WECOM_FINANCE_SDK points
at it. Its calls block, so callers run them in an executor. Media is binary: bytes are copied with
their length (`string_at(ptr, len)`), never as C strings that would stop at the first NUL.
"""
from __future__ import annotations

import ctypes
import json
from typing import Protocol

NETWORK_ERROR = 10001
NO_PRIVATE_KEY = 10007


class SdkError(Exception):
    def __init__(self, code: int, where: str) -> None:
        super().__init__(f"finance SDK {where} failed with {code}")
        self.code = code


class FinanceSdk(Protocol):
    def get_chat_data(self, seq: int, limit: int, timeout: int = 10) -> list[dict]:
        """Encrypted items after `seq`: {seq, msgid, publickey_ver, encrypt_random_key, encrypt_chat_msg}."""

    def decrypt_data(self, random_key: bytes, encrypt_chat_msg: str) -> dict:
        """The decrypted chatdata record."""

    def get_media_data(self, sdkfileid: str, indexbuf: str, timeout: int = 10) -> tuple[bytes, str, bool]:
        """One chunk: (data, next indexbuf, is_finish)."""

    def close(self) -> None: ...


class CtypesFinanceSdk:
    """WeCom's C SDK through ctypes; one instance per worker, freed on close."""

    def __init__(self, library_path: str, corp_id: str, secret: str, proxy: str = "", proxy_password: str = "") -> None:
        lib = ctypes.CDLL(library_path)
        lib.NewSdk.restype = ctypes.c_void_p
        lib.Init.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
        lib.GetChatData.argtypes = [ctypes.c_void_p, ctypes.c_ulonglong, ctypes.c_uint, ctypes.c_char_p, ctypes.c_char_p,
                                    ctypes.c_int, ctypes.c_void_p]
        lib.DecryptData.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p]
        lib.NewSlice.restype = ctypes.c_void_p
        lib.FreeSlice.argtypes = [ctypes.c_void_p]
        lib.GetContentFromSlice.argtypes = [ctypes.c_void_p]
        lib.GetContentFromSlice.restype = ctypes.c_void_p
        lib.GetSliceLen.argtypes = [ctypes.c_void_p]
        lib.NewMediaData.restype = ctypes.c_void_p
        lib.FreeMediaData.argtypes = [ctypes.c_void_p]
        lib.GetMediaData.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                                     ctypes.c_int, ctypes.c_void_p]
        lib.GetOutIndexBuf.argtypes = [ctypes.c_void_p]
        lib.GetOutIndexBuf.restype = ctypes.c_char_p
        lib.GetData.argtypes = [ctypes.c_void_p]
        lib.GetData.restype = ctypes.c_void_p
        lib.GetDataLen.argtypes = [ctypes.c_void_p]
        lib.IsMediaDataFinish.argtypes = [ctypes.c_void_p]
        lib.DestroySdk.argtypes = [ctypes.c_void_p]
        self._lib = lib
        self._proxy = proxy.encode()
        self._passwd = proxy_password.encode()
        self._sdk = lib.NewSdk()
        code = lib.Init(self._sdk, corp_id.encode(), secret.encode())
        if code != 0:
            lib.DestroySdk(self._sdk)
            self._sdk = None
            raise SdkError(code, "Init")

    def _slice_bytes(self, sl) -> bytes:
        return ctypes.string_at(self._lib.GetContentFromSlice(sl), self._lib.GetSliceLen(sl))

    def get_chat_data(self, seq: int, limit: int, timeout: int = 10) -> list[dict]:
        sl = self._lib.NewSlice()
        try:
            code = self._lib.GetChatData(self._sdk, seq, limit, self._proxy, self._passwd, timeout, sl)
            if code != 0:
                raise SdkError(code, "GetChatData")
            payload = json.loads(self._slice_bytes(sl))
        finally:
            self._lib.FreeSlice(sl)
        if payload.get("errcode", 0):
            raise SdkError(int(payload["errcode"]), "GetChatData")
        return list(payload.get("chatdata", []))

    def decrypt_data(self, random_key: bytes, encrypt_chat_msg: str) -> dict:
        sl = self._lib.NewSlice()
        try:
            code = self._lib.DecryptData(random_key, encrypt_chat_msg.encode(), sl)
            if code != 0:
                raise SdkError(code, "DecryptData")
            return json.loads(self._slice_bytes(sl))
        finally:
            self._lib.FreeSlice(sl)

    def get_media_data(self, sdkfileid: str, indexbuf: str, timeout: int = 10) -> tuple[bytes, str, bool]:
        md = self._lib.NewMediaData()
        try:
            code = self._lib.GetMediaData(self._sdk, indexbuf.encode(), sdkfileid.encode(), self._proxy, self._passwd,
                                          timeout, md)
            if code != 0:
                raise SdkError(code, "GetMediaData")
            data = ctypes.string_at(self._lib.GetData(md), self._lib.GetDataLen(md))
            nxt = (self._lib.GetOutIndexBuf(md) or b"").decode()
            return data, nxt, bool(self._lib.IsMediaDataFinish(md))
        finally:
            self._lib.FreeMediaData(md)

    def close(self) -> None:
        if self._sdk:
            self._lib.DestroySdk(self._sdk)
            self._sdk = None
