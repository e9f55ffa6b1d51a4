"""Live streams end to end: the real twistd process, a real ffmpeg publisher, ffprobe, and hls.js
and mpegts.js in headless Chromium; then the live proxy against a local HTTP-FLV upstream."""

from __future__ import annotations

import http.client
import http.server
import json
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.processes import ServerProcess
from tests.tools import have_tools

pytestmark = [
    pytest.mark.integration,
    pytest.mark.tools("ffmpeg", "ffprobe"),
]
SOURCE = ["-f", "lavfi", "-i", "testsrc=size=320x240:rate=30", "-f", "lavfi", "-i", "sine=frequency=440"]
ENCODE = ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "veryfast", "-tune", "zerolatency", "-g", "30",
          "-c:a", "aac"]


def wait_for(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Poll an outside observable (another process's state) until it holds; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def publisher(url: str, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["ffmpeg", "-nostdin", "-v", "error", "-re", *SOURCE, *ENCODE, *extra, "-f", "flv", url],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # ffmpeg unpublishes and closes cleanly
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def probe(target: str, *args: str) -> dict[str, Any]:
    done = subprocess.run(["ffprobe", "-v", "error", "-rw_timeout", "15000000", *args, "-show_streams",
                           "-show_format", "-of", "json", target], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def codecs(info: dict[str, Any]) -> dict[str, str]:
    return {s["codec_type"]: s["codec_name"] for s in info["streams"] if s["codec_type"] in ("video", "audio")}


def login(server: ServerProcess, cli: Any) -> str:
    password = (server.data / "root-password").read_text().strip()
    cli(server, "login", "root", "--password", password)
    status, body = server.request("POST", "/api/auth/login", {"name": "root", "password": password})
    assert status == 200
    return body["token"]


def fetch(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


class FLVReader(threading.Thread):
    """Reads an HTTP-FLV response to its end in a thread; ``close()`` drops the connection."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        parts = urllib.parse.urlsplit(url)
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        self.connection.request("GET", f"{parts.path}?{parts.query}")
        self.response = self.connection.getresponse()
        assert self.response.status == 200
        self.data = bytearray()
        self.ended = threading.Event()
        self.clean_end = False  # the chunked body ended with its terminator
        self.start()

    def run(self) -> None:
        try:
            while chunk := self.response.read1(65536):
                self.data += chunk
            self.clean_end = True
        except (OSError, ValueError, AttributeError, http.client.HTTPException):  # closed under us
            pass
        self.ended.set()

    def close(self) -> None:
        sock = self.connection.sock
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
        self.ended.wait(10)
        self.connection.close()


def play_in_chromium(base: str, cases: list[tuple[str, str]]) -> dict[str, list[float]]:
    """Open web/live-test.html per (player, url) and sample video.currentTime for a few seconds."""
    from playwright.sync_api import sync_playwright

    samples: dict[str, list[float]] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=[
            "--no-sandbox", "--disable-gpu", "--autoplay-policy=no-user-gesture-required",
            "--disable-background-networking"])
        try:
            for player, url in cases:
                page = browser.new_page()
                page.goto(f"{base}/live-test.html?player={player}&src={urllib.parse.quote(url, safe='')}")
                page.wait_for_function("window.liveTest && window.liveTest.currentTime > 0.5", timeout=30_000)
                times = []
                for _ in range(4):
                    page.wait_for_timeout(500)
                    state = page.evaluate("window.liveTest")
                    assert state["errors"] == [], state
                    times.append(state["currentTime"])
                samples[player] = times
                page.close()
        finally:
            browser.close()
    return samples


@pytest.fixture
def live_config(tmp_path: Path) -> Path:
    path = tmp_path / "live.toml"
    path.write_text('[live]\nidle_s = 4\npull_idle_s = 2\n\n[proxy]\nallow_networks = ["127.0.0.0/8"]\n')
    return path


def test_publish_play_republish_and_release(start_server: Any, cli: Any, live_config: Path, tmp_path: Path) -> None:
    """A CLI-issued key publishes from ffmpeg and a wrong key is refused; ffprobe reads the FLV
    and the HLS playlist and segments as h264 + aac of the expected duration; hls.js and
    mpegts.js play in Chromium; stopping the publisher ends an FLV viewer and ENDs the playlist;
    a republish adds a discontinuity; after the idle time the stream is released."""
    server = start_server(extra=("--config", str(live_config)))
    assert server.rtmp is not None
    token = login(server, cli)
    room = cli(server, "room", "create", "studio").stdout.strip()
    media = cli(server, "media", "add", room, "--provider", "rtmp", "--title", "Cam").stdout.strip()
    key = json.loads(cli(server, "stream", "key", room, media, "--json").stdout)
    assert key["rtmp_url"] == f"{server.rtmp}/live" and key["publish_url"] == f"{key['rtmp_url']}/{key['stream_key']}"

    wrong = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", *SOURCE, "-t", "2", *ENCODE, "-f", "flv",
                            f"{key['rtmp_url']}/live_wrong"], capture_output=True, text=True, timeout=60)
    assert wrong.returncode != 0

    status, result = server.request("GET", f"/api/rooms/{room}/media/{media}/playback", token=token)
    urls = {info["mode"]: server.url + info["url"] for info in result["infos"]}
    ffmpeg = publisher(key["publish_url"])
    try:
        def described() -> bool:  # live at once; the codecs once the sequence headers came in
            info = json.loads(cli(server, "stream", "info", room, media, "--json").stdout)
            return info["state"] == "live" and "video" in info and "audio" in info
        wait_for(described, "the publish and its sequence headers")
        info = json.loads(cli(server, "stream", "info", room, media, "--json").stdout)
        assert info["video"]["width"] == 320 and info["audio"]["codec"] == "mp4a.40.2"

        recorded = tmp_path / "recorded.flv"
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", urls["flv"], "-t", "3", "-c", "copy", str(recorded)],
                       check=True, timeout=60)
        flv = probe(str(recorded))
        assert codecs(flv) == {"video": "h264", "audio": "aac"} and 2.5 <= float(flv["format"]["duration"]) <= 3.5

        playlist = probe(urls["hls"])
        assert codecs(playlist) == {"video": "h264", "audio": "aac"}
        status, headers, text = fetch(urls["hls"])
        assert status == 200 and headers["Cache-Control"] == "no-cache"
        uris = [line for line in text.decode().splitlines() if line and not line.startswith("#")]
        segment = urls["hls"].rsplit("/", 1)[0] + "/" + uris[-1]
        status, headers, data = fetch(segment)
        assert status == 200 and headers["Cache-Control"] == "max-age=3600, immutable"
        (tmp_path / "segment.ts").write_bytes(data)
        seg = probe(str(tmp_path / "segment.ts"))
        assert codecs(seg) == {"video": "h264", "audio": "aac"}
        assert 1.8 <= float(seg["format"]["duration"]) <= 2.3

        if have_tools("chromium"):  # the players are always installed (build_web.py)
            samples = play_in_chromium(server.url, [("hls", urls["hls"]), ("mpegts", urls["flv"])])
            for player, times in samples.items():
                assert times == sorted(times) and times[-1] - times[0] >= 1.0, (player, times)

        viewer = FLVReader(urls["flv"])
        wait_for(lambda: len(viewer.data) > 1000, "FLV bytes")
    finally:
        stop(ffmpeg)
    assert viewer.ended.wait(15) and viewer.clean_end, "the FLV viewer did not end cleanly with the publish"
    status, _, text = fetch(urls["hls"])
    assert text.decode().rstrip().endswith("#EXT-X-ENDLIST")

    again = publisher(key["publish_url"])
    try:
        def resumed() -> bool:
            body = fetch(urls["hls"])[2].decode()
            return "#EXT-X-DISCONTINUITY" in body and "#EXT-X-ENDLIST" not in body
        wait_for(resumed, "the republish in the playlist")
        assert json.loads(cli(server, "stream", "info", room, media, "--json").stdout)["publishes"] == 2
    finally:
        stop(again)

    def released() -> bool:
        return json.loads(cli(server, "stream", "info", room, media, "--json").stdout)["state"] == "offline"
    wait_for(released, "the idle release", timeout=20)
    assert fetch(urls["hls"])[0] == 404
    assert "released stream" in server.log.read_text()


class _Upstream(http.server.ThreadingHTTPServer):
    daemon_threads = True
    flv = b""
    connections = 0
    open_connections = 0
    lock = threading.Lock()


class _UpstreamHandler(http.server.BaseHTTPRequestHandler):
    server: _Upstream

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.connections += 1
            self.server.open_connections += 1
        try:
            self.send_response(200)
            self.send_header("Content-Type", "video/x-flv")
            self.end_headers()
            self.wfile.write(self.server.flv)
            self.wfile.flush()
            while True:  # a live source: the connection stays open until the client leaves
                try:
                    if self.connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"":
                        break
                except BlockingIOError:
                    time.sleep(0.05)
                except OSError:
                    break
        finally:
            with self.server.lock:
                self.server.open_connections -= 1


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[_Upstream]:
    source = tmp_path / "upstream.flv"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", *SOURCE, "-t", "4", *ENCODE, "-f", "flv", str(source)],
                   check=True, timeout=60)
    httpd = _Upstream(("127.0.0.1", 0), _UpstreamHandler)
    httpd.flv = source.read_bytes()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_live_proxy_pulls_only_while_a_viewer_is_connected(start_server: Any, cli: Any, live_config: Path,
                                                           upstream: _Upstream) -> None:
    """A live item pointing at a local HTTP-FLV upstream is not pulled until a viewer comes; the
    viewer gets h264 + aac from it; when the viewer leaves, the pull stops after pull_idle_s."""
    server = start_server(extra=("--config", str(live_config)))
    token = login(server, cli)
    room = cli(server, "room", "create", "relay").stdout.strip()
    url = f"http://127.0.0.1:{upstream.server_address[1]}/live.flv"
    media = cli(server, "media", "add", room, "--provider", "live", "--url", url, "--title", "Relay").stdout.strip()
    _, result = server.request("GET", f"/api/rooms/{room}/media/{media}/playback", token=token)
    flv_url = server.url + result["infos"][0]["url"]
    info = json.loads(cli(server, "stream", "info", room, media, "--json").stdout)
    assert info["state"] == "offline" and upstream.connections == 0

    viewer = FLVReader(flv_url)
    wait_for(lambda: len(viewer.data) > 20_000, "the pulled stream")
    assert upstream.connections == 1 and upstream.open_connections == 1
    info = json.loads(cli(server, "stream", "info", room, media, "--json").stdout)
    assert info["state"] == "live" and info["source"] == "pull" and info["upstream"]["state"] == "pulling"
    assert info["video"]["width"] == 320 and info["audio"]["codec"] == "mp4a.40.2"
    viewer.close()
    wait_for(lambda: upstream.open_connections == 0, "the pull to stop", timeout=20)
    assert upstream.connections == 1
    assert json.loads(cli(server, "stream", "info", room, media, "--json").stdout)["state"] in ("ended", "offline")


def test_rtmp_port_in_use_is_one_line(tmp_path: Path) -> None:
    """An RTMP port that is taken stops the start with one line naming the endpoint, exit 1."""
    from tests.integration.processes import child_env, twistd_args

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        args = twistd_args(tmp_path / "data", None)
        args[args.index("--rtmp") + 1] = f"tcp:{port}:interface=127.0.0.1"
        done = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path, env=child_env(), timeout=60)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert f"cannot listen for RTMP on tcp:{port}" in done.stderr
