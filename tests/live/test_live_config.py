"""The [live] config keys: defaults, accepted values, and one-line errors for bad ones."""

from __future__ import annotations

from pathlib import Path

import pytest
from twisted.internet.task import Clock

from synctv.config import ConfigError, load_config
from synctv.core.clock import ManualClock
from synctv.live.node import build_live_hub
from synctv.live.rtmp.protocol import RTMPFactory
from synctv.live.rtmp.session import RTMPLimits


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


def test_rtmp_bounds_defaults_values_and_the_hub(tmp_path: Path) -> None:
    """max_buffer_bytes (32 MiB), max_connections (256) and publish_timeout_s (10) have defaults,
    take values, and reach the live hub's RTMP limits, which the RTMP factory reads."""
    live = _load(tmp_path, "").live
    assert (live.max_buffer_bytes, live.max_connections, live.publish_timeout_s) == (32 << 20, 256, 10.0)
    config = _load(tmp_path, "[live]\nmax_buffer_bytes = 4194304\nmax_connections = 12\npublish_timeout_s = 3\n")
    hub = build_live_hub(config, store=None, clock=ManualClock(), secret="s" * 32, reactor=Clock(), node="n",
                         node_url="http://n", opener=None)
    assert hub.rtmp_limits == RTMPLimits(max_buffer_bytes=4 << 20, max_connections=12, publish_timeout_s=3.0)
    assert RTMPFactory(hub, scheduler=Clock()).limits == hub.rtmp_limits


@pytest.mark.parametrize("line, words", [
    ('hls_store = "disk"', "hls_store"),
    ("flush_ms = 5000", "flush_ms"),
    ("gop_cache_bytes = 10", "gop_cache_bytes"),
    ("viewer_buffer_bytes = 1", "viewer_buffer_bytes"),
    ("link_ttl_s = 1", "link_ttl_s"),
    ("pull_idle_s = 0", "pull_idle_s"),
    ('rtmp_public_url = "http://x"', "rtmp_public_url"),
    ("hls_max_bytes = 5", "hls_max_bytes"),
    ("max_buffer_bytes = 1000", "max_buffer_bytes"),
    ("max_buffer_bytes = 2147483648", "max_buffer_bytes"),
    ('max_buffer_bytes = "32MiB"', "max_buffer_bytes"),
    ("max_connections = 0", "max_connections"),
    ("max_connections = 1.5", "max_connections"),
    ("publish_timeout_s = 0", "publish_timeout_s"),
    ("publish_timeout_s = 3600", "publish_timeout_s"),
    ("max_conections = 5", "unknown key [live] max_conections"),
])
def test_bad_live_values_are_one_line_errors(tmp_path: Path, line: str, words: str) -> None:
    """A bad [live] value is refused with a message naming the key."""
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, f"[live]\n{line}\n")
    assert words in str(caught.value) and "\n" not in str(caught.value)
