"""bench/proxy.py --quick runs end to end, so the benchmark cannot rot (CI runs it)."""

from __future__ import annotations

import re

import pytest

from bench import proxy

pytestmark = [pytest.mark.integration, pytest.mark.tools("nginx")]


def test_proxy_benchmark_quick_mode(capsys: pytest.CaptureFixture[str]) -> None:
    """The quick run serves the right bytes from both synctv caches and nginx, prints every run
    with its load average and health, and per figure either a ratio over healthy rounds or the
    refusal saying why."""
    assert proxy.main(["--quick"]) == 0
    out = capsys.readouterr().out
    runs = [line for line in out.splitlines() if line.startswith("round ")]
    for side in ("synctv-memory", "synctv-file", "nginx"):
        assert any(line.startswith(f"round 1 {side}:") and "load average" in line for line in runs), out
    assert not any("wrong bytes" in line for line in runs), out
    for side in ("synctv-memory", "synctv-file"):
        for figure in ("hit MB/s, 1 client", "hit MB/s, 16 clients", "cold 4 MiB read ms"):
            line = next(line for line in out.splitlines() if line.strip().startswith(f"{figure}: {side} "))
            assert ("REFUSED (" in line) != bool(re.search(rf"ratio {side}/nginx \d+\.\d+ \(", line)), line
