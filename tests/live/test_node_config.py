"""``[server] node_url`` and ``node_networks`` (several nodes): values, errors, and what the live
hub is built with."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from twisted.internet.task import Clock

from synctv.config import ConfigError, load_config
from synctv.core import node_auth
from synctv.core.clock import ManualClock
from synctv.live.node import build_live_hub, default_node_url


def _load(tmp_path: Path, text: str):
    path = tmp_path / "c.toml"
    path.write_text(text)
    return load_config(path, {"data": str(tmp_path / "data")})


def test_node_keys_default_and_take_values(tmp_path: Path) -> None:
    config = _load(tmp_path, "")
    assert (config.node_url, config.node_networks) == (None, ())
    config = _load(tmp_path, '[server]\nnode_url = "http://10.0.0.5:8080"\nnode_networks = ["10.0.0.0/24"]\n')
    assert config.node_url == "http://10.0.0.5:8080"
    assert config.node_networks == (ipaddress.ip_network("10.0.0.0/24"),)


@pytest.mark.parametrize("value", ["10.0.0.5:8080", "ftp://10.0.0.5", "http://", "http://a:99999",
                                   "http://a:8080/?x=1", "http://user:pw@a:8080"])
def test_a_bad_node_url_is_one_clear_line(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match=r"\[server\] node_url .* http:// or https://"):
        _load(tmp_path, f'[server]\nnode_url = "{value}"\n')


def test_bad_node_networks_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="node_networks"):
        _load(tmp_path, '[server]\nnode_networks = ["not-a-net"]\n')


def test_default_node_url_names_a_reachable_host() -> None:
    assert default_node_url("127.0.0.1", 8080) == "http://127.0.0.1:8080"
    assert default_node_url("::1", 8080) == "http://[::1]:8080"
    wildcard = default_node_url("0.0.0.0", 8080)
    assert "0.0.0.0" not in wildcard and wildcard.endswith(":8080")


def test_the_hub_signs_with_a_key_derived_from_the_secret_and_knows_the_networks(tmp_path: Path) -> None:
    config = _load(tmp_path, '[server]\nnode_networks = ["10.0.0.0/24"]\n')
    hub = build_live_hub(config, store=None, clock=ManualClock(), secret="s" * 43, reactor=Clock(),
                         node="a:8080", node_url="http://a:8080")
    assert hub.node_key == node_auth.derive_key("s" * 43)
    assert hub.node_networks == config.node_networks and hub.relay_opener is not None
