"""The thin Twisted side of RTMP: bytes from the socket into ``RTMPSession``, events out.

``RTMPProtocol`` writes what the session says to send, asks the ``PublishGate`` (the live hub)
whether a publish may start -- the stream key is the stream name -- and answers the session
with ``accept_publish`` or ``reject_publish`` (an onStatus error, then the connection closes).
Media goes to the ``LiveStream`` the gate returned; after each read the stream is flushed once,
so everything one read carried reaches viewers in one write.

The publisher is never paused for viewers; a publisher that sends faster than the reactor can
read is simply read at the reactor's pace.

Bounds: the session and ``RTMPLimits`` decide (synctv/live/rtmp/session.py); this module counts
connections, arms timers and frames bytes:

- ``RTMPFactory`` admits at most ``max_connections`` connections at once; past that
  ``buildProtocol`` answers None, so Twisted closes the socket before reading a byte. The refusal
  is logged at most once per ``REFUSAL_LOG_S`` (the line counts the refusals since the last).
- Each connection arms a timer for the session's deadline (handshake and an authorized publish
  within ``publish_timeout_s``).
- The protocol is its transport's streaming producer: a peer that does not read our replies
  fills the transport's buffer, and then we stop reading from it until it drains, so no peer can
  make us queue replies.
- A closed session: ``loseConnection``, then ``abortConnection`` if the peer has not taken the
  last bytes within ``CLOSE_GRACE_S``.
- One log line per connection closed for a protocol error or a bound: the peer, the stage, the
  bound (``limit``) and the bytes received; stream keys appear only redacted.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any, Protocol

from twisted.internet import protocol
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IPushProducer, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from synctv.core.errors import Conflict, DomainError
from synctv.core.live import redact_key
from synctv.core.throttle import source_key
from synctv.live.rtmp.events import (
    AudioData,
    Closed,
    Metadata,
    ProtocolError,
    PublishEnded,
    PublishRequested,
    SendData,
    SessionEvent,
    VideoData,
)
from synctv.live.rtmp.limits import RTMPLimits
from synctv.live.rtmp.session import RTMPSession
from synctv.live.streams import LiveStream

RTMP_APP = "live"
CLOSE_GRACE_S = 5.0
REFUSAL_LOG_S = 10.0


class PublishGate(Protocol):
    rtmp_limits: RTMPLimits  # the RTMP door's bounds ([live] config)

    def authorize_publish(self, app: str, stream_key: str, publisher: Any) -> Deferred[LiveStream]:
        """The stream to publish into; fails with a DomainError to refuse."""

    def end_publish(self, stream: LiveStream, publisher: Any) -> None: ...


def _scheduler(scheduler: IReactorTime | None) -> IReactorTime:
    if scheduler is not None:
        return scheduler
    from twisted.internet import reactor

    return reactor  # type: ignore[return-value]


@implementer(IPushProducer)
class RTMPProtocol(protocol.Protocol):
    log = Logger()

    def __init__(
        self,
        gate: PublishGate,
        limits: RTMPLimits = RTMPLimits(),
        scheduler: IReactorTime | None = None,
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        """``scheduler`` (default: the reactor) arms the timers and is the session's clock;
        ``on_lost`` is called once when the connection is gone (the factory's slot)."""
        self.gate = gate
        self.limits = limits
        self.scheduler = _scheduler(scheduler)
        self.session = RTMPSession(limits=limits, clock=self._now)
        self.stream: LiveStream | None = None
        self.peer = "?"
        self._lost = False
        self._closing = False
        self._on_lost = on_lost
        self._deadline: IDelayedCall | None = None
        self._abort: IDelayedCall | None = None
        self.authorizing: Deferred[None] | None = None  # the publish check under way, if any

    def _now(self) -> int:
        return round(self.scheduler.seconds() * 1000)

    def connectionMade(self) -> None:
        peer = self.transport.getPeer()
        self.peer = f"{getattr(peer, 'host', '?')}:{getattr(peer, 'port', '?')}"
        self.transport.registerProducer(self, True)
        self._arm_deadline()

    def dataReceived(self, data: bytes) -> None:
        self._handle(self.session.feed(data))

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        self._lost = True
        for call in (self._deadline, self._abort):
            if call is not None and call.active():
                call.cancel()
        self._deadline = self._abort = None
        self._handle(self.session.connection_lost())
        on_lost, self._on_lost = self._on_lost, None
        if on_lost is not None:
            on_lost()

    # -- IPushProducer: the transport's buffer of our replies is full / drained -------------------

    def pauseProducing(self) -> None:
        if not self._lost:
            self.transport.pauseProducing()  # stop reading: the peer is not reading what we send

    def resumeProducing(self) -> None:
        if not (self._lost or self._closing):
            self.transport.resumeProducing()

    def stopProducing(self) -> None:
        """The transport is going away; connectionLost does the rest."""

    # -- timers ---------------------------------------------------------------------------------

    def _arm_deadline(self) -> None:
        deadline = self.session.deadline_ms
        if deadline is None or self._lost or self._closing:
            return
        self._deadline = self.scheduler.callLater(max(deadline - self._now(), 0) / 1000, self._deadline_due)

    def _deadline_due(self) -> None:
        self._deadline = None
        self._handle(self.session.check_deadline())
        self._arm_deadline()  # not yet due by the session's clock: look again then

    def _close(self) -> None:
        if self._lost or self._closing:
            return
        self._closing = True
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None
        self.transport.unregisterProducer()  # a registered producer would hold the connection open
        self.transport.loseConnection()
        self._abort = self.scheduler.callLater(CLOSE_GRACE_S, self._abort_now)

    def _abort_now(self) -> None:
        self._abort = None
        if not self._lost:
            self.transport.abortConnection()  # the peer did not take our last bytes

    # -- the Publisher side the registry sees ---------------------------------------------------

    def stop(self, reason: str) -> None:
        """Stop publishing (a revoked key, shutdown): onStatus error and close."""
        self.log.info("stopping the RTMP publisher {peer}: {reason}", peer=self.peer, reason=reason)
        self._handle(self.session.reject_publish(reason, "NetStream.Publish.Denied"))
        self._ended()

    # -- events ---------------------------------------------------------------------------------

    def _handle(self, events: list[SessionEvent]) -> None:
        for event in events:
            if isinstance(event, SendData):
                if not self._lost:
                    self.transport.write(event.data)
            elif isinstance(event, (VideoData, AudioData, Metadata)):
                stream = self.stream
                if stream is None:
                    continue
                if isinstance(event, VideoData):
                    stream.on_video(event.timestamp, event.payload)
                elif isinstance(event, AudioData):
                    stream.on_audio(event.timestamp, event.payload)
                else:
                    stream.on_metadata(event.data)
            elif isinstance(event, PublishRequested):
                self._authorize(event)
            elif isinstance(event, PublishEnded):
                self._ended()
            elif isinstance(event, ProtocolError):
                self._log_error(event)
            elif isinstance(event, Closed):
                self._close()
        if self.stream is not None:
            self.stream.flush()
        if self.session.deadline_ms is None and self._deadline is not None:
            if self._deadline.active():
                self._deadline.cancel()  # the publish is authorized
            self._deadline = None

    def _log_error(self, event: ProtocolError) -> None:
        fields = dict(peer=self.peer, stage=event.stage, message=event.message, limit=event.limit or None,
                      received=self.session.bytes_received)
        if event.limit:
            self.log.warn("closing the RTMP connection from {peer} ({stage}), past the {limit} bound: {message}",
                          **fields)
        else:
            self.log.info("closing the RTMP connection from {peer} ({stage}), protocol error: {message}", **fields)

    def _authorize(self, event: PublishRequested) -> None:
        key = event.stream_name
        d = self.gate.authorize_publish(event.app, key, self)

        def accepted(stream: LiveStream) -> None:
            if self._lost or self.session.publish_state != "pending":
                self.gate.end_publish(stream, self)  # the publisher left while we looked
                return
            self.stream = stream
            self.log.info("publishing {room_id}/{media_id} from {peer} with key {key}", room_id=stream.room_id,
                          media_id=stream.media_id, peer=self.peer, key=redact_key(key))
            self._handle(self.session.accept_publish())

        def refused(failure: Failure) -> None:
            if isinstance(failure.value, DomainError):
                message = failure.value.message
            else:
                self.log.failure("publish check failed for {peer}", failure, peer=self.peer)
                message = "the server could not check the stream key"
            self.log.info("refused a publish from {peer} with key {key}: {message}", peer=self.peer,
                          key=redact_key(key), message=message)
            code = "NetStream.Publish.BadName" if isinstance(failure.value, Conflict) else "NetStream.Publish.Denied"
            self._handle(self.session.reject_publish(message, code))

        d.addCallbacks(accepted, refused)
        d.addErrback(lambda f: self.log.failure("publish start failed for {peer}", f, peer=self.peer))
        self.authorizing = d

    def _ended(self) -> None:
        stream, self.stream = self.stream, None
        if stream is not None:
            self.gate.end_publish(stream, self)
            self.log.info("publish of {room_id}/{media_id} from {peer} ended", room_id=stream.room_id,
                          media_id=stream.media_id, peer=self.peer)


class RTMPFactory(protocol.Factory):
    """RTMP connections to ``gate``, at most ``limits.max_connections`` (default: the gate's) at
    once, and at most ``limits.max_connections_per_address`` from one source address (an IPv6
    address counts as its /64), so one source cannot hold every slot."""

    log = Logger()
    noisy = False

    def __init__(
        self, gate: PublishGate, *, limits: RTMPLimits | None = None, scheduler: IReactorTime | None = None
    ) -> None:
        self.gate = gate
        self.limits = limits if limits is not None else gate.rtmp_limits
        self.scheduler = _scheduler(scheduler)
        self.open_connections = 0
        self.per_address: collections.Counter[str] = collections.Counter()
        self._refused = 0  # since the last refusal line
        self._refusal_logged_at: float | None = None

    def buildProtocol(self, addr: Any) -> RTMPProtocol | None:
        source = source_key(str(getattr(addr, "host", "?")))
        if self.open_connections >= self.limits.max_connections:
            self._refuse(addr, "max_connections")
            return None  # Twisted closes the socket
        if self.per_address[source] >= self.limits.max_connections_per_address:
            self._refuse(addr, "max_connections_per_address")
            return None
        self.open_connections += 1
        self.per_address[source] += 1
        return RTMPProtocol(self.gate, self.limits, self.scheduler, on_lost=lambda: self._released(source))

    def _released(self, source: str) -> None:
        self.open_connections -= 1
        self.per_address[source] -= 1
        if self.per_address[source] <= 0:
            del self.per_address[source]

    def _refuse(self, addr: Any, limit: str) -> None:
        self._refused += 1
        now = self.scheduler.seconds()
        if self._refusal_logged_at is not None and now - self._refusal_logged_at < REFUSAL_LOG_S:
            return
        self.log.warn(
            "refused {count} RTMP connection(s), the last from {peer}: {open} open, past the {limit} bound",
            count=self._refused, peer=getattr(addr, "host", "?"), open=self.open_connections,
            limit=limit, max_connections=self.limits.max_connections,
        )
        self._refused, self._refusal_logged_at = 0, now
