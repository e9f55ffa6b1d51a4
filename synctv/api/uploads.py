"""Large request bodies (video and image uploads) streamed to a file as they arrive.

The Site keeps JSON bodies in memory under a 1 MiB cap (``synctv.site.SynctvRequest``). For the
few upload routes an ``UploadPolicy`` names, ``UploadRequest`` instead writes the body to a spool
file (``Spool``) while it arrives, under that route's own size limit (413 past it, before or
while reading). Writes run in a thread, in order, a megabyte at a time; while one is running and
another megabyte has arrived, the connection stops reading (TCP back-pressure), so memory stays
bounded whatever the upload's size. The route handler runs once every byte is on disk: it finds
the ``Spool`` as ``request.content`` and takes the file with ``claim()``; an unclaimed spool file
is deleted when the request ends or the connection is lost.

Before any byte is spooled the bearer token's signature and expiry are checked (no database
needed), so an anonymous client cannot fill the disk; the handler then authenticates fully.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
from twisted.internet.defer import Deferred, DeferredLock
from twisted.internet.threads import deferToThread
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http_headers import Headers

from synctv.api.errors import write_error
from synctv.compat.twisted import request_line
from synctv.core.errors import BadRequest, DomainError, Unauthorized, Unavailable
from synctv.site import SynctvRequest, SynctvSite

FLUSH_BYTES = 1 << 20
log = Logger()


@attrs.frozen
class UploadRoute:
    """``method path`` takes a raw body of at most ``limit`` bytes; ``content_types`` are accepted
    Content-Type prefixes (a request without Content-Type is accepted too; files are checked later)."""

    method: bytes
    path: bytes
    limit: int
    content_types: tuple[str, ...] = ()


class UploadPolicy:
    """Which requests are uploads, and the quick checks made before their bodies are spooled."""

    def __init__(
        self, routes: Sequence[UploadRoute], *, spool_path: Callable[[], Path],
        check_token: Callable[[str], Any], run_in_thread: Callable[..., Deferred[Any]] = deferToThread,
    ) -> None:
        self.routes = {(route.method, route.path): route for route in routes}
        self.spool_path = spool_path
        self.check_token = check_token
        self.run_in_thread = run_in_thread

    def route_for(self, method: bytes | None, uri: bytes | None) -> UploadRoute | None:
        if method is None or uri is None:
            return None
        return self.routes.get((method.upper(), uri.split(b"?", 1)[0]))

    def precheck(self, route: UploadRoute, headers: Headers) -> DomainError | None:
        """A refusal to answer at once (after dropping the body), or None to spool the body."""
        values = headers.getRawHeaders(b"authorization") or []
        scheme, _, token = (values[0].decode("latin-1") if values else "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return Unauthorized("uploads need 'Authorization: Bearer TOKEN' (POST /api/auth/login)")
        try:
            self.check_token(token.strip())
        except DomainError as e:
            return e
        ctype = ((headers.getRawHeaders(b"content-type") or [b""])[0]).decode("latin-1").strip().lower()
        if ctype and route.content_types and not ctype.startswith(route.content_types):
            accepted = " or ".join(route.content_types)
            return BadRequest(f"this upload takes {accepted} bodies, not {ctype[:60]}", field="content_type")
        return None


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


class UploadRequest(SynctvRequest):
    """``SynctvRequest`` that spools the bodies of the site's upload routes (``site.uploads``)."""

    upload: UploadRoute | None = None
    upload_refusal: DomainError | None = None
    spool: Spool | None = None
    _spool_done = False

    def _policy(self) -> UploadPolicy | None:
        return getattr(getattr(self.channel, "site", None), "uploads", None)

    def _limit(self) -> int:
        return self.upload.limit if self.upload is not None else super()._limit()

    def gotLength(self, length: int | None) -> None:
        policy = self._policy()
        channel = self.channel
        route = None
        if policy is not None:
            route = policy.route_for(*request_line(channel))
        if route is None:
            super().gotLength(length)
            return
        self.upload = route
        self.body_bytes = 0
        self.content = io.BytesIO()
        self.body_too_large = length is not None and length > route.limit
        if self.body_too_large:
            return
        self.upload_refusal = policy.precheck(route, self.requestHeaders)
        if self.upload_refusal is None:
            transport = channel.transport
            self.spool = Spool(policy.spool_path(), policy.run_in_thread,
                               transport.pauseProducing, transport.resumeProducing)
            self.content = self.spool

    def handleContentChunk(self, data: bytes) -> None:
        if self.upload is None:
            super().handleContentChunk(data)
            return
        self.body_bytes += len(data)
        if self.body_too_large or self.upload_refusal is not None:
            return
        if self.body_bytes > self.upload.limit:
            self.body_too_large = True
            self._drop_spool()
            return
        assert self.spool is not None
        self.spool.write(data)

    def _drop_spool(self) -> None:
        if self.spool is not None:
            self.spool.discard()
            self.spool = None
        self.content = io.BytesIO()

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        if self.spool is not None:
            self.spool.body_complete = True
        super().requestReceived(command, path, version)

    def process(self) -> None:
        if self.upload is None or self.body_too_large:
            super().process()
            return
        if self.upload_refusal is not None:
            self._refuse_upload(self.upload_refusal)
            return
        spool = self.spool
        if spool is None or self._spool_done:
            super().process()
            return
        self.notifyFinish().addBoth(lambda _: spool.discard())

        def ready(_: object) -> None:
            self._spool_done = True
            self.process()

        def failed(failure: Failure) -> None:
            error = failure.value
            if not isinstance(error, DomainError):
                error = Unavailable("the upload failed")
            self._refuse_upload(error)

        spool.finish().addCallbacks(ready, failed)

    def _refuse_upload(self, error: DomainError) -> None:
        site = self.channel.site
        self.site = site
        if isinstance(site, SynctvSite):
            site.request_started(self)
        self.setHeader(b"Connection", b"close")
        self.channel.persistent = False
        body = write_error(self, error.code, error.message, field=error.field, detail=error.detail)
        self.setHeader(b"Content-Length", str(len(body)).encode("ascii"))
        self.write(body)
        self.finish()

    def connectionLost(self, reason: Failure) -> None:
        if self.spool is not None:
            self.spool.discard()
        super().connectionLost(reason)
