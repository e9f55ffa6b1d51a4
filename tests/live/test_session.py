"""RTMPSession: a publishing conversation, the app's accept/reject decision, and hostile peers."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synctv.core.clock import ManualClock
from synctv.live.rtmp import amf0
from synctv.live.rtmp import chunks as ch
from synctv.live.rtmp.session import (
    MAX_AMF_VALUES,
    MAX_COMMAND_SIZE,
    MAX_PENDING_EVENTS,
    PRE_AUTH_COMMANDS,
    PRE_PUBLISH_MESSAGE_SIZE,
    AudioData,
    Closed,
    Metadata,
    ProtocolError,
    PublishEnded,
    PublishRequested,
    RTMPLimits,
    RTMPSession,
    SendData,
    SessionEvent,
    VideoData,
)

from .rtmp_client import RTMPTestClient, commands

AVC_SEQ = (
    bytes.fromhex("1700000000") + b"\x01\x42\xc0\x0d\xff\xe1\x00\x04\x67\x42\xc0\x0d\x01\x00\x02\x68\xce"
)
AAC_SEQ = b"\xaf\x00\x12\x10"
KEYFRAME = bytes.fromhex("1701000000") + b"\x00\x00\x00\x02\x65\x88"
INTER = bytes.fromhex("2701000021") + b"\x00\x00\x00\x02\x41\x9a"
AAC_RAW = b"\xaf\x01" + b"\x21" * 10


def _zeros(n: int) -> bytes:
    return bytes(n)


def sent(events: list[SessionEvent]) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, SendData))


def happened(events: list[SessionEvent]) -> list[SessionEvent]:
    return [e for e in events if not isinstance(e, SendData)]


def connected(
    chunk_size: int = 4096, compress: bool = True, **kwargs: Any
) -> tuple[RTMPSession, RTMPTestClient, list[Any]]:
    """A session past handshake and connect; returns the client's view of the connect replies."""
    session = RTMPSession(random_bytes=_zeros, **kwargs)
    client = RTMPTestClient(chunk_size=chunk_size, compress=compress)
    s012 = sent(session.feed(client.c0c1()))
    assert len(s012) == 3073
    events = session.feed(client.c2(s012) + client.set_chunk_size() + client.connect())
    assert happened(events) == []
    return session, client, client.receive(sent(events))


def pending(**kwargs: Any) -> tuple[RTMPSession, RTMPTestClient]:
    """A session whose publish waits for the application's decision."""
    session, client, _ = connected(**kwargs)
    session.feed(
        client.command("releaseStream", None, "key")
        + client.command("FCPublish", None, "key")
        + client.command("createStream", None)
    )
    events = session.feed(client.publish("key"))
    assert [type(e) for e in events] == [PublishRequested]
    return session, client


def published(**kwargs: Any) -> tuple[RTMPSession, RTMPTestClient]:
    session, client = pending(**kwargs)
    client.receive(sent(session.accept_publish()))
    return session, client


def test_full_publish_conversation() -> None:
    """handshake, connect, releaseStream, FCPublish, createStream, publish, metadata, A/V, unpublish:
    every reply the client needs arrives and the app sees the publish, metadata and media in order."""
    session, client, replies = connected()
    assert [m.type_id for m in replies] == [
        ch.WINDOW_ACK_SIZE,
        ch.SET_PEER_BANDWIDTH,
        ch.SET_CHUNK_SIZE,
        ch.COMMAND_AMF0,
    ]
    assert client.reader.chunk_size == 4096
    name, txn, props, info = commands(replies)[0]
    assert (name, txn, info["code"], info["level"]) == (
        "_result",
        1.0,
        "NetConnection.Connect.Success",
        "status",
    )
    assert props["fmsVer"].startswith("FMS/")

    events = session.feed(
        client.command("releaseStream", None, "key")
        + client.command("FCPublish", None, "key")
        + client.command("createStream", None)
    )
    answers = commands(client.receive(sent(events)))
    assert [(a[0], a[1]) for a in answers] == [
        ("_result", 2.0),
        ("onFCPublish", 0.0),
        ("_result", 3.0),
        ("_result", 4.0),
    ]
    assert answers[1][3]["code"] == "NetStream.Publish.Start"
    assert answers[3][3] == 1.0  # the stream id

    events = session.feed(client.publish("key?sign=abc"))
    assert events == [PublishRequested("live", "key", "sign=abc", "live", "rtmp://h/live")]
    assert session.publish_state == "pending"

    # The client sends metadata and headers before the decision: queued, not lost.
    early = session.feed(
        client.metadata({"width": 320.0, "height": 240.0})
        + client.audio(0, AAC_SEQ)
        + client.video(0, AVC_SEQ)
    )
    assert happened(early) == []

    events = session.accept_publish()
    messages = client.receive(sent(events))
    assert messages[0].type_id == ch.USER_CONTROL
    assert ch.parse_user_control(messages[0].payload) == (ch.STREAM_BEGIN, b"\x00\x00\x00\x01")
    status = commands(messages)[0]
    assert status[0] == "onStatus" and status[3]["code"] == "NetStream.Publish.Start"
    assert messages[1].stream_id == 1
    assert happened(events) == [
        Metadata({"width": 320.0, "height": 240.0}),
        AudioData(0, AAC_SEQ),
        VideoData(0, AVC_SEQ),
    ]
    assert session.publishing

    events = session.feed(
        client.video(0, KEYFRAME)
        + client.audio(23, AAC_RAW)
        + client.video(33, INTER)
        + client.audio(46, AAC_RAW)
        + client.video(66, INTER)
    )
    assert happened(events) == [
        VideoData(0, KEYFRAME),
        AudioData(23, AAC_RAW),
        VideoData(33, INTER),
        AudioData(46, AAC_RAW),
        VideoData(66, INTER),
    ]

    events = session.feed(
        client.command("FCUnpublish", None, "key") + client.command("deleteStream", None, 1.0)
    )
    assert happened(events) == [PublishEnded("live", "key")]
    codes = [c[3]["code"] if c[0] == "onStatus" else c[0] for c in commands(client.receive(sent(events)))]
    assert codes == ["_result", "NetStream.Unpublish.Success"]
    assert session.publish_state is None
    assert session.connection_lost() == []


def test_plain_onmetadata_and_amf3_command_forms() -> None:
    """onMetaData without @setDataFrame and AMF3-wrapped commands (type 17) are understood."""
    session, client = published()
    payload = amf0.encode("onMetaData", {"duration": 0.0})
    events = session.feed(client.writer.write(ch.Message(4, 0, ch.DATA_AMF0, 1, payload)))
    assert happened(events) == [Metadata({"duration": 0.0})]
    body = b"\x00" + amf0.encode("FCUnpublish", 9.0, None, "key")
    events = session.feed(client.writer.write(ch.Message(3, 0, ch.COMMAND_AMF3, 0, body)))
    assert happened(events) == [PublishEnded("live", "key")]
    assert commands(client.receive(sent(events)))[0][:2] == ["_result", 9.0]


def test_reject_publish_sends_error_status_then_closes() -> None:
    """reject_publish answers onStatus error with the given description and asks to close."""
    session, client, _ = connected()
    session.feed(client.command("createStream", None))
    assert [type(e) for e in session.feed(client.publish("wrong"))] == [PublishRequested]
    events = session.reject_publish("unknown stream key")
    status = commands(client.receive(sent(events)))[-1]
    assert status[0] == "onStatus"
    assert status[3] == {
        "level": "error",
        "code": "NetStream.Publish.BadName",
        "description": "unknown stream key",
    }
    assert happened(events) == [Closed("publish rejected: unknown stream key")]
    assert session.feed(client.video(0, KEYFRAME)) == []
    assert session.accept_publish() == []


def test_empty_stream_name_is_rejected_by_the_session() -> None:
    """publish with an empty name never reaches the app: BadName and Closed."""
    session, client, _ = connected()
    events = session.feed(client.publish(""))
    assert [type(e) for e in happened(events)] == [Closed]
    assert commands(client.receive(sent(events)))[-1][3]["code"] == "NetStream.Publish.BadName"


def test_media_before_publish_is_ignored() -> None:
    """Audio/video on a connection that has not published produce no events."""
    session, client, _ = connected()
    assert happened(session.feed(client.video(0, KEYFRAME) + client.audio(0, AAC_RAW))) == []


def test_accept_after_client_gave_up_is_a_noop() -> None:
    """If the client unpublishes while the app decides, a late accept does nothing."""
    session, client, _ = connected()
    session.feed(client.publish("key"))
    events = session.feed(client.command("closeStream", None))
    assert happened(events) == [PublishEnded("live", "key")]
    assert session.accept_publish() == []


def test_pending_queue_is_bounded() -> None:
    """Media queued while the app decides is capped; the excess is dropped, not buffered."""
    session = RTMPSession(random_bytes=_zeros, max_pending_bytes=100)
    client = RTMPTestClient(chunk_size=4096)
    s012 = sent(session.feed(client.c0c1()))
    session.feed(client.c2(s012) + client.set_chunk_size() + client.connect() + client.publish("k"))
    session.feed(b"".join(client.video(i, b"\x27" + bytes(39)) for i in range(10)))
    media = [e for e in session.accept_publish() if isinstance(e, VideoData)]
    assert len(media) == 2


def test_pending_queue_is_bounded_in_events_too() -> None:
    """Many tiny messages while the app decides cannot grow the queue past its event cap."""
    session, client, _ = connected()
    session.feed(client.publish("k"))
    session.feed(b"".join(client.audio(i, b"\xaf") for i in range(3000)))
    media = [e for e in session.accept_publish() if isinstance(e, AudioData)]
    assert len(media) == MAX_PENDING_EVENTS


def test_oversized_amf_message_is_a_protocol_error() -> None:
    """A command over the AMF size cap is refused before decoding, as a ProtocolError."""
    session, client, _ = connected()
    payload = amf0.encode("x", 0.0, None, "a" * MAX_COMMAND_SIZE)
    events = session.feed(client.writer.write(ch.Message(3, 0, ch.COMMAND_AMF0, 0, payload)))
    assert [type(e) for e in happened(events)] == [ProtocolError, Closed]
    assert "exceeds" in happened(events)[0].message


def test_unknown_commands_get_error_replies_or_silence() -> None:
    """Unknown commands with a transaction id get _error; with transaction 0 nothing; never an exception."""
    session, client, _ = connected()
    events = session.feed(client.command("play", None, "x") + client.command("getStreamLength", None, "x"))
    answers = commands(client.receive(sent(events)))
    assert [a[0] for a in answers] == ["_error", "_error"]
    assert answers[0][3]["code"] == "NetConnection.Call.Failed"
    payload = amf0.encode("whatever", 0.0, None)
    assert session.feed(client.writer.write(ch.Message(3, 0, 20, 0, payload))) == []
    assert session.state == session.CONNECTED


def test_commands_before_connect_are_refused() -> None:
    """createStream before connect gets _error and does not advance the session."""
    session = RTMPSession(random_bytes=_zeros)
    client = RTMPTestClient()
    s012 = sent(session.feed(client.c0c1()))
    events = session.feed(client.c2(s012) + client.command("createStream", None))
    assert commands(client.receive(sent(events)))[0][0] == "_error"
    assert session.state == session.WAIT_CONNECT


def test_acknowledgement_sent_per_peer_window() -> None:
    """Once the peer sets a window, the session acknowledges every window of received bytes."""
    session, client = published()
    events = session.feed(client.writer.write(ch.window_ack_size_message(5000)))
    events = session.feed(b"".join(client.video(i * 33, INTER + bytes(1000)) for i in range(6)))
    acks = [m for m in client.receive(sent(events)) if m.type_id == ch.ACKNOWLEDGEMENT]
    assert len(acks) == 1
    assert int.from_bytes(acks[0].payload, "big") == session._reader.bytes_received


def test_ping_request_answered() -> None:
    """A User Control ping request gets a ping response with the same timestamp."""
    session, client, _ = connected()
    events = session.feed(client.writer.write(ch.user_control_message(ch.PING_REQUEST, 1234)))
    (message,) = client.receive(sent(events))
    assert ch.parse_user_control(message.payload) == (ch.PING_RESPONSE, (1234).to_bytes(4, "big"))


def test_aggregate_message_is_split() -> None:
    """An aggregate message delivers its sub-messages with timestamps rebased on the message's."""
    session, client = published()

    def sub(kind: int, ts: int, body: bytes) -> bytes:
        header = bytes([kind]) + len(body).to_bytes(3, "big") + (ts & 0xFFFFFF).to_bytes(3, "big")
        return header + bytes([ts >> 24]) + b"\x00\x00\x00" + body + (11 + len(body)).to_bytes(4, "big")

    body = sub(9, 500, KEYFRAME) + sub(8, 520, AAC_RAW)
    events = session.feed(client.writer.write(ch.Message(4, 1000, ch.AGGREGATE, 1, body)))
    assert happened(events) == [VideoData(1000, KEYFRAME), AudioData(1020, AAC_RAW)]
    bad = session.feed(client.writer.write(ch.Message(4, 1100, ch.AGGREGATE, 1, body[:-3])))
    assert [type(e) for e in happened(bad)] == [PublishEnded, ProtocolError, Closed]  # nothing half-delivered


def test_bad_handshake_is_a_protocol_error() -> None:
    """An HTTP request on the RTMP port ends in ProtocolError and Closed, not an exception."""
    session = RTMPSession()
    events = session.feed(b"GET / HTTP/1.1\r\n\r\n")
    assert [type(e) for e in events] == [ProtocolError, Closed]
    assert "version" in events[0].message
    assert session.feed(b"\x03") == []


def test_garbage_while_publishing_ends_publish_then_closes() -> None:
    """A malformed chunk stream mid-publish reports PublishEnded, ProtocolError, Closed in that order."""
    session, _client = published()
    events = session.feed(b"\x85\x00\x00\x01")  # fmt 2 on a chunk stream never opened
    assert [type(e) for e in events] == [PublishEnded, ProtocolError, Closed]


def test_connection_lost_while_publishing() -> None:
    """Losing the transport mid-publish ends the publish once."""
    session, _ = published()
    assert session.connection_lost() == [PublishEnded("live", "key")]
    assert session.connection_lost() == []


def _conversation() -> tuple[bytes, bytes]:
    """A client's bytes up to publish, and after it (a real client waits for onStatus in between)."""
    session = RTMPSession(random_bytes=_zeros)
    client = RTMPTestClient(chunk_size=256)
    s012 = sent(session.feed(client.c0c1()))
    before = (
        client.c0c1()
        + client.c2(s012)
        + client.set_chunk_size()
        + client.connect()
        + client.command("createStream", None)
        + client.publish("key")
    )
    after = (
        client.metadata({"a": 1.0})
        + client.video(0, AVC_SEQ)
        + client.video(0, KEYFRAME)
        + client.audio(10, AAC_RAW)
        + client.command("deleteStream", None)
    )
    return before, after


BEFORE_PUBLISH, AFTER_PUBLISH = _conversation()
CONVERSATION = BEFORE_PUBLISH + AFTER_PUBLISH
EVENT_TYPES = (
    SendData,
    PublishRequested,
    Metadata,
    AudioData,
    VideoData,
    PublishEnded,
    ProtocolError,
    Closed,
)


def _drive(data: bytes, cuts: list[int]) -> list[SessionEvent]:
    session = RTMPSession(random_bytes=_zeros, max_message_size=1 << 16)
    events: list[SessionEvent] = []
    last = 0
    for cut in [*sorted(set(c for c in cuts if 0 < c < len(data))), len(data)]:
        events += session.feed(data[last:cut])
        if any(isinstance(e, PublishRequested) for e in events) and session.publish_state == "pending":
            events += session.accept_publish()
        last = cut
    events += session.connection_lost()
    return events


def test_conversation_replays_the_same_in_any_split() -> None:
    """The canned conversation yields the same events whether fed whole or byte-range by range."""
    whole = happened(_drive(CONVERSATION, [len(BEFORE_PUBLISH)]))
    assert [type(e) for e in whole] == [
        PublishRequested,
        Metadata,
        VideoData,
        VideoData,
        AudioData,
        PublishEnded,
    ]
    pieces = [*range(0, len(BEFORE_PUBLISH), 7), *range(len(BEFORE_PUBLISH), len(CONVERSATION), 5)]
    assert happened(_drive(CONVERSATION, pieces)) == whole


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400), st.booleans())
def test_random_bytes_only_produce_clean_events(garbage: bytes, after_handshake: bool) -> None:
    """Random bytes, raw or after a valid handshake, never raise; errors arrive as ProtocolError + Closed."""
    prefix = CONVERSATION[: 1 + 1536 * 2] if after_handshake else b""
    events = _drive(prefix + garbage, [])
    assert all(isinstance(e, EVENT_TYPES) for e in events)
    errors = [i for i, e in enumerate(events) if isinstance(e, ProtocolError)]
    if errors:
        assert isinstance(events[errors[0] + 1], Closed) and len(errors) == 1


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_conversations_only_produce_clean_events(data: st.DataObject) -> None:
    """The canned conversation with bytes after the handshake flipped, dropped or duplicated never raises."""
    stream = bytearray(CONVERSATION)
    start = 1 + 1536 * 2
    for _ in range(data.draw(st.integers(1, 6))):
        index = data.draw(st.integers(start, len(stream) - 1))
        op = data.draw(st.sampled_from(["flip", "drop", "dup"]))
        if op == "flip":
            stream[index] = data.draw(st.integers(0, 255))
        elif op == "drop":
            del stream[index : index + data.draw(st.integers(1, 20))]
        else:
            stream[index:index] = stream[index : index + data.draw(st.integers(1, 20))]
        if len(stream) <= start + 1:
            break
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=5))
    events = _drive(bytes(stream), cuts)
    assert all(isinstance(e, EVENT_TYPES) for e in events)
    assert sum(isinstance(e, Closed) for e in events) <= 1


# -- bounds ----------------------------------------------------------------------------------------


def closed_by(events: list[SessionEvent]) -> ProtocolError:
    """The one ProtocolError of ``events``, followed by Closed as the last event."""
    errors = [e for e in events if isinstance(e, ProtocolError)]
    assert len(errors) == 1 and isinstance(events[-1], Closed), events
    return errors[0]


def _header(csid: int, length: int, type_id: int = ch.VIDEO) -> bytes:
    return bytes([csid]) + bytes(3) + length.to_bytes(3, "big") + bytes([type_id]) + b"\x01\x00\x00\x00"


def test_eight_chunk_streams_until_the_publish_is_authorized() -> None:
    """Before a publish is authorized (connected, or while the key is checked) a ninth chunk
    stream closes the connection; an authorized publisher may use more."""
    session, _client, _ = connected()  # chunk streams 2 and 3 in use
    assert happened(session.feed(b"".join(_header(csid, 1) + b"x" for csid in range(10, 16)))) == []
    error = closed_by(session.feed(_header(16, 1) + b"x"))
    assert (error.limit, error.stage) == ("chunk_streams", "connected")

    session, _client = pending()  # 2, 3 and 4 in use
    session.feed(b"".join(_header(csid, 1) + b"x" for csid in range(10, 15)))
    error = closed_by(session.feed(_header(15, 1) + b"x"))
    assert (error.limit, error.stage) == ("chunk_streams", "pending")

    session, _client = published()
    events = session.feed(b"".join(_header(csid, 2) + KEYFRAME[:2] for csid in range(10, 40)))
    assert [type(e) for e in happened(events)] == [VideoData] * 30


def test_a_large_message_before_publish_closes_on_its_header() -> None:
    """Before the publish command only commands make sense: a header declaring more than
    PRE_PUBLISH_MESSAGE_SIZE closes the connection on its own 12 bytes. Once a publish is
    requested, a 1 MiB keyframe is queued and delivered."""
    session, client, _ = connected()
    error = closed_by(session.feed(_header(6, PRE_PUBLISH_MESSAGE_SIZE + 1)))
    assert error.limit == "message_size"

    session, client = pending()
    frame = KEYFRAME + bytes(1 << 20)
    assert happened(session.feed(client.video(0, frame))) == []
    assert session.held_bytes == len(frame)
    assert happened(session.accept_publish()) == [VideoData(0, frame)]
    assert session.held_bytes == 0


def test_the_budget_covers_partial_messages_and_the_pending_queue() -> None:
    """Media queued while the key is checked and messages being assembled share max_buffer_bytes:
    a header that would take the connection past it closes the connection."""
    session, client = pending(limits=RTMPLimits(max_buffer_bytes=100_000))
    session.feed(b"".join(client.video(i, INTER + bytes(10_000)) for i in range(6)))
    assert session.held_bytes == 6 * (len(INTER) + 10_000)
    error = closed_by(session.feed(_header(6, 50_000)))
    assert (error.limit, error.stage) == ("max_buffer_bytes", "pending")
    assert session.accept_publish() == []  # closed: nothing is delivered

    session, client = pending(limits=RTMPLimits(max_buffer_bytes=100_000))
    session.feed(b"".join(client.video(i, INTER + bytes(10_000)) for i in range(6)))
    assert len(happened(session.accept_publish())) == 6
    events = session.feed(client.video(7, INTER + bytes(50_000)))
    assert happened(events) == [VideoData(7, INTER + bytes(50_000))]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(5, 9), st.integers(0, 2_000) | st.integers(10_000, 30_000),
                          st.integers(0, 100)), max_size=25),
       st.booleans())
def test_held_bytes_never_exceed_the_budget(messages: list[tuple[int, int, int]], accept: bool) -> None:
    """Whatever mix of whole and partial messages a pending (or accepted) publisher sends on
    several chunk streams, the session never holds more than max_buffer_bytes; going past it
    closes the connection with that limit."""
    budget = 50_000
    session, _client = pending(limits=RTMPLimits(max_buffer_bytes=budget), max_pending_bytes=40_000)
    if accept:
        session.accept_publish()
    writer = ch.ChunkWriter(4096)
    rest: dict[int, list[bytes]] = {}  # chunk stream -> the chunks of its partial message not sent yet
    for csid, size, percent in messages:
        if rest.get(csid):
            data = b"".join(rest.pop(csid))  # finish the partial message
        else:
            encoded = writer.write(ch.Message(csid, 0, ch.VIDEO, 1, INTER + bytes(size)))
            first = 12 + 4096
            chunks = [encoded[:first]] + [encoded[i : i + 4097] for i in range(first, len(encoded), 4097)]
            count = max(1, len(chunks) * percent // 100)
            data, rest[csid] = b"".join(chunks[:count]), chunks[count:]
        events = session.feed(data)
        if any(isinstance(e, ProtocolError) for e in events):
            assert closed_by(events).limit == "max_buffer_bytes"
            return
        assert session.held_bytes <= budget


@pytest.mark.parametrize("stage", ["handshake", "half_handshake", "wait_connect", "connected", "pending"])
@pytest.mark.parametrize("noticed_by", ["check_deadline", "feed"])
def test_no_authorized_publish_within_the_deadline_closes(stage: str, noticed_by: str) -> None:
    """Whatever stage a connection stalls in, publish_timeout_s after it began it is closed:
    check_deadline (the protocol's timer) says so, and so does the next feed."""
    clock = ManualClock()
    session = RTMPSession(random_bytes=_zeros, clock=clock, limits=RTMPLimits(publish_timeout_s=10))
    client = RTMPTestClient(chunk_size=4096)
    if stage != "handshake":
        s012 = sent(session.feed(client.c0c1()))
    if stage in ("wait_connect", "connected", "pending"):
        session.feed(client.c2(s012))
    if stage in ("connected", "pending"):
        session.feed(client.set_chunk_size() + client.connect() + client.command("createStream", None))
    if stage == "pending":
        session.feed(client.publish("key"))
    expected_stage = "handshake" if stage == "half_handshake" else stage
    assert session.stage == expected_stage
    clock.advance(9_999)
    assert session.check_deadline() == []
    clock.advance(1)
    events = session.check_deadline() if noticed_by == "check_deadline" else session.feed(b"\x03")
    error = closed_by(events)
    assert (error.limit, error.stage) == ("publish_timeout_s", expected_stage)
    assert (PublishEnded("live", "key") in events) == (stage == "pending")
    assert session.deadline_ms is None and session.check_deadline() == []


def test_an_authorized_publish_has_no_deadline() -> None:
    """Once the publish is authorized the deadline is gone: an hour later media still flows."""
    clock = ManualClock()
    session, client = published(clock=clock, limits=RTMPLimits(publish_timeout_s=10))
    assert session.deadline_ms is None
    clock.advance(3_600_000)
    assert session.check_deadline() == []
    assert happened(session.feed(client.video(0, KEYFRAME))) == [VideoData(0, KEYFRAME)]


def test_commands_before_authorization_are_bounded() -> None:
    """An unauthorized connection may send PRE_AUTH_COMMANDS commands (connect included), each
    decoded; the next one closes it."""
    session, client, _ = connected()
    flood = b"".join(client.command("getStreamLength", None, "x") for _ in range(PRE_AUTH_COMMANDS - 1))
    assert happened(session.feed(flood)) == [] and session.state == session.CONNECTED
    error = closed_by(session.feed(client.command("getStreamLength", None, "x")))
    assert (error.limit, error.stage) == ("commands", "connected")


def test_chunk_sizes_below_128_close_the_connection() -> None:
    """Set Chunk Size below 128 (every byte a header) closes the connection."""
    session, client, _ = connected()
    assert closed_by(session.feed(client.writer.write(ch.set_chunk_size_message(127)))).limit == "chunk_size"


def test_amf_messages_are_bounded_in_values() -> None:
    """A command of more than MAX_AMF_VALUES values closes the connection without decoding them all."""
    session, client, _ = connected()
    payload = amf0.encode("getStreamLength", 2.0, [None] * MAX_AMF_VALUES)
    events = session.feed(client.writer.write(ch.Message(3, 0, ch.COMMAND_AMF0, 0, payload)))
    assert closed_by(events).limit == "amf_values"


def test_stream_messages_before_publish_are_dropped_unparsed() -> None:
    """Data and aggregate messages before a publish is requested are not decoded: malformed ones
    are dropped like any media, not an error."""
    session, client, _ = connected()
    events = session.feed(
        client.writer.write(ch.Message(4, 0, ch.DATA_AMF0, 1, b"\x02\xff\xff"))
        + client.writer.write(ch.Message(4, 0, ch.AGGREGATE, 1, b"\x09\x00"))
    )
    assert happened(events) == [] and session.state == session.CONNECTED
