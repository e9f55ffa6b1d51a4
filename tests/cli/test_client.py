"""Client helpers: server URL normalization (the token-file key) and path encoding."""

from __future__ import annotations

import pytest

from synctv.cli.client import UsageError, api_path, normalize_server


@pytest.mark.parametrize(("given", "expected"), [
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    ("HTTP://Example.ORG:8080/", "http://example.org:8080"),
    ("https://example.org/synctv/", "https://example.org/synctv"),
    ("http://[::1]:8080", "http://[::1]:8080"),
    (" http://host ", "http://host"),
])
def test_normalize_server(given: str, expected: str) -> None:
    """Scheme and host lower-case, no trailing slash, port and path prefix kept."""
    assert normalize_server(given) == expected


@pytest.mark.parametrize("bad", ["localhost:8080", "ftp://host", "http://", "http://host:99999",
                                 "http://host/?q=1"])
def test_normalize_server_rejects(bad: str) -> None:
    """Anything but http(s)://HOST[:PORT][/prefix] is a usage error."""
    with pytest.raises(UsageError):
        normalize_server(bad)


def test_api_path_encodes_each_segment() -> None:
    """Each segment is one path segment, whatever it contains."""
    assert api_path("rooms", "a b/ü#?%", "media") == "/api/rooms/a%20b%2F%C3%BC%23%3F%25/media"
