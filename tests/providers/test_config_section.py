"""The ``[providers]`` config section, and a provider key file the server cannot use."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from synctv.config import ConfigError, ProvidersConfig, load_config
from tests.integration.processes import child_env, twistd_args

README = Path(__file__).resolve().parents[2] / "README.md"


def _load(tmp_path: Path, text: str):
    path = tmp_path / "synctv.toml"
    path.write_text(text)
    return load_config(path, {"data": str(tmp_path / "data"), "http": "tcp:0", "rtmp": "tcp:0"})


def test_the_readme_example_loads_and_the_key_file_defaults_under_data(tmp_path: Path) -> None:
    block = README.read_text().split("```toml", 1)[1].split("```", 1)[0]
    start = block.index("[providers]")
    config = _load(tmp_path, block[start:block.index("\n[", start)])
    assert config.providers == ProvidersConfig(key_file="/etc/synctv/provider-key")
    assert str(config.provider_key_file) == "/etc/synctv/provider-key"
    assert _load(tmp_path, "").provider_key_file == tmp_path / "data" / "provider-key"


@pytest.mark.parametrize(("text", "needle"), [
    ('bilibili_api = "ftp://x"', "bilibili_api"),
    ('bilibili_live_api = "http://x/?q=1"', "bilibili_live_api"),
    ('enabled = ["youtube"]', "unknown provider 'youtube'"),
    ('enabled = "alist"', "enabled"),
    ("key = 1", "unknown key [providers] key"),
])
def test_bad_values_stop_with_one_clear_line(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, "[providers]\n" + text + "\n")
    assert needle in str(info.value) and "\n" not in str(info.value)


@pytest.mark.integration
def test_an_unusable_key_file_stops_the_start_with_one_line(tmp_path: Path) -> None:
    key = tmp_path / "bad-key"
    key.write_text("not a key\n")
    config = tmp_path / "synctv.toml"
    config.write_text(f'[providers]\nkey_file = "{key}"\n')
    done = subprocess.run(twistd_args(tmp_path / "data", None, "--config", str(config)), capture_output=True,
                          text=True, cwd=tmp_path, env=child_env(), timeout=120)
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.startswith("synctv:")]
    assert lines == [f"synctv: the provider key file {key} does not hold a base64 32-byte key"], done.stderr
