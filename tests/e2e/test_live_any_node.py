"""Live on any node, as an operator checks it: two real nodes on one PostgreSQL database, a real
ffmpeg publishing RTMP to node A, viewers reading HTTP-FLV and HLS from node B.

- B serves the stream it does not ingest, from A over the nodes' internal door, with *one*
  connection to A however many viewers B has; after the last viewer on B leaves, B drops that
  connection (A is down to no viewer) and releases its copy; A releases its own after the publish.
- The internal door refuses strangers: no signature, a signature made with another secret or for
  another stream, a proxied request (``[server] node_networks``), and relays never chain.
- A publish browsers cannot decode (Sorenson H.263 + Nellymoser, which ffmpeg 5.1 can still put in
  FLV) is accepted and relayed, its stream info says so, and a member connected to *B* gets the
  ``notice`` over the WebSocket (through the PostgreSQL bus).
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred

from synctv.live import flv
from synctv.live.live_urls import relay_path
from synctv.realtime.client import connect
from tests.e2e.live_support import Cluster, get, live_cluster, node_header, wait_for
from tests.integration.test_live import codecs, probe

__all__ = ["live_cluster"]  # the module-scoped fixture

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.tools("ffmpeg", "ffprobe")]

SOURCE = ["-f", "lavfi", "-i", "testsrc=size=320x240:rate=30", "-f", "lavfi", "-i", "sine=frequency=440"]
H264_AAC = ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "veryfast", "-tune", "zerolatency", "-g", "30",
            "-c:a", "aac"]
H263_NELLYMOSER = ["-c:v", "flv", "-g", "30", "-c:a", "nellymoser", "-ar", "22050"]
VIEWERS = 3


def publish(url: str, encode: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["ffmpeg", "-nostdin", "-v", "error", "-re", *SOURCE, *encode, "-f", "flv", url],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # ffmpeg unpublishes and closes cleanly
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def flv_tags(data: bytes) -> list[flv.FLVTag]:
    """The complete tags of an FLV byte stream that starts with its header."""
    assert data[:3] == b"FLV" and data[3] == 1, data[:16]
    return flv.FLVReader().feed(data)


def has_keyframe(data: bytes) -> bool:
    if len(data) < 13:
        return False
    return any(t.tag_type == flv.TAG_VIDEO and flv.is_keyframe(t.payload)
               and not flv.is_avc_sequence_header(t.payload) for t in flv_tags(data))


class Viewer:
    """An HTTP-FLV viewer in a thread (tests/integration/test_live.py's reader)."""

    def __init__(self, url: str) -> None:
        from tests.integration.test_live import FLVReader

        self.reader = FLVReader(url)

    @property
    def data(self) -> bytes:
        return bytes(self.reader.data)

    def close(self) -> None:
        self.reader.close()


def playback_urls(cluster: Cluster, node: Any, room: str, media: str) -> dict[str, str]:
    status, result = node.request("GET", f"/api/rooms/{room}/media/{media}/playback", token=cluster.token)
    assert status == 200, result
    return {info["mode"]: node.url + info["url"] for info in result["infos"]}


def relays_logged(node: Any, room: str, media: str) -> int:
    return node.log.read_text().count(f"relays {room}/{media}")


def test_a_publish_to_a_plays_as_flv_and_hls_from_b_with_one_pull(live_cluster: Cluster, tmp_path: Path) -> None:
    """ffmpeg publishes H.264 + AAC to A; three FLV viewers and an HLS player on B all get the
    stream (FLV header, metadata, both sequence headers, a keyframe; a playlist and a segment
    ffprobe reads as H.264 + AAC); A sees exactly one viewer (B's relay) and logs one relay;
    B's stream info says it is a relay and names A as the publishing node; when B's viewers
    leave, A is back to no viewer and B releases the stream; after the publish stops, A releases
    it too."""
    c = live_cluster
    room, media, key = c.live_item("anynode")
    assert key["rtmp_url"] == f"{c.a.rtmp}/live"
    ffmpeg = publish(key["publish_url"], H264_AAC)
    viewers: list[Viewer] = []
    try:
        wait_for(lambda: c.info(c.a, room, media)["state"] == "live" and c.info(c.a, room, media)["video"],
                 "the publish on A")
        a_info = c.info(c.a, room, media)
        assert a_info["publisher"]["node_id"] == a_info["node_id"] and a_info["source"] == "rtmp"
        assert a_info["browser_playable"] is True

        urls = playback_urls(c, c.b, room, media)
        viewers = [Viewer(urls["flv"]) for _ in range(VIEWERS)]
        for viewer in viewers:
            wait_for(lambda v=viewer: has_keyframe(v.data), "FLV video from B")
        for viewer in viewers:
            tags = flv_tags(viewer.data)
            assert tags[0].tag_type == flv.TAG_SCRIPT
            assert any(flv.is_avc_sequence_header(t.payload) for t in tags if t.tag_type == flv.TAG_VIDEO)
            assert any(flv.is_aac_sequence_header(t.payload) for t in tags if t.tag_type == flv.TAG_AUDIO)

        status, playlist = get(urls["hls"])
        assert status == 200, playlist
        text = playlist.decode()
        assert text.startswith("#EXTM3U") and "#EXTINF:" in text and "#EXT-X-ENDLIST" not in text
        segment_uri = [line for line in text.splitlines() if line and not line.startswith("#")][-1]
        status, segment = get(urls["hls"].rsplit("/", 1)[0] + "/" + segment_uri)
        assert status == 200 and len(segment) >= 188 * 10 and len(segment) % 188 == 0 and segment[0] == 0x47
        assert segment[188] == 0x47
        (tmp_path / "from-b.ts").write_bytes(segment)
        assert codecs(probe(str(tmp_path / "from-b.ts"))) == {"video": "h264", "audio": "aac"}

        b_info = c.info(c.b, room, media)
        assert b_info["state"] == "live" and b_info["source"] == "relay"
        assert b_info["publisher"]["node_id"] == a_info["node_id"] != b_info["node_id"]
        assert b_info["publisher"]["node_url"] == c.a.url
        assert b_info["viewers"]["flv"] == VIEWERS and b_info["upstream"]["state"] == "pulling"
        assert b_info["video"]["width"] == 320
        a_info = c.info(c.a, room, media)
        assert a_info["viewers"]["flv"] == 1, a_info["viewers"]  # B's one relay, not B's viewers
        assert relays_logged(c.a, room, media) == 1

        for viewer in viewers:
            viewer.close()
        # B stops pulling after pull_idle_s without viewers (HLS players count for ~10 s after their
        # last playlist read), then releases its copy after idle_s; A's relay viewer is gone.
        wait_for(lambda: c.info(c.b, room, media)["state"] == "offline", "B's release", timeout=60)
        wait_for(lambda: c.info(c.a, room, media)["viewers"]["flv"] == 0, "A losing B's relay")
        assert c.info(c.a, room, media)["state"] == "live"
        assert "relay of " in c.b.log.read_text() and f"released stream {room}/{media}" in c.b.log.read_text()
    finally:
        for viewer in viewers:
            viewer.close()
        stop(ffmpeg)
    wait_for(lambda: c.info(c.a, room, media)["state"] == "offline", "A's release after the publish", timeout=30)
    assert f"released stream {room}/{media}" in c.a.log.read_text()
    assert relays_logged(c.a, room, media) == 1


def test_the_internal_door_refuses_strangers(live_cluster: Cluster) -> None:
    """While a stream is live on A: no signature, a guessed secret, a signature for another
    stream (401); a valid signature through a proxy (403, node_networks); a valid signature for a
    node that only relays (404: relays never chain; an HLS player alone started that relay). A
    valid signature straight to A reads the FLV (so the refusals above are the door's doing, not
    a broken route)."""
    c = live_cluster
    room, media, key = c.live_item("door")
    _, other, _ = c.live_item("door-other")
    ffmpeg = publish(key["publish_url"], H264_AAC)
    try:
        wait_for(lambda: c.info(c.a, room, media)["state"] == "live" and c.info(c.a, room, media)["video"],
                 "the publish on A")
        path = relay_path(room, media)
        secret = c.secret()
        assert get(c.a.url + path)[0] == 401
        assert get(c.a.url + path, {"Authorization": f"Bearer {c.token}"})[0] == 401  # a user is not a node
        assert get(c.a.url + path, {"Authorization": node_header("x" * 43, path)})[0] == 401
        other_path = relay_path(room, other)
        assert get(c.a.url + path, {"Authorization": node_header(secret, other_path)})[0] == 401
        proxied = {"Authorization": node_header(secret, path), "X-Forwarded-For": "203.0.113.9"}
        assert get(c.a.url + path, proxied)[0] == 403

        status, data = get(c.a.url + path, {"Authorization": node_header(secret, path)}, until=has_keyframe)
        assert status == 200 and has_keyframe(data)

        urls = playback_urls(c, c.b, room, media)
        status, playlist = get(urls["hls"])  # an HLS player alone starts B's relay too
        assert status == 200 and "#EXTINF:" in playlist.decode(), playlist[:200]
        viewer = Viewer(urls["flv"])  # and B's FLV viewers share it
        try:
            wait_for(lambda: has_keyframe(viewer.data), "FLV from B")
            status, body = get(c.b.url + path, {"Authorization": node_header(secret, path)})
            assert status == 404, body
        finally:
            viewer.close()
    finally:
        stop(ffmpeg)


@pytest_twisted.ensureDeferred
async def test_a_publish_browsers_cannot_decode_is_relayed_and_announced_on_every_node(
        live_cluster: Cluster) -> None:
    """Sorenson H.263 + Nellymoser to A: accepted; A's stream info says browsers cannot play it
    and why; a member connected to B gets two ``notice`` messages (video, audio) through the bus;
    B still relays the FLV as it is."""
    from twisted.internet import reactor

    c = live_cluster
    room, media, key = c.live_item("codecs")
    client = await connect(c.b.url, room, c.token)
    notices: list[dict[str, Any]] = []
    two: Deferred[None] = Deferred()

    def on_message(message: dict[str, Any]) -> None:
        if message.get("type") == "notice":
            notices.append(message)
            if len(notices) == 2 and not two.called:
                two.callback(None)

    client.on_message(on_message)
    ffmpeg = publish(key["publish_url"], H263_NELLYMOSER)
    try:
        await two.addTimeout(30, reactor)
        assert {n["code"] for n in notices} == {"live_codec"} and {n["media_id"] for n in notices} == {media}
        text = " ".join(n["message"] for n in notices)
        assert "Sorenson H.263" in text and "Nellymoser" in text and "browsers will not decode" in text
        info = c.info(c.a, room, media)
        assert info["state"] == "live" and info["browser_playable"] is False
        assert info["video"]["codec"] == "h263" and info["audio"]["codec"] == "nellymoser"
        assert len(info["codec_warnings"]) == 2
        assert "browsers will not decode" in c.a.log.read_text()

        urls = playback_urls(c, c.b, room, media)
        status, data = get(urls["flv"], until=has_keyframe)
        assert status == 200
        tags = flv_tags(data)
        assert {t.payload[0] & 0x0F for t in tags if t.tag_type == flv.TAG_VIDEO} == {2}  # Sorenson, as sent
        assert {t.payload[0] >> 4 for t in tags if t.tag_type == flv.TAG_AUDIO} <= {4, 5, 6}  # Nellymoser
        assert c.info(c.b, room, media)["browser_playable"] is False
    finally:
        stop(ffmpeg)
        await client.close()
