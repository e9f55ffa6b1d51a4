"""Running a real synctv server process, for the test suite and the benchmarks.

``twistd -n synctv`` logs one line per listener once it serves (``synctv serving HTTP on
HOST:PORT``, ``synctv serving RTMP on HOST:PORT``); starting it on port 0 and reading those lines
is race-free, unlike picking a free port first.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import attrs

SERVING = re.compile(r"synctv serving HTTP on ([\d.]+):(\d+)")
RTMP_SERVING = re.compile(r"synctv serving RTMP on ([\d.]+):(\d+)")


class ServerDidNotStart(RuntimeError):
    """The process exited, or did not log its address in time; the message ends with its log."""


@attrs.frozen
class Serving:
    http_url: str
    rtmp_url: str | None
    log_text: str


def log_tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def wait_serving(proc: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> Serving:
    """Wait until ``log`` shows where ``proc`` serves HTTP (and RTMP, when it says so)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        match = SERVING.search(text)
        if match:
            rtmp = RTMP_SERVING.search(text)
            return Serving(
                f"http://{match[1]}:{match[2]}", f"rtmp://{rtmp[1]}:{rtmp[2]}" if rtmp else None, text
            )
        if proc.poll() is not None:
            raise ServerDidNotStart(f"twistd exited with {proc.returncode}:\n{log_tail(log)}")
        time.sleep(0.05)
    proc.kill()
    raise ServerDidNotStart(f"twistd did not start within {timeout:g}s:\n{log_tail(log)}")
