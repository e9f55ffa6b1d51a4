"""One HTTP-FLV viewer: shared bytes in, back-pressure watched, a slow viewer skipped or closed.

A ``FLVViewer`` is the push producer registered on the viewer's transport (a twisted.web request
in production, anything with ``write``/``finish``/``abort`` in tests). The stream hands every
viewer the same ``bytes`` for each batch of FLV tags; a viewer never copies or re-encodes them:

- while the transport accepts data, a batch is written at once;
- while the transport is paused (its buffer is full), batches are queued -- references to the
  shared bytes, bounded by ``max_buffer`` bytes;
- a queue past that bound is dropped whole and the viewer *skips to the next keyframe*: it takes
  nothing until a batch holds a keyframe and then resumes from that keyframe, so the FLV stream
  it receives stays decodable. Each skip is counted; a viewer past ``max_skips`` is closed.

Nothing here blocks or waits: the publisher's side never notices a slow viewer.

Writing a batch to a viewer's socket (`synctv.socket_writes.write_now`, :func:`http_chunk`): a plain
``transport.write`` appends to Twisted's buffer and arms EPOLLOUT, so a fan-out to N viewers costs
two epoll calls and a second reactor pass per viewer and batch. When the transport has nothing
queued, the batch goes to the socket at once, in order; what the kernel does not take is queued by
the transport as usual (so it still counts for back-pressure). An HTTP/1.1 viewer gets the batch
as one chunk; the framed bytes are built once per batch and shared by every such viewer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

ENDED = "ended"  # the publisher stopped: a clean end of stream
CLOSED = "closed"  # the server closed the viewer (too slow, or shutting down)
GONE = "gone"  # the viewer went away


class ViewerSink(Protocol):
    """Where a viewer's bytes go (a twisted.web request through ``RequestSink``)."""

    def write(self, data: bytes) -> None: ...
    def finish(self) -> None: ...
    def abort(self) -> None: ...
    def registerProducer(self, producer: Any, streaming: bool) -> None: ...
    def unregisterProducer(self) -> None: ...


FromKey = Callable[[], "bytes | None"]


_last_chunk: list[bytes] = [b"", b""]  # the last batch and its framing (every viewer gets the same object)


def http_chunk(data: bytes) -> bytes:
    """``data`` as one HTTP/1.1 chunk; the last batch's framing is reused for the next viewer."""
    if _last_chunk[0] is not data:
        _last_chunk[1] = b"%x\r\n%s\r\n" % (len(data), data)
        _last_chunk[0] = data
    return _last_chunk[1]


@implementer(IPushProducer)
class FLVViewer:
    """See the module docstring. ``done`` fires with ENDED, CLOSED or GONE, once."""

    def __init__(
        self,
        sink: ViewerSink,
        *,
        max_buffer: int,
        max_skips: int,
        on_skip: Callable[[FLVViewer], None] = lambda viewer: None,
        on_done: Callable[[FLVViewer, str], None] = lambda viewer, why: None,
    ) -> None:
        self.sink = sink
        self.max_buffer = max_buffer
        self.max_skips = max_skips
        self.on_skip = on_skip
        self.on_done = on_done
        self.paused = False
        self.waiting_for_key = False
        self.skips = 0
        self.bytes_sent = 0
        self.finished: str | None = None
        self.done: Deferred[str] = Deferred()
        self._queue: list[bytes] = []
        self._queued = 0

    @property
    def queued_bytes(self) -> int:
        return self._queued

    def start(self, initial: bytes, waiting_for_key: bool) -> None:
        """Register as the sink's producer and write the stream's start (header, configs, GOP)."""
        self.waiting_for_key = waiting_for_key
        self.sink.registerProducer(self, True)
        self._send(initial)

    def deliver(self, data: bytes, from_key: FromKey) -> None:
        """One batch of tags, shared by every viewer; ``from_key()`` is the same batch from its
        first keyframe on (None when it holds none), computed once for all who need it."""
        if self.finished is not None:
            return
        if self.waiting_for_key:
            keyed = from_key()
            if keyed is None:
                return
            self.waiting_for_key = False
            data = keyed
        if self.paused:
            self._queue.append(data)
            self._queued += len(data)
            if self._queued > self.max_buffer:
                self._skip()
            return
        self._send(data)

    def _skip(self) -> None:
        self._queue, self._queued = [], 0
        self.waiting_for_key = True
        self.skips += 1
        self.on_skip(self)
        if self.skips > self.max_skips:
            self.close()

    def _send(self, data: bytes) -> None:
        if data:
            self.bytes_sent += len(data)
            self.sink.write(data)

    # -- IPushProducer ------------------------------------------------------------------------

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        if self.finished is not None:
            return
        self.paused = False
        if self._queue:
            queued, self._queue, self._queued = self._queue, [], 0
            self._send(queued[0] if len(queued) == 1 else b"".join(queued))

    def stopProducing(self) -> None:
        """The transport is gone (or the consumer gave up on us)."""
        if self.finished is None:
            self.sink.unregisterProducer()
        self._finish(GONE)

    # -- ends ---------------------------------------------------------------------------------

    def end(self) -> None:
        """The stream ended: write what is queued, then finish the response cleanly."""
        if self.finished is not None:
            return
        if self._queue:
            queued, self._queue, self._queued = self._queue, [], 0
            self._send(b"".join(queued))
        self.sink.unregisterProducer()
        self.sink.finish()
        self._finish(ENDED)

    def close(self) -> None:
        """Drop the viewer now (too slow, or the server is stopping)."""
        if self.finished is not None:
            return
        self._queue, self._queued = [], 0
        self.sink.unregisterProducer()
        self.sink.abort()
        self._finish(CLOSED)

    def _finish(self, why: str) -> None:
        if self.finished is not None:
            return
        self.finished = why
        self._queue, self._queued = [], 0
        self.on_done(self, why)
        if not self.done.called:
            self.done.callback(why)
