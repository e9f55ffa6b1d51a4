"""bench/live.py --quick runs end to end, so the benchmark cannot rot (CI runs it)."""

from __future__ import annotations

import pytest

from bench import live
from tests.tools import have_tools

pytestmark = [
    pytest.mark.integration,
    pytest.mark.tools("ffmpeg"),
]


def test_live_benchmark_quick_mode(capsys: pytest.CaptureFixture[str]) -> None:
    """The quick run serves every viewer without a gap or a publisher stall and prints each figure."""
    assert live.main(["--quick"]) == 0
    out = capsys.readouterr().out
    for figure in ("synctv cpu per viewer-minute", "publish start to first HLS segment",
                   "new FLV viewer time to first frame", "synctv viewer gaps: 0, failed: 0"):
        assert figure in out, out
    if have_tools("nginx-rtmp"):  # the peer the benchmark compares with
        assert "cpu ratio synctv/nginx-rtmp" in out, out
