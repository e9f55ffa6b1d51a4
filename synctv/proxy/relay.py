"""Writing proxied bodies to a client: back-pressure, pass-through (BYPASS) and HLS playlists.

:class:`ResponsePump` is the push producer a proxied response registers on its request: the
client's transport pauses and resumes it, and it pauses and resumes the upstream body it relays
(pass-through) or tells the slice loop to wait before the next slice (``writable``).

Sending cached bytes (:meth:`ResponsePump.send` and :meth:`ResponsePump.sendfile`): on a plain
TCP connection (not TLS, not HTTP/2) the body goes straight to the socket -- ``send()`` of a
memoryview, or ``os.sendfile`` from a slice file or a memfd -- whenever the transport's own buffer is empty,
which is exactly when the transport resumes this producer. When the socket's buffer is full, the
pump pauses and asks the transport to resume it once the socket is writable
(``synctv.compat.twisted.resume_when_writable``: the reactor's EPOLLOUT, no byte through
Twisted's buffer); before the first body byte it writes the answer's headers and waits the same
way for them to be out. Where that is not possible, it writes the next ``DIRECT_CHUNK`` bytes
through the transport, which pauses the pump (the chunk is over its buffer mark) and resumes it
when the socket drained. Either way the reactor says when to write, a slow client holds at most one chunk
in the server, and bytes never overtake the headers or each other. Elsewhere the bytes go through
``request.write`` as before.

Pass-through is for upstreams that do not honour ``Range``: their answer is relayed as it is
(status, length and the entity headers; the type only as ``synctv.proxy.media_types`` admits it),
streamed, never cached, marked ``X-Cache: BYPASS``.
Playlists are fetched whole (they are small; a cap guards the size), rewritten so every URI is a
signed proxy URL, and answered with ``Cache-Control: no-store`` (live playlists change).
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Callable

from twisted.internet import defer
from twisted.internet.interfaces import IPushProducer, ISSLTransport, ITCPTransport
from twisted.web.iweb import IRequest
from zope.interface import implementer

from synctv.compat.twisted import resume_when_writable
from synctv.proxy.m3u8 import rewrite_playlist
from synctv.proxy.media_types import answer_type
from synctv.proxy.upstream import UpstreamClient, UpstreamError, UpstreamResponse, upstream_headers

MAX_PLAYLIST_BYTES = 8 << 20
PLAYLIST_TYPE = b"application/vnd.apple.mpegurl"
_PASSED_HEADERS = ("content-range", "accept-ranges", "etag", "last-modified")
DIRECT_CHUNK = 256 * 1024  # through the transport when the socket is full: over its 64 KiB mark


def direct_socket(request: IRequest) -> socket.socket | None:
    """The connection's socket when the body may be written to it directly (plain TCP), else None."""
    transport = getattr(getattr(request, "channel", None), "transport", None)
    if transport is None or not ITCPTransport.providedBy(transport) or ISSLTransport.providedBy(transport):
        return None
    try:
        handle = transport.getHandle()
    except Exception:
        return None
    return handle if isinstance(handle, socket.socket) else None


def header(request: IRequest, name: bytes) -> str | None:
    value = request.getHeader(name)
    return None if value is None else value.decode("latin-1")


def is_head(request: IRequest) -> bool:
    return request.method == b"HEAD"


def abort(request: IRequest) -> None:
    """Drop the client connection (a body already under way cannot become an error answer)."""
    transport = getattr(getattr(request, "channel", None), "transport", None)
    if transport is not None:
        transport.abortConnection()


@implementer(IPushProducer)
class ResponsePump:
    """See the module docstring."""

    def __init__(self, request: IRequest) -> None:
        self.request = request
        self.paused = False
        self.stopped = False
        self.written = 0
        self._waiters: list[defer.Deferred[None]] = []
        self._upstream: UpstreamResponse | None = None
        self._registered = False
        self._socket: socket.socket | None = None
        self._drained = False  # the transport's buffer is empty (it resumed us and nothing was written since)

    @property
    def direct(self) -> bool:
        """Whether bodies go straight to the socket (module docstring); known after :meth:`start`."""
        return self._socket is not None

    def start(self) -> None:
        transport = getattr(getattr(self.request, "channel", None), "transport", None)
        if transport is not None and hasattr(transport, "setTcpNoDelay"):
            transport.setTcpNoDelay(True)  # the tail of a body is not held back waiting for an ACK
        self._socket = direct_socket(self.request)
        if not self._registered:
            self.request.registerProducer(self, True)
            self._registered = True

    def close(self) -> None:
        if self._registered:
            self._registered = False
            try:
                self.request.unregisterProducer()
            except (AttributeError, RuntimeError):  # the connection is already gone
                pass

    def relay(self, upstream: UpstreamResponse) -> None:
        """Pause and resume ``upstream`` with this response."""
        self._upstream = upstream
        if self.paused:
            upstream.pause()

    def write(self, data: bytes) -> None:
        if not self.stopped and data:
            self.written += len(data)
            self._drained = False
            self.request.write(data)

    def _wait_writable(self) -> bool:
        """Pause until the socket takes more (module docstring); False if the transport cannot say."""
        transport = getattr(getattr(self.request, "channel", None), "transport", None)
        if transport is None or not resume_when_writable(transport):
            return False
        self.paused = True
        self._drained = False
        return True

    def _count(self, sent: int) -> None:
        self.written += sent
        self.request.sentLength += sent  # what the access line reports; Twisted counts only its own writes

    def _wait_drained(self) -> bool:
        """Pause until what Twisted holds for this connection -- the answer's status line and
        headers, written now if they were not, or an earlier chunk -- is out, so the next bytes
        can go straight to the socket; False if the transport cannot say."""
        if not self.request.startedWriting:
            self.request.write(b"")  # the status line and headers, into the transport's buffer
        return self._wait_writable()

    def _lost(self) -> None:
        self.stopped = True
        abort(self.request)

    async def send(self, data: bytes | memoryview) -> None:
        """Write all of ``data`` (module docstring), waiting while the client does not take more."""
        view = memoryview(data)
        if self._socket is None:
            self.write(data if isinstance(data, bytes) else bytes(view))
            return
        sock = self._socket
        while view and not self.stopped:
            if self.paused:
                await self.writable()
            if self.stopped:
                return
            if not self._drained and self._wait_drained():
                continue
            if self._drained:
                try:
                    sent = sock.send(view)
                except (BlockingIOError, InterruptedError):
                    sent = 0
                except OSError:
                    self._lost()
                    return
                self._count(sent)
                view = view[sent:]
                if not view:
                    return
                if self._wait_writable():
                    continue
            chunk, view = view[:DIRECT_CHUNK], view[DIRECT_CHUNK:]
            self.write(bytes(chunk))

    def sendfile_now(self, fd: int, offset: int, count: int) -> int:
        """Write what the socket takes now of ``count`` bytes of ``fd`` from ``offset``, with no
        wait (one ``sendfile``), when the transport's buffer is empty and the pump not paused; the
        bytes written (0: none could be). Send the rest with :meth:`sendfile`: when the socket was
        filled, this already asked to be resumed once it is writable. Only when :attr:`direct`.

        A hit whose socket takes each slice whole (a fast client) so costs one call per slice
        instead of a coroutine's round through the reactor's Deferreds."""
        if self.paused or not self._drained or self.stopped:
            return 0
        assert self._socket is not None
        sent = self._sendfile_once(self._socket.fileno(), fd, offset, count)
        if 0 < sent < count:
            self._wait_writable()
        return sent

    def _sendfile_once(self, out: int, fd: int, offset: int, count: int) -> int:
        try:
            sent = os.sendfile(out, fd, offset, count)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError as e:
            if e.errno in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN, errno.EBADF):
                self._lost()
                return 0
            raise
        self._count(sent)
        return sent

    async def sendfile(self, fd: int, offset: int, count: int) -> None:
        """Write ``count`` bytes of the open file ``fd`` from ``offset`` (module docstring; only when
        :attr:`direct`). ``OSError`` if the file holds fewer bytes."""
        assert self._socket is not None
        out = self._socket.fileno()
        while count and not self.stopped:
            if self.paused:
                await self.writable()
            if self.stopped:
                return
            if not self._drained and self._wait_drained():
                continue
            if self._drained:
                sent = self._sendfile_once(out, fd, offset, count)
                if self.stopped:
                    return
                offset += sent
                count -= sent
                if not count:
                    return
                if sent and self._wait_writable():
                    continue
            chunk = os.pread(fd, min(count, DIRECT_CHUNK), offset)
            if not chunk:
                raise OSError(errno.EIO, "the slice file is shorter than its header says")
            offset += len(chunk)
            count -= len(chunk)
            self.write(chunk)

    def writable(self) -> defer.Deferred[None]:
        """Fires when the client's transport takes more (at once when it is not paused)."""
        if not self.paused or self.stopped:
            return defer.succeed(None)

        def cancel(d: defer.Deferred[None]) -> None:
            if d in self._waiters:
                self._waiters.remove(d)

        d: defer.Deferred[None] = defer.Deferred(cancel)
        self._waiters.append(d)
        return d

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            d.callback(None)

    def pauseProducing(self) -> None:
        self.paused = True
        self._drained = False
        if self._upstream is not None:
            self._upstream.pause()

    def resumeProducing(self) -> None:
        # The transport resumes its producer only once its buffer is empty.
        self.paused = False
        self._drained = True
        if self._upstream is not None:
            self._upstream.resume()
        self._wake()

    def stopProducing(self) -> None:
        self.stopped = True
        self._wake()


async def pass_through(
    request: IRequest, client: UpstreamClient, url: str, provider_headers: dict[str, str], pump: ResponsePump,
    response: UpstreamResponse | None = None,
) -> None:
    """Relay the upstream's answer as it is (module docstring). ``response``: one already opened."""
    if response is None:
        extra = {name: value for name, value in (("Range", header(request, b"range")),
                                                 ("If-Range", header(request, b"if-range"))) if value}
        response = await client.open("GET", url, upstream_headers(provider_headers, extra))
    if response.code not in (200, 206, 416):
        response.discard()
        raise UpstreamError(f"the upstream answered {response.code}", detail={"upstream_status": response.code})
    request.setResponseCode(response.code)
    request.setHeader(b"Content-Type", answer_type(response.header("content-type"), url).encode("ascii"))
    for name in _PASSED_HEADERS:
        value = response.header(name)
        if value is not None:
            request.setHeader(name.encode("ascii"), value.encode("latin-1"))
    if response.length is not None:  # the Twisted client keeps Content-Length out of .headers
        request.setHeader(b"Content-Length", str(response.length).encode("ascii"))
    if response.header("accept-ranges") is None:
        request.setHeader(b"Accept-Ranges", b"none")
    request.setHeader(b"X-Cache", b"BYPASS")
    if is_head(request):
        response.discard()
        return
    pump.start()
    pump.relay(response)
    await response.stream(pump.write)


async def serve_playlist(
    request: IRequest, client: UpstreamClient, url: str, provider_headers: dict[str, str],
    rewrite: Callable[[str, str, int], str],
) -> None:
    """Fetch the playlist, rewrite every URI with ``rewrite`` and answer it."""
    response = await client.open("GET", url, upstream_headers(provider_headers))
    if response.code != 200:
        response.discard()
        raise UpstreamError(f"the upstream answered {response.code} for the playlist",
                            detail={"upstream_status": response.code})
    body = await response.read(MAX_PLAYLIST_BYTES)
    try:
        out = rewrite_playlist(body, response.url or url, rewrite)
    except ValueError as e:  # M3U8Error included
        raise UpstreamError(f"the upstream playlist cannot be rewritten: {e}") from None
    request.setResponseCode(200)
    request.setHeader(b"Content-Type", PLAYLIST_TYPE)
    request.setHeader(b"Content-Length", str(len(out)).encode("ascii"))
    request.setHeader(b"Cache-Control", b"no-store")
    request.setHeader(b"X-Cache", b"BYPASS")
    if not is_head(request):
        request.write(out)
