"""The nodes' internal door: how one node proves to another that a relay request comes from a node.

Nodes share the token secret (it lives in the database). A relay request (node B pulling the
live stream that node A ingests) carries ``Authorization: SynctvNode EXP NODE SIG`` where

- ``EXP`` is the request's expiry in server milliseconds (signed ``RELAY_TTL_MS`` ahead);
- ``NODE`` is the asking node's id (``host:port``; no spaces), named in logs and the stream info;
- ``SIG`` is hex HMAC-SHA256 over ``"relay\\n" + method + "\\n" + path + "\\n" + NODE + "\\n" + EXP``
  with a key derived from the secret for this use only (``derive_key``), so a node signature is
  never a valid token, link or proxy signature, and none of those is a node signature.

``verify`` refuses a malformed header, a wrong signature (compared in constant time), a request
signed for another path or method, an expired one, and one whose expiry lies further ahead than
``MAX_AHEAD_MS`` (a signature can never be made long-lived, even by a node whose clock is off).
It costs one HMAC and reads nothing else: no database, no stream lookup happens before it.

The ``Authorization`` header (not a custom one) is deliberate: HTTP clients drop it on a redirect
to another origin, so a signature never follows a redirect off the node it was made for.
"""

from __future__ import annotations

import hashlib
import hmac
import re

SCHEME = "SynctvNode"
RELAY_TTL_MS = 60_000
MAX_AHEAD_MS = 120_000
MAX_HEADER = 512
_NODE = re.compile(r"^[A-Za-z0-9._:\[\]-]{1,200}$")
_HEX = re.compile(r"^[0-9a-f]{64}$")


def derive_key(secret: str) -> bytes:
    """The key of node signatures: HMAC of the shared secret with this use's label."""
    return hmac.new(secret.encode("utf-8"), b"synctv node relay v1", hashlib.sha256).digest()


def _mac(key: bytes, method: str, path: str, node: str, exp: int) -> str:
    message = f"relay\n{method}\n{path}\n{node}\n{exp}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def sign(key: bytes, method: str, path: str, node: str, now_ms: int, ttl_ms: int = RELAY_TTL_MS) -> str:
    """The ``Authorization`` header value of a relay request by ``node`` for ``method path``."""
    if not _NODE.match(node):
        raise ValueError(f"a node id such as host:8080, not {node[:60]!r}")
    exp = now_ms + ttl_ms
    return f"{SCHEME} {exp} {node} {_mac(key, method, path, node, exp)}"


def verify(key: bytes, header: str | None, method: str, path: str, now_ms: int) -> str | None:
    """The asking node's id when ``header`` is a valid, current signature of ``method path``;
    None otherwise (the caller answers the same way whatever was wrong)."""
    if not header or len(header) > MAX_HEADER:
        return None
    parts = header.split(" ")
    if len(parts) != 4 or parts[0] != SCHEME:
        return None
    _, raw_exp, node, sig = parts
    if not raw_exp.isdigit() or len(raw_exp) > 16 or not _NODE.match(node) or not _HEX.match(sig):
        return None
    exp = int(raw_exp)
    if not now_ms <= exp <= now_ms + MAX_AHEAD_MS:
        return None
    if not hmac.compare_digest(sig, _mac(key, method, path, node, exp)):
        return None
    return node
