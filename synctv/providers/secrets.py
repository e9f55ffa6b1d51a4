"""Account secrets at rest: AES-256-GCM under a key that is not in the database.

The key is 32 random bytes, base64 in a file (``<data>/provider-key`` by default, mode 0600,
created on first start; ``[providers] key_file`` names a shared one when several nodes use one
database). A sealed value is ``v1.`` + base64url(nonce || ciphertext || tag) of a JSON object;
the associated data binds it to its account and field (``context``), so a blob copied to another
account or field does not open. Losing or changing the key makes every stored secret unreadable
(``SecretUnreadable``): the accounts must then be linked again; nothing else is affected.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
_NONCE_BYTES = 12
_PREFIX = "v1."


class SecretUnreadable(Exception):
    """A sealed value does not open with this key (another key, or a damaged value)."""


class KeyFileError(Exception):
    """The key file cannot be read or made; ``str()`` is one line for the operator."""


def load_or_create_key(path: Path) -> bytes:
    """The key in ``path``, made (0600, exclusively, so two starts agree) when absent."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    except OSError as e:
        raise KeyFileError(f"cannot create the provider key file {path}: {e.strerror or e}") from None
    else:
        with os.fdopen(fd, "w") as f:
            f.write(base64.b64encode(os.urandom(KEY_BYTES)).decode("ascii") + "\n")
    try:
        text = path.read_text("ascii").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise KeyFileError(f"cannot read the provider key file {path}: {getattr(e, 'strerror', None) or e}") from None
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise KeyFileError(f"the provider key file {path} does not hold a base64 {KEY_BYTES}-byte key")
    return key


class SecretBox:
    """Seals and opens JSON objects (see the module docstring)."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"the key must be {KEY_BYTES} bytes")
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "SecretBox(<key>)"

    def seal(self, value: dict[str, Any], *, context: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        plain = json.dumps(value, separators=(",", ":")).encode("utf-8")
        sealed = nonce + self._aead.encrypt(nonce, plain, context.encode("utf-8"))
        return _PREFIX + base64.urlsafe_b64encode(sealed).decode("ascii")

    def open(self, blob: str, *, context: str) -> dict[str, Any]:
        if not blob.startswith(_PREFIX):
            raise SecretUnreadable("not a sealed value")
        try:
            raw = base64.urlsafe_b64decode(blob[len(_PREFIX):].encode("ascii"))
            plain = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context.encode("utf-8"))
            value = json.loads(plain)
        except (InvalidTag, binascii.Error, ValueError, UnicodeError):
            raise SecretUnreadable("the sealed value does not open with this server's provider key") from None
        if not isinstance(value, dict):
            raise SecretUnreadable("the sealed value is not an object")
        return value
