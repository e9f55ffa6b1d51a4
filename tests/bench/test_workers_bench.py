"""bench/workers.py --quick runs end to end (real servers on SQLite and, when reachable,
PostgreSQL; the in-process scheduler cost), so the benchmark cannot rot; it prints every figure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration]
ROOT = Path(__file__).resolve().parents[2]


def test_workers_benchmark_quick_mode() -> None:
    """Exit 0 (no advance lost or doubled) with the latency rows and the per-room tick cost."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    done = subprocess.run([sys.executable, "-m", "bench", "--quick", "workers"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    for figure in ("one node, SQLite", "one version step each, seen once by every client",
                   "us CPU per room per tick"):
        assert figure in out, out[-4000:]
