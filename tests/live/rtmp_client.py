"""Test-side RTMP client encoder and MPEG-TS parser, independent of the server code paths.

``CompressingChunkWriter`` chooses fmt 0/1/2/3 headers the way ffmpeg and librtmp do (reusing the
previous header of the chunk stream), so the reader's delta and fmt 3 logic is exercised, which the
server's always-fmt-0 ChunkWriter never does.
"""

from __future__ import annotations

from typing import Any

from synctv.live.rtmp import amf0
from synctv.live.rtmp import chunks as ch
from synctv.live.rtmp.handshake import ClientHandshake

EXT = 0xFFFFFF


class CompressingChunkWriter:
    """Client-style chunk encoder with header compression; ``ext_on_fmt3`` mirrors FMS/ffmpeg."""

    def __init__(self, chunk_size: int = 128, ext_on_fmt3: bool = True) -> None:
        self.chunk_size = chunk_size
        self.ext_on_fmt3 = ext_on_fmt3
        self._prev: dict[int, tuple[int, int, int, int, int]] = {}  # csid -> ts, delta, len, type, sid

    def write(self, message: ch.Message) -> bytes:
        csid, ts, payload = message.csid, message.timestamp & 0xFFFFFFFF, message.payload
        prev = self._prev.get(csid)
        length, type_id, sid = len(payload), message.type_id, message.stream_id
        if prev is None or sid != prev[4] or ts < prev[0]:
            fmt, field = 0, ts
            delta = ts
        else:
            delta = ts - prev[0]
            if length != prev[2] or type_id != prev[3]:
                fmt = 1
            elif delta != prev[1]:
                fmt = 2
            else:
                fmt = 3
            field = delta
        self._prev[csid] = (ts, delta if fmt else ts, length, type_id, sid)
        ext_value = field if fmt != 3 else delta
        extended = ext_value >= EXT
        ext = ext_value.to_bytes(4, "big") if extended else b""
        three = (EXT if extended else field).to_bytes(3, "big")
        header = ch.basic_header(fmt, csid)
        if fmt == 0:
            header += three + length.to_bytes(3, "big") + bytes([type_id]) + sid.to_bytes(4, "little")
        elif fmt == 1:
            header += three + length.to_bytes(3, "big") + bytes([type_id])
        elif fmt == 2:
            header += three
        header += ext
        continuation = ch.basic_header(3, csid) + (ext if self.ext_on_fmt3 else b"")
        parts = [header, payload[: self.chunk_size]]
        for offset in range(self.chunk_size, length, self.chunk_size):
            parts += [continuation, payload[offset : offset + self.chunk_size]]
        return b"".join(parts)


class RTMPTestClient:
    """Produces the bytes a publishing client sends and decodes what the server answers."""

    def __init__(self, chunk_size: int = 128, compress: bool = True) -> None:
        self.handshake = ClientHandshake(
            random_bytes=lambda n: bytes(range(256)) * (n // 256) + bytes(n % 256)
        )
        self.writer: Any = CompressingChunkWriter(128) if compress else ch.ChunkWriter(128)
        self.wanted_chunk_size = chunk_size
        self.reader = ch.ChunkReader()
        self.txn = 0

    def c0c1(self) -> bytes:
        return self.handshake.start()

    def c2(self, server_bytes: bytes) -> bytes:
        step = self.handshake.feed(server_bytes)
        assert step.done
        return step.send

    def set_chunk_size(self) -> bytes:
        data = self.writer.write(ch.set_chunk_size_message(self.wanted_chunk_size))
        self.writer.chunk_size = self.wanted_chunk_size
        return data

    def command(self, name: str, *args: Any, stream_id: int = 0, csid: int = 3) -> bytes:
        self.txn += 1
        payload = amf0.encode(name, float(self.txn), *args)
        return self.writer.write(ch.Message(csid, 0, ch.COMMAND_AMF0, stream_id, payload))

    def connect(self, app: str = "live") -> bytes:
        return self.command(
            "connect", {"app": app, "type": "nonprivate", "flashVer": "FMLE/3.0", "tcUrl": f"rtmp://h/{app}"}
        )

    def publish(self, name: str, stream_id: int = 1) -> bytes:
        payload = amf0.encode("publish", 0.0, None, name, "live")
        return self.writer.write(ch.Message(4, 0, ch.COMMAND_AMF0, stream_id, payload))

    def metadata(self, meta: dict[str, Any], stream_id: int = 1) -> bytes:
        payload = amf0.encode("@setDataFrame", "onMetaData", amf0.ECMAArray(meta))
        return self.writer.write(ch.Message(4, 0, ch.DATA_AMF0, stream_id, payload))

    def audio(self, timestamp: int, payload: bytes, stream_id: int = 1) -> bytes:
        return self.writer.write(ch.Message(4, timestamp, ch.AUDIO, stream_id, payload))

    def video(self, timestamp: int, payload: bytes, stream_id: int = 1) -> bytes:
        return self.writer.write(ch.Message(6, timestamp, ch.VIDEO, stream_id, payload))

    def receive(self, data: bytes) -> list[ch.Message]:
        return self.reader.feed(data)


def commands(messages: list[ch.Message]) -> list[list[Any]]:
    """The decoded AMF0 command messages among ``messages``."""
    return [amf0.decode_all(m.payload) for m in messages if m.type_id == ch.COMMAND_AMF0]


# -- MPEG-TS parsing for assertions ---------------------------------------------------------------


def ts_packets(data: bytes) -> list[dict[str, Any]]:
    assert len(data) % 188 == 0, len(data)
    packets = []
    for off in range(0, len(data), 188):
        p = data[off : off + 188]
        assert p[0] == 0x47
        pid = ((p[1] & 0x1F) << 8) | p[2]
        afc = (p[3] >> 4) & 3
        pos = 4
        adaptation = b""
        if afc & 2:
            adaptation = p[5 : 5 + p[4]]
            pos = 5 + p[4]
        packets.append(
            {
                "pid": pid,
                "pusi": bool(p[1] & 0x40),
                "cc": p[3] & 0x0F,
                "adaptation": adaptation,
                "payload": p[pos:] if afc & 1 else b"",
            }
        )
    return packets


def decode_ts_timestamp(b: bytes) -> int:
    return ((b[0] >> 1) & 7) << 30 | b[1] << 22 | (b[2] >> 1) << 15 | b[3] << 7 | b[4] >> 1


def pes_units(packets: list[dict[str, Any]], pid: int) -> list[dict[str, Any]]:
    """Reassemble PES packets on ``pid``: {pts, dts, data, random_access, pcr}."""
    units: list[dict[str, Any]] = []
    for p in packets:
        if p["pid"] != pid:
            continue
        if p["pusi"]:
            af = p["adaptation"]
            flags = af[0] if af else 0
            pcr = None
            if flags & 0x10:
                b = af[1:7]
                pcr = (b[0] << 25) | (b[1] << 17) | (b[2] << 9) | (b[3] << 1) | (b[4] >> 7)
            units.append({"raw": bytearray(p["payload"]), "random_access": bool(flags & 0x40), "pcr": pcr})
        else:
            units[-1]["raw"] += p["payload"]
    for unit in units:
        raw = bytes(unit.pop("raw"))
        assert raw[:3] == b"\x00\x00\x01"
        flags, hlen = raw[7], raw[8]
        unit["stream_id"] = raw[3]
        unit["pes_length"] = int.from_bytes(raw[4:6], "big")
        unit["pts"] = decode_ts_timestamp(raw[9:14])
        unit["dts"] = decode_ts_timestamp(raw[14:19]) if flags & 0x40 else unit["pts"]
        unit["data"] = raw[9 + hlen :]
        if unit["pes_length"]:
            assert unit["pes_length"] == len(raw) - 6
    return units
