"""RTMPSession: a publishing conversation, the app's accept/reject decision, and hostile peers."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from synctv.live.rtmp import amf0
from synctv.live.rtmp import chunks as ch
from synctv.live.rtmp.session import (
    MAX_COMMAND_SIZE,
    MAX_PENDING_EVENTS,
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


def connected(chunk_size: int = 4096, compress: bool = True) -> tuple[RTMPSession, RTMPTestClient, list[Any]]:
    """A session past handshake and connect; returns the client's view of the connect replies."""
    session = RTMPSession(random_bytes=_zeros)
    client = RTMPTestClient(chunk_size=chunk_size, compress=compress)
    s012 = sent(session.feed(client.c0c1()))
    assert len(s012) == 3073
    events = session.feed(client.c2(s012) + client.set_chunk_size() + client.connect())
    assert happened(events) == []
    return session, client, client.receive(sent(events))


def published(**kwargs: Any) -> tuple[RTMPSession, RTMPTestClient]:
    session, client, _ = connected(**kwargs)
    session.feed(
        client.command("releaseStream", None, "key")
        + client.command("FCPublish", None, "key")
        + client.command("createStream", None)
    )
    events = session.feed(client.publish("key"))
    assert [type(e) for e in events] == [PublishRequested]
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
