"""The ``[displays]`` and ``[triggers]`` config sections as the display subsystem reads them."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from synctv.config import ConfigError, DisplaysConfig, load_config

README = Path(__file__).resolve().parents[2] / "README.md"


def _load(tmp_path: Path, text: str):
    path = tmp_path / "synctv.toml"
    path.write_text(text)
    return load_config(path, {"data": str(tmp_path / "data"), "http": "tcp:0", "rtmp": "tcp:0"})


def test_the_readme_examples_load_with_the_defaults(tmp_path: Path) -> None:
    """The README's [triggers] and [displays] examples are valid; [displays] holds the defaults."""
    block = README.read_text().split("```toml", 1)[1].split("```", 1)[0]
    start = block.index("[triggers]")
    end = block.index("\n[", block.index("[displays]"))
    config = _load(tmp_path, block[start:end])
    assert config.displays == DisplaysConfig() == DisplaysConfig(4 << 30, 32 << 20)
    assert config.triggers.lan_networks == (ipaddress.ip_network("192.168.1.0/24"),)


@pytest.mark.parametrize(("text", "needle"), [
    ("max_video_bytes = 0", "max_video_bytes"),
    ("max_image_bytes = -5", "max_image_bytes"),
    ("max_video_bytes = \"4G\"", "max_video_bytes"),
    ("max_bytes = 1", "unknown key [displays] max_bytes"),
])
def test_bad_values_stop_with_one_clear_line(tmp_path: Path, text: str, needle: str) -> None:
    """Each bad [displays] value is a ConfigError naming the key."""
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, "[displays]\n" + text + "\n")
    assert needle in str(info.value) and "\n" not in str(info.value)
