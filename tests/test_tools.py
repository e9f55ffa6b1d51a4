"""tests/tools.py: a missing tool skips a test, or fails it under SYNCTV_REQUIRE_TOOLS=1, whether
asked through the ``tools`` marker, ``require_tools`` or ``have_tools``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import tools

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH holding only ``present-tool`` and ``nginx``; the RTMP module is a file under tmp_path."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for name in ("present-tool", "nginx"):
        (folder / name).write_text("#!/bin/sh\n")
        (folder / name).chmod(0o755)
    monkeypatch.setenv("PATH", str(folder))
    monkeypatch.setattr(tools, "NGINX_RTMP_MODULE", tmp_path / "ngx_rtmp_module.so")
    monkeypatch.delenv(tools.REQUIRE_TOOLS_ENV, raising=False)
    return folder


def test_missing_tools_names_what_is_not_installed(bin_dir: Path, tmp_path: Path) -> None:
    assert tools.missing_tools(["present-tool", "absent-tool", "nginx"]) == ["absent-tool"]
    assert tools.missing_tools(["nginx-rtmp"]) == ["nginx-rtmp"]  # nginx without the module
    (tmp_path / "ngx_rtmp_module.so").write_bytes(b"")
    assert tools.missing_tools(["nginx-rtmp"]) == []
    (bin_dir / "nginx").unlink()
    assert tools.missing_tools(["nginx-rtmp"]) == ["nginx-rtmp"]  # the module without nginx


def test_a_missing_tool_skips_unless_required(bin_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tools.require_tools("present-tool")
    assert tools.have_tools("present-tool") is True
    with pytest.raises(pytest.skip.Exception, match="needs absent-tool"):
        tools.require_tools("present-tool", "absent-tool")
    assert tools.have_tools("absent-tool") is False

    monkeypatch.setenv(tools.REQUIRE_TOOLS_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match=r"absent-tool not installed .*SYNCTV_REQUIRE_TOOLS=1"):
        tools.require_tools("absent-tool")
    with pytest.raises(pytest.fail.Exception, match="absent-tool"):
        tools.have_tools("absent-tool")
    tools.require_tools("present-tool")
    assert tools.have_tools("present-tool") is True


def test_the_marker_skips_or_fails_a_real_pytest_run(tmp_path: Path) -> None:
    """The ``tools`` marker through the hook tests/conftest.py installs, in a pytest process."""
    (tmp_path / "conftest.py").write_text("from tests.tools import pytest_runtest_setup  # noqa: F401\n")
    (tmp_path / "test_marked.py").write_text(
        "import pytest\n\n"
        "@pytest.mark.tools('sh')\n"
        "def test_present():\n    pass\n\n"
        "@pytest.mark.tools('sh', 'synctv-absent-tool')\n"
        "def test_absent():\n    raise AssertionError('ran without its tool')\n"
    )

    def run(**extra: str) -> tuple[int, str]:
        env = {k: v for k, v in os.environ.items() if k != "SYNCTV_REQUIRE_TOOLS"}
        env.update(PYTHONPATH=str(ROOT), **extra)
        out = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-rsf", "-p", "no:cacheprovider", "-W", "ignore", str(tmp_path)],
            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
        )
        return out.returncode, out.stdout + out.stderr

    code, relaxed = run()
    assert code == 0 and "1 passed, 1 skipped" in relaxed and "needs synctv-absent-tool" in relaxed, relaxed
    code, strict = run(SYNCTV_REQUIRE_TOOLS="1")  # fails in setup: reported as an error, exit 1
    assert code == 1 and "1 passed, 1 error" in strict and "synctv-absent-tool not installed" in strict, strict
    assert "ran without its tool" not in strict
