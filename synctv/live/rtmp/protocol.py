"""The thin Twisted side of RTMP: bytes from the socket into ``RTMPSession``, events out.

``RTMPProtocol`` writes what the session says to send, asks the ``PublishGate`` (the live hub)
whether a publish may start -- the stream key is the stream name -- and answers the session
with ``accept_publish`` or ``reject_publish`` (an onStatus error, then the connection closes).
Media goes to the ``LiveStream`` the gate returned; after each read the stream is flushed once,
so everything one read carried reaches viewers in one write.

The publisher is never paused for viewers; a publisher that sends faster than the reactor can
read is simply read at the reactor's pace.
"""

from __future__ import annotations

from typing import Any, Protocol

from twisted.internet import protocol
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from synctv.core.errors import Conflict, DomainError
from synctv.core.live import redact_key
from synctv.live.rtmp.session import (
    AudioData,
    Closed,
    Metadata,
    ProtocolError,
    PublishEnded,
    PublishRequested,
    RTMPSession,
    SendData,
    SessionEvent,
    VideoData,
)
from synctv.live.streams import LiveStream

RTMP_APP = "live"


class PublishGate(Protocol):
    def authorize_publish(self, app: str, stream_key: str, publisher: Any) -> Deferred[LiveStream]:
        """The stream to publish into; fails with a DomainError to refuse."""

    def end_publish(self, stream: LiveStream, publisher: Any) -> None: ...


class RTMPProtocol(protocol.Protocol):
    log = Logger()

    def __init__(self, gate: PublishGate) -> None:
        self.gate = gate
        self.session = RTMPSession()
        self.stream: LiveStream | None = None
        self.peer = "?"
        self._lost = False
        self.authorizing: Deferred[None] | None = None  # the publish check under way, if any

    def connectionMade(self) -> None:
        peer = self.transport.getPeer()
        self.peer = f"{getattr(peer, 'host', '?')}:{getattr(peer, 'port', '?')}"

    def dataReceived(self, data: bytes) -> None:
        self._handle(self.session.feed(data))

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        self._lost = True
        self._handle(self.session.connection_lost())

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
                self.log.info("RTMP protocol error from {peer}: {message}", peer=self.peer, message=event.message)
            elif isinstance(event, Closed):
                if not self._lost:
                    self.transport.loseConnection()
        if self.stream is not None:
            self.stream.flush()

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
    def __init__(self, gate: PublishGate) -> None:
        self.gate = gate

    def buildProtocol(self, addr: Any) -> RTMPProtocol:
        return RTMPProtocol(self.gate)
