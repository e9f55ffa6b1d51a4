"""The live proxy: a media item whose source is an upstream HTTP-FLV URL, pulled on demand.

``LivePull`` is the publisher of such an item's ``LiveStream``. The hub starts it when a viewer
arrives (an FLV connection, or a player reading the HLS playlist); it requests the upstream through an
``Opener`` (the media proxy's ``UpstreamClient``: address checks, timeouts), demuxes the body with
``FLVReader`` and feeds the tags to the stream exactly as an RTMP publisher would, so viewers get
the same FLV and HLS.

The pull never looks at the URL's host itself: the opener resolves it and connects only to
addresses the proxy's guard admits (``synctv.proxy.special``: loopback, private, NAT64/6to4 forms
of them, ... refused unless in ``[proxy] allow_networks``), for every redirect hop too. A refusal
is an upstream failure like any other (retried with backoff, shown in the stream info). Every ``check_s`` it looks at the viewers;
after ``idle_s`` without any it stops and the stream ends like a publish that stopped.

An upstream that fails (refused, an HTTP error, a broken FLV, a body that ends or stalls past
the opener's idle timeout) is retried with exponential backoff (``backoff_s`` doubling up to ``max_backoff_s``)
while viewers remain; FLV viewers stay connected across a retry, and the stream's timeline
continues. The upstream's state, last error and retry count are part of the stream info.

The same class relays a stream from the node that ingests it (``source="relay"``, see
``synctv.live.service``): then ``sign`` adds a fresh node signature to every (re)connection, and
``final`` makes the upstream's clean end or a 404 end the stream here too (the publish ended on
its node) instead of being retried.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from synctv.core.clock import Clock
from synctv.live import flv
from synctv.live.streams import LiveStream, StreamRegistry

MAX_ERROR_LENGTH = 200


class UpstreamAnswer(Protocol):
    """An upstream answer whose body is not read yet (``synctv.proxy.upstream.UpstreamResponse``)."""

    code: int

    def stream(self, on_data: Callable[[bytes], None]) -> Deferred[None]:
        """Deliver the body chunk by chunk; fires at its end; cancelling drops the connection."""

    def discard(self) -> None: ...


class Opener(Protocol):
    """Opens upstream requests (``synctv.proxy.upstream.UpstreamClient``: address checks, timeouts)."""

    def open(self, method: str, url: str, headers: Mapping[str, str]) -> Deferred[UpstreamAnswer]: ...


def redact_url(url: str) -> str:
    """The URL without credentials, query or fragment (they may carry secrets)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, "", ""))
    except ValueError:
        return "<invalid url>"


class UpstreamError(Exception):
    """The upstream answered something that is not a live FLV stream."""


class LivePull:
    """Publisher of one live-proxy stream; see the module docstring."""

    log = Logger()

    def __init__(
        self,
        *,
        registry: StreamRegistry,
        room_id: str,
        media_id: str,
        url: str,
        headers: Mapping[str, str],
        opener: Opener,
        scheduler: IReactorTime,
        clock: Clock,
        idle_s: float = 10.0,
        check_s: float = 1.0,
        backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
        on_stopped: Callable[[LivePull], None] = lambda pull: None,
        source: str = "pull",
        sign: Callable[[], Mapping[str, str]] | None = None,
        final: bool = False,
    ) -> None:
        self.registry = registry
        self.room_id = room_id
        self.media_id = media_id
        self.url = url
        self.headers = dict(headers)
        self.opener = opener
        self.scheduler = scheduler
        self.clock = clock
        self.idle_s = idle_s
        self.check_s = check_s
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.on_stopped = on_stopped
        self.source = source
        self.sign = sign
        self.final = final
        self.state = "idle"
        self.stream: LiveStream | None = None
        self.retries = 0
        self.failures = 0
        self.last_error: str | None = None
        self.connected_at: int | None = None
        self._reader = flv.FLVReader()
        self._request: Deferred[Any] | None = None
        self._body: Deferred[None] | None = None
        self._timer: IDelayedCall | None = None
        self._idle_since: float | None = None
        self._check: IDelayedCall | None = None
        self._got_data = False

    @property
    def what(self) -> str:
        return "relay" if self.source == "relay" else "live proxy"

    @property
    def running(self) -> bool:
        return self.state not in ("idle", "stopped")

    def start(self) -> LiveStream:
        """Become the stream's publisher and connect to the upstream."""
        self.stream = self.registry.begin_publish(self.room_id, self.media_id, self, self.source)
        self.state = "connecting"
        self._publish_info()
        self._connect()
        self._check = self.scheduler.callLater(self.check_s, self._check_viewers)
        return self.stream

    def stop(self, reason: str) -> None:
        if self.state == "stopped":
            return
        self.state = "stopped"
        self.log.info("{what} of {room_id}/{media_id} stopped: {reason}", what=self.what,
                      room_id=self.room_id, media_id=self.media_id, reason=reason)
        for call in (self._timer, self._check):
            if call is not None and call.active():
                call.cancel()
        self._timer = self._check = None
        self._disconnect()
        if self.stream is not None:
            self._publish_info()
            self.registry.end_publish(self.stream, self)
        self.on_stopped(self)

    # -- the upstream connection ----------------------------------------------------------------

    def _connect(self) -> None:
        self._timer = None
        if self.state == "stopped":
            return
        self.state = "connecting"
        self._reader = flv.FLVReader()
        self._got_data = False
        self._publish_info()
        headers = {**self.headers, **self.sign()} if self.sign is not None else self.headers
        d = self.opener.open("GET", self.url, headers)
        self._request = d
        d.addCallback(self._response)
        d.addErrback(self._failed)

    def _response(self, answer: UpstreamAnswer) -> Deferred[None] | None:
        self._request = None
        if self.state == "stopped":
            answer.discard()
            return None
        if answer.code != 200:
            answer.discard()
            if self.final and answer.code == 404:
                self.stop("the stream is not live on its node")
                return None
            raise UpstreamError(f"the upstream answered HTTP {answer.code}")
        self.state = "pulling"
        self.connected_at = self.clock()
        self._publish_info()
        body = answer.stream(self._feed)
        self._body = body
        body.addCallback(self._ended)
        return body

    def _ended(self, _: None) -> None:
        if self.final:
            self._body = None
            self.stop("the stream ended on its node")
            return
        raise UpstreamError("the upstream ended the stream")

    def _feed(self, data: bytes) -> None:
        stream = self.stream
        if stream is None or self.state != "pulling":
            return
        for tag in self._reader.feed(data):
            if tag.tag_type == flv.TAG_VIDEO:
                stream.on_video(tag.timestamp, tag.payload)
            elif tag.tag_type == flv.TAG_AUDIO:
                stream.on_audio(tag.timestamp, tag.payload)
            else:
                try:
                    name, value = flv.parse_script(tag.payload)
                except flv.FLVError:
                    continue
                if name == "onMetaData" and isinstance(value, dict):
                    stream.on_metadata(value)
            if not self._got_data and tag.tag_type != flv.TAG_SCRIPT:
                self._got_data = True
                self.retries = 0
                self._publish_info()
        stream.flush()

    def _failed(self, failure: Failure) -> None:
        self._request = None
        self._body = None
        if self.state == "stopped":
            return
        self.failures += 1
        self.retries += 1
        error = failure.value
        text = str(error) if isinstance(error, UpstreamError) else f"{type(error).__name__}: {error}"
        self.last_error = text[:MAX_ERROR_LENGTH]
        delay = min(self.max_backoff_s, self.backoff_s * 2 ** (self.retries - 1))
        self.state = "retrying"
        self.log.info("{what} of {room_id}/{media_id}: upstream {url} failed ({error}); retry {n} in {delay}s",
                      what=self.what, room_id=self.room_id, media_id=self.media_id, url=redact_url(self.url),
                      error=self.last_error, n=self.retries, delay=delay)
        if self.stream is not None:
            self.stream.timeline.new_source()
        self._publish_info(next_retry_s=delay)
        self._timer = self.scheduler.callLater(delay, self._connect)

    def _disconnect(self) -> None:
        for attribute in ("_request", "_body"):
            d = getattr(self, attribute)
            setattr(self, attribute, None)
            if d is not None:
                d.cancel()

    # -- viewers --------------------------------------------------------------------------------

    def _check_viewers(self) -> None:
        self._check = None
        if self.state == "stopped" or self.stream is None:
            return
        stream = self.stream
        viewers = len(stream.viewers) + (stream.hls.viewers() if stream.hls is not None else 0)
        now = self.scheduler.seconds()
        if viewers:
            self._idle_since = None
        elif self._idle_since is None:
            self._idle_since = now
        elif now - self._idle_since >= self.idle_s:
            self.stop("no viewers")
            return
        self._check = self.scheduler.callLater(self.check_s, self._check_viewers)

    def _publish_info(self, next_retry_s: float | None = None) -> None:
        if self.stream is None:
            return
        self.stream.extra_info["upstream"] = {
            "url": redact_url(self.url),
            "state": self.state,
            "retries": self.retries,
            "failures": self.failures,
            "last_error": self.last_error,
            "connected_at": self.connected_at,
            "next_retry_s": next_retry_s,
        }
