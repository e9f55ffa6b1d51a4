"""The HTTP access log: one line per answered request, where ``[server] access_log`` says.

- ``"log"`` (the default): the line goes through the server's own log (twistd's), as Twisted's
  ``HTTPFactory`` writes it, each line an event of that log with its timestamp prefix.
- ``"off"``: no line (nginx's ``access_log off``). The HTTP metrics still count every request.
- a path (relative: under the data directory): the lines go to that file, appended, in 64 KiB
  writes: the buffer is written out once a second, when full, and when the server stops (nginx's
  ``access_log PATH buffer=64k flush=1s``). Each second the path is also checked: when it names
  another file than the one open (``logrotate`` moved it, or it was deleted), the file is opened
  anew at the path, so rotation needs no signal. A failed write is reported in the server's log
  once per failure streak and the lines of that second are dropped; requests are never failed
  for their log line.

Every line is Twisted's combined log format (``twisted.web.http.combinedLogFormatter``) with the
values of secret query parameters (``SECRET_PARAMS``: tokens, signatures, a proxy URL's upstream
address) cut to four characters, so a log never holds a credential.

Writing the line through the server's log costs the reactor more than serving a cached slice's
request does without it (docs/benchmarks.md, "Proxy"): a busy proxy may want the file or "off".
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.web import http
from twisted.web.iweb import IRequest

SECRET_PARAMS = (b"token", b"sig", b"signature", b"key", b"password", b"access_token",
                 b"s", b"r")  # s, r: a proxy URL's signature and upstream URL (synctv.proxy.proxy_urls)
_SECRET_QUERY = re.compile(rb"(?i)(?<=[?&])(" + b"|".join(SECRET_PARAMS) + rb")=([^&#]*)")
SERVER_LOG = "log"
OFF = "off"
BUFFER_BYTES = 64 * 1024
FLUSH_S = 1.0

log = Logger()


def redact_uri(uri: bytes) -> bytes:
    """``uri`` with the values of secret query parameters cut to four characters."""
    if b"?" not in uri:
        return uri
    return _SECRET_QUERY.sub(lambda m: m.group(1) + b"=" + m.group(2)[:4] + b"...", uri)


class _RedactedRequest:
    """What the line formatter sees: the request, with a redacted ``uri``."""

    def __init__(self, request: IRequest) -> None:
        self._request = request
        self.uri = redact_uri(request.uri)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._request, name)


def access_line(timestamp: str, request: IRequest) -> str:
    """The request's line (module docstring), without the newline; ``timestamp`` as Twisted's
    ``datetimeToLogString`` writes it."""
    return http.combinedLogFormatter(timestamp, _RedactedRequest(request))


class AccessLogFile:
    """Lines appended to a file, buffered, flushed each second (module docstring). ``start`` the
    flushing with the server, ``close`` it when the server stops."""

    def __init__(self, path: Path, reactor: IReactorTime) -> None:
        self.path = path
        self.reactor = reactor
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._second = -1
        self._stamp = ""
        self._failing = False
        self._closed = False
        self._file = self._open()
        self._flusher = LoopingCall(self.tick)
        self._flusher.clock = reactor

    def _open(self) -> Any:
        return open(self.path, "ab", buffering=0)

    def start(self) -> None:
        if not self._flusher.running:
            self._flusher.start(FLUSH_S, now=False)

    def write(self, request: IRequest) -> None:
        if self._closed:  # a request that outlived the server's drain: no file to write to
            return
        now = int(self.reactor.seconds())
        if now != self._second:  # the timestamp text changes once a second
            self._second, self._stamp = now, http.datetimeToLogString(now)
        line = (access_line(self._stamp, request) + "\n").encode("utf-8", "backslashreplace")
        self._buffer.append(line)
        self._buffered += len(line)
        if self._buffered >= BUFFER_BYTES:
            self.flush()

    def flush(self) -> None:
        if not self._buffer:
            return
        data, self._buffer, self._buffered = b"".join(self._buffer), [], 0
        try:
            view = memoryview(data)
            while view:
                view = view[self._file.write(view):]
        except OSError as e:
            if not self._failing:
                log.error("cannot write the access log {path}: {error}; its lines are dropped until "
                          "writes succeed again", path=str(self.path), error=e.strerror or repr(e))
            self._failing = True
            return
        if self._failing:
            log.info("writing the access log {path} again", path=str(self.path))
        self._failing = False

    def tick(self) -> None:
        """Each second: flush, and open the path anew when it names another file (module docstring)."""
        self.flush()
        try:
            moved = os.stat(self.path).st_ino != os.fstat(self._file.fileno()).st_ino
        except FileNotFoundError:
            moved = True
        except OSError:
            return
        if moved:
            try:
                reopened = self._open()
            except OSError as e:
                log.error("cannot reopen the access log {path}: {error}", path=str(self.path),
                          error=e.strerror or repr(e))
                return
            self._file.close()
            self._file = reopened

    def close(self) -> None:
        if self._closed:
            return
        if self._flusher.running:
            self._flusher.stop()
        self.flush()
        self._closed = True
        self._file.close()
