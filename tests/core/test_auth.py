"""synctv.core.auth: password hashes, bearer tokens and URL signatures. Pure."""

from __future__ import annotations

import hashlib
import hmac
import re

import pytest

from synctv.core import auth
from synctv.core.errors import Unauthorized

T0 = 1_700_000_000_000
SECRET = "s3cret-for-tests"


def test_password_hash_verifies_only_the_right_password():
    """A hash verifies its password, not another; each hash has its own salt."""
    encoded = auth.hash_password("hunter22", n=2**4)
    assert encoded.startswith("scrypt$16$8$1$")
    assert auth.verify_password("hunter22", encoded)
    assert not auth.verify_password("hunter23", encoded)
    assert encoded != auth.hash_password("hunter22", n=2**4)


def test_the_cost_travels_with_the_hash():
    """A hash made at one cost still verifies after the default cost changes."""
    cheap = auth.hash_password("pw", n=2**2)
    assert auth.verify_password("pw", cheap)
    assert auth.verify_password("pw", auth.hash_password("pw"))  # the default cost


@pytest.mark.parametrize("encoded", [
    "", "plain", "md5$1$2$3$4$5", "scrypt$x$8$1$AA$AA", "scrypt$3$8$1$AA$AA", "scrypt$16$8$1$!!$AA",
    "scrypt$1099511627776$8$1$AA$AA",
])
def test_malformed_hashes_never_verify_and_never_raise(encoded):
    """A corrupt stored hash (bad scheme, cost, base64, absurd memory) is just 'no'."""
    assert auth.verify_password("pw", encoded) is False


def test_token_round_trip():
    """issue_token then read_token gives back the user, generation and expiry."""
    token, expires = auth.issue_token(SECRET, "u1", 3, T0, ttl_ms=1000)
    assert expires == T0 + 1000
    assert auth.read_token(SECRET, token, T0 + 999) == auth.TokenClaims("u1", 3, T0 + 1000)


def test_token_expires_exactly_at_its_expiry():
    """At expires_ms the token is refused as expired."""
    token, expires = auth.issue_token(SECRET, "u1", 0, T0, ttl_ms=1000)
    with pytest.raises(Unauthorized, match="expired"):
        auth.read_token(SECRET, token, expires)


def test_tampered_or_foreign_tokens_are_refused():
    """Another secret's signature, an edited payload or a swapped signature are refused."""
    token, _ = auth.issue_token(SECRET, "u1", 0, T0)
    with pytest.raises(Unauthorized, match="not valid"):
        auth.read_token("other", token, T0)
    _, sig = token.split(".")
    other_payload = auth.issue_token(SECRET, "u2", 0, T0)[0].split(".")[0]
    with pytest.raises(Unauthorized):
        auth.read_token(SECRET, f"{other_payload}.{sig}", T0)


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "é.é", "....", "YQ.YQ"])
def test_garbage_tokens_are_unauthorized(token):
    """Anything that is not a well-formed token raises Unauthorized, never something else."""
    with pytest.raises(Unauthorized):
        auth.read_token(SECRET, token, T0)


def test_signed_payload_with_bad_fields_is_malformed():
    """A correctly signed payload that does not parse (a non-number generation) is refused."""
    payload = b"u1:notanumber:5"
    signature = hmac.new(SECRET.encode(), payload, hashlib.sha256).digest()
    with pytest.raises(Unauthorized, match="malformed"):
        auth.read_token(SECRET, f"{auth._b64(payload)}.{auth._b64(signature)}", T0)


def test_url_signatures():
    """sign/check_signature accept the exact message only."""
    signature = auth.sign(SECRET, "room/a/media/b:99")
    assert auth.check_signature(SECRET, "room/a/media/b:99", signature)
    assert not auth.check_signature(SECRET, "room/a/media/b:98", signature)
    assert not auth.check_signature("other", "room/a/media/b:99", signature)


def test_ids_secrets_and_passwords_are_random_and_url_safe():
    """new_id is 24 hex characters; secrets and passwords are URL-safe and differ per call."""
    assert re.fullmatch(r"[0-9a-f]{24}", auth.new_id())
    assert auth.new_id() != auth.new_id()
    for make in (auth.new_secret, auth.new_password):
        value = make()
        assert re.fullmatch(r"[A-Za-z0-9_-]{20,}", value) and value != make()


def test_generated_passwords_are_shell_and_option_safe() -> None:
    """Generated passwords (root's first one) are letters and digits only, never starting with
    ``-``, so ``synctv login root --password "$(cat root-password)"`` always parses."""
    from synctv.core.auth import PASSWORD_ALPHABET, new_password

    seen = {new_password() for _ in range(200)}
    assert len(seen) == 200
    for password in seen:
        assert len(password) == 24 and set(password) <= set(PASSWORD_ALPHABET)
        assert password.isalnum()
