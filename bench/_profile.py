"""py-spy profiles of a benchmark's server (``--profile`` of bench/realtime.py and bench/proxy.py):
start sampling a process into collapsed stacks, stop, and summarize the stacks as the functions
with the most samples (self and with callees). Without py-spy installed (``pip install py-spy``)
nothing is sampled and the benchmark says so."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path


def start_profile(pid: int, path: Path, gil: bool = True) -> subprocess.Popen[bytes] | None:
    """py-spy sampling process ``pid`` into ``path`` (collapsed stacks), if py-spy is installed.
    ``gil``: only samples holding the GIL (Python's own work); without it, every sample of a thread
    that is not idle, system calls that release the GIL (``sendfile``) included."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not os.path.exists(spy):
        print("  note: py-spy is not installed; no profile")
        return None
    args = [
        spy,
        "record",
        "--pid",
        str(pid),
        "--rate",
        "250",
        *(["--gil"] if gil else []),
        "--nonblocking",
        "--format",
        "raw",
        "-o",
        str(path),
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)  # py-spy attaches
    return proc


def stop_profile(spy: subprocess.Popen[bytes]) -> None:
    spy.send_signal(2)  # SIGINT: py-spy writes its output and exits
    try:
        spy.wait(timeout=30)
    except subprocess.TimeoutExpired:
        spy.kill()


def summarize_profile(path: Path, top: int = 15) -> str:
    """The functions with the most samples, self and total, from py-spy's collapsed stacks."""
    if not path.exists():
        return "  (no profile written)"
    own: dict[str, int] = {}
    total: dict[str, int] = {}
    samples = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        try:
            count = int(count_text)
        except ValueError:
            continue
        frames = [re.sub(r" \(.*?/(site-packages|synctv)/", r" (\1/", f) for f in stack.split(";")]
        samples += count
        for frame in set(frames):
            total[frame] = total.get(frame, 0) + count
        own[frames[-1]] = own.get(frames[-1], 0) + count
    lines = [f"  {samples} samples; self time:"]
    for frame, count in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"    {100.0 * count / samples:5.1f}%  {frame}")
    lines.append("  total time (with callees):")
    for frame, count in sorted(total.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"    {100.0 * count / samples:5.1f}%  {frame}")
    return "\n".join(lines)
