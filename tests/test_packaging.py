"""Packaging: the twistd plugin is found after a normal and after the developer install,
the README's commands are the ones CI runs, and the code is lint-clean."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _twistd_help(env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, "-c", "from twisted.scripts.twistd import run; run()", "--help"],
        capture_output=True, text=True, env=env, cwd="/", timeout=120,
    )
    return out.stdout + out.stderr


def test_developer_install_lists_plugin() -> None:
    """The documented developer install (editable, compat mode) lets ``twistd --help`` list synctv."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    text = _twistd_help(env)
    assert re.search(r"^\s+synctv\s+Watch-together", text, re.M), text


@pytest.mark.integration
def test_wheel_install_lists_plugin(tmp_path: Path) -> None:
    """``pip install .`` ships twisted/plugins/synctv_plugin.py, the package and its SQL migrations."""
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(ROOT)],
        check=True, timeout=300, cwd=tmp_path,
    )
    assert (target / "twisted" / "plugins" / "synctv_plugin.py").is_file()
    assert not (target / "twisted" / "plugins" / "__init__.py").exists()
    assert list((target / "synctv" / "store" / "migrations" / "sqlite").glob("0001_*.sql"))
    assert list((target / "synctv" / "store" / "migrations" / "postgres").glob("0001_*.sql"))
    web = target / "share" / "synctv" / "web"
    for name in ("index.html", "display.html", "js/realtime.js", "js/clock.js", "admin/index.html"):
        assert (web / name).is_file(), name
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # the installed copy must come first, ahead of the checkout's editable path
    env["PYTHONPATH"] = str(target)
    text = _twistd_help(env)
    assert re.search(r"^\s+synctv\s+Watch-together", text, re.M), text
    probe = subprocess.run(
        [sys.executable, "-c", "import synctv, sys; print(synctv.__file__)"],
        capture_output=True, text=True, env=env, cwd="/", check=True,
    )
    assert probe.stdout.startswith(str(target))


def test_readme_commands_are_what_ci_runs() -> None:
    """The README opens with the serve and test commands; .ci/run runs that exact test command."""
    readme = (ROOT / "README.md").read_text()
    first_block = next(b for b in readme.split("\n\n") if b.startswith("    "))
    commands = [line.strip() for line in first_block.splitlines()]
    assert len(commands) == 2, commands
    serve, test = commands
    assert serve.endswith("twistd -n synctv")
    assert test.endswith("pytest")
    ci = (ROOT / ".ci" / "run").read_text()
    assert test in ci
    assert "SYNCTV_REQUIRE_POSTGRES=1" in ci


def test_ruff_clean() -> None:
    """The code passes ruff (the lint config is ruff.toml)."""
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    out = subprocess.run(
        [ruff, "check", "synctv", "tests", "twisted", "bench"],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert out.returncode == 0, out.stdout + out.stderr
