"""A Python client of the realtime protocol (docs/realtime.md), on Twisted and Autobahn.

Used by the tests, the benchmarks and ``synctv watch``::

    client = await connect("http://127.0.0.1:8080", "movie-night", token)
    state = await client.observe("playbackState")          # the current value
    client.on_message(print)                                # every frame the server sends
    state = await client.update("play", version=state["version"])
    client.server_now()                                     # the server's clock, in ms
    await client.close()

``connect`` fires once ``welcome`` has arrived and the first clock sync is done. Requests carry an
integer ``id``; their Deferred fires with the reply that echoes it, or fails with
``RealtimeError`` (the ``error`` frame's ``code``, ``message`` and ``detail``). A refused upgrade
fails ``connect`` with ``Refused`` (HTTP ``status``, the JSON error's ``code`` and ``message``).

Clock sync: a burst of ``time`` samples at connect (sent one after another), keeping the offset of
the sample with the smallest round trip, and again every ``resync_s`` seconds;
``server_now() = local_now() + offset``.

With ``reconnect=True`` a connection lost abnormally (not a close by the server with a 4xxx or
1008 code) is reopened with backoff, up to ``max_retries`` attempts in a row; the resources
observed before are observed again (their current values arrive as ordinary messages) and the
clock re-synced. ``when_closed()`` fires with the final ``CloseInfo``.
"""

from __future__ import annotations

import itertools
import json
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

import attrs
from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet import endpoints
from twisted.internet.defer import Deferred, fail
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from twisted.python.failure import Failure

Message = dict[str, Any]
Listener = Callable[[Message], None]

SYNC_SAMPLES = 8
RESYNC_SAMPLES = 4
RESYNC_S = 30.0
BACKOFF = (0.25, 0.5, 1.0, 2.0, 4.0)
NO_RECONNECT_CODES = frozenset({1000, 1008, 1009, 4000, 4001, 4008})

log = Logger()


class RealtimeError(Exception):
    """The server answered a request with an ``error`` frame."""

    def __init__(self, code: str, message: str, detail: Any = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.detail = detail


class Refused(Exception):
    """The server refused the WebSocket upgrade with an HTTP answer (401, 403, 404, 429, ...)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class ConnectionLost(Exception):
    """The connection closed while a request was waiting, or could not be re-established."""


@attrs.frozen
class CloseInfo:
    code: int | None
    reason: str
    clean: bool


@attrs.frozen
class ClockSample:
    offset_ms: float
    rtt_ms: float


def clock_sample(t0: float, t1: float, t2: float, t3: float) -> ClockSample:
    """The offset and round trip of one ``time`` exchange (docs/realtime.md, "Clock sync").
    Server times are whole milliseconds, truncated: half a millisecond is added to integers, and
    a round trip made negative by that rounding counts as 0."""
    if isinstance(t1, int) and isinstance(t2, int):
        t1, t2 = t1 + 0.5, t2 + 0.5
    return ClockSample(((t1 - t0) + (t2 - t3)) / 2.0, max(0.0, (t3 - t0) - (t2 - t1)))


def best_sample(samples: list[ClockSample]) -> ClockSample:
    """The sample with the smallest round trip."""
    return min(samples, key=lambda s: s.rtt_ms)


class LocalClock:
    """Milliseconds: the wall clock at construction plus monotonic elapsed time (never steps)."""

    def __init__(self) -> None:
        self._base = time.time() * 1000.0 - time.monotonic() * 1000.0

    def __call__(self) -> float:
        return self._base + time.monotonic() * 1000.0


def websocket_url(server: str, room: str) -> str:
    """``http(s)://host[:port][/prefix]`` or ``ws(s)://...`` -> ``ws(s)://.../ws/rooms/{room}``."""
    parts = urllib.parse.urlsplit(server)
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme.lower())
    if scheme is None or not parts.hostname:
        raise ValueError(f"bad server URL {server!r}: expected http(s)://HOST[:PORT]")
    path = parts.path.rstrip("/")
    if "/ws/rooms/" not in path:
        path += "/ws/rooms/" + urllib.parse.quote(room, safe="")
    return urllib.parse.urlunsplit((scheme, parts.netloc, path, "", ""))


class _Protocol(WebSocketClientProtocol):
    """Frames in and out; everything else is the RealtimeClient's."""

    client: RealtimeClient | None = None

    def onOpen(self) -> None:
        self.factory.opened(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        if isBinary or self.client is None:
            return
        try:
            message = json.loads(payload)
        except ValueError:
            log.warn("realtime client: a frame that is not JSON ({size} bytes)", size=len(payload))
            return
        if isinstance(message, dict):
            self.client._received(message)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        status = getattr(self, "http_status_line", None)
        refused = None
        if status and self.client is None:  # the upgrade was answered with an HTTP error
            refused = _refusal(status, getattr(self, "data", b""), getattr(self, "http_response_data", b""))
        self.factory.closed(self, CloseInfo(code, reason or "", wasClean), refused)


def _refusal(status_line: str, data: bytes, head: bytes) -> Refused | None:
    parts = status_line.split()
    try:
        status = int(parts[1])
    except (IndexError, ValueError):
        return None
    if status == 101:
        return None
    code, message = "", " ".join(parts[2:])
    body = data[len(head) :] if data.startswith(head) else b""
    try:
        error = json.loads(body)["error"]
        code, message = str(error.get("code", "")), str(error.get("message", message))
    except (ValueError, KeyError, TypeError, AttributeError):
        pass
    return Refused(status, code, message)


class _Factory(WebSocketClientFactory):
    protocol = _Protocol

    def __init__(self, url: str, token: str | None, on_open: Any, on_close: Any) -> None:
        super().__init__(url, headers={"Authorization": f"Bearer {token}"} if token else {})
        self.setProtocolOptions(autoPingInterval=20, autoPingTimeout=10, openHandshakeTimeout=15)
        self.opened = on_open
        self.closed = on_close


class RealtimeClient:
    """One connection to one room (reopened when ``reconnect`` is set). Build it with ``connect``."""

    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        reactor: Any,
        clock: Callable[[], float],
        reconnect: bool,
        max_retries: int,
        resync_s: float,
    ) -> None:
        self.url = url
        self._token = token
        self.reactor = reactor
        self.local_now = clock
        self.reconnect = reconnect
        self.max_retries = max_retries
        self.resync_s = resync_s
        self.welcome: Message = {}
        self.offset_ms = 0.0
        self.rtt_ms = 0.0
        self._protocol: _Protocol | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, Deferred[Message]] = {}
        self._listeners: list[Listener] = []
        self._reconnect_listeners: list[Callable[[RealtimeClient], None]] = []
        self._observed: dict[str, Any] = {}
        self._connecting: Deferred[RealtimeClient] | None = None
        self._closed: Deferred[CloseInfo] = Deferred()
        self._closing = False
        self._retries = 0
        self._resync: IDelayedCall | None = None
        self._retry_call: IDelayedCall | None = None
        self._was_open = False

    # -- public ---------------------------------------------------------------------------------

    @property
    def connection_id(self) -> str | None:
        return self.welcome.get("connection_id")

    @property
    def connected(self) -> bool:
        return self._protocol is not None and self._connecting is None

    def server_now(self) -> float:
        """The server's clock now, in ms, from the last clock sync."""
        return self.local_now() + self.offset_ms

    def request(self, kind: str, **fields: Any) -> Deferred[Message]:
        """Send ``{"type": kind, "id": N, **fields}``; fires with the reply carrying ``id`` N."""
        protocol = self._protocol
        if protocol is None or self._closing:
            return fail(ConnectionLost("not connected"))
        ident = next(self._ids)
        d: Deferred[Message] = Deferred()
        self._pending[ident] = d
        self._send(protocol, {"type": kind, "id": ident, **fields})
        return d

    def send(self, kind: str, **fields: Any) -> None:
        """Send a message without an ``id`` (no reply expected)."""
        if self._protocol is not None and not self._closing:
            self._send(self._protocol, {"type": kind, **fields})

    def observe(self, resource: str, profile: Any = None) -> Deferred[Message]:
        """Observe ``resource``; fires with its current value. Changes arrive via ``on_message``."""
        self._observed[resource] = profile
        fields = {"resource": resource} if profile is None else {"resource": resource, "profile": profile}
        return self.request("observe", **fields)

    def unobserve(self, resource: str) -> Deferred[Message]:
        self._observed.pop(resource, None)
        return self.request("unobserve", resource=resource)

    def update(
        self,
        action: str,
        *,
        version: int,
        position: float | None = None,
        rate: float | None = None,
        media_id: str | None = None,
    ) -> Deferred[Message]:
        """A playback ``update``; fires with the new ``playbackState`` or fails (``stale_version``...)."""
        fields: dict[str, Any] = {"action": action, "version": version}
        for name, value in (("position", position), ("rate", rate), ("media_id", media_id)):
            if value is not None:
                fields[name] = value
        return self.request("update", **fields)

    def chat(self, text: str) -> Deferred[Message]:
        return self.request("chat", text=text)

    def danmaku(self, text: str, at: float) -> Deferred[Message]:
        return self.request("danmaku", text=text, at=at)

    def on_message(self, callback: Listener) -> Callable[[], None]:
        """Call ``callback(message)`` for every frame received (replies included)."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback) if callback in self._listeners else None

    def on_reconnect(self, callback: Callable[[RealtimeClient], None]) -> None:
        """Call ``callback(client)`` after each successful reconnection."""
        self._reconnect_listeners.append(callback)

    def sync_clock(self, samples: int = SYNC_SAMPLES) -> Deferred[ClockSample]:
        """Take ``samples`` ``time`` samples one after another; keep the smallest round trip's offset."""
        taken: list[ClockSample] = []
        done: Deferred[ClockSample] = Deferred()

        def one(_: object = None) -> None:
            if len(taken) >= samples:
                best = best_sample(taken)
                self.offset_ms, self.rtt_ms = best.offset_ms, best.rtt_ms
                done.callback(best)
                return
            t0 = self.local_now()
            d = self.request("time", t0=t0)
            d.addCallback(
                lambda reply: taken.append(clock_sample(t0, reply["t1"], reply["t2"], self.local_now()))
            )
            d.addCallbacks(one, done.errback)

        one()
        return done

    def close(self, code: int = 1000) -> Deferred[CloseInfo]:
        """Close normally; fires with the CloseInfo once the connection is gone."""
        self._closing = True
        self._cancel_timers()
        if self._protocol is not None:
            self._protocol.sendClose(code)
        elif not self._closed.called:
            self._closed.callback(CloseInfo(code, "closed by the client", True))
        return self.when_closed()

    def when_closed(self) -> Deferred[CloseInfo]:
        """Fires with the final CloseInfo (after reconnection gave up, if enabled)."""
        d: Deferred[CloseInfo] = Deferred()
        if self._closed.called:
            d.callback(self._closed.result)
        else:
            self._closed.addBoth(lambda r: (d.callback(r), r)[1])
        return d

    # -- connection -----------------------------------------------------------------------------

    def _open(self) -> Deferred[RealtimeClient]:
        self._connecting = Deferred()
        factory = _Factory(self.url, self._token, self._opened, self._lost)
        if factory.isSecure:
            from twisted.internet.ssl import optionsForClientTLS

            endpoint = endpoints.wrapClientTLS(
                optionsForClientTLS(factory.host),
                endpoints.HostnameEndpoint(self.reactor, factory.host, factory.port),
            )
        else:
            endpoint = endpoints.HostnameEndpoint(self.reactor, factory.host, factory.port, timeout=15)
        connecting = self._connecting
        endpoint.connect(factory).addErrback(lambda f: self._connect_failed(connecting, f))
        return connecting

    def _connect_failed(self, connecting: Deferred[RealtimeClient], f: Failure) -> None:
        if connecting is self._connecting:
            self._connecting = None
            connecting.errback(f)

    def _opened(self, protocol: _Protocol) -> None:
        protocol.client = self
        self._protocol = protocol

    def _received(self, message: Message) -> None:
        kind = message.get("type")
        if kind == "welcome" and self._connecting is not None:
            self.welcome = message
            self.sync_clock().addCallbacks(self._ready, self._ready_failed)
            return
        ident = message.get("id")
        if isinstance(ident, int) and ident in self._pending:
            d = self._pending.pop(ident)
            if kind == "error":
                d.errback(
                    RealtimeError(
                        str(message.get("code")), str(message.get("message")), message.get("detail")
                    )
                )
            else:
                d.callback(message)
        for callback in tuple(self._listeners):
            try:
                callback(message)
            except Exception:
                log.failure("realtime client listener failed on {message_type}", message_type=kind)

    def _ready(self, _: object) -> None:
        connecting, self._connecting = self._connecting, None
        reconnected, self._was_open = self._was_open, True
        self._retries = 0
        self._schedule_resync()
        if connecting is not None:
            connecting.callback(self)
        if reconnected:
            for resource, profile in list(self._observed.items()):
                self.observe(resource, profile).addErrback(lambda f: None)
            for callback in tuple(self._reconnect_listeners):
                callback(self)

    def _ready_failed(self, f: Failure) -> None:
        if self._protocol is not None:
            self._protocol.dropConnection(abort=True)  # _lost does the rest

    def _lost(self, protocol: _Protocol, info: CloseInfo, refused: Refused | None) -> None:
        if protocol is self._protocol:
            self._protocol = None
        connecting, self._connecting = self._connecting, None
        pending, self._pending = self._pending, {}
        for d in pending.values():
            d.errback(ConnectionLost(f"the connection closed ({info.code} {info.reason})".strip()))
        if self._resync is not None and self._resync.active():
            self._resync.cancel()
        if connecting is not None and not self._was_open:  # the first connection: connect() fails
            connecting.errback(refused or ConnectionLost(f"closed before ready: {info.reason or info.code}"))
            return
        if refused is None and self._may_retry(info):
            self._retry(info)
        else:
            self._finish(info if refused is None else CloseInfo(refused.status, str(refused), False))

    def _may_retry(self, info: CloseInfo) -> bool:
        return (
            self.reconnect
            and not self._closing
            and info.code not in NO_RECONNECT_CODES
            and self._retries < self.max_retries
        )

    def _retry(self, info: CloseInfo) -> None:
        delay = BACKOFF[min(self._retries, len(BACKOFF) - 1)]
        self._retries += 1
        log.info(
            "realtime client: connection lost ({code}); reconnecting in {delay}s", code=info.code, delay=delay
        )

        def attempt() -> None:
            self._retry_call = None
            if self._closing:
                self._finish(info)
                return
            self._open().addErrback(lambda f: self._retry_failed(info, f))

        self._retry_call = self.reactor.callLater(delay, attempt)

    def _retry_failed(self, info: CloseInfo, f: Failure) -> None:
        """A reconnection attempt could not even open TCP (a refused upgrade goes through _lost)."""
        if self._may_retry(info):
            self._retry(info)
        else:
            self._finish(
                CloseInfo(info.code, f"{info.reason}; reconnecting failed: {f.getErrorMessage()}", False)
            )

    def _finish(self, info: CloseInfo) -> None:
        self._cancel_timers()
        if not self._closed.called:
            self._closed.callback(info)

    def _cancel_timers(self) -> None:
        for call in (self._resync, self._retry_call):
            if call is not None and call.active():
                call.cancel()

    def _schedule_resync(self) -> None:
        if self.resync_s > 0:
            self._resync = self.reactor.callLater(self.resync_s, self._do_resync)

    def _do_resync(self) -> None:
        self._resync = None
        if self._protocol is None or self._closing:
            return
        d = self.sync_clock(RESYNC_SAMPLES)
        d.addErrback(lambda f: None)
        d.addBoth(lambda _: self._schedule_resync() if self._protocol is not None else None)

    @staticmethod
    def _send(protocol: _Protocol, message: Message) -> None:
        protocol.sendMessage(json.dumps(message, separators=(",", ":")).encode("utf-8"), isBinary=False)


def connect(
    url: str,
    room: str,
    token: str | None,
    *,
    reactor: Any = None,
    clock: Callable[[], float] | None = None,
    reconnect: bool = False,
    max_retries: int = 5,
    resync_s: float = RESYNC_S,
) -> Deferred[RealtimeClient]:
    """Open ``/ws/rooms/{room}`` on the server at ``url`` (``http(s)://`` or ``ws(s)://``) with
    ``token``; fires with the client once ``welcome`` has arrived and the clock is synced."""
    if reactor is None:
        from twisted.internet import reactor
    try:
        ws_url = websocket_url(url, room)
    except ValueError:
        return fail()
    client = RealtimeClient(
        ws_url,
        token,
        reactor=reactor,
        clock=clock or LocalClock(),
        reconnect=reconnect,
        max_retries=max_retries,
        resync_s=resync_s,
    )
    return client._open()


__all__ = [
    "CloseInfo",
    "ConnectionLost",
    "RealtimeClient",
    "RealtimeError",
    "Refused",
    "clock_sample",
    "connect",
    "websocket_url",
]
