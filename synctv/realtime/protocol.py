"""The Autobahn WebSocket protocol of ``/ws/rooms/{room}``: thin, it only frames bytes.

Before the upgrade (``onConnect``) it authorizes the token for the room and takes a slot under
the connection caps; a refusal is an HTTP answer with the JSON error body of the HTTP API.
After it, every text frame goes to the connection's ``ConnectionSession`` and every frame the
session emits is written here. Besides, this layer watches the connection itself:

- **idle**: nothing received (not even a pong to the pings every ``ping_s``) for ``idle_s`` ->
  close 4009. One ``Keepalive`` per factory does both for every connection: a timer every
  ``tick_s`` (at most 1 s, a quarter of ``ping_s``) pings the connections whose ping is due (an
  empty ping frame, written like the fan-out's frames) and closes the silent ones, instead of
  two timers per connection (Autobahn's own auto-ping is off);
- **slow consumer**: the protocol registers as the transport's streaming producer. Once the
  transport says its buffer is full (``pauseProducing``), bytes written until it drains
  (``resumeProducing``) are counted; past ``send_buffer_bytes`` the connection is closed with
  4008 and nothing more is written to it. Nobody else waits for it: fan-out only appends to
  its buffer, and the close handshake timeout aborts it if it never reads its close frame;
- frames over ``max_frame_bytes`` close with 1009 (Autobahn), invalid UTF-8 with 1007.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.protocol import PreparedMessage, WebSocketProtocol
from autobahn.websocket.types import ConnectionDeny, ConnectionRequest
from twisted.internet import tcp
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger
from twisted.web.http import RESPONSES
from zope.interface import implementer

from synctv.api.errors import encode_json, error_body, status_for
from synctv.compat.autobahn import compresses
from synctv.compat.twisted import write_buffer_empty
from synctv.core.errors import DomainError, Unavailable
from synctv.core.realtime import RealtimeLimits
from synctv.realtime.auth import ConnectionAuthorizer, Principal, choose_subprotocol, token_from_request
from synctv.realtime.connections import ConnectionRuntime, Slot
from synctv.realtime.session import CLOSE_GOING_AWAY, CLOSE_IDLE, CLOSE_TOO_SLOW, ConnectionSession
from synctv.socket_writes import write_now

OPEN_HANDSHAKE_TIMEOUT_S = 10.0
CLOSE_HANDSHAKE_TIMEOUT_S = 5.0
FRAME_OVERHEAD = 10  # the most a server frame header adds to a payload
_OPEN = WebSocketProtocol.STATE_OPEN
_CODE_BY_STATUS = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                   405: "method_not_allowed", 429: "rate_limited", 503: "unavailable"}


@implementer(IPushProducer)
class SendPressure:
    """Learns from the transport when its send buffer is full, and counts bytes written since."""

    def __init__(self) -> None:
        self.paused = False
        self.queued = 0

    def pauseProducing(self) -> None:
        # called on every write while the buffer is over the transport's mark: count from the first
        if not self.paused:
            self.paused = True
            self.queued = 0

    def resumeProducing(self) -> None:
        self.paused = False
        self.queued = 0

    def stopProducing(self) -> None:
        self.paused = False

    def wrote(self, size: int) -> int:
        """Count ``size`` bytes; returns the bytes queued since the buffer filled (0 if it is not)."""
        if self.paused:
            self.queued += size
        return self.queued


def write_direct(protocols: Iterable[RoomProtocol], data: bytes, frame: Any) -> None:
    """``data`` (a whole frame's bytes) to each of ``protocols``: with one ``send`` on its socket
    when it is open, direct (``RoomProtocol.direct``), not too slow and has nothing queued ahead;
    the rest the kernel did not take is queued on the transport behind it (and counts for
    back-pressure). The others get ``RoomProtocol.send_prepared(frame)``; without ``frame``
    (a ping) they are skipped when not open and get Autobahn's ``sendPing`` otherwise."""
    size = len(data)
    for protocol in protocols:
        sock = protocol.direct
        transport = protocol.transport
        if sock is None or protocol.state != _OPEN or protocol.too_slow or transport.disconnecting \
                or not write_buffer_empty(transport):
            if frame is not None:
                protocol.send_prepared(frame)
            elif protocol.state == _OPEN and not protocol.too_slow:
                protocol.sendPing()
                protocol.wrote(size)
            continue
        try:
            sent = sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:  # reset, broken pipe: Twisted finds it on its own write and closes
            sent = 0
        if sent != size:
            transport.write(data[sent:])
            protocol.wrote(size)


PING = b"\x89\x00"  # an empty ping frame (server frames are not masked)


class Keepalive:
    """Pings each open connection every ``ping_s`` and closes those that sent nothing for
    ``idle_s`` (4009), from one timer every ``tick_s`` while there are connections.

    Each connection has one entry in a heap, keyed by when it must be looked at next (its next
    ping, or the moment it would turn idle if that comes first), so a tick costs the entries that
    are due, not a pass over every connection."""

    def __init__(self, reactor: Any, ping_s: float, idle_s: float) -> None:
        self.reactor = reactor
        self.ping_s = ping_s
        self.idle_s = idle_s
        self.tick_s = max(0.01, min(1.0, ping_s / 4, idle_s / 4))
        self.protocols: dict[RoomProtocol, None] = {}
        self._due: list[tuple[float, int, RoomProtocol]] = []
        self._seq = itertools.count()
        self._call: Any = None

    def add(self, protocol: RoomProtocol) -> None:
        protocol.next_ping = self.reactor.seconds() + self.ping_s
        self.protocols[protocol] = None
        heapq.heappush(self._due, (min(protocol.next_ping, protocol.last_data + self.idle_s),
                                   next(self._seq), protocol))
        if self._call is None:
            self._call = self.reactor.callLater(self.tick_s, self.tick)

    def remove(self, protocol: RoomProtocol) -> None:
        """Forget ``protocol`` (its heap entry is dropped when it comes up)."""
        self.protocols.pop(protocol, None)
        if not self.protocols:
            self._due.clear()
            if self._call is not None:
                if self._call.active():
                    self._call.cancel()
                self._call = None

    def tick(self) -> None:
        self._call = None
        now = self.reactor.seconds()
        due = self._due
        pings: list[RoomProtocol] = []
        silent: list[RoomProtocol] = []
        while due and due[0][0] <= now:
            _, _, protocol = heapq.heappop(due)
            if protocol not in self.protocols:
                continue
            if now - protocol.last_data >= self.idle_s:
                silent.append(protocol)
                continue
            if protocol.next_ping <= now:
                protocol.next_ping = now + self.ping_s
                pings.append(protocol)
            heapq.heappush(due, (min(protocol.next_ping, protocol.last_data + self.idle_s),
                                 next(self._seq), protocol))
        if pings:
            write_direct(pings, PING, None)
        for protocol in silent:
            self.protocols.pop(protocol, None)
            protocol.idle_for(self.idle_s)
        if self.protocols and self._call is None:
            self._call = self.reactor.callLater(self.tick_s, self.tick)


def send_many(frame: Any, sinks: Sequence[ProtocolSink]) -> None:
    """Write one prepared frame to many connections: the fan-out's tight loop.

    For each connection that is open, not compressing, on a plain TCP transport with nothing
    queued ahead, the frame's bytes (framed once, ``payloadHybi``) go to its socket with one
    ``send``; whatever the kernel does not take is queued on the transport behind it (and counts
    for back-pressure, ``RoomProtocol.wrote``). Every other connection takes the frame through
    ``RoomProtocol.send_prepared``. No other Python call is made per connection.
    """
    if isinstance(frame, bytes):
        for sink in sinks:
            sink.send_shared(frame)
        return
    write_direct([sink.protocol for sink in sinks], frame.payloadHybi, frame)


class ProtocolSink:
    """The ``Sink`` a ConnectionSession writes to: this connection's protocol."""

    __slots__ = ("protocol",)

    def __init__(self, protocol: RoomProtocol) -> None:
        self.protocol = protocol

    def send(self, payload: bytes) -> None:
        self.protocol.send_payload(payload)

    def send_shared(self, frame: Any) -> None:
        self.protocol.send_prepared(frame)

    def close(self, code: int, reason: str) -> None:
        self.protocol.close_with(code, reason)


class RoomProtocol(WebSocketServerProtocol):
    """One connection to ``/ws/rooms/{room_ref}``; see the module docstring."""

    _log = Logger()
    factory: RoomProtocolFactory
    room_ref: str = ""
    http_done: Callable[[int], None] | None = None  # set by the resource: the HTTP part ended

    def __init__(self) -> None:
        super().__init__()
        self.slot: Slot | None = None
        self.principal: Principal | None = None
        self.session: ConnectionSession | None = None
        self.pressure = SendPressure()
        self._deny: DomainError | None = None
        self._lost = False
        self.too_slow = False
        self.direct: Any = None  # the socket send_many writes to, on a plain TCP transport
        self.last_data = 0.0  # reactor.seconds() of the last bytes received
        self.next_ping = 0.0  # when the Keepalive pings this connection next

    # -- the opening handshake ------------------------------------------------------------------

    def onConnect(self, request: ConnectionRequest) -> Deferred[str | None]:
        return Deferred.fromCoroutine(self._authorize(request))

    async def _authorize(self, request: ConnectionRequest) -> str | None:
        try:
            token = token_from_request(request.headers, request.protocols, request.params)
            principal = await self.factory.authorizer.authorize(token, self.room_ref)
            if self._lost:
                raise Unavailable("the connection closed during its handshake")
            self.slot = self.factory.runtime.reserve(principal.room.id, principal.user.id)
        except DomainError as e:
            self._deny = e
            raise ConnectionDeny(status_for(e.code), e.message) from None
        except Exception:
            self._log.failure("authorizing a WebSocket for room {room_ref}", room_ref=self.room_ref[:64])
            self._deny = Unavailable("the server cannot check this connection now; try again")
            raise ConnectionDeny(503, self._deny.message) from None
        self.principal = principal
        return choose_subprotocol(request.protocols)

    def succeedHandshake(self, res: Any) -> None:
        super().succeedHandshake(res)
        self._http_finished(101)

    def failHandshake(self, reason: str, code: int = 400, responseHeaders: Any = None) -> None:
        """Refuse the upgrade with the JSON error body of the HTTP API."""
        error = self._deny
        if error is None:
            error_code, message, detail = _CODE_BY_STATUS.get(code, "bad_request"), reason, None
            status = code
        else:
            error_code, message, detail = error.code, error.message, error.detail
            status = status_for(error.code)
        body = encode_json(error_body(error_code, message, detail=detail))
        phrase = RESPONSES.get(status, b"Error").decode("latin-1")
        head = [f"HTTP/1.1 {status} {phrase}", "Content-Type: application/json; charset=utf-8",
                f"Content-Length: {len(body)}", "Cache-Control: no-store", "Connection: close"]
        if status == 401:
            head.append('WWW-Authenticate: Bearer realm="synctv"')
        if isinstance(detail, dict) and isinstance(detail.get("retry_after"), int):
            head.append(f"Retry-After: {detail['retry_after']}")
        self._log.info("refused a WebSocket for room {room_ref}: {status} {message}", room_ref=self.room_ref[:64],
                       status=status, message=message)
        self.wasNotCleanReason = reason
        self.sendData(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        self.dropConnection(abort=False)
        self._http_finished(status)

    def _http_finished(self, status: int) -> None:
        done, self.http_done = self.http_done, None
        if done is not None:
            done(status)

    # -- open -----------------------------------------------------------------------------------

    def onOpen(self) -> None:
        assert self.slot is not None and self.principal is not None
        self.session = self.factory.runtime.open(self.slot, self.principal, ProtocolSink(self))
        if type(self.transport) is tcp.Server and not compresses(self):
            self.direct = self.transport.getHandle()
        try:
            self.transport.registerProducer(self.pressure, True)
        except RuntimeError:
            self._log.warn("connection {connection_id}: the transport has a producer; slow-consumer "
                           "detection is off", connection_id=self.slot.connection_id)
        self.last_data = self.factory.reactor.seconds()
        self.factory.keepalive.add(self)
        self._log.info("{user_name} connected to room {room_id} as {connection_id}",
                       user_name=self.principal.user.name, room_id=self.slot.room_id,
                       connection_id=self.slot.connection_id)
        self.session.welcome()
        if self.factory.runtime.closing:  # shutdown began during the handshake
            self.session.close(CLOSE_GOING_AWAY, "server going away")

    def dataReceived(self, data: bytes) -> None:
        self.last_data = self.factory.reactor.seconds()
        super().dataReceived(data)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        if self.session is not None:
            self.session.receive(payload, isBinary)

    # -- writing --------------------------------------------------------------------------------

    def _writable(self) -> bool:
        return self.state == WebSocketProtocol.STATE_OPEN and not self.too_slow

    def send_payload(self, payload: bytes) -> None:
        if self._writable():
            self.sendMessage(payload, isBinary=False)
            self.wrote(len(payload) + FRAME_OVERHEAD)

    def send_prepared(self, frame: Any) -> None:
        if isinstance(frame, bytes):
            self.send_payload(frame)
        elif self._writable():
            data = frame.payloadHybi  # the frame, encoded and framed once for every connection
            if compresses(self):  # never negotiated by this server; kept correct
                self.sendPreparedMessage(frame)
            else:
                write_now(self.transport, data)
            self.wrote(len(data))

    def wrote(self, size: int) -> None:
        if self.pressure.wrote(size) > self.factory.limits.send_buffer_bytes:
            self.too_slow = True
            self._log.warn("connection {connection_id} is too slow: over {limit} bytes unsent; closing",
                           connection_id=self.slot.connection_id if self.slot else "?",
                           limit=self.factory.limits.send_buffer_bytes)
            if self.session is not None:
                self.session.close(CLOSE_TOO_SLOW, "too slow: the unsent data passed its bound")
            else:
                self.close_with(CLOSE_TOO_SLOW, "too slow")

    def close_with(self, code: int, reason: str) -> None:
        """Start the closing handshake with ``code`` (any code, 1001 and 1008 included)."""
        if self.state == WebSocketProtocol.STATE_OPEN:
            self.sendCloseFrame(code=code, reasonUtf8=reason.encode("utf-8")[:123], isReply=False)
        elif self.state != WebSocketProtocol.STATE_CLOSED and self.state != WebSocketProtocol.STATE_CLOSING:
            self.dropConnection(abort=True)

    # -- idle -----------------------------------------------------------------------------------

    def idle_for(self, idle_s: float) -> None:
        """Nothing was received for ``idle_s``: close with 4009 (the ``Keepalive`` calls it)."""
        if self.session is not None and not self.session.closed:
            self.session.close(CLOSE_IDLE, f"idle: nothing received for {idle_s:g}s")

    # -- the end --------------------------------------------------------------------------------

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        self._finish()

    def connectionLost(self, reason: Any = None) -> None:
        self._lost = True
        try:
            super().connectionLost(reason)
        finally:
            self._finish()
            self._http_finished(499)

    def _finish(self) -> None:
        self.factory.keepalive.remove(self)
        if self.slot is not None:
            slot, self.slot = self.slot, None
            if self.session is not None:
                self._log.info("connection {connection_id} closed ({code})", connection_id=slot.connection_id,
                               code=self.session.close_code or self.remoteCloseCode)
            self.factory.runtime.release(slot)


def prepare_text(payload: bytes) -> PreparedMessage:
    """A server's text frame built once for many connections (the fan-out encodes once): what
    ``WebSocketServerFactory.prepareMessage`` makes, unmasked as a server's frames are."""
    return PreparedMessage(payload, False, False, False)


class RoomProtocolFactory(WebSocketServerFactory):
    """Builds ``RoomProtocol``s with the limits of ``[realtime]`` as Autobahn options."""

    protocol = RoomProtocol

    def __init__(
        self, runtime: ConnectionRuntime, authorizer: ConnectionAuthorizer, limits: RealtimeLimits, *,
        reactor: Any = None, open_handshake_timeout_s: float = OPEN_HANDSHAKE_TIMEOUT_S,
        close_handshake_timeout_s: float = CLOSE_HANDSHAKE_TIMEOUT_S,
    ) -> None:
        super().__init__(server="synctv", reactor=reactor)
        self.runtime = runtime
        self.authorizer = authorizer
        self.limits = limits
        self.keepalive = Keepalive(self.reactor, limits.ping_s, limits.idle_s)
        self.setProtocolOptions(
            maxFramePayloadSize=limits.max_frame_bytes,
            maxMessagePayloadSize=limits.max_frame_bytes,
            autoPingInterval=0,  # the Keepalive pings, and its idle timeout (4009) closes the silent
            openHandshakeTimeout=open_handshake_timeout_s,
            closeHandshakeTimeout=close_handshake_timeout_s,
            failByDrop=False,  # protocol errors close with a code (1002, 1007, 1009), not a bare drop
            echoCloseCodeReason=False,
            webStatus=False,
            tcpNoDelay=True,
        )
        if runtime.prepare is not prepare_text or runtime.send_many is not send_many:
            raise TypeError("the runtime writes to sockets with prepare_text and send_many: build it with "
                            "synctv.realtime.resource.new_runtime")
