"""bench/providers.py --quick runs end to end, so the benchmark cannot rot (CI runs it)."""

from __future__ import annotations

import re

import pytest

from bench import providers

pytestmark = [pytest.mark.integration, pytest.mark.tools("ffmpeg")]


def test_providers_benchmark_quick_mode(capsys: pytest.CaptureFixture[str]) -> None:
    """Every provider's plays succeed, cached plays call no upstream, and each figure is printed."""
    assert providers.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "PlaybackResult latency" in out, out
    for kind in providers.PROVIDERS:
        line = next(line for line in out.splitlines() if line.startswith(kind))
        numbers = [float(n) for n in re.findall(r"\d+\.\d+", line)]
        assert len(numbers) == 6, line
        assert numbers[2] >= 1.0 and numbers[5] == 0.0, line  # uncached calls upstream; cached does not
