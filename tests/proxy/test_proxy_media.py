"""HLS through the proxy (ffprobe reads a nested playlist, every URI proxied), subtitles with their
own headers, what PlaybackInfo offers, the admin cache API, and the real server process (file
cache surviving a restart, `synctv cache stats|purge`)."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.utils import getProcessOutputAndValue

from .upstreams import pattern

needs_ffmpeg = pytest.mark.tools("ffmpeg", "ffprobe")


def make_hls(directory: Path) -> None:
    """A two-second HLS stream: master.m3u8 -> v/index.m3u8 -> v/segNNN.ts (relative URIs)."""
    (directory / "v").mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=duration=2:size=160x120:rate=10",
         "-c:v", "libx264", "-g", "5", "-f", "hls", "-hls_time", "0.5", "-hls_playlist_type", "vod",
         "-hls_segment_filename", str(directory / "v" / "seg%03d.ts"), str(directory / "v" / "index.m3u8")],
        check=True, timeout=60)
    (directory / "master.m3u8").write_text(
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=200000,RESOLUTION=160x120\nv/index.m3u8\n")


@needs_ffmpeg
@pytest_twisted.ensureDeferred
async def test_a_proxied_m3u8_plays_end_to_end(make_world, nginx):
    """ffprobe reads the proxied master playlist: the variant playlist and every segment come
    through the proxy (rewritten, signed, indexed routes), and it decodes every frame."""
    make_hls(nginx.root / "hls")
    segments = sorted(p.name for p in (nginx.root / "hls" / "v").glob("seg*.ts"))
    world = await make_world()
    room, media = await world.item(nginx.url("hls/master.m3u8"))
    url = await world.proxy_url(room, media, query="modes=proxy&formats=hls")
    served: list[tuple[str, str]] = []
    serve = world.proxy.serve

    async def recording(request: Any, room: str, media: str, kind: str = "item", index: str = "0") -> None:
        served.append((kind, index))
        await serve(request, room, media, kind, index)

    world.proxy.serve = recording
    master = await world.fetch(url)
    assert master.header("Content-Type") == "application/vnd.apple.mpegurl"
    assert b"/proxy/variant/0.m3u8?" in master.raw and b"v/index.m3u8" not in master.raw
    out, err, code = await getProcessOutputAndValue(
        "ffprobe", ["-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                    "stream=nb_read_frames", "-of", "json", world.served.base + url])
    assert code == 0, err
    assert int(json.loads(out)["streams"][0]["nb_read_frames"]) == 20
    assert ("variant", "0.m3u8") in served
    assert {index for kind, index in served if kind == "segment"} == {f"{i}.ts" for i in range(len(segments))}


@pytest_twisted.ensureDeferred
async def test_subtitles_are_proxied_with_their_own_headers(make_world, nginx):
    """A subtitle behind a Referer check plays through its proxied URL, fetched with the subtitle's
    headers; the item's own URL needs none."""
    nginx.write("private/en.vtt", b"WEBVTT\n\n00:00.000 --> 00:01.000\nhello\n")
    nginx.write("open.mp4", pattern(300))
    world = await make_world()
    subtitle = {"name": "en", "url": nginx.url("private/en.vtt"), "format": "vtt",
                "headers": {"Referer": "https://allowed.example/"}}
    room, media = await world.item(nginx.url("open.mp4"), subtitles=[subtitle])
    r = await world.client.get(f"/api/rooms/{room['id']}/media/{media['id']}/playback?headers=0",
                               token=world.tokens["alice"])
    direct, info = r.json["infos"]
    assert direct["mode"] == "direct" and direct["subtitles"] == []  # it would need the Referer
    assert info["mode"] == "proxy" and info["expires_at"] is not None
    [sub] = info["subtitles"]
    assert sub["headers"] == {} and "/proxy/subtitle/0.vtt?" in sub["url"]
    got = await world.fetch(sub["url"])
    assert (got.status, got.raw) == (200, b"WEBVTT\n\n00:00.000 --> 00:01.000\nhello\n")


@pytest_twisted.ensureDeferred
async def test_playback_info_offers_direct_then_proxy_as_the_profile_allows(make_world, nginx):
    """No profile: direct then proxy. A client that cannot send the needed headers: proxy only.
    modes=direct: direct only. The proxy URL is signed for the asking user."""
    world = await make_world()
    room, plain = await world.item(nginx.url("a.mp4"))
    _, guarded = await world.item(nginx.url("b.mp4"), headers={"Referer": "https://allowed.example/"})
    base = f"/api/rooms/{room['id']}/media"

    async def modes(media: dict[str, Any], query: str = "") -> list[str]:
        r = await world.client.get(f"{base}/{media['id']}/playback?{query}", token=world.tokens["alice"])
        return [i["mode"] for i in r.json["infos"]]

    assert await modes(plain) == ["direct", "proxy"]
    assert await modes(guarded, "headers=0") == ["proxy"]
    assert await modes(guarded, "headers=1") == ["direct", "proxy"]
    assert await modes(plain, "modes=direct") == ["direct"]
    assert await modes(plain, "modes=proxy&formats=hls") == []
    url = await world.proxy_url(room, plain)
    assert f"u={world.users['alice'].id}" in url


@pytest_twisted.ensureDeferred
async def test_admin_cache_stats_and_purge(make_world, nginx):
    """Site admins read the statistics and purge; others get 403; after a purge a read is a MISS."""
    nginx.write("stats.mp4", pattern(2000))
    world = await make_world()
    room, media = await world.item(nginx.url("stats.mp4"))
    url = await world.proxy_url(room, media)
    await world.fetch(url)
    assert (await world.fetch(url)).header("X-Cache") == "HIT"
    assert (await world.client.get("/api/admin/cache", token=world.tokens["alice"])).status == 403
    r = await world.client.get("/api/admin/cache", token=world.tokens["root"])
    stats = r.json["cache"]
    assert (stats["backend"], stats["entries"], stats["answers"]["hit"]) == ("memory", 1, 1)
    assert stats["bytes"] == 2000 and stats["upstream"]["requests"] == 1
    r = await world.client.delete("/api/admin/cache", token=world.tokens["root"])
    assert r.json["purged"] is True and r.json["cache"]["entries"] == 0
    assert (await world.fetch(url)).header("X-Cache") == "MISS"


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()


def test_real_server_file_cache_survives_a_restart_and_the_cli_reports_it(start_server, cli, nginx, tmp_path):
    """twistd with [proxy] cache = "file": a read is MISS, then HIT; after SIGTERM and a new start
    on the same data directory it is still HIT; `synctv cache stats` and `purge` work."""
    data = pattern(200_000, seed=9)
    nginx.write("real.mp4", data)
    config = tmp_path / "synctv.toml"
    config.write_text('[proxy]\nslice_size = 65536\ncache = "file"\nallow_networks = ["127.0.0.0/8"]\n')
    server = start_server(extra=("--config", str(config)))
    password = (server.data / "root-password").read_text().strip()
    token = server.request("POST", "/api/auth/login", {"name": "root", "password": password})[1]["token"]
    room = server.request("POST", "/api/rooms", {"name": "cinema"}, token)[1]["room"]
    media = server.request("POST", f"/api/rooms/{room['id']}/media", {"url": nginx.url("real.mp4")}, token)[1]
    status, result = server.request("GET", f"/api/rooms/{room['id']}/media/{media['media']['id']}/playback"
                                            "?modes=proxy", None, token)
    proxy_url = server.url + result["infos"][0]["url"]
    rng = {"Range": "bytes=1000-150000"}
    assert _get(proxy_url, rng)[1]["x-cache"] == "MISS"
    status, headers, body = _get(proxy_url, rng)
    assert (status, headers["x-cache"], body) == (206, "HIT", data[1000:150001])
    server.kill(15)

    again = start_server(data=server.data, extra=("--config", str(config)))
    again_url = proxy_url.replace(server.url, again.url)
    status, headers, body = _get(again_url, rng)
    assert (status, headers["x-cache"], body) == (206, "HIT", data[1000:150001])
    cli(again, "login", "root", f"--password={password}")  # tokens are stored per server URL (a new port)
    stats = json.loads(cli(again, "--json", "cache", "stats").stdout)["cache"]
    assert stats["backend"] == "file" and stats["entries"] == 3 and stats["hits"] >= 3
    assert "file cache: 3 slices" in cli(again, "cache", "stats").stdout
    purged = json.loads(cli(again, "--json", "cache", "purge").stdout)
    assert purged["purged"] is True and purged["cache"]["entries"] == 0
