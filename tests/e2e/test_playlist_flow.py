"""The playlist plays by itself, as an operator checks it (issue 11, part 7): the CLI sets up
rooms, media and playback; a WebSocket keeps a room active; HTTP reads of the URLs the server
hands out. On SQLite and on PostgreSQL; then two nodes on PostgreSQL advance exactly once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
import treq
from twisted.internet.task import deferLater

from tests.e2e.harness import User, ranged, until

pytestmark = [pytest.mark.integration, pytest.mark.tools("ffmpeg")]


async def root_user(server: Any, home: Path) -> User:
    user = User(home, server)
    await user.login("root", (server.data / "root-password").read_text().strip())
    return user


@pytest_twisted.ensureDeferred
async def test_an_active_room_probes_plays_advances_once_and_ends(start_node, database, media_url, clips,
                                                                   tmp_path):
    """Room "show" has a WebSocket; room "quiet" has none. Items added without durations get
    them in "show" only ("quiet" keeps its metadata byte for byte). Direct and proxy URLs serve
    the file's bytes for a Range. Played, the first item ends and the second starts once (one
    version step), and after the last the room is stopped and ended at its end ("next")."""
    server = start_node("node", database)
    root = await root_user(server, tmp_path / "home")
    show = (await root.cli("room", "create", "show"))["id"]
    quiet = (await root.cli("room", "create", "quiet"))["id"]
    one = (await root.cli("media", "add", show, "--url", f"{media_url}/one.mp4", "--title", "one"))["id"]
    two = (await root.cli("media", "add", show, "--url", f"{media_url}/two.mp4", "--title", "two"))["id"]
    await root.cli("media", "add", quiet, "--url", f"{media_url}/one.mp4")
    quiet_before = await root.media(quiet)

    watcher = await root.watch(show)
    try:
        items = await until(lambda: _probed(root, show), "the active room's items get durations")
        assert items[one]["duration"] == pytest.approx(1.2, abs=0.1)
        assert items[two]["duration"] == pytest.approx(1.0, abs=0.1)
        assert await root.media(quiet) == quiet_before  # nobody there: left alone

        result = await root.get(f"/api/rooms/{show}/media/{one}/playback")
        urls = {info["mode"]: info["url"] for info in result["infos"]}
        assert set(urls) >= {"direct", "proxy"}
        expected = (clips / "one.mp4").read_bytes()[100:1100]
        for mode in ("direct", "proxy"):
            url = urls[mode] if "://" in urls[mode] else server.url + urls[mode]
            assert await ranged(url, 100, 1099) == (206, expected), mode

        await root.cli("room", "set", show, "--playlist", "next")
        played = await root.cli("playback", "set", show, "--media", one, "--play")
        start = played["version"]  # the PlaybackState after the last step (play)
        ended = await until(lambda: watcher.saw(lambda s: s["ended"]), "the room ends after its last item")
        versions = [s["version"] for s in watcher.states]
        assert versions == sorted(set(versions))  # each state seen once, in order
        advance = watcher.saw(lambda s: s["media_id"] == two and s["playing"])
        assert [s["version"] for s in advance] == [start + 1] and advance[0]["position"] == 0.0
        assert ended == [{**ended[0], "media_id": two, "playing": False, "ended": True, "version": start + 2}]
        assert ended[0]["position"] == pytest.approx(items[two]["duration"])
        assert (await root.get(f"/api/rooms/{show}/playback-state"))["version"] == start + 2
    finally:
        await watcher.client.close()


async def _probed(user: User, room: str) -> Any:
    items = await user.media(room)
    return items if all(item["duration"] is not None for item in items.values()) else None


@pytest.mark.postgres
@pytest_twisted.ensureDeferred
async def test_two_nodes_with_viewers_advance_exactly_once(start_node, fresh_postgres_database, media_url,
                                                           tmp_path):
    """Nodes A and B on one PostgreSQL database, a WebSocket on each in the room, so both
    schedulers plan the same end: one version step, seen once by every client, on both nodes."""
    db = fresh_postgres_database().dsn
    a = start_node("a", db)
    b = start_node("b", db)
    root = await root_user(a, tmp_path / "home")
    room = (await root.cli("room", "create", "both"))["id"]
    first = (await root.post(f"/api/rooms/{room}/media", {"url": f"{media_url}/one.mp4", "duration": 1.0}))
    second = (await root.post(f"/api/rooms/{room}/media", {"url": f"{media_url}/missing.mp4"}))
    first_id, second_id = first["media"]["id"], second["media"]["id"]
    on_a, on_b = await root.watch(room, a), await root.watch(room, b)
    try:
        played = await root.cli("playback", "set", room, "--media", first_id, "--play")
        start = played["version"]  # the PlaybackState after the last step (play)
        for watcher in (on_a, on_b):
            await until(lambda w=watcher: w.saw(lambda s: s["media_id"] == second_id), "both clients see the advance")
        from twisted.internet import reactor

        await deferLater(reactor, 1.5, lambda: None)  # several ticks of both nodes after the advance
        state = await root.get(f"/api/rooms/{room}/playback-state", server=b)
        assert (state["media_id"], state["version"], state["playing"]) == (second_id, start + 1, True)
        for watcher in (on_a, on_b):
            versions = [s["version"] for s in watcher.states]
            assert versions == sorted(set(versions)) and versions[-1] == start + 1
            assert [s["version"] for s in watcher.saw(lambda s: s["media_id"] == second_id)] == [start + 1]
        probed = (await root.media(room))[second_id]
        assert probed["duration"] is None and probed["probe_error"] == "the upstream answered HTTP 404"
    finally:
        await on_a.client.close()
        await on_b.client.close()


@pytest_twisted.ensureDeferred
async def test_an_hls_item_is_probed_and_its_manifest_and_segments_read_through_the_proxy(
        start_node, media_url, clips, tmp_path):
    """A VOD HLS playlist added without a duration gets the sum of its EXTINF once the room is
    active; the proxy's manifest names signed segment URLs, and a segment read through one is
    the segment's bytes (a Range of it too)."""
    import subprocess

    hls = clips / "hls"
    if not (hls / "index.m3u8").exists():
        hls.mkdir(exist_ok=True)
        subprocess.run(["ffmpeg", "-v", "error", "-i", str(clips / "one.mp4"), "-c", "copy", "-f", "hls",
                        "-hls_time", "0.5", "-hls_playlist_type", "vod", str(hls / "index.m3u8")], check=True)
    expected = sum(float(line.split(":", 1)[1].rstrip(",")) for line in (hls / "index.m3u8").read_text().splitlines()
                   if line.startswith("#EXTINF:"))
    server = start_node("node")
    root = await root_user(server, tmp_path / "home")
    room = (await root.cli("room", "create", "hls"))["id"]
    item = (await root.cli("media", "add", room, "--url", f"{media_url}/hls/index.m3u8"))["id"]
    watcher = await root.watch(room)
    try:
        probed = await until(lambda: _probed(root, room), "the playlist gets a duration")
        assert probed[item]["duration"] == pytest.approx(expected, abs=0.001)
        result = await root.get(f"/api/rooms/{room}/media/{item}/playback")
        proxy = next(info for info in result["infos"] if info["mode"] == "proxy")
        url = proxy["url"] if "://" in proxy["url"] else server.url + proxy["url"]
        response = await treq.get(url)
        manifest = (await response.content()).decode()
        assert response.code == 200 and manifest.startswith("#EXTM3U"), manifest[:200]
        segments = [line for line in manifest.splitlines() if line and not line.startswith("#")]
        assert segments and all(server.url.split("//", 1)[1] in s or s.startswith("/") for s in segments)
        first = segments[0] if "://" in segments[0] else server.url + segments[0]
        data = (hls / "index0.ts").read_bytes()
        got = await treq.get(first)
        assert got.code == 200 and await got.content() == data
        assert await ranged(first, 188, 188 * 3 - 1) == (206, data[188:188 * 3])
    finally:
        await watcher.client.close()
