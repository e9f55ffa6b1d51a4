"""Passwords and tokens. Pure: callers pass the time and the secret.

Passwords: ``hashlib.scrypt`` with a per-user random salt, encoded as
``scrypt$n$r$p$salt_b64$hash_b64`` so the cost can rise later without breaking old hashes.

Tokens: ``<payload_b64>.<sig_b64>`` where the payload is ``user_id:generation:expires_ms`` and the
signature is HMAC-SHA256 under the server secret. Bumping the user's ``token_generation`` revokes
every token issued before.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

import attrs

from synctv.core.errors import Unauthorized

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
TOKEN_TTL_MS = 30 * 24 * 3600 * 1000


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, *, n: int = SCRYPT_N) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return f"scrypt${n}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = encoded.split("$")
        if scheme != "scrypt":
            return False
        expected = _unb64(digest)
        actual = hashlib.scrypt(
            password.encode("utf-8"), salt=_unb64(salt), n=int(n), r=int(r), p=int(p),
            dklen=len(expected), maxmem=256 * 1024 * 1024,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def new_secret() -> str:
    return _b64(secrets.token_bytes(32))


def new_id() -> str:
    """A short random id for users, rooms and media items (96 bits, URL-safe)."""
    return secrets.token_hex(12)


PASSWORD_ALPHABET = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def new_password(length: int = 24) -> str:
    """A random password of letters and digits (~136 bits at 24 characters), safe to paste
    into a shell or after ``--password`` (it can never start with ``-``); no look-alikes (l, 1,
    I, O, 0)."""
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(length))


@attrs.frozen
class TokenClaims:
    user_id: str
    generation: int
    expires_ms: int


def issue_token(secret: str, user_id: str, generation: int, now_ms: int, ttl_ms: int = TOKEN_TTL_MS) -> tuple[str, int]:
    """Return ``(token, expires_ms)``."""
    expires = now_ms + ttl_ms
    payload = f"{user_id}:{generation}:{expires}".encode()
    sig = hmac.new(secret.encode(), payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(sig)}", expires


def read_token(secret: str, token: str, now_ms: int) -> TokenClaims:
    """Check signature and expiry; the caller still checks ``generation`` against the user."""
    try:
        payload_b64, sig_b64 = token.split(".")
        payload = _unb64(payload_b64)
        sig = _unb64(sig_b64)
    except (ValueError, TypeError):
        raise Unauthorized("the token is malformed; log in again") from None
    expected = hmac.new(secret.encode(), payload, hashlib.sha256).digest()
    if not hmac.compare_digest(sig, expected):
        raise Unauthorized("the token is not valid; log in again")
    try:
        user_id, generation, expires = payload.decode("ascii").split(":")
        claims = TokenClaims(user_id, int(generation), int(expires))
    except (ValueError, UnicodeDecodeError):
        raise Unauthorized("the token is malformed; log in again") from None
    if claims.expires_ms <= now_ms:
        raise Unauthorized("the token has expired; log in again")
    return claims


def sign(secret: str, message: str) -> str:
    """A URL-safe HMAC of ``message``: for signed, expiring URLs (proxy, live)."""
    return _b64(hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest())


def check_signature(secret: str, message: str, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, message), signature)


# -- display tokens --------------------------------------------------------------------------
# A screen of a display room holds a token for its display id (from POST
# /api/displays/{public_id}/session). It starts with DISPLAY_TOKEN_PREFIX and its signature covers
# a domain tag, so a display token never reads as a user token (three dot-separated parts: the
# user-token reader calls it malformed) and a user token never reads as a display token.

DISPLAY_TOKEN_PREFIX = "dsp."
DISPLAY_TOKEN_TTL_MS = 7 * 24 * 3600 * 1000
_DISPLAY_DOMAIN = b"synctv-display-token\x00"


@attrs.frozen
class DisplayClaims:
    display_id: str
    expires_ms: int


def is_display_token(token: str) -> bool:
    return token.startswith(DISPLAY_TOKEN_PREFIX)


def issue_display_token(
    secret: str, display_id: str, now_ms: int, ttl_ms: int = DISPLAY_TOKEN_TTL_MS
) -> tuple[str, int]:
    """Return ``(token, expires_ms)`` for the screen ``display_id``."""
    if ":" in display_id:
        raise ValueError("a display id must not contain ':'")
    expires = now_ms + ttl_ms
    payload = f"{display_id}:{expires}".encode()
    sig = hmac.new(secret.encode(), _DISPLAY_DOMAIN + payload, hashlib.sha256).digest()
    return f"{DISPLAY_TOKEN_PREFIX}{_b64(payload)}.{_b64(sig)}", expires


def read_display_token(secret: str, token: str, now_ms: int) -> DisplayClaims:
    """Check a display token's signature and expiry; the caller checks the display still exists."""
    if not is_display_token(token):
        raise Unauthorized("not a display token")
    try:
        payload_b64, sig_b64 = token[len(DISPLAY_TOKEN_PREFIX):].split(".")
        payload = _unb64(payload_b64)
        sig = _unb64(sig_b64)
    except (ValueError, TypeError):
        raise Unauthorized("the display token is malformed; open a new display session") from None
    expected = hmac.new(secret.encode(), _DISPLAY_DOMAIN + payload, hashlib.sha256).digest()
    if not hmac.compare_digest(sig, expected):
        raise Unauthorized("the display token is not valid; open a new display session")
    try:
        display_id, expires = payload.decode("ascii").split(":")
        claims = DisplayClaims(display_id, int(expires))
    except (ValueError, UnicodeDecodeError):
        raise Unauthorized("the display token is malformed; open a new display session") from None
    if claims.expires_ms <= now_ms:
        raise Unauthorized("the display token has expired; open a new display session")
    return claims
