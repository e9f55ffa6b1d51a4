"""The ``[workers]`` config section: defaults, the README's example, and one clear line for a bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from synctv.config import ConfigError, WorkersConfig, load_config

README = Path(__file__).resolve().parents[2] / "README.md"


def _load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "synctv.toml"
    path.write_text(text)
    return load_config(path, {"data": str(tmp_path / "data"), "http": "tcp:0", "rtmp": "tcp:0"})


def test_the_readme_example_gives_the_defaults(tmp_path: Path) -> None:
    block = README.read_text().split("```toml", 1)[1].split("```", 1)[0]
    section = "[workers]" + block.split("[workers]", 1)[1]
    assert _load(tmp_path, section).workers == WorkersConfig()


def test_values_are_read(tmp_path: Path) -> None:
    config = _load(tmp_path, "[workers]\ntick_s = 0.2\nprobe = false\nprobe_backoff_s = 0.5\nleader_s = 1\n")
    assert (config.workers.tick_s, config.workers.probe, config.workers.probe_backoff_s, config.workers.leader_s) == (
        0.2, False, 0.5, 1.0)


@pytest.mark.parametrize(("text", "needle"), [
    ("tick_s = 0", "tick_s"),
    ("tick_s = 100", "tick_s"),
    ("probe = 1", "probe must be true or false"),
    ("probe_concurrency = 0", "probe_concurrency"),
    ("probe_timeout_s = 60\nprobe_lease_s = 30", "probe_lease_s must be longer than probe_timeout_s"),
    ("probe_backoff_s = 10\nprobe_max_backoff_s = 5", "probe_backoff_s"),
    ("leader_s = 0.01", "leader_s"),
    ("speed = 3", "unknown key [workers] speed"),
])
def test_bad_values_are_one_line_errors(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as e:
        _load(tmp_path, "[workers]\n" + text + "\n")
    assert needle in str(e.value) and "\n" not in str(e.value)
