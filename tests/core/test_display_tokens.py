"""Display tokens: signed for a display id, distinct from user tokens in both directions."""

from __future__ import annotations

import pytest

from synctv.core import auth
from synctv.core.errors import Unauthorized

SECRET = "s" * 32
NOW = 1_700_000_000_000


def test_a_display_token_reads_back():
    """Issued for a display id, it reads back with that id and its expiry."""
    token, expires = auth.issue_display_token(SECRET, "d1", NOW, ttl_ms=1000)
    assert auth.is_display_token(token) and expires == NOW + 1000
    assert auth.read_display_token(SECRET, token, NOW + 999) == auth.DisplayClaims("d1", NOW + 1000)


def test_an_expired_display_token_is_refused():
    """At its expiry it stops working."""
    token, _ = auth.issue_display_token(SECRET, "d1", NOW, ttl_ms=1000)
    with pytest.raises(Unauthorized, match="expired"):
        auth.read_display_token(SECRET, token, NOW + 1000)


def test_user_and_display_tokens_cannot_be_confused():
    """A user token is not a display token and a display token is not a user token."""
    user_token, _ = auth.issue_token(SECRET, "u1", 0, NOW)
    display_token, _ = auth.issue_display_token(SECRET, "u1", NOW)
    assert not auth.is_display_token(user_token)
    with pytest.raises(Unauthorized):
        auth.read_display_token(SECRET, user_token, NOW)
    with pytest.raises(Unauthorized):
        auth.read_token(SECRET, display_token, NOW)
    # the same payload signed as a user token does not verify as a display token
    forged = auth.DISPLAY_TOKEN_PREFIX + user_token
    with pytest.raises(Unauthorized):
        auth.read_display_token(SECRET, forged, NOW)


@pytest.mark.parametrize("token", ["dsp.", "dsp.x", "dsp.a.b.c", "dsp.!!.??", "dsp." + "A" * 40 + ".AAAA"])
def test_malformed_display_tokens_are_unauthorized(token):
    """Garbage after the prefix is a clean 401, never a crash."""
    with pytest.raises(Unauthorized):
        auth.read_display_token(SECRET, token, NOW)


def test_another_secret_refuses_the_token():
    """Signed under the server secret: another server's token does not verify."""
    token, _ = auth.issue_display_token(SECRET, "d1", NOW)
    with pytest.raises(Unauthorized, match="not valid"):
        auth.read_display_token("t" * 32, token, NOW)
