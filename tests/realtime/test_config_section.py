"""The ``[realtime]`` config section: defaults, the README's example, and clear errors for bad values."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from synctv.config import ConfigError, RealtimeConfig, load_config
from synctv.core.realtime import RealtimeLimits

README = Path(__file__).resolve().parents[2] / "README.md"


def _load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "synctv.toml"
    path.write_text(text)
    return load_config(path, {"data": str(tmp_path / "data"), "http": "tcp:0", "rtmp": "tcp:0"})


def test_defaults_match_the_realtime_limits() -> None:
    """RealtimeLimits extends the [realtime] config section, so the tap's copy of the configured
    values into the limits keeps every default."""
    limits = RealtimeLimits(**attrs.asdict(RealtimeConfig()))
    assert limits == RealtimeLimits()
    assert limits.max_frame_bytes == 64 * 1024 and limits.messages_per_s == 20 and limits.messages_burst == 40
    assert limits.send_buffer_bytes == 1 << 20 and limits.idle_s == 60 and limits.ping_s == 20


def test_the_readme_example_section_loads(tmp_path: Path) -> None:
    """The README's [realtime] example is valid and gives the defaults."""
    block = README.read_text().split("```toml", 1)[1].split("```", 1)[0]
    section = "[realtime]" + block.split("[realtime]", 1)[1]
    config = _load(tmp_path, section)
    assert config.realtime == RealtimeConfig()


@pytest.mark.parametrize(("text", "needle"), [
    ("max_frame_bytes = 10", "max_frame_bytes"),
    ("messages_per_s = 0", "messages_per_s"),
    ("messages_burst = 0", "messages_burst"),
    ("max_connections_per_user = 0", "max_connections_per_user"),
    ("idle_s = 10\nping_s = 20", "idle_s must be longer than ping_s"),
    ("send_buffer_bytes = 100", "send_buffer_bytes"),
    ("ping_s = \"fast\"", "ping_s"),
    ("shiny = 1", "unknown key [realtime] shiny"),
])
def test_bad_values_stop_with_one_clear_line(tmp_path: Path, text: str, needle: str) -> None:
    """Each bad [realtime] value is a ConfigError naming the key."""
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, "[realtime]\n" + text + "\n")
    assert needle in str(info.value) and "\n" not in str(info.value)
