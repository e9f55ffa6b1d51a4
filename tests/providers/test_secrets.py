"""Account secrets at rest: sealed with AES-GCM under a key file outside the database."""

from __future__ import annotations

import base64
import os
import stat

import pytest

from synctv.providers.secrets import KeyFileError, SecretBox, SecretUnreadable, load_or_create_key


def test_a_sealed_value_opens_only_with_its_key_and_context():
    """The clear text is not in the blob; another key, another context or a flipped byte fail cleanly."""
    box = SecretBox(os.urandom(32))
    blob = box.seal({"password": "hunter2-secret"}, context="account-1\npassword")
    assert "hunter2" not in blob and blob.startswith("v1.")
    assert box.open(blob, context="account-1\npassword") == {"password": "hunter2-secret"}
    with pytest.raises(SecretUnreadable):
        box.open(blob, context="account-2\npassword")
    with pytest.raises(SecretUnreadable):
        SecretBox(os.urandom(32)).open(blob, context="account-1\npassword")
    raw = bytearray(base64.urlsafe_b64decode(blob[3:]))
    raw[-1] ^= 1
    with pytest.raises(SecretUnreadable):
        box.open("v1." + base64.urlsafe_b64encode(bytes(raw)).decode(), context="account-1\npassword")
    for junk in ("", "v1.", "v1.!!!", "v2.abc", "v1." + base64.urlsafe_b64encode(b"short").decode()):
        with pytest.raises(SecretUnreadable):
            box.open(junk, context="x")
    assert "key" in repr(box) and str(box._aead) not in repr(box)


def test_the_key_file_is_made_once_private_and_reused(tmp_path):
    path = tmp_path / "provider-key"
    key = load_or_create_key(path)
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(path) == key


def test_a_bad_key_file_is_one_clear_line(tmp_path):
    path = tmp_path / "provider-key"
    path.write_text("not base64 at all\n")
    with pytest.raises(KeyFileError, match="does not hold a base64 32-byte key"):
        load_or_create_key(path)
    path.write_text(base64.b64encode(b"x" * 16).decode())
    with pytest.raises(KeyFileError):
        load_or_create_key(path)
    with pytest.raises(KeyFileError, match="cannot create"):
        load_or_create_key(tmp_path / "missing-dir" / "provider-key")
