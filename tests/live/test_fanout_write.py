"""How a batch reaches a viewer's connection (synctv.live.fanout.write_now, http_chunk)."""

from __future__ import annotations

from twisted.internet.testing import StringTransport

from synctv.live.fanout import http_chunk
from synctv.socket_writes import write_now


def test_a_batch_is_one_http_chunk_built_once_for_every_viewer() -> None:
    batch = b"\x09" + bytes(300)
    framed = http_chunk(batch)
    assert framed == b"12d\r\n" + batch + b"\r\n"
    assert http_chunk(batch) is framed  # the next viewer of the same batch shares the bytes
    other = bytes(b"\x08" * 16)
    assert http_chunk(other) == b"10\r\n" + other + b"\r\n"
    assert http_chunk(batch) == framed  # an older batch is framed again, the same


def test_a_transport_that_is_not_plain_tcp_gets_an_ordinary_write() -> None:
    transport = StringTransport()
    write_now(transport, b"one")
    write_now(transport, b"two")
    assert transport.value() == b"onetwo"
