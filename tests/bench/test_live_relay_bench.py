"""bench/live_relay.py --quick runs end to end, so the benchmark cannot rot (CI runs it)."""

from __future__ import annotations

import pytest

from bench import live_relay
from tests.tools import have_tools

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.tools("ffmpeg")]


def test_live_relay_benchmark_quick_mode(postgres_admin_url, capsys: pytest.CaptureFixture[str]) -> None:
    """The quick run relays to every viewer on node B without a gap, with exactly one FLV viewer
    (the relay) on the publishing node, and prints each figure."""
    assert live_relay.main(["--quick"]) == 0
    out = capsys.readouterr().out
    for figure in ("synctv relay node cpu per viewer-minute", "synctv publishing node: 1 FLV viewer(s)",
                   "synctv viewer gaps: 0, failed: 0", "relay starting (cold)", "relay running (warm)"):
        assert figure in out, out
    if have_tools("nginx-rtmp"):
        assert "cpu ratio synctv relay node/nginx-rtmp edge" in out, out
