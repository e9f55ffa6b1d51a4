"""``Spool``: a request body on its way to a file (``synctv.api.uploads`` feeds it).

Writes run in a thread, in order, a megabyte (``FLUSH_BYTES``) at a time; while one is running and
another megabyte has arrived, the spool pauses the connection (TCP back-pressure) and resumes it
when the write is done, so memory stays bounded whatever the body's size. ``finish()`` fires once
every byte is on disk (fsynced); ``claim()`` hands the file over; ``discard()`` removes it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred, DeferredLock
from twisted.logger import Logger
from twisted.python.failure import Failure

from synctv.core.errors import Unavailable

FLUSH_BYTES = 1 << 20
log = Logger()


class Spool:
    """A request body on its way to ``path`` (see the module docstring)."""

    def __init__(self, path: Path, run_in_thread: Callable[..., Deferred[Any]],
                 pause: Callable[[], None], resume: Callable[[], None]) -> None:
        self.path = path
        self.size = 0
        self.body_complete = False
        self._run = run_in_thread
        self._pause, self._resume = pause, resume
        self._lock = DeferredLock()
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._fd: int | None = None  # touched only by the serialized thread calls
        self._writing = False
        self._paused = False
        self._failure: Failure | None = None
        self._finished: Deferred[None] | None = None
        self._closing = False
        self._claimed = False
        self._discarded = False
        self.released: Deferred[None] = Deferred()  # fires once the file is claimed or removed

    @property
    def paused(self) -> bool:
        """Whether the spool has stopped the connection's reading (a write is behind)."""
        return self._paused

    # file-like, for twisted.web (requestReceived calls tell/seek); handlers use claim()
    def tell(self) -> int:
        return self.size

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def read(self, size: int = -1) -> bytes:
        return b""

    def close(self) -> None:
        """twisted.web closes ``request.content`` at the end; the file is the spool's own business."""

    def write(self, data: bytes) -> None:
        if self._discarded or self._failure is not None:
            return
        self._buffer.append(data)
        self._buffered += len(data)
        self.size += len(data)
        self._pump()

    def _pump(self) -> None:
        if self._discarded:
            return
        finishing = self._finished is not None
        if not self._writing and (self._buffered >= FLUSH_BYTES or (finishing and self._buffered)):
            chunk, self._buffer, self._buffered = b"".join(self._buffer), [], 0
            self._writing = True
            self._lock.run(self._run, self._write_chunk, chunk).addBoth(self._written)
        want_pause = self._writing and self._buffered >= FLUSH_BYTES
        if want_pause and not self._paused:
            self._paused = True
            self._pause()
        elif not want_pause and self._paused:
            self._paused = False
            if not self.body_complete:  # once complete, the channel resumes reading itself
                self._resume()
        if self._finished is not None and not self._writing and not self._buffered and not self._closing:
            self._closing = True
            self._lock.run(self._run, self._close).addBoth(self._closed)

    def _write_chunk(self, chunk: bytes) -> None:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        view = memoryview(chunk)
        while view:
            view = view[os.write(self._fd, view):]

    def _close(self) -> None:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.fsync(self._fd)
        finally:
            os.close(self._fd)
            self._fd = None

    def _written(self, result: Any) -> None:
        self._writing = False
        if isinstance(result, Failure):
            self._failure = result
            self._buffer, self._buffered = [], 0
            log.warn("an upload could not be written to {path}: {error}", path=str(self.path),
                     error=result.getErrorMessage())
            if self._paused:
                self._paused = False
                self._resume()
            if self._finished is not None and not self._closing:
                self._closing = True
                self._closed(result)
            return
        self._pump()

    def _closed(self, result: Any) -> None:
        finished, self._finished = self._finished, None
        if finished is None:
            return
        failure = self._failure or (result if isinstance(result, Failure) else None)
        if failure is not None:
            reason = failure.getErrorMessage()
            finished.errback(Unavailable(f"the server could not store the upload: {reason}"))
        else:
            finished.callback(None)

    def finish(self) -> Deferred[None]:
        """Fires once every byte is on disk (fsynced); errback Unavailable if a write failed."""
        self._finished = Deferred()
        finished = self._finished
        if self._failure is not None:
            self._closing = True
            self._closed(None)
        else:
            self._pump()
        return finished

    def claim(self) -> Path:
        """Take the file: the caller moves or deletes it; the spool no longer will."""
        self._claimed = True
        if not self.released.called:
            self.released.callback(None)
        return self.path

    def _remove(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def discard(self) -> None:
        """Drop the upload (connection lost, refused, or never claimed); idempotent."""
        if self._claimed or self._discarded:
            return
        self._discarded = True
        self._buffer, self._buffered = [], 0
        if self._paused:
            self._paused = False
            self._resume()
        d = self._lock.run(self._run, self._remove)
        d.addErrback(lambda f: log.warn("could not remove {path}: {error}", path=str(self.path),
                                        error=f.getErrorMessage()))
        d.addBoth(lambda _: None if self.released.called else self.released.callback(None))
