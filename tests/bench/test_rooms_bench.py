"""bench/rooms.py --quick runs end to end (4 room pages in Chromium, seeks, a wait), so the
benchmark cannot rot; it prints every figure. Run as ``python -m bench rooms --quick`` in its own
process: Playwright's sync API does not nest inside the test session's own browser."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.integration,
    pytest.mark.tools("ffmpeg", "chromium"),
]
ROOT = Path(__file__).resolve().parents[2]


def test_rooms_benchmark_quick_mode() -> None:
    """The quick run completes (exit 0) and reports clock drift, frame agreement, seek latency
    and the wait for a throttled page, for both variants."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    done = subprocess.run([sys.executable, "-m", "bench", "--quick", "rooms"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    for figure in ("-- variant synctv", "-- variant syncplay", "frame agreement:", "seen everywhere after",
                   "wait: page 4 throttled", "-- summary"):
        assert figure in out, out[-4000:]
    summary = out.split("-- summary", 1)[1]
    assert "synctv" in summary and "syncplay" in summary
