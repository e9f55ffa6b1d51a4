"""The nodes' internal door signature (synctv.core.node_auth): what it admits and what it refuses."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from synctv.core import node_auth

KEY = node_auth.derive_key("s" * 43)
PATH = "/api/internal/live/room1/media1/live.flv"
NOW = 1_700_000_000_000


def test_a_signature_names_its_node_for_its_own_method_and_path_until_it_expires():
    """A fresh signature is accepted and names the signing node, up to and including its expiry."""
    header = node_auth.sign(KEY, "GET", PATH, "node-b:8080", NOW)
    assert node_auth.verify(KEY, header, "GET", PATH, NOW) == "node-b:8080"
    assert node_auth.verify(KEY, header, "GET", PATH, NOW + node_auth.RELAY_TTL_MS) == "node-b:8080"
    assert node_auth.verify(KEY, header, "GET", PATH, NOW + node_auth.RELAY_TTL_MS + 1) is None


@pytest.mark.parametrize("method, path, key", [
    ("GET", "/api/internal/live/room1/media2/live.flv", KEY),  # another stream
    ("POST", PATH, KEY),  # another method
    ("GET", PATH, node_auth.derive_key("t" * 43)),  # another cluster's secret
])
def test_a_signature_covers_nothing_else(method, path, key):
    header = node_auth.sign(KEY, "GET", PATH, "node-b:8080", NOW)
    assert node_auth.verify(key, header, method, path, NOW) is None


def test_tampered_malformed_or_long_lived_headers_are_refused():
    """Changing the node, the expiry or the signature, another scheme, junk, or an expiry further
    ahead than MAX_AHEAD_MS (a long-lived signature, even a correctly signed one) are refused."""
    header = node_auth.sign(KEY, "GET", PATH, "node-b:8080", NOW)
    scheme, exp, node, sig = header.split(" ")
    flipped = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    far = node_auth.sign(KEY, "GET", PATH, "node-b:8080", NOW, ttl_ms=node_auth.MAX_AHEAD_MS + 1)
    for bad in (f"{scheme} {exp} node-c:8080 {sig}", f"{scheme} {int(exp) + 1} {node} {sig}",
                f"{scheme} {exp} {node} {flipped}", f"Bearer {exp} {node} {sig}", f"{scheme} {exp} {node}",
                "", None, "SynctvNode " + "9" * 600, f"{scheme} -1 {node} {sig}", far):
        assert node_auth.verify(KEY, bad, "GET", PATH, NOW) is None, bad


def test_the_key_is_not_the_secret_itself():
    """Node signatures use a key derived for this use: an HMAC made with the raw secret (as tokens
    and signed links are) is not a node signature."""
    secret = "s" * 43
    header = node_auth.sign(KEY, "GET", PATH, "node-b:8080", NOW)
    _, exp, node, _ = header.split(" ")
    raw = hmac.new(secret.encode(), f"relay\nGET\n{PATH}\n{node}\n{exp}".encode(), hashlib.sha256).hexdigest()
    assert node_auth.verify(KEY, f"SynctvNode {exp} {node} {raw}", "GET", PATH, NOW) is None
    assert KEY != secret.encode()


def test_a_node_id_with_spaces_cannot_be_signed():
    with pytest.raises(ValueError):
        node_auth.sign(KEY, "GET", PATH, "node b", NOW)
