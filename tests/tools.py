"""External tools the tests need (ffmpeg, ffprobe, chromium, nginx, nginx's RTMP module, curl): one
place decides what a missing one means.

Without the tool a test is skipped, with the reason; with ``SYNCTV_REQUIRE_TOOLS=1`` (``.ci/run``
sets it, as it sets ``SYNCTV_REQUIRE_POSTGRES=1``) it fails instead, so CI never passes by
skipping. Three ways to ask:

- ``@pytest.mark.tools("ffmpeg", "ffprobe")`` on a test or a module (``pytestmark``): checked
  before the test runs, by ``pytest_runtest_setup`` below (tests/conftest.py imports it);
- ``require_tools(*names)`` inside a fixture or a test;
- ``have_tools(*names)`` for an optional part of a test: ``False`` when one is missing, and a
  failure instead under ``SYNCTV_REQUIRE_TOOLS=1``.

``"nginx-rtmp"`` names nginx with the RTMP module loadable (the benchmarks' peer).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

import pytest

from bench.live import NGINX_MODULE

REQUIRE_TOOLS_ENV = "SYNCTV_REQUIRE_TOOLS"
NGINX_RTMP_MODULE = Path(NGINX_MODULE)  # Debian's libnginx-mod-rtmp, which the live benchmark loads


def missing_tools(names: Iterable[str]) -> list[str]:
    """The names in ``names`` that are not installed, in order."""
    missing = []
    for name in names:
        if name == "nginx-rtmp":
            present = shutil.which("nginx") is not None and NGINX_RTMP_MODULE.exists()
        else:
            present = shutil.which(name) is not None
        if not present:
            missing.append(name)
    return missing


def tools_required() -> bool:
    return os.environ.get(REQUIRE_TOOLS_ENV) == "1"


def _refuse(missing: list[str]) -> None:
    """Fail under ``SYNCTV_REQUIRE_TOOLS=1``; otherwise return so the caller may skip."""
    if tools_required():
        pytest.fail(f"{', '.join(missing)} not installed ({REQUIRE_TOOLS_ENV}=1: .ci/run installs them)",
                    pytrace=False)


def require_tools(*names: str) -> None:
    """Skip the running test when a tool is missing (fail under ``SYNCTV_REQUIRE_TOOLS=1``)."""
    missing = missing_tools(names)
    if missing:
        _refuse(missing)
        pytest.skip(f"needs {', '.join(missing)} (not installed)")


def have_tools(*names: str) -> bool:
    """Whether every tool is installed; a missing one fails the test under ``SYNCTV_REQUIRE_TOOLS=1``."""
    missing = missing_tools(names)
    if missing:
        _refuse(missing)
    return not missing


def pytest_runtest_setup(item: pytest.Item) -> None:
    """The ``tools`` marker: every tool it names must be installed for the test to run."""
    for mark in item.iter_markers("tools"):
        require_tools(*mark.args)
