"""docs/providers.md's walkthrough with the real ``synctv`` command against a real server process and
the fake upstreams in a process of their own: link each account kind, browse, add an item and a
season, read ``media info``, play every URL with curl and ffprobe through the proxy, and watch a
Bilibili part's danmaku arrive over the WebSocket (``watch --danmaku``)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.integration import conftest as integration
from tests.integration.processes import child_env
from tests.providers.fakes import FakeUpstreams

pytestmark = [pytest.mark.integration,
              pytest.mark.tools("ffmpeg", "ffprobe", "curl")]
start_server = integration.start_server
cli = integration.cli


def _json(done: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(done.stdout)


def _curl(url: str, *args: str) -> bytes:
    return subprocess.run(["curl", "-sf", *args, url], capture_output=True, check=True, timeout=60).stdout


def test_the_walkthrough_from_the_command_line(tmp_path: Path, start_server: Any, cli: Any) -> None:
    with FakeUpstreams(tmp_path / "upstreams") as fakes:
        config = tmp_path / "synctv.toml"
        config.write_text(f"""
[proxy]
allow_networks = ["127.0.0.0/8"]
[providers]
bilibili_api = "{fakes['bilibili']}"
bilibili_live_api = "{fakes['bilibili']}"
""")
        server = start_server(extra=("--config", str(config)))
        key = server.data / "provider-key"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        cli(server, "login", "root", "--password", (server.data / "root-password").read_text().strip())
        room = cli(server, "room", "create", "cinema").stdout.strip()

        alist = cli(server, "account", "add", "alist", "--server", fakes["alist"], "--username", "alice",
                    "--password", fakes["alist_password"]).stdout.split()[0]
        refused = cli(server, "account", "add", "alist", "--server", fakes["alist"], "--username", "alice",
                      "--password", "wrong", check=False)
        assert refused.returncode == 1 and "password is incorrect" in refused.stderr
        listing = cli(server, "account", "browse", alist, "/movies").stdout
        assert "film.mp4" in listing and "/movies/extras" in listing
        film = cli(server, "media", "add", room, "--provider", "alist", "--account", alist,
                   "--item", "/movies/film.mp4").stdout.strip()

        emby = _json(cli(server, "account", "add", "emby", "--server", fakes["emby"], "--username", "alice",
                         "--password", fakes["mb_password"], "--json"))["id"]
        top = cli(server, "account", "browse", emby).stdout
        assert "Movies" in top and "Shows" in top
        episodes = cli(server, "media", "import", room, "--provider", "emby", "--account", emby,
                       "--item", fakes["emby_ids"]["season1"]).stdout.splitlines()
        assert [line.split(None, 1)[1] for line in episodes] == ["A Show S01E01 Pilot", "A Show S01E02 Second"]
        jellyfin = cli(server, "account", "add", "jellyfin", "--server", fakes["jellyfin"], "--username", "alice",
                       "--password", fakes["mb_password"]).stdout.split()[0]
        movie = cli(server, "media", "add", room, "--provider", "jellyfin", "--account", jellyfin,
                    "--item", fakes["jellyfin_ids"]["film"]).stdout.strip()
        part = cli(server, "media", "add", room, "--provider", "bilibili", "--url",
                   "https://www.bilibili.com/video/BV1y7411Q7Eq").stdout.strip()
        listed = _json(cli(server, "account", "list", "--json"))["accounts"]
        assert sorted(a["kind"] for a in listed) == ["alist", "emby", "jellyfin"]

        media = tmp_path / "upstreams" / "video.mp4"
        info = _json(cli(server, "media", "info", room, film, "--modes", "proxy", "--json"))
        [proxy] = info["infos"]
        assert proxy["url"].startswith(server.url + "/api/rooms/")
        assert _curl(proxy["url"], "-r", "1000-1999") == media.read_bytes()[1000:2000]
        plain = cli(server, "media", "info", room, film).stdout
        assert "proxy  mp4" in plain and "subtitle film.srt (vtt)" in plain
        subtitle_url = next(line.split(": ", 1)[1] for line in plain.splitlines() if "subtitle" in line)
        assert _curl(subtitle_url).startswith(b"WEBVTT")

        for item in (movie, episodes[0].split()[0]):
            browser = _json(cli(server, "media", "info", room, item, "--modes", "proxy,hls", "--formats", "mp4,hls",
                                "--headers", "0", "--json"))
            [hls] = browser["infos"]
            assert hls["mode"] == "hls"
            probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_type", "-of", "json",
                                    hls["url"]], capture_output=True, text=True, timeout=120)
            assert probe.returncode == 0, probe.stderr
            assert {s["codec_type"] for s in json.loads(probe.stdout)["streams"]} >= {"video"}
        bili = _json(cli(server, "media", "info", room, part, "--modes", "proxy", "--json"))["infos"][0]
        assert _curl(bili["url"], "-r", "0-99") == media.read_bytes()[:100]

        watcher = subprocess.Popen([sys.executable, "-m", "synctv.cli", "--server", server.url, "watch", room,
                                    "--danmaku", "--json"], stdout=subprocess.PIPE, text=True,
                                   env={**child_env(), "XDG_CONFIG_HOME": str(tmp_path / "config")})
        guard = threading.Timer(90, watcher.kill)  # a watcher that never prints fails the test, not hangs it
        guard.start()
        try:
            assert watcher.stdout is not None
            first = json.loads(watcher.stdout.readline())  # the state: the watcher is connected
            assert "version" in first
            cli(server, "playback", "set", room, "--media", part, "--play")
            seen = []
            while len(seen) < 4:
                line = json.loads(watcher.stdout.readline())
                if "danmaku" in line:
                    seen.append(line["danmaku"]["text"])
            assert seen == ["first!", "at 0.6", "<b>& one</b>", "late one"]
        finally:
            guard.cancel()
            watcher.terminate()
            watcher.wait(timeout=30)

        cli(server, "account", "remove", alist)
        gone = cli(server, "media", "info", room, film, check=False)
        assert gone.returncode == 5 and "has been removed" in gone.stderr

        log = server.log.read_text()
        for secret in (fakes["alist_password"], fakes["mb_password"]):
            assert secret not in log
        assert "Traceback" not in log
        assert os.path.getsize(key) > 40
