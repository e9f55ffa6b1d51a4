"""The ``[displays]`` and ``[triggers]`` config sections as the display subsystem reads them."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from synctv.config import ConfigError, DisplaysConfig, load_config
from synctv.core.triggers import host_in

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
    assert config.displays == DisplaysConfig() == DisplaysConfig(4 << 30, 32 << 20, 2, 8 << 30)
    assert config.triggers.lan_networks == (ipaddress.ip_network("192.168.1.0/24"),)
    assert str(config.triggers.udp_ports) == "5000-5999,7000" and config.triggers.udp_bind == "0.0.0.0"


def test_trigger_defaults_follow_syncplayer(tmp_path: Path) -> None:
    """Without a [triggers] section: force from loopback, RFC 1918, ULA and link-local sources;
    ports 5000-5999 on every IPv4 interface."""
    triggers = _load(tmp_path, "").triggers
    for inside in ("127.0.0.1", "::1", "10.1.2.3", "172.20.0.9", "192.168.1.50", "fd12::1", "169.254.3.4",
                   "fe80::1"):
        assert host_in(inside, triggers.lan_networks), inside
    for outside in ("8.8.8.8", "172.32.0.1", "100.64.0.1", "2001:db8::1", "::ffff:8.8.8.8"):
        assert not host_in(outside, triggers.lan_networks), outside
    assert (str(triggers.udp_ports), triggers.udp_bind) == ("5000-5999", "0.0.0.0")
    assert _load(tmp_path, "[triggers]\nlan_networks = []\n").triggers.lan_networks == ()
    configured = _load(tmp_path, '[triggers]\nudp_ports = ""\nudp_bind = " :: "\n').triggers
    assert (str(configured.udp_ports), configured.udp_bind) == ("", "::")


@pytest.mark.parametrize(("text", "needle"), [
    ("max_video_bytes = 0", "max_video_bytes"),
    ("max_image_bytes = -5", "max_image_bytes"),
    ("max_video_bytes = \"4G\"", "max_video_bytes"),
    ("max_bytes = 1", "unknown key [displays] max_bytes"),
    ("max_uploads_per_user = 0", "max_uploads_per_user"),
    ("max_uploads_per_user = 1.5", "max_uploads_per_user"),
    ("max_spool_bytes = 1000", "max_spool_bytes must be at least the largest upload allowed (4294967296"),
    ("max_video_bytes = 100\nmax_image_bytes = 200\nmax_spool_bytes = 150", "largest upload allowed (200"),
])
def test_bad_values_stop_with_one_clear_line(tmp_path: Path, text: str, needle: str) -> None:
    """Each bad [displays] value is a ConfigError naming the key."""
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, "[displays]\n" + text + "\n")
    assert needle in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(("text", "needle"), [
    ('udp_ports = "5999-5000"', "[triggers] udp_ports: '5999-5000' is a range that ends before it starts"),
    ('udp_ports = "5000-70000"', "[triggers] udp_ports: '5000-70000' is not a port (1-65535)"),
    ('udp_ports = "0"', "[triggers] udp_ports: '0' is not a port"),
    ('udp_ports = "5000;6000"', "[triggers] udp_ports"),
    ("udp_ports = 5000", "[triggers] udp_ports must be a string"),
    ('udp_bind = "localhost"', "[triggers] udp_bind 'localhost' is not an IP address"),
    ('udp_bind = "0.0.0.0:5000"', "udp_bind '0.0.0.0:5000'"),
    ("udp_bind = 0", "[triggers] udp_bind must be a string"),
    ('lan_networks = ["lan"]', "'lan' is not a network"),
    ("udp_port = 5000", "unknown key [triggers] udp_port"),
])
def test_bad_trigger_values_stop_with_one_clear_line(tmp_path: Path, text: str, needle: str) -> None:
    """Each bad [triggers] value is a one-line ConfigError naming the key and what is accepted."""
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, "[triggers]\n" + text + "\n")
    assert needle in str(info.value) and "\n" not in str(info.value)
