"""The server side of the simple RTMP handshake."""

from __future__ import annotations

import pytest

from synctv.live.rtmp.handshake import HANDSHAKE_SIZE, ClientHandshake, HandshakeError, ServerHandshake


def _zeros(n: int) -> bytes:
    return bytes(n)


def test_c0c1_answered_with_s0_s1_s2_echoing_c1() -> None:
    """After C0+C1 the server sends S0=3, S1 (time, zero version, random) and S2 = C1."""
    server = ServerHandshake(random_bytes=lambda n: b"\xab" * n, epoch_ms=0x01020304)
    c1 = bytes(range(256)) * 6
    step = server.feed(b"\x03" + c1)
    assert not step.done
    assert len(step.send) == 1 + 2 * HANDSHAKE_SIZE
    assert step.send[0] == 3
    s1 = step.send[1 : 1 + HANDSHAKE_SIZE]
    assert s1[:8] == b"\x01\x02\x03\x04\x00\x00\x00\x00" and s1[8:] == b"\xab" * (HANDSHAKE_SIZE - 8)
    assert step.send[1 + HANDSHAKE_SIZE :] == c1


def test_c2_completes_and_returns_leftover() -> None:
    """C2 ends the handshake; bytes after C2 come back as leftover for the chunk reader."""
    server = ServerHandshake(random_bytes=_zeros)
    server.feed(b"\x03" + bytes(HANDSHAKE_SIZE))
    step = server.feed(bytes(HANDSHAKE_SIZE) + b"\x02rest")
    assert step.done and step.leftover == b"\x02rest" and step.send == b""
    assert server.done
    assert server.feed(b"more").leftover == b"more"


def test_byte_at_a_time_and_all_at_once_agree() -> None:
    """Feeding one byte at a time gives the same replies as feeding everything at once."""
    client = b"\x03" + bytes(range(256)) * 6 + b"\x07" * HANDSHAKE_SIZE + b"tail"
    whole = ServerHandshake(random_bytes=_zeros).feed(client)
    server = ServerHandshake(random_bytes=_zeros)
    sent, leftover, done = b"", b"", False
    for i in range(len(client)):
        step = server.feed(client[i : i + 1])
        sent += step.send
        leftover += step.leftover
        done = done or step.done
    assert done and whole.done
    assert sent == whole.send and whole.leftover == b"tail" and leftover == b"tail"


@pytest.mark.parametrize("version", [0, 6, 0x16, 0x47, 255])
def test_other_versions_are_refused(version: int) -> None:
    """A first byte other than 3 (TLS, HTTP, RTMPE) is a clean HandshakeError at once."""
    server = ServerHandshake(random_bytes=_zeros)
    with pytest.raises(HandshakeError, match="version"):
        server.feed(bytes([version]))
    with pytest.raises(HandshakeError):
        server.feed(b"\x03")
    assert issubclass(HandshakeError, ValueError)


def test_client_and_server_complete_together() -> None:
    """The test client's handshake and the server's meet: C2 echoes S1, both finish."""
    client = ClientHandshake(random_bytes=_zeros)
    server = ServerHandshake(random_bytes=lambda n: b"\x11" * n)
    s012 = server.feed(client.start()).send
    step = client.feed(s012 + b"x")
    assert step.done and step.leftover == b"x"
    assert step.send == s012[1 : 1 + HANDSHAKE_SIZE]
    assert server.feed(step.send).done
