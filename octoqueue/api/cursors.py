"""Signed listing cursors.

A store's cursor is whatever that store needs to continue a listing — for the GitHub store, the query of the next
page of its own issue listing (never a URL: the store itself refuses to leave its API root). The API signs every
cursor it gives out and refuses any it did not sign, so a client cannot make up positions. The key is kept in the
store's settings, so every server process on the store accepts the others' cursors; on GitHub the settings issue
is the one a store-written ref names, which no job can pass for.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading

from octoqueue.stores import Store

SETTING = "api_cursor_key"


class InvalidCursor(ValueError):
    """The cursor was not issued by this server (or was altered)."""


class CursorSigner:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._key: bytes | None = None
        self._lock = threading.Lock()

    def _secret(self) -> bytes:
        with self._lock:
            if self._key is None:
                stored = self.store.get_setting(SETTING)
                if not isinstance(stored, str) or len(stored) < 32:
                    stored = secrets.token_hex(32)
                    self.store.set_setting(SETTING, stored)
                self._key = stored.encode()
            return self._key

    def _mac(self, raw: bytes) -> str:
        return hmac.new(self._secret(), raw, hashlib.sha256).hexdigest()[:32]

    def sign(self, cursor: str | None) -> str:
        """The client's form of a store cursor ("" for none)."""
        if cursor is None:
            return ""
        raw = cursor.encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=") + "." + self._mac(raw)

    def open(self, token: str | None) -> str | None:
        """The store cursor inside a client's cursor; raise :class:`InvalidCursor` when it is not ours."""
        if not token:
            return None
        body, _, mac = token.rpartition(".")
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError):
            raise InvalidCursor(token) from None
        if not body or not hmac.compare_digest(mac.encode(), self._mac(raw).encode()):
            raise InvalidCursor(token)
        return raw.decode("utf-8", "replace")


__all__ = ["CursorSigner", "InvalidCursor"]
