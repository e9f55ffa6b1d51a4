"""bench/live.py --quick runs end to end, so the benchmark cannot rot (CI runs it)."""

from __future__ import annotations

import re

import pytest

from bench import live
from tests.tools import have_tools

pytestmark = [
    pytest.mark.integration,
    pytest.mark.tools("ffmpeg"),
]


def test_live_benchmark_quick_mode(capsys: pytest.CaptureFixture[str]) -> None:
    """The quick run has a healthy synctv run (no gap, no failure, no publisher stall) and prints
    each figure, every run with its load average, and the comparison with nginx-rtmp: a ratio, or
    its refusal saying why."""
    assert live.main(["--quick"]) == 0
    out = capsys.readouterr().out
    for figure in ("synctv cpu per viewer-minute", "publish start to first HLS segment",
                   "new FLV viewer time to first frame", "load average"):
        assert figure in out, out
    healthy = [line for line in out.splitlines() if line.startswith("live: round") and "synctv:" in line
               and line.endswith("; healthy")]
    assert healthy, out
    if have_tools("nginx-rtmp"):  # the peer the benchmark compares with
        line = next(line for line in out.splitlines() if line.startswith("live: cpu s per viewer-minute:"))
        assert "ratio synctv/nginx-rtmp" in line, out
        assert ("REFUSED (" in line) != bool(re.search(r"ratio synctv/nginx-rtmp \d+\.\d+ \(", line)), line
