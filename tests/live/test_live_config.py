"""The [live] config keys: defaults, accepted values, and one-line errors for bad ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from synctv.config import ConfigError, load_config


def _load(tmp_path: Path, text: str):
    path = tmp_path / "c.toml"
    path.write_text(text)
    return load_config(path, {"data": str(tmp_path / "data")})


def test_live_defaults_and_values(tmp_path: Path) -> None:
    """Every [live] key has a default and takes a valid value."""
    assert _load(tmp_path, "").live.hls_store == "memory"
    live = _load(tmp_path, '[live]\nhls_store = "file"\nflush_ms = 0\nlink_ttl_s = 600\n'
                           'rtmp_public_url = "rtmp://tv.example:1935/live"\n').live
    assert (live.hls_store, live.flush_ms, live.link_ttl_s) == ("file", 0, 600.0)
    assert live.rtmp_public_url == "rtmp://tv.example:1935/live"


@pytest.mark.parametrize("line, words", [
    ('hls_store = "disk"', "hls_store"),
    ("flush_ms = 5000", "flush_ms"),
    ("gop_cache_bytes = 10", "gop_cache_bytes"),
    ("viewer_buffer_bytes = 1", "viewer_buffer_bytes"),
    ("link_ttl_s = 1", "link_ttl_s"),
    ("pull_idle_s = 0", "pull_idle_s"),
    ('rtmp_public_url = "http://x"', "rtmp_public_url"),
    ("hls_max_bytes = 5", "hls_max_bytes"),
])
def test_bad_live_values_are_one_line_errors(tmp_path: Path, line: str, words: str) -> None:
    """A bad [live] value is refused with a message naming the key."""
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, f"[live]\n{line}\n")
    assert words in str(caught.value) and "\n" not in str(caught.value)
