"""bench/live_relay.py --quick runs end to end, so the benchmark cannot rot (CI runs it)."""

from __future__ import annotations

import re

import pytest

from bench import live_relay
from tests.tools import have_tools

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.tools("ffmpeg")]


def test_live_relay_benchmark_quick_mode(postgres_admin_url, capsys: pytest.CaptureFixture[str]) -> None:
    """The quick run has a healthy relay run -- every viewer on node B served without a gap, and
    exactly one FLV viewer (the relay) on the publishing node, which the run checks -- prints the
    first frames, every run with its load average, and each comparison: a ratio, or its refusal
    saying why."""
    assert live_relay.main(["--quick"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    healthy = [line for line in lines if line.startswith("live_relay: round") and "synctv relay node:" in line
               and line.endswith("; healthy")]
    assert healthy, out
    assert "publishing node cores" in healthy[0] and "load average" in healthy[0], out
    for figure in ("relay starting (cold)", "relay running (warm)", "synctv relay healthy runs: 1 of 1"):
        assert figure in out, out
    others = ["synctv direct"] + (["nginx-rtmp edge"] if have_tools("nginx-rtmp") else [])
    for other in others:
        line = next(line for line in lines if line.startswith("live_relay: cpu s per viewer-minute:")
                    and f"ratio synctv relay node/{other}" in line)
        assert ("REFUSED (" in line) != bool(re.search(rf"ratio synctv relay node/{other} \d+\.\d+ \(", line)), line
