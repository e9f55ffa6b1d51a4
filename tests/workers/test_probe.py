"""The duration probe (synctv.workers.probe) end to end in one process: real files made by ffmpeg,
served over loopback HTTP, read through the proxy's address-checked UpstreamClient, recorded on
a real store by the probe step of the node the room is active on."""

from __future__ import annotations

import ipaddress
import subprocess
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.defer import DeferredList
from twisted.web.server import Site
from twisted.web.static import File

from synctv.core.clock import ManualClock
from synctv.proxy.upstream import UpstreamClient
from synctv.workers.probe import HEAD_BYTES, MediaReader, ProbeStep
from tests.api.api_support import make_actions
from tests.store.conftest import Builders

pytestmark = pytest.mark.tools("ffmpeg")
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)
SRC = ["-f", "lavfi", "-i", "testsrc=size=160x120:rate=25", "-f", "lavfi", "-i", "sine=frequency=440",
       "-t", "1.5", "-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"]


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("media")
    for name, extra in (("clip.mp4", []), ("clip.flv", []), ("clip.mkv", []), ("clip.ts", []),
                        ("hls/index.m3u8", ["-f", "hls", "-hls_time", "0.5", "-hls_playlist_type", "vod"])):
        (folder / name).parent.mkdir(exist_ok=True)
        subprocess.run(["ffmpeg", "-v", "error", *SRC, *extra, str(folder / name)], check=True)
    for name in ("long.mkv", "long.ts"):  # 20 s, several times the probe's 64 KiB head
        subprocess.run(["ffmpeg", "-v", "error", *SRC[:8], "-t", "20", "-pix_fmt", "yuv420p", "-c:v", "libx264",
                        "-preset", "ultrafast", "-c:a", "aac", str(folder / name)], check=True)
        assert (folder / name).stat().st_size > 4 * HEAD_BYTES
    (folder / "master.m3u8").write_text("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=100000\nhls/index.m3u8\n")
    return folder


@pytest.fixture
def served(media_dir: Path):
    from twisted.internet import reactor

    port = reactor.listenTCP(0, Site(File(str(media_dir))), interface="127.0.0.1")
    yield f"http://127.0.0.1:{port.getHost().port}"
    pytest_twisted.blockon(port.stopListening())


async def probe_all(store: Any, make: Builders, base: str, urls: dict[str, str], allow: Any = LOOPBACK,
                    ) -> tuple[dict[str, Any], Any, ProbeStep]:
    from twisted.internet import reactor

    actions = make_actions(store, ManualClock())
    room, quiet = await make.room(), await make.room()
    ids = {name: (await make.media(room, url=url if "://" in url else base + url, duration=None, headers={})).id
           for name, url in urls.items()}
    untouched = await make.media(quiet, url=base + "/clip.mp4", duration=None, headers={})
    client = UpstreamClient(reactor, allow_networks=allow)
    step = ProbeStep(actions=actions, reader=MediaReader(client, reactor), node="n1", reactor=reactor,
                     timeout_s=20, max_concurrent=8)
    try:
        await step.run([room.id])
        await DeferredList(list(step.in_flight))
    finally:
        await client.close()
    found = {name: await store.get_media(room.id, media_id) for name, media_id in ids.items()}
    return found, await store.get_media(quiet.id, untouched.id), step


@pytest_twisted.ensureDeferred
async def test_active_rooms_items_get_their_durations(store, make: Builders, served: str):
    """MP4 (moov after mdat), FLV, a VOD HLS playlist and its master, and (through ffprobe) MKV
    get ~1.5 s; a 404 leaves the reason; an item of a room with no connection stays null."""
    found, untouched, step = await probe_all(store, make, served, {
        "mp4": "/clip.mp4", "flv": "/clip.flv", "mkv": "/clip.mkv", "hls": "/hls/index.m3u8",
        "master": "/master.m3u8", "missing": "/nope.mp4"})
    for name in ("mp4", "flv", "mkv", "hls", "master"):
        assert found[name].duration == pytest.approx(1.5, abs=0.1), (name, found[name].probe_error)
        assert found[name].probe_error is None
    assert found["missing"].duration is None and found["missing"].probe_error == "the upstream answered HTTP 404"
    assert untouched.duration is None and untouched.probe_error is None
    assert (step.probed, step.failed) == (5, 1)


@pytest_twisted.ensureDeferred
async def test_the_address_check_of_the_proxy_applies(store, make: Builders, served: str):
    """Without [proxy] allow_networks admitting loopback the probe may not fetch it, and says so."""
    found, _, _ = await probe_all(store, make, served, {"mp4": "/clip.mp4"}, allow=())
    assert found["mp4"].duration is None
    assert found["mp4"].probe_error and "127.0.0.1" in found["mp4"].probe_error


@pytest_twisted.ensureDeferred
async def test_ffprobe_on_a_head_is_trusted_only_where_the_header_states_the_duration(
        store, make: Builders, served: str):
    """ffprobe sees the probe's first 64 KiB. A long Matroska file states its 20 s in its header; a
    long MPEG-TS does not, and ffprobe would measure the head (a second or two) and auto-advance
    would cut the item short: the probe says why instead. A TS file shorter than the head is
    whole, so its measure is right."""
    found, _, _ = await probe_all(store, make, served, {"long_mkv": "/long.mkv", "long_ts": "/long.ts",
                                                        "short_ts": "/clip.ts"})
    assert found["long_mkv"].duration == pytest.approx(20, abs=0.2), found["long_mkv"].probe_error
    assert found["long_ts"].duration is None
    assert "mpegts" in found["long_ts"].probe_error and "64 KiB" in found["long_ts"].probe_error
    assert found["short_ts"].duration == pytest.approx(1.5, abs=0.1), found["short_ts"].probe_error
