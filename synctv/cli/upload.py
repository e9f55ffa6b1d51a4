"""Streaming a file to the server as a raw request body, with a progress line (``synctv video upload``).

Stdlib only, like the rest of the command. The file is read in blocks as http.client sends it (never
whole into memory); ``Progress`` rewrites one stderr line as it goes. Failures become the same
``CLIError``s as ``ApiClient.request``'s.
"""

from __future__ import annotations

import http.client
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from synctv import __version__
from synctv.cli.client import ApiClient, CLIError, Unreachable

CONTENT_TYPES = {
    ".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime", ".webm": "video/webm",
    ".mkv": "video/x-matroska", ".ts": "video/mp2t", ".ogv": "video/ogg",
}


def human(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError


class Progress:
    """``uploading intro.mp4: 12.0 MiB of 48.0 MiB (25%)`` on one stderr line, at most 10 times a second."""

    def __init__(self, name: str, total: int, out: TextIO, clock: Any = time.monotonic) -> None:
        self.name, self.total, self.out, self.clock = name, total, out, clock
        self.sent = 0
        self._shown = -1.0

    def advance(self, n: int) -> None:
        self.sent += n
        now = self.clock()
        if now - self._shown >= 0.1 or self.sent >= self.total:
            self._shown = now
            percent = 100 * self.sent // self.total if self.total else 100
            self.out.write(f"\ruploading {self.name}: {human(self.sent)} of {human(self.total)} ({percent}%)")
            self.out.flush()

    def done(self) -> None:
        self.out.write("\n")
        self.out.flush()


class _Reader:
    """A file that reports each block http.client reads from it."""

    def __init__(self, f: BinaryIO, progress: Progress) -> None:
        self.f, self.progress = f, progress

    def read(self, size: int = -1) -> bytes:
        data = self.f.read(size)
        self.progress.advance(len(data))
        return data


def upload_file(client: ApiClient, path: str, query: dict[str, str], stderr: TextIO,
                endpoint: str = "/api/videos") -> dict[str, Any]:
    """POST the file at ``path`` as the body of ``endpoint``; returns the server's JSON answer."""
    file = Path(path)
    try:
        size = file.stat().st_size
        f = open(file, "rb")
    except OSError as exc:
        raise CLIError(f"cannot read {path}: {exc.strerror or exc}") from None
    headers = {
        "Accept": "application/json", "User-Agent": f"synctv-cli/{__version__}", "Content-Length": str(size),
        "Content-Type": CONTENT_TYPES.get(file.suffix.lower(), "application/octet-stream"),
    }
    if client.token:
        headers["Authorization"] = f"Bearer {client.token}"
    url = client.server + endpoint + "?" + urllib.parse.urlencode(query)
    progress = Progress(os.path.basename(path), size, stderr)
    body: Any = _Reader(f, progress)
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with f, urllib.request.build_opener().open(request, timeout=client.timeout) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        progress.done()
        raise client._api_error(exc.code, exc.reason, exc.read(), auth=True) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        progress.done()
        raise Unreachable(f"cannot upload to {client.server}: {getattr(exc, 'reason', exc)}") from None
    progress.done()
    try:
        answer = json.loads(raw)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise CLIError(f"{client.server}: the upload was answered without a JSON object")
    return answer
