"""The RTMP chunk stream: reader, writer, control messages and bounds."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synctv.live.rtmp import chunks as ch
from synctv.live.rtmp.chunks import ChunkError, ChunkReader, ChunkWriter, LimitExceeded, Message

from .rtmp_client import CompressingChunkWriter


def _feed_in_pieces(reader: ChunkReader, data: bytes, cuts: list[int]) -> list[Message]:
    out: list[Message] = []
    last = 0
    for cut in [*sorted(set(c for c in cuts if 0 < c < len(data))), len(data)]:
        out += reader.feed(data[last:cut])
        last = cut
    return out


def test_set_chunk_size_golden() -> None:
    """Set Chunk Size 4096 on csid 2 is the 16 bytes of the spec's fmt 0 layout."""
    data = ch.encode_chunks(ch.set_chunk_size_message(4096), 128)
    assert data == bytes.fromhex("02 000000 000004 01 00000000 00001000")


def test_message_split_into_fmt3_continuations() -> None:
    """A 300-byte message at chunk size 128 is fmt 0 + 128, C3 + 128, C3 + 44."""
    payload = bytes(range(256)) + bytes(44)
    data = ch.encode_chunks(Message(3, 1000, 20, 0, payload), 128)
    assert data[:12] == bytes.fromhex("03 0003e8 00012c 14 00000000")
    assert data[12 + 128] == 0xC3 and data[12 + 128 + 1 + 128] == 0xC3
    assert len(data) == 12 + 300 + 2
    assert ChunkReader().feed(data) == [Message(3, 1000, 20, 0, payload)]


@pytest.mark.parametrize(
    ("csid", "header"),
    [
        (2, b"\x02"),
        (63, b"\x3f"),
        (64, b"\x00\x00"),
        (319, b"\x00\xff"),
        (320, b"\x01\x00\x01"),
        (65599, b"\x01\xff\xff"),
    ],
)
def test_basic_header_sizes(csid: int, header: bytes) -> None:
    """Chunk stream ids use 1-, 2- or 3-byte basic headers, and the reader reads them all."""
    assert ch.basic_header(0, csid) == header
    message = Message(csid, 5, 9, 1, b"abc")
    assert ChunkReader().feed(ch.encode_chunks(message, 128)) == [message]


def test_basic_header_range() -> None:
    """Chunk stream ids 0, 1 and beyond 65599 cannot be encoded."""
    for csid in (0, 1, 65600):
        with pytest.raises(ChunkError):
            ch.basic_header(0, csid)


def test_fmt1_fmt2_fmt3_deltas() -> None:
    """Timestamps accumulate from fmt 1/2 deltas; fmt 3 starting a message reuses the last delta."""
    data = (
        bytes.fromhex("04 000064 000002 08 01000000")
        + b"a1"  # fmt 0: ts 100
        + bytes.fromhex("44 000014 000003 09")
        + b"v22"  # fmt 1: +20 -> 120, type 9
        + bytes.fromhex("84 00000a")
        + b"v33"  # fmt 2: +10 -> 130
        + b"\xc4"
        + b"v44"  # fmt 3: +10 -> 140
    )
    messages = ChunkReader().feed(data)
    assert [(m.timestamp, m.type_id, m.stream_id, m.payload) for m in messages] == [
        (100, 8, 1, b"a1"),
        (120, 9, 1, b"v22"),
        (130, 9, 1, b"v33"),
        (140, 9, 1, b"v44"),
    ]


def test_fmt3_after_fmt0_uses_timestamp_as_delta() -> None:
    """Per the spec, a fmt 3 message after a fmt 0 one adds the fmt 0 timestamp as its delta."""
    data = bytes.fromhex("04 000028 000001 08 01000000") + b"a" + b"\xc4" + b"b"
    assert [m.timestamp for m in ChunkReader().feed(data)] == [40, 80]


@pytest.mark.parametrize("ext_on_continuation", [True, False])
def test_extended_timestamp_with_and_without_fmt3_repeat(ext_on_continuation: bool) -> None:
    """Extended timestamps parse whether or not the encoder repeats them on fmt 3 chunks."""
    payload = bytes(range(200))
    ts = 0x12345678
    ext = ts.to_bytes(4, "big")
    data = bytes.fromhex("06 ffffff 0000c8 09 01000000") + ext + payload[:128]
    data += b"\xc6" + (ext if ext_on_continuation else b"") + payload[128:]
    assert ChunkReader().feed(data) == [Message(6, ts, 9, 1, payload)]
    if ext_on_continuation:
        assert ch.encode_chunks(Message(6, ts, 9, 1, payload), 128) == data


def test_writer_repeats_extended_timestamp_on_continuations() -> None:
    """Our writer puts the extended timestamp on fmt 3 chunks too, as FMS and ffmpeg expect."""
    data = ch.encode_chunks(Message(3, 0x01000000, 9, 1, bytes(130)), 128)
    assert data[1:4] == b"\xff\xff\xff" and data[12:16] == b"\x01\x00\x00\x00"
    assert data[16 + 128 : 16 + 128 + 5] == b"\xc3\x01\x00\x00\x00"


def test_timestamps_wrap_at_32_bits() -> None:
    """Deltas past 2**32 wrap instead of growing without bound."""
    data = bytes.fromhex("04 ffffff 000001 08 01000000 fffffff0") + b"a"
    data += bytes.fromhex("84 000020") + b"b"
    assert [m.timestamp for m in ChunkReader().feed(data)] == [0xFFFFFFF0, 0x10]


def test_set_chunk_size_applies_to_following_chunks() -> None:
    """After Set Chunk Size, the reader splits chunks at the new size, mid-feed."""
    writer = ChunkWriter()
    data = writer.set_chunk_size(1000) + writer.write(Message(3, 0, 20, 0, bytes(900)))
    reader = ChunkReader()
    messages = reader.feed(data)
    assert reader.chunk_size == 1000
    assert messages[1].payload == bytes(900)


@pytest.mark.parametrize("size", [0, 0x80000000, ch.MAX_CHUNK_SIZE + 1])
def test_absurd_chunk_sizes_are_refused(size: int) -> None:
    """Chunk size 0, with the top bit set, or above 16 MiB is a ChunkError."""
    payload = size.to_bytes(4, "big")
    with pytest.raises(ChunkError, match="chunk size"):
        ChunkReader().feed(ch.encode_chunks(Message(2, 0, 1, 0, payload), 128))


def test_message_length_is_bounded() -> None:
    """A header announcing more than the message size limit is refused before any payload arrives."""
    reader = ChunkReader(max_message_size=1000)
    with pytest.raises(ChunkError, match="exceeds"):
        reader.feed(bytes.fromhex("03 000000 0003e9 14 00000000"))
    assert ChunkReader().feed(bytes.fromhex("03 000000 ffffff 14 00000000")) == []
    with pytest.raises(ChunkError):
        ChunkReader(max_message_size=1 << 20).feed(bytes.fromhex("03 000000 ffffff 14 00000000"))


def test_chunk_stream_count_is_bounded() -> None:
    """Opening more chunk streams than allowed is a ChunkError."""
    reader = ChunkReader(max_chunk_streams=4)
    data = b"".join(
        bytes([fmt_csid]) + bytes.fromhex("000000 000001 09 01000000") + b"x" for fmt_csid in (3, 4, 5, 6, 7)
    )
    with pytest.raises(ChunkError, match="chunk streams"):
        reader.feed(data)


def test_fmt2_or_fmt3_on_a_new_chunk_stream_is_refused() -> None:
    """A chunk stream cannot begin with a header that refers to a previous one."""
    with pytest.raises(ChunkError):
        ChunkReader().feed(b"\xc5abc")
    with pytest.raises(ChunkError):
        ChunkReader().feed(b"\x85\x00\x00\x01abc")


def test_abort_drops_partial_message() -> None:
    """Abort Message discards the partly received message on the named chunk stream."""
    first = ch.encode_chunks(Message(6, 0, 9, 1, bytes(200)), 128)[: 12 + 128]
    abort = ch.encode_chunks(ch.abort_message(6), 128)
    fresh = ch.encode_chunks(Message(6, 40, 9, 1, b"new"), 128)
    messages = ChunkReader().feed(first + abort + fresh)
    assert [m.type_id for m in messages] == [ch.ABORT, 9]
    assert messages[-1].payload == b"new"


def test_zero_length_message() -> None:
    """A message of length 0 completes with its header."""
    assert ChunkReader().feed(bytes.fromhex("03 000000 000000 14 00000000")) == [Message(3, 0, 20, 0, b"")]


def test_acknowledgement_due_per_window() -> None:
    """After the peer's Window Ack Size, an acknowledgement is due every window of bytes received."""
    reader = ChunkReader()
    assert reader.pop_acknowledgement() is None
    reader.feed(ch.encode_chunks(ch.window_ack_size_message(5000), 128))
    assert reader.ack_window == 5000 and reader.pop_acknowledgement() is None
    reader.feed(ch.encode_chunks(Message(4, 0, 8, 1, bytes(5100)), 128))
    assert reader.pop_acknowledgement() == reader.bytes_received
    assert reader.pop_acknowledgement() is None


def test_tiny_acknowledgement_windows_are_raised_to_the_floor() -> None:
    """A peer asking for an acknowledgement every byte gets one every MIN_ACK_WINDOW bytes at most."""
    reader = ChunkReader()
    reader.feed(ch.encode_chunks(ch.window_ack_size_message(1), 128))
    assert reader.ack_window == ch.MIN_ACK_WINDOW
    reader.feed(ch.encode_chunks(ch.window_ack_size_message(0), 128))
    assert reader.ack_window == 0


def test_control_message_builders() -> None:
    """Control messages carry the payloads the spec defines, on csid 2, stream 0."""
    assert ch.set_peer_bandwidth_message(2_500_000, 2).payload == (2_500_000).to_bytes(4, "big") + b"\x02"
    assert ch.user_control_message(ch.STREAM_BEGIN, 1).payload == b"\x00\x00\x00\x00\x00\x01"
    assert ch.acknowledgement_message(2**32 + 5).payload == b"\x00\x00\x00\x05"
    assert ch.parse_user_control(b"\x00\x06\x00\x00\x00\x09") == (ch.PING_REQUEST, b"\x00\x00\x00\x09")
    with pytest.raises(ChunkError):
        ch.parse_user_control(b"\x00")
    assert {m.csid for m in (ch.abort_message(3), ch.window_ack_size_message(5))} == {2}


def test_prepared_message_encodes_once_per_chunk_size() -> None:
    """A prepared message returns the very same bytes object to every writer with the same chunk size."""
    prepared = ch.PreparedMessage(Message(6, 33, 9, 1, bytes(5000)))
    a, b = ChunkWriter(4096), ChunkWriter(4096)
    assert a.write_prepared(prepared) is b.write_prepared(prepared)
    assert ChunkWriter(128).write_prepared(prepared) != a.write_prepared(prepared)
    reader = ChunkReader()
    reader.chunk_size = 4096
    assert reader.feed(a.write_prepared(prepared)) == [prepared.message]


messages_strategy = st.lists(
    st.builds(
        Message,
        csid=st.one_of(
            st.integers(2, 63), st.integers(64, 319), st.integers(320, 65599), st.sampled_from([3, 4, 6])
        ),
        timestamp=st.one_of(st.integers(0, 0xFFFFFFFF), st.integers(0xFFFFF0, 0x100000F), st.just(0)),
        type_id=st.sampled_from([8, 9, 18, 20]),
        stream_id=st.integers(0, 3),
        payload=st.binary(max_size=700),
    ),
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(
    messages_strategy,
    st.sampled_from([1, 2, 7, 127, 128, 129, 4096, 65536]),
    st.lists(st.integers(0, 20000), max_size=8),
    st.booleans(),
)
def test_writer_reader_round_trip(
    messages: list[Message], chunk_size: int, cuts: list[int], compress: bool
) -> None:
    """Messages written at any chunk size, with or without header compression, read back equal
    however the bytes are split."""
    writer = CompressingChunkWriter(128) if compress else ChunkWriter(128)
    data = writer.write(ch.set_chunk_size_message(chunk_size))
    writer.chunk_size = chunk_size
    data += b"".join(writer.write(m) for m in messages)
    out = _feed_in_pieces(ChunkReader(), data, cuts)
    assert out[1:] == messages


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_raise_only_chunkerror(data: bytes) -> None:
    """Random bytes into the reader either parse or raise ChunkError."""
    try:
        ChunkReader(max_message_size=4096).feed(data)
    except ChunkError:
        pass


@settings(max_examples=300, deadline=None)
@given(messages_strategy, st.data())
def test_mutated_streams_raise_only_chunkerror(messages: list[Message], data: st.DataObject) -> None:
    """Valid chunk streams with bytes flipped or cut raise only ChunkError, and memory stays bounded."""
    stream = bytearray(b"".join(CompressingChunkWriter(64).write(m) for m in messages))
    for _ in range(data.draw(st.integers(1, 5))):
        if not stream:
            break
        index = data.draw(st.integers(0, len(stream) - 1))
        stream[index] = data.draw(st.integers(0, 255))
    reader = ChunkReader(max_message_size=100_000)
    reader.chunk_size = 64
    try:
        reader.feed(bytes(stream))
    except ChunkError:
        return
    assert len(reader._buf) <= reader.chunk_size + 18


# -- per-connection bounds ------------------------------------------------------------------------


def _header(csid: int, length: int, type_id: int = 9) -> bytes:
    return bytes([csid]) + bytes(3) + length.to_bytes(3, "big") + bytes([type_id]) + b"\x01\x00\x00\x00"


def test_a_declared_length_past_the_budget_fails_before_any_payload() -> None:
    """A header announcing more than the per-connection budget is refused on its 12 bytes alone:
    nothing of the message is held."""
    reader = ChunkReader(max_buffer_bytes=1 << 20)
    with pytest.raises(LimitExceeded, match="per-connection buffer") as caught:
        reader.feed(_header(3, 0xFFFFFF))
    assert caught.value.limit == "max_buffer_bytes"
    assert reader.reserved_bytes == 0 and len(reader._buf) == 12
    with pytest.raises(LimitExceeded) as caught:
        ChunkReader(max_message_size=1000).feed(_header(3, 1001))
    assert caught.value.limit == "message_size"


def test_partial_messages_on_all_chunk_streams_share_one_budget() -> None:
    """256 chunk streams of 16 MiB are no longer 4 GiB: messages being assembled on any chunk
    stream are counted together, at their declared length, against one budget."""
    reader = ChunkReader(max_buffer_bytes=1000)
    reader.feed(_header(3, 400) + bytes(128) + _header(4, 400) + bytes(128))
    assert reader.reserved_bytes == 800
    with pytest.raises(LimitExceeded) as caught:
        reader.feed(_header(5, 201))
    assert caught.value.limit == "max_buffer_bytes"

    reader = ChunkReader(max_buffer_bytes=1000)
    reader.feed(_header(3, 400) + bytes(128) + _header(4, 400) + bytes(128))
    rest = b"".join(b"\xc3" + bytes(min(128, 400 - sent)) for sent in range(128, 400, 128))
    assert [len(m.payload) for m in reader.feed(rest)] == [400]  # completing one frees its bytes
    assert reader.reserved_bytes == 400
    reader.feed(_header(5, 600) + bytes(128))
    assert reader.reserved_bytes == 1000

    reader = ChunkReader(max_buffer_bytes=1000)
    reader.held_elsewhere = 600  # what the owner holds for the connection counts too
    with pytest.raises(LimitExceeded):
        reader.feed(_header(3, 401))
    reader = ChunkReader(max_buffer_bytes=1000)
    reader.held_elsewhere = 600
    assert reader.feed(_header(3, 400) + bytes(128)) == [] and reader.reserved_bytes == 400


def test_abort_and_a_replacing_header_give_reserved_bytes_back() -> None:
    """Abort Message, or a new fmt 0 header on a chunk stream with a partial message, releases
    the partial message's reservation."""
    reader = ChunkReader(max_buffer_bytes=1000)
    reader.feed(_header(3, 900) + bytes(128))
    assert reader.reserved_bytes == 900
    reader.feed(ch.encode_chunks(ch.abort_message(3), 128))
    assert reader.reserved_bytes == 0
    reader.feed(_header(3, 900) + bytes(128) + _header(3, 990) + bytes(128))
    assert reader.reserved_bytes == 990


def test_pre_publish_chunk_stream_bound() -> None:
    """With the pre-publish bound of 8 chunk streams, the 9th chunk stream id fails, whatever
    its message; loosening the bound (after a publish is authorized) admits more."""
    data = b"".join(_header(csid, 1) + b"x" for csid in range(2, 10))
    reader = ChunkReader(max_chunk_streams=8)
    assert len(reader.feed(data)) == 8
    with pytest.raises(LimitExceeded) as caught:
        reader.feed(_header(10, 1) + b"x")
    assert caught.value.limit == "chunk_streams"
    reader = ChunkReader(max_chunk_streams=8)
    reader.feed(data)
    reader.max_chunk_streams = ch.MAX_CHUNK_STREAMS
    assert len(reader.feed(_header(10, 1) + b"x")) == 1


def test_chunk_sizes_below_the_minimum_are_refused() -> None:
    """A reader with a minimum chunk size refuses Set Chunk Size below it (every byte a header)."""
    reader = ChunkReader(min_chunk_size=128)
    reader.feed(ch.encode_chunks(ch.set_chunk_size_message(128), 128))
    with pytest.raises(LimitExceeded) as caught:
        reader.feed(ch.encode_chunks(ch.set_chunk_size_message(127), 128))
    assert caught.value.limit == "chunk_size"


def test_message_budget_stops_a_flood_of_empty_messages() -> None:
    """One-byte fmt 3 chunks completing empty messages stop at the message budget, not after
    a whole read's worth of them."""
    reader = ChunkReader(max_messages=100)
    with pytest.raises(LimitExceeded) as caught:
        reader.feed(_header(4, 0) + b"\xc4" * 65536)
    assert caught.value.limit == "messages"
    assert len(ChunkReader(max_messages=101).feed(_header(4, 0) + b"\xc4" * 100)) == 101


@st.composite
def _budget_scripts(draw: st.DrawFn) -> tuple[int, list[tuple[str, int, int]]]:
    budget = draw(st.integers(200, 3000))
    ops = draw(st.lists(st.tuples(st.sampled_from(["start", "more", "abort"]), st.integers(3, 8),
                                  st.integers(0, 1500)), max_size=40))
    return budget, ops


@settings(max_examples=300, deadline=None)
@given(_budget_scripts())
def test_budget_model(script: tuple[int, list[tuple[str, int, int]]]) -> None:
    """Against a model of the budget (declared lengths of partial messages, a new header on a busy
    chunk stream replacing its message, Abort releasing it): the reader fails exactly when the
    model exceeds the budget, always with max_buffer_bytes, never holds more, and delivers every
    completed message whole."""
    budget, ops = script
    reader = ChunkReader(max_buffer_bytes=budget)
    partial: dict[int, tuple[int, int]] = {}  # csid -> (declared, received)
    for op, csid, length in ops:
        if op == "start":
            held = sum(d for c, (d, _) in partial.items() if c != csid)
            data = _header(csid, length) + bytes([csid]) * min(128, length)
            over = held + length > budget
            got = min(128, length)
        elif op == "more" and csid in partial:
            declared, received = partial[csid]
            got = min(128, declared - received)
            data = bytes([0xC0 | csid]) + bytes([csid]) * got
            length, over = declared, False
        elif op == "abort":
            data = ch.encode_chunks(ch.abort_message(csid), 128)
            over = sum(d for d, _ in partial.values()) + 4 > budget  # the abort message itself
        else:
            continue
        if over:
            with pytest.raises(LimitExceeded) as caught:
                reader.feed(data)
            assert caught.value.limit == "max_buffer_bytes"
            return
        messages = reader.feed(data)
        if op == "abort":
            partial.pop(csid, None)
            assert [m.type_id for m in messages] == [ch.ABORT]
            continue
        received = got + (partial[csid][1] if op == "more" else 0)
        if received >= length:
            partial.pop(csid, None)
            assert [(m.csid, m.payload) for m in messages] == [(csid, bytes([csid]) * length)]
        else:
            partial[csid] = (length, received)
            assert messages == []
        assert reader.reserved_bytes == sum(d for d, _ in partial.values()) <= budget
