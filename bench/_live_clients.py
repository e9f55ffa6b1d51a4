"""Load generator of bench/live.py: many live viewers in one asyncio process.

``python -m bench._live_clients flv|rtmp URL N SECONDS [READ_EVERY_S]`` opens N viewers (HTTP-FLV over HTTP/1.0,
or RTMP play), reads for SECONDS and prints one JSON line: bytes received, video frames, and
*gaps* -- a jump of more than ``GAP_MS`` between consecutive video timestamps, or more than
``STALL_S`` of wall time without a video frame once a viewer is playing.

The RTMP client is the synctv sans-IO handshake used as a client, and a lean chunk parser of its
own (:class:`_ChunkSkimmer`). Once every viewer plays, the process reads in batches: every
``READ_EVERY_S`` one pass over all the sockets with data, each read into one shared buffer. A
load client must cost little beside the servers it measures (bench/live.py refuses a run where it
used 90 % of a core), and must not make the servers pay for its own wake-ups.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import urllib.parse
from typing import Any

from synctv.live.rtmp import amf0
from synctv.live.rtmp import chunks as ch
from synctv.live.rtmp.handshake import ClientHandshake

GAP_MS = 500
STALL_S = 1.0


class Stats:
    def __init__(self) -> None:
        self.bytes = 0
        self.frames = 0
        self.gaps = 0
        self.failed = 0
        self.connected = 0
        self.ended = 0


#: Every viewer reads into this one buffer (recv_into), then takes what it needs: ``recv(n)``
#: allocates n bytes per call, and with asyncio's 256 KiB that was an mmap and munmap per read --
#: 65 % of this process's CPU at 500 RTMP viewers. Reads are handled one at a time, so one buffer
#: serves all.
_READ = memoryview(bytearray(256 * 1024))


class _Viewer(asyncio.BufferedProtocol):
    def __init__(self, stats: Stats) -> None:
        self.stats = stats
        self.last_ts: int | None = None
        self.last_wall = 0.0
        self.transport: Any = None
        self.closing = False

    def video(self, timestamp: int) -> None:
        now = time.monotonic()
        if self.last_ts is not None and (timestamp - self.last_ts > GAP_MS or now - self.last_wall > STALL_S):
            self.stats.gaps += 1
        self.last_ts, self.last_wall = timestamp, now
        self.stats.frames += 1

    def check_stall(self) -> None:
        if self.last_ts is not None and time.monotonic() - self.last_wall > STALL_S:
            self.stats.gaps += 1
            self.last_wall = time.monotonic()

    def get_buffer(self, sizehint: int) -> memoryview:
        return _READ

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(_READ[:nbytes])

    def data_received(self, data: bytes | memoryview) -> None:
        raise NotImplementedError

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closing:
            self.stats.ended += 1


class FLVViewer(_Viewer):
    """HTTP/1.0 GET: no chunked encoding, the body is the FLV stream itself."""

    def __init__(self, stats: Stats, path: str) -> None:
        super().__init__(stats)
        self.path = path
        self.buf = bytearray()
        self.headers_done = False
        self.skip = 13  # FLV header + PreviousTagSize0

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(f"GET {self.path} HTTP/1.0\r\nHost: bench\r\n\r\n".encode())

    def data_received(self, data: bytes | memoryview) -> None:
        self.stats.bytes += len(data)
        buf = self.buf
        buf += data
        if not self.headers_done:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buf.startswith(b"HTTP/1.1 200") and not buf.startswith(b"HTTP/1.0 200"):
                self.stats.failed += 1
                self.transport.close()
                return
            self.stats.connected += 1
            del buf[: end + 4]
            self.headers_done = True
        pos = 0
        while True:
            if self.skip:
                take = min(self.skip, len(buf) - pos)
                pos += take
                self.skip -= take
                if self.skip:
                    break
            if len(buf) - pos < 11:
                break
            size = int.from_bytes(buf[pos + 1 : pos + 4], "big")
            if buf[pos] & 0x1F == 9:
                self.video((buf[pos + 7] << 24) | int.from_bytes(buf[pos + 4 : pos + 7], "big"))
            pos += 11
            self.skip = size + 4
        del buf[:pos]


class _ChunkSkimmer:
    """A lean client-side RTMP chunk parser: message boundaries, types and timestamps only.

    Payloads are skipped, not assembled (a viewer here only needs video timestamps), except the
    few bytes of Set Chunk Size and Window Acknowledgement Size, which change the parse.
    """

    def __init__(self) -> None:
        self.buf = bytearray()
        self.chunk_size = 128
        self.window = 0
        self.received = 0
        self._acked = 0
        self._streams: dict[int, list[Any]] = {}  # csid -> [timestamp, delta, length, type, remaining, extended]

    def feed(self, data: bytes | memoryview, on_video: Any) -> int | None:
        """Parse what is complete; call ``on_video(ts)`` per video message; the ack to send, if due."""
        self.received += len(data)
        buf = self.buf
        buf += data
        pos, n = 0, len(buf)
        while pos < n:
            b0 = buf[pos]
            fmt, csid, p = b0 >> 6, b0 & 0x3F, pos + 1
            if csid == 0:
                csid, p = 64 + buf[p] if p < n else -1, p + 1
            elif csid == 1:
                csid, p = (64 + buf[p] + (buf[p + 1] << 8)) if p + 1 < n else -1, p + 2
            hlen = (11, 7, 3, 0)[fmt]
            if csid < 0 or p + hlen > n:
                break
            cs = self._streams.setdefault(csid, [0, 0, 0, 0, 0, False])
            starting = fmt < 3 or cs[4] == 0
            if fmt < 3:
                field = (buf[p] << 16) | (buf[p + 1] << 8) | buf[p + 2]
                if fmt < 2:
                    length, kind = (buf[p + 3] << 16) | (buf[p + 4] << 8) | buf[p + 5], buf[p + 6]
                else:
                    length, kind = cs[2], cs[3]
                p += hlen
                extended = field == 0xFFFFFF
                if extended:
                    if p + 4 > n:
                        break
                    field = int.from_bytes(buf[p : p + 4], "big")
                    p += 4
            else:
                field, length, kind, extended = cs[1], cs[2], cs[3], cs[5]
                if extended:  # type 3 chunks repeat the extended timestamp of their message
                    p += 4
                    if p > n:
                        break
            remaining = length if starting else cs[4]
            take = min(self.chunk_size, remaining)
            if p + take > n:
                break
            if starting:
                ts = field if fmt == 0 else cs[0] + field
                cs[0], cs[1], cs[2], cs[3], cs[5] = ts, field, length, kind, extended
                if kind == 9 and length > 1 and take > 1 and buf[p + 1] == 1:
                    on_video(ts & 0xFFFFFFFF)
                elif kind in (1, 5) and take >= 4:
                    value = int.from_bytes(buf[p : p + 4], "big") & 0x7FFFFFFF
                    if kind == 1:
                        self.chunk_size = max(1, value)
                    else:
                        self.window = value
            cs[4] = remaining - take
            pos = p + take
        del buf[:pos]
        if self.window and self.received - self._acked >= self.window:
            self._acked = self.received
            return self.received & 0xFFFFFFFF
        return None


class RTMPViewer(_Viewer):
    """connect, createStream and play, pipelined; acknowledges the server's window."""

    def __init__(self, stats: Stats, app: str, stream: str, tc_url: str) -> None:
        super().__init__(stats)
        self.app, self.stream, self.tc_url = app, stream, tc_url
        self.handshake = ClientHandshake()
        self.skimmer = _ChunkSkimmer()
        self.writer = ch.ChunkWriter(128)
        self.shaking = True

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(self.handshake.start())

    def _command(self, *values: Any, stream_id: int = 0) -> bytes:
        return self.writer.write(ch.Message(3 if not stream_id else 8, 0, ch.COMMAND_AMF0, stream_id,
                                            amf0.encode(*values)))

    def data_received(self, data: bytes | memoryview) -> None:
        self.stats.bytes += len(data)
        if self.shaking:
            step = self.handshake.feed(bytes(data))
            if not step.done:
                return
            self.shaking = False
            self.transport.write(step.send + self.writer.set_chunk_size(4096) + b"".join((
                self._command("connect", 1.0, {"app": self.app, "tcUrl": self.tc_url, "flashVer": "LNX 9,0,124,2"}),
                self._command("createStream", 2.0, None),
                self._command("play", 0.0, None, self.stream, -2.0, stream_id=1),
                self.writer.write(ch.user_control_message(ch.SET_BUFFER_LENGTH, 1, 3000)),
            )))
            self.stats.connected += 1
            data = step.leftover
            if not data:
                return
        sequence = self.skimmer.feed(data, self.video)
        if sequence is not None:
            self.transport.write(self.writer.write(ch.acknowledgement_message(sequence)))


CONNECT_BATCH = 50

#: Once all viewers play, the process reads every socket once per this period (a blocking sleep,
#: then one pass of the event loop over every ready socket), as a player reading from its buffer
#: does; it stays far below GAP_MS and STALL_S. Read as data came, every 4 KiB chunk was a
#: wake-up, a recv and a pass of the loop: 500 RTMP viewers of 2 Mbit/s took 0.69 of a core
#: (0.23 like this), past the benchmark's bound for the load client, and each wake-up was paid
#: by the server too (a loopback send wakes its reader; over a network it would not).
READ_EVERY_S = 0.05


async def run(kind: str, url: str, count: int, seconds: float, read_every_s: float = READ_EVERY_S) -> dict[str, Any]:
    """The viewers' run; ``read_every_s`` 0: each socket is read as its data comes (the old way)."""
    loop = asyncio.get_running_loop()
    parts = urllib.parse.urlsplit(url)
    stats = Stats()
    viewers: list[_Viewer] = []

    def make() -> _Viewer:
        if kind == "flv":
            return FLVViewer(stats, f"{parts.path}?{parts.query}")
        app, _, stream = parts.path.strip("/").partition("/")
        return RTMPViewer(stats, app, stream, f"rtmp://{parts.hostname}:{parts.port}/{app}")

    async def connect(viewer: _Viewer) -> _Viewer | None:
        try:
            await loop.create_connection(lambda: viewer, parts.hostname, parts.port)
        except OSError:
            stats.failed += 1
            return None
        return viewer

    # CONNECT_BATCH at a time: one by one, the viewers already playing (a stream each) slowed the
    # loop that connects the others so much that 500 RTMP viewers took 36 s to connect
    for first in range(0, count, CONNECT_BATCH):
        batch = [make() for _ in range(min(CONNECT_BATCH, count - first))]
        viewers.extend(v for v in await asyncio.gather(*(connect(v) for v in batch)) if v is not None)
    print(json.dumps({"event": "connected", "viewers": len(viewers)}), flush=True)
    deadline = loop.time() + seconds
    next_check = loop.time() + 0.25
    next_read = loop.time()
    while loop.time() < deadline:
        if read_every_s > 0:
            next_read = max(next_read + read_every_s, loop.time())
            time.sleep(max(0.0, next_read - loop.time()))
            await asyncio.sleep(0)  # one pass of the loop: every socket with data is read once
        else:
            await asyncio.sleep(max(0.0, next_check - loop.time()))
        if loop.time() >= next_check:
            next_check += 0.25
            for viewer in viewers:
                viewer.check_stall()
    for viewer in viewers:
        viewer.closing = True
        viewer.transport.close()
    return {"event": "done", "viewers": len(viewers), "bytes": stats.bytes, "frames": stats.frames,
            "gaps": stats.gaps, "failed": stats.failed, "connected": stats.connected, "ended_early": stats.ended}


def main(argv: list[str]) -> int:
    kind, url, count, seconds = argv[0], argv[1], int(argv[2]), float(argv[3])
    read_every_s = float(argv[4]) if len(argv) > 4 else READ_EVERY_S
    print(json.dumps(asyncio.run(run(kind, url, count, seconds, read_every_s))), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
