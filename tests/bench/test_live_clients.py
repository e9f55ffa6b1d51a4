"""The live benchmark's load client (bench/_live_clients.py) sees every video timestamp its
viewers receive, wherever a read splits the stream, so the gaps it counts -- the benchmark's
health check of both servers -- are the servers' and not its own. It reads in batches (one pass
over every socket per ``READ_EVERY_S``), through one shared buffer; an end-to-end run over a real
loopback socket checks that nothing is lost that way."""

from __future__ import annotations

import asyncio
import itertools
import socket
import struct
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench import _live_clients as clients
from synctv.live.rtmp import chunks as ch

# -- FLV ----------------------------------------------------------------------------------------


def flv_tag(kind: int, ts: int, payload: bytes) -> bytes:
    head = bytes([kind]) + len(payload).to_bytes(3, "big") + (ts & 0xFFFFFF).to_bytes(3, "big")
    return head + bytes([(ts >> 24) & 0xFF]) + b"\0\0\0" + payload + (11 + len(payload)).to_bytes(4, "big")


def flv_body(video_ts: list[int]) -> bytes:
    parts = [b"FLV\x01\x05\x00\x00\x00\x09", b"\0\0\0\0", flv_tag(18, 0, b"\x02meta")]
    for i, ts in enumerate(video_ts):
        parts.append(flv_tag(8, ts, b"\xaf\x01" + bytes(50)))  # audio between the frames
        parts.append(flv_tag(9, ts, (b"\x17\x01" if i % 30 == 0 else b"\x27\x01") + bytes(200 + 37 * i)))
    return b"".join(parts)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True) if b > a]


class Closing:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


def gaps_in(timestamps: list[int]) -> int:
    return sum(1 for a, b in itertools.pairwise(timestamps) if b - a > clients.GAP_MS)


TIMESTAMPS = st.lists(st.integers(0, 2_000), min_size=1, max_size=40).map(
    lambda steps: [sum(steps[: i + 1]) + (1 << 24) * (i > 20) for i in range(len(steps))])


@settings(max_examples=150, deadline=None)
@given(timestamps=TIMESTAMPS, cuts=st.lists(st.integers(0, 1 << 20), max_size=30))
def test_flv_viewer_counts_every_video_tag_wherever_reads_split(timestamps: list[int], cuts: list[int]) -> None:
    """Every video tag is one frame, timestamps past 24 bits included (the extension byte), and a
    jump of more than GAP_MS is one gap -- however the body arrives in reads."""
    stats = clients.Stats()
    viewer = clients.FLVViewer(stats, "/live.flv")
    viewer.transport = Closing()
    data = b"HTTP/1.1 200 OK\r\nContent-Type: video/x-flv\r\n\r\n" + flv_body(timestamps)
    for part in split(data, cuts):
        viewer.data_received(memoryview(part))
    assert (stats.connected, stats.failed, stats.frames) == (1, 0, len(timestamps))
    assert stats.gaps == gaps_in(timestamps)
    assert viewer.last_ts == timestamps[-1]
    assert stats.bytes == len(data)
    assert not viewer.buf  # everything complete was consumed


def test_flv_viewer_refuses_an_error_answer() -> None:
    stats = clients.Stats()
    viewer = clients.FLVViewer(stats, "/live.flv")
    viewer.transport = Closing()
    viewer.data_received(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
    assert (stats.failed, stats.connected, stats.frames) == (1, 0, 0)
    assert viewer.transport.closed


# -- RTMP ---------------------------------------------------------------------------------------


def chunk_fmt1(csid: int, delta: int, type_id: int, payload: bytes, chunk_size: int) -> bytes:
    """A message in a type 1 chunk (timestamp delta, as nginx-rtmp sends them) and type 3 ones."""
    extended = delta >= 0xFFFFFF
    ext = delta.to_bytes(4, "big") if extended else b""
    head = ch.basic_header(1, csid) + (0xFFFFFF if extended else delta).to_bytes(3, "big")
    out = [head + len(payload).to_bytes(3, "big") + bytes([type_id]) + ext, payload[:chunk_size]]
    for offset in range(chunk_size, len(payload), chunk_size):
        out += [ch.basic_header(3, csid) + ext, payload[offset : offset + chunk_size]]
    return b"".join(out)


def rtmp_stream(deltas: list[int], chunk_size: int, window: int) -> tuple[bytes, list[int]]:
    """What a server sends a player after the handshake: control messages, then video (type 0
    and type 1 chunks, a sequence header that is not a frame) with audio on another chunk stream."""
    writer = ch.ChunkWriter()
    out = [writer.set_chunk_size(chunk_size),
           writer.write(ch.Message(2, 0, ch.WINDOW_ACK_SIZE, 0, struct.pack(">I", window))),
           writer.write(ch.Message(6, 0, ch.VIDEO, 1, b"\x17\x00" + bytes(40)))]  # AVC sequence header
    frames, ts = [], 0
    for i, delta in enumerate(deltas):
        ts = (ts + delta) & 0xFFFFFFFF
        payload = (b"\x17\x01" if i % 30 == 0 else b"\x27\x01") + bytes(300 + 173 * i)
        if i % 3 == 0:
            out.append(writer.write(ch.Message(6, ts, ch.VIDEO, 1, payload)))
        else:
            out.append(chunk_fmt1(6, delta, ch.VIDEO, payload, chunk_size))
        out.append(writer.write(ch.Message(4, ts, ch.AUDIO, 1, b"\xaf\x01" + bytes(90))))
        frames.append(ts)
    return b"".join(out), frames


@settings(max_examples=150, deadline=None)
@given(deltas=st.lists(st.integers(0, 1_500) | st.just(0xFFFFFF + 5), min_size=1, max_size=40),
       chunk_size=st.sampled_from([128, 1000, 4096, 65536]),
       window=st.integers(ch.MIN_ACK_WINDOW, 40_000),
       cuts=st.lists(st.integers(0, 1 << 20), max_size=30))
def test_rtmp_skimmer_sees_every_video_message_and_acknowledges_its_window(
        deltas: list[int], chunk_size: int, window: int, cuts: list[int]) -> None:
    """The skimmer follows Set Chunk Size, type 1 deltas and extended timestamps, reports each
    coded video frame once (not the sequence header), and acknowledges each window it received."""
    data, expected = rtmp_stream(deltas, chunk_size, window)
    skimmer = clients._ChunkSkimmer()
    seen: list[int] = []
    acks: list[int] = []
    for part in split(data, cuts):
        ack = skimmer.feed(memoryview(part), seen.append)
        if ack is not None:
            acks.append(ack)
    assert seen == expected
    assert skimmer.chunk_size == chunk_size
    assert not skimmer.buf
    received = [0]
    for ack in acks:
        assert ack - received[-1] >= window
        received.append(ack)
    assert len(data) - received[-1] < window + max(len(p) for p in split(data, cuts))


# -- end to end ---------------------------------------------------------------------------------


def test_batched_reads_lose_nothing_over_a_real_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    """Three HTTP-FLV viewers against a loopback server (threads: the client's loop sleeps between
    its passes) that streams a frame every 15 ms, spread over many read passes: every frame
    reaches every viewer with no gap, through the shared buffer and the batched reads. The run
    lasts 3 s, far longer than the stream even on a busy machine; the stall check is set past the
    run (the stream's end is not a stall), the timestamp check stays."""
    monkeypatch.setattr(clients, "STALL_S", 60.0)
    frames = 30
    body = flv_body([i * 33 for i in range(frames)])
    header = b"HTTP/1.1 200 OK\r\nContent-Type: video/x-flv\r\n\r\n"

    def serve(conn: socket.socket) -> None:
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(4096)
            pos = 13 + 11 + 5 + 4  # the FLV header and the script tag
            conn.sendall(header + body[:pos])
            while pos < len(body):  # an audio tag and a video tag every 15 ms
                end = pos
                for _ in range(2):
                    end += 11 + int.from_bytes(body[end + 1 : end + 4], "big") + 4
                conn.sendall(body[pos:end])
                pos = end
                time.sleep(0.015)
            while conn.recv(4096):  # until the viewer closes
                pass

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def accept() -> None:
        for _ in range(3):
            conn, _ = listener.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        done = asyncio.run(clients.run("flv", f"http://127.0.0.1:{port}/live.flv?t=1", 3, 3.0))
    finally:
        listener.close()
    assert done["viewers"] == 3 and done["connected"] == 3 and done["failed"] == 0
    assert done["frames"] == 3 * frames
    assert done["gaps"] == 0 and done["ended_early"] == 0
    assert done["bytes"] == 3 * (len(header) + len(body))
