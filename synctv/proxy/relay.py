"""Writing proxied bodies to a client: back-pressure, pass-through (BYPASS) and HLS playlists.

:class:`ResponsePump` is the push producer a proxied response registers on its request: the
client's transport pauses and resumes it, and it pauses and resumes the upstream body it relays
(pass-through) or tells the slice loop to wait before the next slice (``writable``).

Pass-through is for upstreams that do not honour ``Range``: their answer is relayed as it is
(status, length and the entity headers; the type only as ``synctv.proxy.media_types`` admits it),
streamed, never cached, marked ``X-Cache: BYPASS``.
Playlists are fetched whole (they are small; a cap guards the size), rewritten so every URI is a
signed proxy URL, and answered with ``Cache-Control: no-store`` (live playlists change).
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet import defer
from twisted.internet.interfaces import IPushProducer
from twisted.web.iweb import IRequest
from zope.interface import implementer

from synctv.proxy.m3u8 import rewrite_playlist
from synctv.proxy.media_types import answer_type
from synctv.proxy.upstream import UpstreamClient, UpstreamError, UpstreamResponse, upstream_headers

MAX_PLAYLIST_BYTES = 8 << 20
PLAYLIST_TYPE = b"application/vnd.apple.mpegurl"
_PASSED_HEADERS = ("content-range", "accept-ranges", "etag", "last-modified")


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

    def start(self) -> None:
        transport = getattr(getattr(self.request, "channel", None), "transport", None)
        if transport is not None and hasattr(transport, "setTcpNoDelay"):
            transport.setTcpNoDelay(True)  # the tail of a body is not held back waiting for an ACK
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
            self.request.write(data)

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
        if self._upstream is not None:
            self._upstream.pause()

    def resumeProducing(self) -> None:
        self.paused = False
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
