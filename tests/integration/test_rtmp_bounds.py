"""The RTMP door under attack, against the real twistd process: raw sockets that open too many chunk
streams, declare huge messages, go past the per-connection buffer, stall in the handshake or hold
more connections than the cap are each closed with a log line naming the bound, while a real
ffmpeg publish keeps streaming and its HTTP-FLV viewer keeps receiving, during and after."""

from __future__ import annotations

import json
import socket
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from synctv.live.rtmp import chunks as ch
from tests.integration.processes import ServerProcess
from tests.integration.test_live import FLVReader, login, publisher, stop, wait_for
from tests.live.rtmp_client import RTMPTestClient, commands

pytestmark = [
    pytest.mark.integration,
    pytest.mark.tools("ffmpeg"),
]

MAX_CONNECTIONS = 12
MAX_BUFFER = 2 << 20
TIMEOUT_S = 15  # the publish deadline; long enough that opening a dozen sockets never races it
CONFIG = f"""[live]
max_connections = {MAX_CONNECTIONS}
max_buffer_bytes = {MAX_BUFFER}
publish_timeout_s = {TIMEOUT_S}
"""


def rtmp_address(server: ServerProcess) -> tuple[str, int]:
    assert server.rtmp is not None
    parts = urllib.parse.urlsplit(server.rtmp)
    return parts.hostname or "127.0.0.1", parts.port or 1935


def open_socket(server: ServerProcess) -> socket.socket:
    return socket.create_connection(rtmp_address(server), timeout=30)


def read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def until_closed(sock: socket.socket, what: str, timeout: float = 30.0) -> bytes:
    """Everything the server sends until it closes the connection; fails if it does not in time."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    except TimeoutError:
        pytest.fail(f"the server did not close the connection that {what} within {timeout:g}s")
    finally:
        sock.close()
    return data


def answered(sock: socket.socket) -> bool:
    """Send C0+C1: True if the server answers S0+S1+S2, False if it closes the connection instead."""
    try:
        sock.sendall(RTMPTestClient().c0c1())
        return len(read_exactly(sock, 3073)) == 3073
    except ConnectionResetError:
        return False


def handshake(sock: socket.socket, client: RTMPTestClient) -> None:
    sock.sendall(client.c0c1())
    s012 = read_exactly(sock, 1 + 2 * 1536)
    assert len(s012) == 3073
    sock.sendall(client.c2(s012))


def header(csid: int, length: int, type_id: int = ch.VIDEO) -> bytes:
    return bytes([csid]) + bytes(3) + length.to_bytes(3, "big") + bytes([type_id]) + b"\x01\x00\x00\x00"


def raw_publish(server: ServerProcess, key: str) -> tuple[socket.socket, RTMPTestClient]:
    """A scripted RTMP publisher over a real socket, past NetStream.Publish.Start."""
    sock, client = open_socket(server), RTMPTestClient(chunk_size=4096)
    handshake(sock, client)
    sock.sendall(client.set_chunk_size() + client.connect() + client.command("createStream", None)
                 + client.publish(key))
    codes: list[str] = []
    while "NetStream.Publish.Start" not in codes:
        data = sock.recv(65536)
        assert data, f"the server closed the publish; statuses {codes}"
        codes += [m[3]["code"] for m in commands(client.receive(data)) if m[0] == "onStatus"]
    return sock, client


def stream_key(server: ServerProcess, cli: Any, room: str, title: str) -> tuple[str, dict[str, str]]:
    media = cli(server, "media", "add", room, "--provider", "rtmp", "--title", title).stdout.strip()
    return media, json.loads(cli(server, "stream", "key", room, media, "--json").stdout)


def log_has(server: ServerProcess, bound: str, count: int = 1) -> bool:
    return server.log.read_text(errors="replace").count(f"past the {bound} bound") >= count


def test_attacks_on_the_rtmp_door_are_closed_while_a_publish_goes_on(
    start_server: Any, cli: Any, tmp_path: Path
) -> None:
    """Each attack is closed and logged with its bound; the ffmpeg publish and its FLV viewer go
    on throughout, a new viewer joins after, and the log never shows a stream key."""
    config = tmp_path / "bounds.toml"
    config.write_text(CONFIG)
    server = start_server(extra=("--config", str(config)))
    token = login(server, cli)
    room = cli(server, "room", "create", "door").stdout.strip()
    media, key = stream_key(server, cli, room, "Cam")
    _, other_key = stream_key(server, cli, room, "Second cam")
    _, playback = server.request("GET", f"/api/rooms/{room}/media/{media}/playback", token=token)
    flv_url = server.url + next(info["url"] for info in playback["infos"] if info["mode"] == "flv")

    ffmpeg = publisher(key["publish_url"])
    try:
        def live() -> bool:
            return json.loads(cli(server, "stream", "info", room, media, "--json").stdout)["state"] == "live"
        wait_for(live, "the ffmpeg publish")
        viewer = FLVReader(flv_url)
        wait_for(lambda: len(viewer.data) > 20_000, "the FLV viewer's first bytes")

        def viewer_grows(what: str, by: int = 20_000) -> None:
            mark = len(viewer.data)
            wait_for(lambda: len(viewer.data) > mark + by, f"FLV bytes {what}")

        # The idle: one sends nothing, one stops after C0+C1, one after the handshake and connect.
        silent = open_socket(server)
        half = open_socket(server)
        half.sendall(RTMPTestClient().c0c1())
        connected = open_socket(server)
        client = RTMPTestClient(chunk_size=4096)
        handshake(connected, client)
        connected.sendall(client.set_chunk_size() + client.connect())
        idle_since = time.monotonic()

        # Nine chunk streams before any publish: closed at the ninth.
        sock = open_socket(server)
        handshake(sock, RTMPTestClient())
        sock.sendall(b"".join(header(csid, 1000) + bytes(128) for csid in range(10, 19)))
        until_closed(sock, "opened nine chunk streams")
        wait_for(lambda: log_has(server, "chunk_streams"), "the chunk_streams log line")

        # A 16 MiB message declared before publishing: closed on its header, nothing sent after it.
        sock = open_socket(server)
        handshake(sock, RTMPTestClient())
        sock.sendall(header(3, 0xFFFFFF, ch.COMMAND_AMF0))
        until_closed(sock, "declared a 16 MiB message")
        wait_for(lambda: log_has(server, "message_size"), "the message_size log line")

        # An authorized publisher of another item assembling more than max_buffer_bytes at once.
        sock, _ = raw_publish(server, other_key["stream_key"])
        half_size = MAX_BUFFER * 3 // 4
        sock.sendall(header(6, half_size) + bytes(4096) + header(7, half_size) + bytes(4096))
        until_closed(sock, "held more than max_buffer_bytes")
        wait_for(lambda: log_has(server, "max_buffer_bytes"), "the max_buffer_bytes log line")
        viewer_grows("after the buffer attacks")

        # More connections than the cap: ffmpeg and the three idle ones hold four slots.
        served, refused = [], []
        for _ in range(MAX_CONNECTIONS - 4 + 1):
            sock = open_socket(server)
            (served if answered(sock) else refused).append(sock)
        assert (len(served), len(refused)) == (MAX_CONNECTIONS - 4, 1)
        wait_for(lambda: log_has(server, "max_connections"), "the max_connections log line")
        viewer_grows("while every RTMP slot is taken")
        assert ffmpeg.poll() is None
        for sock in served + refused:
            sock.close()

        def a_slot_again() -> bool:
            with open_socket(server) as sock:
                return answered(sock)
        wait_for(a_slot_again, "a free RTMP slot once the attackers left")

        # The idle ones are closed at the deadline, each with its line.
        for sock, what in ((silent, "sent nothing"), (half, "stopped in the handshake"),
                           (connected, "connected and never published")):
            until_closed(sock, what, timeout=TIMEOUT_S + 60)
        assert time.monotonic() - idle_since >= TIMEOUT_S - 1
        wait_for(lambda: log_has(server, "publish_timeout_s", 3), "the three publish_timeout_s log lines")

        viewer_grows("after the attacks")
        assert ffmpeg.poll() is None, ffmpeg.stderr.read() if ffmpeg.stderr else ""
        info = json.loads(cli(server, "stream", "info", room, media, "--json").stdout)
        assert info["state"] == "live" and info["publishes"] == 1
        late = FLVReader(flv_url)
        wait_for(lambda: len(late.data) > 20_000, "a new FLV viewer after the attacks")
        late.close()
        viewer.close()
    finally:
        stop(ffmpeg)
    text = server.log.read_text(errors="replace")
    assert key["stream_key"] not in text and other_key["stream_key"] not in text
    assert "Traceback" not in text
