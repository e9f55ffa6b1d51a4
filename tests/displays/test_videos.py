"""Uploaded videos and the idle image over real HTTP: streaming to disk, size limits, ffprobe,
Range, and no file left behind by a refused or broken upload."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import attrs
import pytest
import pytest_twisted
import treq
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Protocol
from twisted.web.iweb import UNKNOWN_LENGTH, IBodyProducer
from zope.interface import implementer

from synctv.api import uploads
from tests.api.api_support import Response
from tests.displays.support import PNG_1x1, make_video

MiB = 1 << 20


async def post(show, path: str, body: Any, token: str | None = "admin", headers: dict[str, str] | None = None,
               method: str = "POST") -> Response:
    """A request whose body is bytes, a file path (streamed) or a body producer."""
    all_headers = dict(headers or {})
    if token is not None:
        all_headers["Authorization"] = f"Bearer {show.world.tokens[token]}"
    if isinstance(body, Path):
        with open(body, "rb") as f:
            response = await treq.request(method, show.world.served.base + path, data=f, headers=all_headers,
                                          pool=show.world.served.pool)
            raw = await response.content()
    else:
        response = await treq.request(method, show.world.served.base + path, data=body, headers=all_headers,
                                      pool=show.world.served.pool)
        raw = await response.content()
    return Response(response.code, response.headers, raw)


def incoming(show) -> list[Path]:
    return list(show.runtime.videos.incoming_dir.iterdir())


@pytest.fixture
def clip(tmp_path_factory) -> Path:
    """A 2 s MP4 (made once per test)."""
    return make_video(tmp_path_factory.mktemp("media") / "clip.mp4", seconds=2.0)


@pytest.fixture
def spools(monkeypatch) -> list[uploads.Spool]:
    """Every Spool the server opens, with the most it ever held in memory."""
    opened: list[uploads.Spool] = []

    class RecordingSpool(uploads.Spool):
        most_buffered = 0

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            opened.append(self)

        def _pump(self) -> None:
            self.most_buffered = max(self.most_buffered, self._buffered)
            super()._pump()

    monkeypatch.setattr(uploads, "Spool", RecordingSpool)
    return opened


@pytest_twisted.ensureDeferred
async def test_an_upload_is_probed_stored_and_served_with_range(show, clip, spools):
    """A video becomes a record with ffprobe's duration and container; its file answers Range."""
    r = await post(show, "/api/videos?filename=clip.mp4", clip, headers={"Content-Type": "video/mp4"})
    assert r.status == 201, r.raw
    video = r.json["video"]
    assert video["title"] == "clip" and video["format"] == "mp4" and video["content_type"] == "video/mp4"
    assert video["duration"] == pytest.approx(2.0, abs=0.1) and video["size"] == clip.stat().st_size
    assert video["url"] == f"/api/videos/{video['id']}/file"
    assert len(spools) == 1 and incoming(show) == []
    stored = show.runtime.videos.videos_dir / video["id"]
    assert stored.read_bytes() == clip.read_bytes()

    full = await show.world.client.get(video["url"])
    assert full.status == 200 and full.raw == clip.read_bytes()
    assert full.header("Content-Type") == "video/mp4" and "immutable" in full.header("Cache-Control")
    part = await show.world.client.get(video["url"], headers={"Range": "bytes=100-199"})
    assert part.status == 206 and part.raw == clip.read_bytes()[100:200]
    assert part.header("Content-Range") == f"bytes 100-199/{video['size']}"

    r = await show.world.client.get("/api/videos", token=show.world.tokens["bob"])
    assert [v["id"] for v in r.json["videos"]] == [video["id"]] and r.json["videos"][0]["media_ids"] == []
    r = await show.world.client.patch(f"/api/videos/{video['id']}", {"title": "Intro"}, token=show.world.tokens["admin"])
    assert r.json["video"]["title"] == "Intro"
    r = await show.world.client.delete(f"/api/videos/{video['id']}", token=show.world.tokens["admin"])
    assert r.status == 200 and not stored.exists()
    assert (await show.world.client.get(video["url"])).status == 404


@pytest_twisted.ensureDeferred
async def test_upload_items_play_from_the_served_file(show, clip):
    """An event on the video gives the room an upload item whose playback is the served file."""
    r = await post(show, "/api/videos?title=Intro", clip)
    video = r.json["video"]
    event = await show.event(media=video["id"])
    r = await show.world.client.get(f"/api/rooms/wall/media/{event['media_id']}/playback?modes=direct",
                                    token=show.world.tokens["alice"])
    info = r.json["infos"][0]
    assert (info["mode"], info["url"], info["format"]) == ("direct", video["url"], "mp4")
    assert info["metadata"]["duration"] == video["duration"]


def mp4_with_padding(clip: Path, out: Path, padding: int) -> Path:
    """``clip`` (moov first) followed by one MP4 'free' box of ``padding`` bytes: still a valid MP4."""
    import subprocess

    fast = out.with_suffix(".fast.mp4")
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(clip), "-c", "copy", "-movflags", "+faststart", "-y",
                    str(fast)], check=True, timeout=120)
    with open(out, "wb") as f:
        f.write(fast.read_bytes())
        f.write(struct.pack(">I", padding + 8) + b"free")
        block = b"\0" * MiB
        for start in range(0, padding, MiB):
            f.write(block[: min(MiB, padding - start)])
    return out


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(field)


@pytest_twisted.ensureDeferred
async def test_a_20_mib_upload_streams_to_disk(show, clip, spools, tmp_path):
    """20 MiB arrive through the spool file, at most a few MiB in memory at a time; the process's
    peak RSS does not grow by the file's size."""
    big = mp4_with_padding(clip, tmp_path / "big.mp4", 20 * MiB)
    try:
        Path("/proc/self/clear_refs").write_text("5")  # peak RSS := current RSS
        baseline = _rss_kib("VmRSS")
    except OSError:
        baseline = None
    r = await post(show, "/api/videos?filename=big.mp4", big)
    assert r.status == 201, r.raw
    assert r.json["video"]["size"] == big.stat().st_size and r.json["video"]["duration"] == pytest.approx(2.0, abs=0.1)
    assert len(spools) == 1 and spools[0].size == big.stat().st_size
    assert spools[0].most_buffered <= 2 * uploads.FLUSH_BYTES + 256 * 1024
    if baseline is not None:
        assert _rss_kib("VmHWM") - baseline < 16 * 1024
    assert incoming(show) == []


@pytest_twisted.ensureDeferred
async def test_not_a_video_is_refused_and_removed(show, spools):
    """Random bytes or an image are 400; nothing stays on disk."""
    for body in (b"\x00garbage" * 1000, PNG_1x1):
        r = await post(show, "/api/videos?filename=x.mp4", body)
        assert (r.status, r.error()["code"]) == (400, "bad_request"), r.raw
    r = await post(show, "/api/videos", b"")
    assert r.status == 400
    assert incoming(show) == [] and [p.name for p in show.runtime.videos.videos_dir.iterdir()] == [".incoming"]


@pytest_twisted.ensureDeferred
async def test_uploads_need_a_site_admin_and_a_valid_token_before_any_byte_is_kept(show, spools):
    """No or a bad token: 401; a user who is no site admin: 403; a Content-Type that is not video:
    400; all without a spool file ever opened."""
    r = await post(show, "/api/videos", b"x" * 5000, token=None)
    assert (r.status, r.error()["code"]) == (401, "unauthorized")
    r = await post(show, "/api/videos", b"x" * 5000, token=None, headers={"Authorization": "Bearer garbage"})
    assert r.status == 401
    assert spools == []
    r = await post(show, "/api/videos", b"x" * 5000, token="alice")
    assert (r.status, r.error()["code"]) == (403, "forbidden")
    r = await post(show, "/api/videos", b"x" * 5000, headers={"Content-Type": "text/plain"})
    assert (r.status, r.error()["field"]) == (400, "content_type")
    assert spools == [] and incoming(show) == []


def _limit(show, path: bytes, limit: int) -> None:
    policy = show.runtime.uploads
    for key, route in list(policy.routes.items()):
        if route.path == path:
            policy.routes[key] = attrs.evolve(route, limit=limit)


@implementer(IBodyProducer)
class _Chunked:
    """A body of unknown length (sent chunked)."""

    length = UNKNOWN_LENGTH

    def __init__(self, data: bytes) -> None:
        self.data = data

    def startProducing(self, consumer: Any) -> Deferred[None]:
        for i in range(0, len(self.data), 65536):
            consumer.write(self.data[i:i + 65536])
        return Deferred.fromCoroutine(self._done())

    async def _done(self) -> None:
        return None

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        pass


@pytest_twisted.ensureDeferred
async def test_uploads_over_the_limit_are_413(show, spools):
    """Over [displays] max_video_bytes: 413 when the length is announced, and when it is not
    (chunked) as soon as the limit is passed; the partial file is removed."""
    _limit(show, b"/api/videos", MiB)
    r = await post(show, "/api/videos", b"x" * (MiB + 1))
    assert (r.status, r.error()["code"]) == (413, "payload_too_large")
    assert spools == []
    body = _Chunked(b"x" * (3 * MiB))
    r = await post(show, "/api/videos", body)
    assert (r.status, r.error()["code"]) == (413, "payload_too_large")
    assert len(spools) == 1
    await spools[0].released
    assert incoming(show) == []


@pytest_twisted.ensureDeferred
async def test_a_broken_upload_leaves_no_file(show, spools):
    """The client goes away mid-body: the spool file is removed."""
    from twisted.internet import reactor
    from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

    class HalfUpload(Protocol):
        def connectionMade(self) -> None:
            self.transport.write(
                b"POST /api/videos HTTP/1.1\r\nHost: x\r\nContent-Length: 10485760\r\n"
                b"Authorization: Bearer " + show.world.tokens["admin"].encode() + b"\r\n\r\n")
            self.transport.write(b"y" * (3 * MiB))
            reactor.callLater(0.05, self.transport.loseConnection)

    port = show.world.served.port.getHost().port
    await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), HalfUpload())
    while not spools:  # the spool is made when the headers arrive
        await _tick()
    await spools[0].released
    assert incoming(show) == []


async def _tick() -> None:
    from twisted.internet import reactor
    from twisted.internet.task import deferLater

    await deferLater(reactor, 0.01, lambda: None)


# -- the idle image -------------------------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_the_idle_image_defaults_and_can_be_replaced(show, spools):
    """A black SVG until an image is uploaded; then that image, with its sniffed type."""
    r = await show.world.client.get("/admin/idle-image")
    assert r.status == 200 and r.header("Content-Type") == "image/svg+xml" and b"<svg" in r.raw
    r = await post(show, "/admin/idle-image", PNG_1x1, method="PUT", headers={"Content-Type": "image/png"})
    assert r.status == 200, r.raw
    assert r.json == {"content_type": "image/png", "size": len(PNG_1x1), "updated_at": show.world.clock()}
    r = await show.world.client.get("/admin/idle-image")
    assert (r.status, r.raw, r.header("Content-Type")) == (200, PNG_1x1, "image/png")
    assert r.header("Cache-Control") == "no-cache"
    r = await post(show, "/admin/idle-image", b"GIF89a" + b"\0" * 100, method="PUT", token="alice")
    assert r.status == 403
    r = await post(show, "/admin/idle-image", b"hello", method="PUT", headers={"Content-Type": "text/plain"})
    assert (r.status, r.error()["field"]) == (400, "content_type")
    r = await post(show, "/admin/idle-image", b"<svg/>" * 10, method="PUT", headers={"Content-Type": "image/svg+xml"})
    assert r.status == 400  # not a raster image
    r = await show.world.client.get("/admin/idle-image")
    assert r.raw == PNG_1x1
    for spool in spools:
        await spool.released
    assert incoming(show) == []


@pytest_twisted.ensureDeferred
async def test_the_idle_image_survives_a_restart_of_the_runtime(show):
    """Its record is on disk: a new runtime on the same data directory serves it."""
    r = await post(show, "/admin/idle-image", PNG_1x1, method="PUT")
    assert r.status == 200
    from synctv.displays.videos import VideoActions

    again = VideoActions(store=show.world.store, clock=show.world.clock, data_dir=show.runtime.videos.data_dir)
    await again.prepare()
    assert again.idle_image() is not None and again.idle_image().content_type == "image/png"
