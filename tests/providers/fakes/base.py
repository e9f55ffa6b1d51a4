"""What the four fakes share: real media made by ffmpeg (``make_media``), the ``Fake`` resource
(routes by method and path, counts its calls, answers JSON and files with Range), ``listen``,
and the subtitles both Alist's and the media servers' fakes serve."""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from twisted.web import resource, server, static

SRT = b"1\r\n00:00:00,500 --> 00:00:01,500\r\nHello <b>there</b>\r\n\r\n2\r\n00:00:01,600 --> 00:00:02,000\r\nBye\r\n"
VTT = b"WEBVTT\n\n00:00:00.500 --> 00:00:01.500\nHello\n"




def make_media(folder: Path) -> dict[str, Path]:
    """Small real media made by ffmpeg: an MP4, the same as MKV, an HLS rendition, an FLV, a PNG,
    and an MP4 whose video is H.265 (HEVC)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {name: folder / name for name in ("video.mp4", "video.mkv", "live.flv", "cover.png", "hevc.mp4")}
    hls = folder / "hls"
    if not (hls / "index.m3u8").exists():
        run = [["-f", "lavfi", "-i", "testsrc=duration=2:size=96x64:rate=25", "-f", "lavfi", "-i",
                "sine=frequency=440:duration=2", "-c:v", "libx264", "-g", "25", "-pix_fmt", "yuv420p", "-c:a", "aac",
                "-shortest", "-movflags", "+faststart", str(out["video.mp4"])],
               ["-i", str(out["video.mp4"]), "-c", "copy", str(out["video.mkv"])],
               ["-i", str(out["video.mp4"]), "-c", "copy", "-f", "flv", str(out["live.flv"])],
               ["-f", "lavfi", "-i", "color=c=red:size=32x32", "-frames:v", "1", str(out["cover.png"])]]
        for args in run:
            subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True, timeout=120)
        hls.mkdir(exist_ok=True)
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(out["video.mp4"]), "-c", "copy", "-f", "hls",
                        "-hls_time", "1", "-hls_list_size", "0", "-hls_segment_filename", str(hls / "seg%d.ts"),
                        str(hls / "index.m3u8")], check=True, timeout=120)
    if not out["hevc.mp4"].exists():
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=duration=2:size=96x64:rate=25",
                        "-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-c:v", "libx265", "-tag:v", "hvc1",
                        "-x265-params", "log-level=error", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
                        "-movflags", "+faststart", str(out["hevc.mp4"])], check=True, timeout=120)
    out["hls"] = hls
    return out


class Fake(resource.Resource):
    """A leaf resource that routes by method and path and counts its calls."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[str] = Counter()
        self.base = ""  # set once listening: http://127.0.0.1:port
        self.now = time.time  # the fake's wall clock (tests move it with synctv's)

    def render(self, request: Any) -> Any:
        path = unquote(request.path.decode("utf-8", "replace"))
        if path == "/_calls":  # for tests and the benchmark in other processes; not counted
            return self.json(request, dict(self.calls))
        self.calls[f"{request.method.decode()} {path}"] += 1
        return self.route(request, path)

    def route(self, request: Any, path: str) -> Any:
        raise NotImplementedError

    @staticmethod
    def json(request: Any, value: Any, status: int = 200) -> bytes:
        request.setResponseCode(status)
        request.setHeader(b"Content-Type", b"application/json; charset=utf-8")
        return json.dumps(value).encode()

    @staticmethod
    def body(request: Any) -> Any:
        try:
            return json.loads(request.content.read() or b"{}")
        except ValueError:
            return {}

    @staticmethod
    def query(request: Any) -> dict[str, str]:
        return {k.decode(): v[0].decode() for k, v in request.args.items()}

    @staticmethod
    def file(request: Any, path: Path, content_type: str | None = None) -> Any:
        node = static.File(str(path), defaultType=content_type or "application/octet-stream")
        node.type, node.encoding = content_type, None
        return node.render(request)



def listen(reactor: Any, fake: Fake) -> Any:
    port = reactor.listenTCP(0, server.Site(fake), interface="127.0.0.1")
    fake.base = f"http://127.0.0.1:{port.getHost().port}"
    return port


