"""Signing in to the workbench with an API key: a signed session cookie, CSRF tokens, its settings.

The key is presented once, on the sign-in form, and checked like any API key
(:func:`pathway.access.authenticate`). The cookie then holds ``<key id>.<key prefix>.<expiry>.<nonce>.<mac>``:
never the key itself. The MAC is an HMAC-SHA256 under a key derived from the server secret
(``PATHWAY_WEB_SESSION_SECRET``) and the key's stored sha256, which only the server has: a cookie
cannot be forged without the database, stops working when its key is revoked (within the key
cache's time), and expires. The cookie is HttpOnly, SameSite=Lax and, with
``PATHWAY_WEB_COOKIE_SECURE=true``, Secure. Every form that changes something carries a CSRF token
derived from the session (an HMAC of its nonce), checked on POST; the sign-in form, before any
session, uses a double-submit token (a random value in a cookie and in the form).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlmodel import Session

from pathway import access
from pathway.access import Caller, KeyCache, Role
from pathway.ingest import row_id, storable
from pathway.models import ApiKey

SESSION_COOKIE = "pw_session"
LOGIN_COOKIE = "pw_login"
COOKIE_PATH = "/workbench"
WORKBENCH_ROLES = (Role.ADMIN, Role.EHR, Role.TEAM)
_EXPIRY = re.compile(r"[0-9]{1,12}")  # epoch seconds, ASCII digits
_PLACEHOLDERS = {"changeme", "change-me", "secret", "password", "please-change-me", "xxx"}


class WebSettings(BaseSettings):
    """The workbench's own settings (``PATHWAY_WEB_*``), read once when the app starts."""

    model_config = SettingsConfigDict(
        env_prefix="PATHWAY_WEB_", frozen=True, extra="forbid", hide_input_in_errors=True
    )

    # Mixed into every session's MAC key. Optional: without it a cookie is still bound to its key's
    # stored sha256; with it, a copy of the database alone cannot forge one.
    session_secret: SecretStr | None = None
    cookie_secure: bool = False  # set on HTTPS deployments
    session_hours: float = Field(default=12, gt=0, le=24 * 14)
    # The dashboard's indicators are computed off the request and kept this long.
    dashboard_ttl_seconds: float = Field(default=600, ge=0)
    # How long the request that starts a dashboard computation waits for it before answering
    # "computing…" (a page that refreshes itself). 0: at once, whatever the team's size.
    dashboard_wait_seconds: float = Field(default=0, ge=0, le=60)

    @field_validator("session_secret")
    @classmethod
    def _real_secret(cls, secret: SecretStr | None) -> SecretStr | None:
        if secret is None:
            return None
        value = secret.get_secret_value()
        if value.lower() in _PLACEHOLDERS or len(value) < 32:
            raise ValueError("PATHWAY_WEB_SESSION_SECRET must be a random value of at least 32 characters")
        return secret


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class WebSession:
    """A signed-in browser: the key behind it and the CSRF token of its forms."""

    caller: Caller
    csrf: str
    expires: int


class SessionSigner:
    def __init__(self, settings: WebSettings) -> None:
        secret = settings.session_secret.get_secret_value() if settings.session_secret else ""
        self._secret = secret.encode()
        self.max_age = int(settings.session_hours * 3600)

    def _mac_key(self, stored_digest: str) -> bytes:
        return hmac.new(self._secret, stored_digest.encode(), hashlib.sha256).digest()

    def _mac(self, mac_key: bytes, key_id: int, prefix: str, expires: int, nonce: str) -> str:
        message = f"session|{key_id}|{prefix}|{expires}|{nonce}".encode()
        return _b64(hmac.new(mac_key, message, hashlib.sha256).digest())

    @staticmethod
    def _csrf(mac_key: bytes, nonce: str) -> str:
        return _b64(hmac.new(mac_key, f"csrf|{nonce}".encode(), hashlib.sha256).digest())[:32]

    def issue(self, key: ApiKey, now: datetime) -> str:
        """The cookie value of a new session for ``key`` (an active key just authenticated)."""
        assert key.id is not None
        expires = int(now.timestamp()) + self.max_age
        nonce = _b64(secrets.token_bytes(18))
        mac = self._mac(self._mac_key(key.secret_sha256), key.id, key.prefix, expires, nonce)
        return f"{key.id}.{key.prefix}.{expires}.{nonce}.{mac}"

    def verify(
        self, session: Session, value: str | None, now: datetime, cache: KeyCache
    ) -> WebSession | None:
        """The session behind a cookie value, or None (malformed, forged, expired, key revoked)."""
        if not value:
            return None
        parts = value.split(".")
        if len(parts) != 5:
            return None
        # Both numbers are the server's own (a key's row id, an expiry in epoch seconds): anything
        # else, "²" (a digit to str.isdigit, not to int) or 5,000 digits, is no session.
        key_id = row_id(parts[0])
        if key_id is None or _EXPIRY.fullmatch(parts[2]) is None:
            return None
        prefix, expires, nonce, mac = parts[1], int(parts[2]), parts[3], parts[4]
        if expires <= now.timestamp():
            return None
        found = _active_key(session, key_id, prefix, cache)
        if found is None:
            return None
        digest, caller = found
        mac_key = self._mac_key(digest)
        if not same_token(self._mac(mac_key, key_id, prefix, expires, nonce), mac):
            return None
        return WebSession(caller=caller, csrf=self._csrf(mac_key, nonce), expires=expires)


def _active_key(session: Session, key_id: int, prefix: str, cache: KeyCache) -> tuple[str, Caller] | None:
    """(stored digest, caller) of the active key ``key_id`` with this prefix (the key cache first)."""
    cached = cache.key(prefix)
    if cached is not None:
        return cached if cached[1].id == key_id else None
    key = session.get(ApiKey, key_id)
    if key is None or key.prefix != prefix or key.revoked_at is not None:
        return None
    caller = Caller(id=key_id, prefix=key.prefix, role=Role(key.role), team_id=key.team_id, name=key.name)
    cache.remember_key(key.secret_sha256, caller)
    return key.secret_sha256, caller


def sign_in(session: Session, presented: str, cache: KeyCache) -> tuple[ApiKey, Caller]:
    """The key behind ``presented`` if it may use the workbench (else Unauthenticated / Forbidden)."""
    if not storable(presented):  # not a key, and the database could not even look it up
        raise access.Unauthenticated("unknown or revoked API key", "api_key")
    caller = access.authenticate(session, presented.strip(), cache)
    if caller.role not in WORKBENCH_ROLES:
        raise access.Forbidden("this key cannot use the workbench")
    key = session.get(ApiKey, caller.id)
    if key is None or key.revoked_at is not None:
        raise access.Unauthenticated("unknown or revoked API key", "api_key")
    return key, caller


def new_login_token() -> str:
    return _b64(secrets.token_bytes(18))


def same_token(expected: str | None, given: str | None) -> bool:
    """Constant-time equality of two tokens; any text may arrive (compared as UTF-8 bytes, since
    ``compare_digest`` refuses non-ASCII ``str``)."""
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected).encode(), str(given).encode())
