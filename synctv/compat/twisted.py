"""Twisted internals (see ``synctv.compat``); pinned by tests/compat/test_twisted_internals.py.

- ``write_buffer_empty(transport)``: a ``tcp.Server`` has nothing queued to send: its
  ``dataBuffer`` and the private ``_tempDataBuffer`` list (where ``write`` appends) are empty, so
  bytes written straight to the socket now keep their order (``synctv.socket_writes.write_now``).
- ``resume_when_writable(transport)``: a ``tcp.Server`` with a streaming producer (an
  ``HTTPChannel``) calls that producer's ``resumeProducing`` once its socket is writable again and
  whatever was queued is out: it marks its producer paused (``producerPaused``, an attribute of
  ``abstract.FileDescriptor`` that is not in any interface) and arms EPOLLOUT (``startWriting``);
  ``doWrite`` writes what is queued and, once its buffer is empty, resumes the producer. The
  proxy's direct sends wait for a full socket this way, and for the answer's headers to be out
  before the first ``sendfile`` (``proxy.relay``).
- ``request_line(channel)``: the method, path and version an ``HTTPChannel`` has parsed for the
  request whose headers just ended (private ``_command``, ``_path`` and ``_version``, set before
  ``Request.gotLength``); ``(None, None, None)`` for a channel that keeps no such state (HTTP/2). The upload routes choose how
  to take a body from it before the first body byte is read.
- ``cap_response_headers(pool, limit, too_large)``: connections that ``pool`` (an
  ``HTTPConnectionPool``) opens from now on raise ``too_large(limit)`` inside the response parser
  once the status line and headers pass ``limit`` bytes, so an endless header section is cut off
  early. Twisted has no public knob for it: it swaps the pool's private ``_factory`` for a
  subclass of ``_HTTP11ClientFactory`` whose ``HTTP11ClientProtocol`` wraps its private
  ``_parser``'s ``lineReceived`` while the parser is in the ``STATUS``/``HEADER`` states of
  ``twisted.web._newclient``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.web._newclient import HEADER, STATUS, HTTP11ClientProtocol
from twisted.web.client import HTTPConnectionPool, _HTTP11ClientFactory


def write_buffer_empty(transport: Any) -> bool:
    """Whether a ``tcp.Server`` (or any ``abstract.FileDescriptor``) has nothing queued."""
    return not transport.dataBuffer and not transport._tempDataBuffer


def resume_when_writable(transport: Any) -> bool:
    """Ask ``transport`` to resume its producer when its socket is writable and its buffer empty;
    False (nothing done) unless it is a transport with a streaming producer."""
    if (not hasattr(transport, "startWriting") or getattr(transport, "producer", None) is None
            or not getattr(transport, "streamingProducer", False)
            or transport.disconnecting or transport.disconnected):
        return False
    transport.producerPaused = True
    transport.startWriting()
    return True


def request_line(channel: Any) -> tuple[bytes | None, bytes | None, bytes | None]:
    """``(method, path, version)`` of the request whose body ``channel`` is about to read:
    twisted.web hands them to the request only with the whole body (``requestReceived``), and an
    upload is judged before its body is read."""
    return getattr(channel, "_command", None), getattr(channel, "_path", None), getattr(channel, "_version", None)


def _cap_header_section(parser: Any, limit: int, too_large: Callable[[int], Exception]) -> None:
    parser.MAX_LENGTH = limit  # one line longer than this drops the connection
    original = parser.lineReceived
    seen = 0

    def line_received(line: bytes) -> Any:
        nonlocal seen
        if parser.state in (STATUS, HEADER):
            seen += len(line) + 1
            if seen > limit:
                raise too_large(limit)
        return original(line)

    parser.lineReceived = line_received


class _CappedProtocol(HTTP11ClientProtocol):
    def __init__(self, quiescentCallback: Any, limit: int, too_large: Callable[[int], Exception]) -> None:
        super().__init__(quiescentCallback)
        self._cap = (limit, too_large)

    def request(self, request: Any) -> defer.Deferred[Any]:
        d = super().request(request)
        if self._parser is not None:
            _cap_header_section(self._parser, *self._cap)
        return d


class _CappedFactory(_HTTP11ClientFactory):
    def __init__(self, quiescentCallback: Any, metadata: Any, *, limit: int,
                 too_large: Callable[[int], Exception]) -> None:
        super().__init__(quiescentCallback, metadata)
        self._cap = (limit, too_large)

    def buildProtocol(self, addr: Any) -> HTTP11ClientProtocol:
        return _CappedProtocol(self._quiescentCallback, *self._cap)


def cap_response_headers(pool: HTTPConnectionPool, limit: int, too_large: Callable[[int], Exception]) -> None:
    """Make the connections ``pool`` opens raise ``too_large(limit)`` past ``limit`` header bytes."""
    pool._factory = functools.partial(_CappedFactory, limit=limit, too_large=too_large)
