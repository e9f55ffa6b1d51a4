"""Local stand-ins for Alist, Emby, Jellyfin and Bilibili, speaking the documented subset of each API
(../shared/providers-api.md) with their error shapes, over real HTTP on loopback.

Each is a twisted.web resource that records its calls (``calls``: a Counter of ``METHOD /path``)
and serves real media made by ffmpeg (:func:`make_media`) with Range (``static.File``):

- :class:`FakeAlist`: ``/api/auth/login/hash`` (code 400 in an HTTP 200 for a wrong password),
  a tree with ``/movies`` and ``/clips`` (``hevc.mp4``: H.265 video with AAC sound, which Chromium
  plays as sound only),
  ``/api/fs/list`` (``content: null`` for an empty folder), ``/api/fs/get`` (``raw_url`` signed with an
  expiry, ``related`` subtitles), ``/d/...`` (403 for an expired sign, and for a User-Agent other
  than the one that asked ``fs/get`` for the link, as Alist's 115 and Baidu drivers bind links). A raw token in
  ``Authorization`` (``Bearer`` is refused); ``revoke()`` makes every token answer ``code: 401``.
- :class:`FakeMediaBrowser`: Emby (``/emby`` base, ``X-Emby-Token``/``api_key``,
  ``DirectStreamUrl``) or Jellyfin (no base, ``Authorization: MediaBrowser Token=``/``ApiKey`` only,
  as with legacy authorization off; quick connect, disabled by default): views, items, episodes,
  PlaybackInfo, the direct stream, an HLS transcode whose playlists carry ``api_key`` (the worst
  case), subtitles, images. ``revoke()`` makes tokens answer 401.
- :class:`FakeBilibili`: ``finger/spi``, ``nav`` (WBI keys; -101 anonymously), ``wbi/view`` and
  ``wbi/playurl`` (the WBI signature is checked; 412 without a ``buvid3`` cookie; ``-404`` for an
  unknown video), the CDN (403 without Referer and a browser User-Agent; a ``deadline``), raw-
  deflated danmaku XML (scrolling, top and bottom ones in colours), and the live room API.
  ``DASH_ONLY`` answers ``playurl`` with DASH tracks only.

``python -m tests.providers.upstreams DIR`` runs all four on free loopback ports and prints one JSON
line of their base URLs and credentials (for the CLI tests and bench/providers.py).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import posixpath
import re
import secrets
import subprocess
import sys
import time
import zlib
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode

from twisted.web import resource, server, static

ALIST_SUFFIX = "-https://github.com/alist-org/alist"
MIXIN_TAB = [46, 47, 18, 2, 53, 8, 23, 32, 15, 50, 10, 31, 58, 3, 45, 35, 27, 43, 5, 49, 33, 9, 42, 19, 29, 28,
             14, 39, 12, 38, 41, 13, 37, 48, 7, 16, 24, 55, 40, 61, 26, 17, 0, 1, 60, 51, 30, 4, 22, 25, 54, 21,
             56, 59, 6, 63, 57, 62, 11, 36, 20, 34, 44, 52]
SRT = b"1\r\n00:00:00,500 --> 00:00:01,500\r\nHello <b>there</b>\r\n\r\n2\r\n00:00:01,600 --> 00:00:02,000\r\nBye\r\n"
VTT = b"WEBVTT\n\n00:00:00.500 --> 00:00:01.500\nHello\n"
# (at, text, mode, colour): Bilibili's modes, 1 scrolls, 5 stays at the top, 4 at the bottom
DANMAKU = [(0.2, "first!", 1, 0xFFFFFF), (0.6, "at 0.6", 5, 0xFF4D4F), (1.1, "<b>&amp; one</b>", 1, 0xFFD400),
           (1.7, "late one", 4, 0x33CCFF), (30.0, "never", 1, 0xFFFFFF)]
DASH_ONLY = "BV1Dq4y1X7dA"


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


# -- Alist ------------------------------------------------------------------------------------

class FakeAlist(Fake):
    def __init__(self, media: dict[str, Path], username: str = "alice", password: str = "alist-pass") -> None:
        super().__init__()
        self.media = media
        self.users = {username: password}
        self.tokens: set[str] = set()
        self.sign_key = secrets.token_bytes(16)
        self.link_ttl_s = 3600
        self.thumb_type = "image/png"
        # Like Alist's 115 and Baidu drivers: a link plays only for the User-Agent that asked for it
        self.link_agents: dict[str, str] = {}
        # path -> (is_dir, alist type, file on disk or None)
        self.tree: dict[str, tuple[bool, int, Path | None]] = {
            "/": (True, 1, None), "/movies": (True, 1, None), "/empty": (True, 1, None),
            "/movies/film.mp4": (False, 2, media["video.mp4"]),
            "/movies/film.srt": (False, 4, None),
            "/movies/notes.txt": (False, 4, None),
            "/movies/second.mp4": (False, 2, media["video.mp4"]),
            "/movies/extras": (True, 1, None),
            "/clips": (True, 1, None),
            "/clips/hevc.mp4": (False, 2, media["hevc.mp4"]),
        }

    def revoke(self) -> None:
        self.tokens.clear()

    def sign(self, path: str, expire: int) -> str:
        mac = hmac.new(self.sign_key, f"{path}:{expire}".encode(), hashlib.sha256).hexdigest()[:16]
        return f"{mac}:{expire}"

    def _user(self, request: Any) -> str | None:
        value = (request.getHeader(b"authorization") or b"").decode()
        return value if value in self.tokens else None

    def _object(self, path: str) -> dict[str, Any]:
        is_dir, kind, _ = self.tree[path]
        return {"name": posixpath.basename(path), "size": 0 if is_dir else 1234, "is_dir": is_dir,
                "modified": "2024-05-17T16:05:36+08:00", "created": "2024-05-17T16:05:36+08:00", "sign": "",
                "thumb": f"{self.base}/thumb{quote(path)}" if kind == 2 else "", "type": kind,
                "hashinfo": "null", "hash_info": None}

    def _raw_url(self, path: str) -> str:
        expire = int(self.now()) + self.link_ttl_s
        return f"{self.base}/d{quote(path)}?sign={quote(self.sign(path, expire))}"

    def route(self, request: Any, path: str) -> Any:
        if path == "/api/auth/login/hash":
            b = self.body(request)
            expected = self.users.get(b.get("username"))
            if expected is None or hashlib.sha256((expected + ALIST_SUFFIX).encode()).hexdigest() != b.get("password"):
                return self.json(request, {"code": 400, "message": "password is incorrect", "data": None})
            token = secrets.token_hex(16)
            self.tokens.add(token)
            return self.json(request, {"code": 200, "message": "success", "data": {"token": token}})
        if path.startswith("/api/"):
            header = (request.getHeader(b"authorization") or b"").decode()
            if header.startswith("Bearer "):
                return self.json(request, {"code": 401, "message": "that's not even a token", "data": None})
            if self._user(request) is None:
                return self.json(request, {"code": 401, "message": "token is invalidated", "data": None})
            b = self.body(request)
            target = b.get("path", "/")
            if target not in self.tree:
                return self.json(request, {"code": 500, "message": "failed get objs: object not found", "data": None})
            if path == "/api/fs/list":
                children = [p for p in self.tree if p != target and posixpath.dirname(p) == target]
                content = [self._object(p) for p in sorted(children)] or None  # an empty folder is null
                return self.json(request, {"code": 200, "message": "success", "data": {
                    "content": content, "total": len(children), "readme": "", "header": "", "write": False,
                    "provider": "Local"}})
            if path == "/api/fs/get":
                obj = self._object(target)
                if not self.tree[target][0]:
                    obj["raw_url"] = self._raw_url(target)
                    self.link_agents[target] = (request.getHeader(b"user-agent") or b"").decode()
                    obj["provider"] = "Local"
                    stem = posixpath.splitext(target)[0]
                    obj["related"] = [self._object(p) for p in sorted(self.tree)
                                      if p != target and p.startswith(stem) and not self.tree[p][0]]
                return self.json(request, {"code": 200, "message": "success", "data": obj})
        if path.startswith("/d/"):
            target = path[2:]
            sign = self.query(request).get("sign", "")
            _, _, expire = sign.partition(":")
            if target not in self.tree or not expire.isdigit() or sign != self.sign(target, int(expire)):
                request.setResponseCode(401)
                return b"sign mismatch"
            if int(expire) < self.now():
                request.setResponseCode(403)
                return b"sign expired"
            agent = (request.getHeader(b"user-agent") or b"").decode()
            if target in self.link_agents and agent != self.link_agents[target]:
                request.setResponseCode(403)
                return b"this link was made for another user agent"
            if target.endswith(".srt"):
                request.setHeader(b"Content-Type", b"application/x-subrip")
                return SRT
            return self.file(request, self.tree[target][2], "video/mp4")
        if path.startswith("/thumb/"):
            return self.file(request, self.media["cover.png"], self.thumb_type)
        request.setResponseCode(404)
        return b"404 page not found"


# -- Emby and Jellyfin ------------------------------------------------------------------------

class FakeMediaBrowser(Fake):
    """Emby (``kind="emby"``) or Jellyfin; ids are 32-hex for Jellyfin and numeric for Emby."""

    def __init__(self, media: dict[str, Path], kind: str = "emby", username: str = "alice",
                 password: str = "mb-pass") -> None:
        super().__init__()
        self.kind = kind
        self.media = media
        self.users = {username: password}
        self.user_id = secrets.token_hex(16)
        self.tokens: set[str] = set()
        self.quick_connect = False
        self.broken_playback: bytes | None = None  # a PlaybackInfo answer to send instead of the real one
        self.quick: dict[str, dict[str, Any]] = {}
        self.playlist_tokens: list[str] = []  # the tokens put in playlist URIs (to check none leaks)
        self.refuse_sessions = False  # logins succeed, then every call with their token is a 401
        ident = (lambda n: str(n)) if kind == "emby" else (lambda n: f"{n:032x}")
        self.ids = {name: ident(n) for n, name in enumerate(
            ["movies", "shows", "film", "series", "season1", "ep1", "ep2", "season2", "ep3"], start=100)}
        i = self.ids
        self.items: dict[str, dict[str, Any]] = {
            i["movies"]: {"Name": "Movies", "Type": "CollectionFolder", "IsFolder": True, "CollectionType": "movies"},
            i["shows"]: {"Name": "Shows", "Type": "CollectionFolder", "IsFolder": True, "CollectionType": "tvshows"},
            i["film"]: {"Name": "A Film", "Type": "Movie", "IsFolder": False, "RunTimeTicks": 20_000_000,
                        "ParentId": i["movies"], "Container": "mkv", "ImageTags": {"Primary": "abc"}},
            i["series"]: {"Name": "A Show", "Type": "Series", "IsFolder": True, "ParentId": i["shows"]},
            i["season1"]: {"Name": "Season 1", "Type": "Season", "IsFolder": True, "ParentId": i["series"],
                           "SeriesId": i["series"], "IndexNumber": 1},
            i["ep1"]: {"Name": "Pilot", "Type": "Episode", "IsFolder": False, "RunTimeTicks": 20_000_000,
                       "ParentId": i["season1"], "SeriesId": i["series"], "SeasonId": i["season1"],
                       "SeriesName": "A Show", "IndexNumber": 1, "ParentIndexNumber": 1, "Container": "mkv"},
            i["ep2"]: {"Name": "Second", "Type": "Episode", "IsFolder": False, "RunTimeTicks": 20_000_000,
                       "ParentId": i["season1"], "SeriesId": i["series"], "SeasonId": i["season1"],
                       "SeriesName": "A Show", "IndexNumber": 2, "ParentIndexNumber": 1, "Container": "mkv"},
            i["season2"]: {"Name": "Season 2", "Type": "Season", "IsFolder": True, "ParentId": i["series"],
                           "SeriesId": i["series"], "IndexNumber": 2},
            i["ep3"]: {"Name": "Third", "Type": "Episode", "IsFolder": False, "RunTimeTicks": 20_000_000,
                       "ParentId": i["season2"], "SeriesId": i["series"], "SeasonId": i["season2"],
                       "SeriesName": "A Show", "IndexNumber": 1, "ParentIndexNumber": 2, "Container": "mkv"},
        }

    @property
    def prefix(self) -> str:
        return "/emby" if self.kind == "emby" else ""

    @property
    def token_param(self) -> str:
        return "api_key" if self.kind == "emby" else "ApiKey"

    def revoke(self) -> None:
        self.tokens.clear()

    def _auth_fields(self, request: Any) -> dict[str, str]:
        value = (request.getHeader(b"authorization") or b"").decode()
        scheme, _, rest = value.partition(" ")
        wanted = "emby" if self.kind == "emby" else "mediabrowser"
        if scheme.lower() != wanted:
            return {}
        return {k: unquote(v) for k, v in re.findall(r'(\w+)="([^"]*)"', rest)}

    def _token(self, request: Any) -> str | None:
        q = {k.lower(): v for k, v in self.query(request).items()}
        if self.kind == "emby":
            found = (request.getHeader(b"x-emby-token") or b"").decode() or q.get("api_key")
        else:  # legacy authorization off: no X-Emby-Token, no api_key
            found = self._auth_fields(request).get("Token") or q.get("apikey")
        return found if found in self.tokens and not self.refuse_sessions else None

    def _dto(self, item_id: str) -> dict[str, Any]:
        return {"Id": item_id, "ServerId": "fake", **self.items[item_id]}

    def _login(self, request: Any, username: str) -> bytes:
        token = secrets.token_hex(16)
        self.tokens.add(token)
        return self.json(request, {"User": {"Id": self.user_id, "Name": username, "ServerId": "fake"},
                                   "SessionInfo": {}, "AccessToken": token, "ServerId": "fake"})

    def route(self, request: Any, path: str) -> Any:
        if self.prefix:
            if not path.lower().startswith(self.prefix):
                request.setResponseCode(404)
                return b""
            path = path[len(self.prefix):]
        low = path.lower()
        q = {k.lower(): v for k, v in self.query(request).items()}
        if low == "/users/authenticatebyname":
            fields = self._auth_fields(request)
            b = self.body(request)
            if not fields.get("DeviceId") or not fields.get("Client"):
                request.setResponseCode(400)
                return b"the authorization header is missing DeviceId or Client"
            if self.users.get(b.get("Username")) != b.get("Pw"):
                request.setResponseCode(401)
                return b"Invalid username or password entered."
            return self._login(request, b["Username"])
        if low.startswith("/quickconnect/") or low == "/users/authenticatewithquickconnect":
            return self._quick_connect(request, low, q)
        if low.startswith("/videos/") and "/hls1/" in low:
            return self._segment(request, path)
        if self._token(request) is None:
            request.setResponseCode(401)
            return b"Access token is invalid or expired."
        m = re.fullmatch(r"/users/([^/]+)/views|/userviews", low)
        if m:
            return self.json(request, {"Items": [self._dto(self.ids["movies"]), self._dto(self.ids["shows"])],
                                       "TotalRecordCount": 2})
        m = re.fullmatch(r"(?:/users/[^/]+)?/items/([^/]+)", low)
        if m and request.method == b"GET":
            item_id = path.split("/")[-1]
            if item_id not in self.items:
                request.setResponseCode(404)
                return b"Item not found."
            return self.json(request, self._dto(item_id))
        if re.fullmatch(r"(?:/users/[^/]+)?/items", low):
            parent = q.get("parentid", "")
            children = [self._dto(k) for k, v in self.items.items() if v.get("ParentId") == parent]
            return self.json(request, {"Items": children, "TotalRecordCount": len(children)})
        m = re.fullmatch(r"/shows/([^/]+)/episodes", low)
        if m:
            series = path.split("/")[2]
            season = q.get("seasonid")
            eps = [self._dto(k) for k, v in self.items.items() if v["Type"] == "Episode" and v["SeriesId"] == series
                   and (season is None or v["SeasonId"] == season)]
            return self.json(request, {"Items": eps, "TotalRecordCount": len(eps)})
        m = re.fullmatch(r"/items/([^/]+)/playbackinfo", low)
        if m and request.method == b"POST":
            return self._playback_info(request, path.split("/")[2])
        m = re.fullmatch(r"/videos/([^/]+)/stream(\.[a-z0-9]+)?", low)
        if m:
            return self.file(request, self.media["video.mkv"], "video/x-matroska")
        if re.fullmatch(r"/videos/([^/]+)/(master|main)\.m3u8", low):
            return self._playlist(request, low.endswith("master.m3u8"))
        if re.fullmatch(r"/videos/[^/]+/[^/]+/subtitles/\d+/stream\.vtt", low):
            request.setHeader(b"Content-Type", b"text/vtt")
            return VTT
        if re.fullmatch(r"/items/[^/]+/images/primary", low):
            return self.file(request, self.media["cover.png"], "image/png")
        request.setResponseCode(404)
        return b""

    def _playback_info(self, request: Any, item_id: str) -> bytes:
        if self.broken_playback is not None:
            request.setHeader(b"Content-Type", b"application/json")
            return self.broken_playback
        if item_id not in self.items:
            request.setResponseCode(404)
            return b"Item not found."
        token = self._token(request)
        source = secrets.token_hex(16)
        session = secrets.token_hex(16)
        key = f"{self.token_param}={token}"
        videos = "/videos"  # lower case, as the servers write it
        ms: dict[str, Any] = {
            "Id": source, "Protocol": "File", "Path": "/srv/media/secret-path/film.mkv", "Container": "mkv",
            "Size": self.media["video.mkv"].stat().st_size, "Name": "film", "RunTimeTicks": 20_000_000,
            "SupportsDirectPlay": True, "SupportsDirectStream": True, "SupportsTranscoding": True,
            "TranscodingUrl": f"{videos}/{item_id}/master.m3u8?DeviceId=x&MediaSourceId={source}"
                              f"&PlaySessionId={session}&{key}&VideoCodec=h264&SegmentContainer=ts",
            "TranscodingSubProtocol": "hls", "TranscodingContainer": "ts",
            "MediaStreams": [
                {"Index": 0, "Type": "Video", "Codec": "h264", "Width": 96, "Height": 64},
                {"Index": 2, "Type": "Subtitle", "Codec": "subrip", "Language": "eng", "DisplayTitle": "English",
                 "IsExternal": True, "IsTextSubtitleStream": True, "SupportsExternalStream": True,
                 "DeliveryMethod": "External",
                 "DeliveryUrl": f"/Videos/{item_id}/{source}/Subtitles/2/0/Stream.srt?{key}", "IsExternalUrl": False},
                {"Index": 3, "Type": "Subtitle", "Codec": "pgssub", "IsTextSubtitleStream": False},
            ]}
        if self.kind == "emby":
            ms["DirectStreamUrl"] = f"/videos/{item_id}/stream.mkv?Static=true&MediaSourceId={source}&{key}"
        return self.json(request, {"PlaySessionId": session, "MediaSources": [ms]})

    def _playlist(self, request: Any, master: bool) -> bytes:
        token = self._token(request)
        self.playlist_tokens.append(str(token))
        query = urlencode([(k.decode(), v[0].decode()) for k, v in request.args.items()])
        leak = f"&{self.token_param}={token}"  # the worst case: the server puts the token in every URI
        request.setHeader(b"Content-Type", b"application/vnd.apple.mpegurl")
        if master:
            return (f"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=500000,RESOLUTION=96x64\nmain.m3u8?{query}{leak}\n").encode()
        lines = (self.media["hls"] / "index.m3u8").read_text().splitlines()
        out = [f"hls1/main/{line[3:-3]}.ts?{query}{leak}" if line.startswith("seg") else line for line in lines]
        return ("\n".join(out) + "\n").encode()

    def _segment(self, request: Any, path: str) -> Any:
        if self._token(request) is None:
            request.setResponseCode(401)
            return b"Access token is invalid or expired."
        number = path.rsplit("/", 1)[-1].split(".")[0]
        if not number.isdigit():
            request.setResponseCode(404)
            return b""
        return self.file(request, self.media["hls"] / f"seg{number}.ts", "video/mp2t")

    def _quick_connect(self, request: Any, low: str, q: dict[str, str]) -> Any:
        if low == "/quickconnect/enabled":
            return self.json(request, self.quick_connect)
        if not self.quick_connect:
            request.setResponseCode(401)
            return b"Quick connect is disabled"
        if low == "/quickconnect/initiate":
            secret = secrets.token_hex(32)
            self.quick[secret] = {"Secret": secret, "Code": f"{secrets.randbelow(10**6):06d}", "Authenticated": False}
            return self.json(request, self.quick[secret])
        if low == "/quickconnect/connect":
            state = self.quick.get(q.get("secret", ""))
            if state is None:
                request.setResponseCode(404)
                return b"Unknown secret"
            return self.json(request, state)
        if low == "/users/authenticatewithquickconnect":
            state = self.quick.get(self.body(request).get("Secret", ""))
            if state is None or not state["Authenticated"]:
                request.setResponseCode(401)
                return b"Quick connect request is not authorized"
            return self._login(request, next(iter(self.users)))
        request.setResponseCode(404)
        return b""

    def approve(self, code: str) -> None:
        for state in self.quick.values():
            if state["Code"] == code:
                state["Authenticated"] = True


# -- Bilibili ---------------------------------------------------------------------------------

def wbi_expected(params: dict[str, str], img_key: str, sub_key: str) -> str:
    """The w_rid Bilibili expects (written from the documented algorithm, apart from synctv's)."""
    raw = img_key + sub_key
    mixin = "".join(raw[i] for i in MIXIN_TAB)[:32]
    pairs = sorted((k, "".join(ch for ch in v if ch not in "!'()*")) for k, v in params.items() if k != "w_rid")
    query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)
    return hashlib.md5((query + mixin).encode()).hexdigest()


class FakeBilibili(Fake):
    def __init__(self, media: dict[str, Path]) -> None:
        super().__init__()
        self.media = media
        self.img_key = "7cd084941338484aae1ad9425b84077c"
        self.sub_key = "4932caff0ff746eab6f01bf08b70ac45"
        self.sessdata = "SESSDATA=" + secrets.token_hex(12)
        self.link_ttl_s = 7200
        self.dash_only: set[str] = {DASH_ONLY}
        self.videos: dict[str, dict[str, Any]] = {
            "BV1xx411c7mD": {"aid": 170001, "title": "Two Parts", "pic": "", "pages": [
                {"cid": 3001, "page": 1, "part": "Opening", "duration": 2},
                {"cid": 3002, "page": 2, "part": "Ending", "duration": 2}]},
            "BV1y7411Q7Eq": {"aid": 170002, "title": "One Part", "pic": "", "pages": [
                {"cid": 3003, "page": 1, "part": "P1", "duration": 2}]},
            DASH_ONLY: {"aid": 170003, "title": "Only DASH", "pic": "", "pages": [
                {"cid": 3004, "page": 1, "part": "P1", "duration": 2}]},
        }
        self.rooms = {21: {"room_id": 2100021, "title": "A live room", "live_status": 1, "user_cover": ""},
                      22: {"room_id": 2200022, "title": "Offline", "live_status": 0, "user_cover": ""}}

    def _envelope(self, request: Any, data: Any, code: int = 0, message: str = "0") -> bytes:
        return self.json(request, {"code": code, "message": message, "ttl": 1, "data": data})

    def _cookies(self, request: Any) -> str:
        return (request.getHeader(b"cookie") or b"").decode()

    def _signed(self, request: Any) -> bool:
        params = dict(parse_qsl(request.uri.decode().partition("?")[2], keep_blank_values=True))
        return "wts" in params and params.get("w_rid") == wbi_expected(params, self.img_key, self.sub_key)

    def route(self, request: Any, path: str) -> Any:
        q = self.query(request)
        base = self.base
        if path == "/x/frontend/finger/spi":
            return self._envelope(request, {"b_3": "FAKE-BUVID3-infoc", "b_4": "FAKE-BUVID4-infoc"})
        if path == "/x/web-interface/nav":
            wbi = {"img_url": f"https://i0.hdslb.com/bfs/wbi/{self.img_key}.png",
                   "sub_url": f"https://i0.hdslb.com/bfs/wbi/{self.sub_key}.png"}
            if self.sessdata in self._cookies(request):
                return self._envelope(request, {"isLogin": True, "uname": "bili-user", "wbi_img": wbi})
            return self._envelope(request, {"isLogin": False, "wbi_img": wbi}, code=-101, message="账号未登录")
        if path in ("/x/web-interface/wbi/view", "/x/player/wbi/playurl"):
            if "buvid3=" not in self._cookies(request):
                request.setResponseCode(412)
                return b"<html>412 Precondition Failed</html>"
            if not self._signed(request):
                return self._envelope(request, None, code=-403, message="访问权限不足")
            video = self.videos.get(q.get("bvid", ""))
            if video is None:
                return self._envelope(request, None, code=-404, message="啥都木有")
            if path.endswith("view"):
                return self._envelope(request, {"bvid": q["bvid"], "aid": video["aid"], "videos": len(video["pages"]),
                                                "title": video["title"], "pic": f"{base}/cover.png",
                                                "duration": sum(p["duration"] for p in video["pages"]),
                                                "cid": video["pages"][0]["cid"], "pages": video["pages"]})
            deadline = int(self.now()) + self.link_ttl_s
            cdn = f"{base}/cdn/{q['bvid']}-{q.get('cid')}"
            if q.get("platform") == "html5" and q["bvid"] not in self.dash_only:
                return self._envelope(request, {"quality": 64, "format": "mp4720", "timelength": 2000, "durl": [
                    {"order": 1, "length": 2000, "size": self.media["video.mp4"].stat().st_size,
                     "url": f"{cdn}.mp4?deadline={deadline}&upsig=x", "backup_url": []}]})
            track = {"baseUrl": f"{cdn}-v.m4s?deadline={deadline}", "bandwidth": 200000, "mimeType": "video/mp4",
                     "codecs": "avc1.64001e", "width": 96, "height": 64, "id": 32,
                     "SegmentBase": {"Initialization": "0-999", "indexRange": "1000-1099"}}
            audio = {"baseUrl": f"{cdn}-a.m4s?deadline={deadline}", "bandwidth": 64000, "mimeType": "audio/mp4",
                     "codecs": "mp4a.40.2", "id": 30216,
                     "segment_base": {"initialization": "0-799", "index_range": "800-899"}}
            return self._envelope(request, {"quality": 32, "timelength": 2000, "dash": {
                "duration": 2, "minBufferTime": 1.5, "video": [track], "audio": [audio]}})
        if path.startswith("/cdn/"):
            ua = (request.getHeader(b"user-agent") or b"").decode()
            referer = (request.getHeader(b"referer") or b"").decode()
            if not referer.startswith("https://www.bilibili.com") or "Mozilla" not in ua:
                request.setResponseCode(403)
                return b"Forbidden"
            deadline = q.get("deadline", "0")
            if not deadline.isdigit() or int(deadline) < self.now():
                request.setResponseCode(403)
                return b"expired"
            return self.file(request, self.media["video.mp4"], "video/mp4")
        if path == "/x/v1/dm/list.so":
            xml = ('<?xml version="1.0" encoding="UTF-8"?><i><chatserver>chat.bilibili.com</chatserver>'
                   f'<chatid>{q.get("oid")}</chatid><maxlimit>1500</maxlimit>' + "".join(
                       f'<d p="{at},{mode},25,{color},1584268892,0,a16fe0dd,{1000 + n},10">{text.replace("<", "&lt;")}</d>'
                       for n, (at, text, mode, color) in enumerate(DANMAKU)) + "</i>").encode()
            deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
            request.setHeader(b"Content-Type", b"text/xml")
            return deflate.compress(xml) + deflate.flush()
        if path == "/cover.png":
            return self.file(request, self.media["cover.png"], "image/png")
        if path == "/room/v1/Room/get_info":
            wanted = int(q.get("room_id", "0") or 0)  # a short id or the real one
            room = self.rooms.get(wanted) or next((r for r in self.rooms.values() if r["room_id"] == wanted), None)
            if room is None:
                return self._envelope(request, None, code=1, message="房间不存在")
            return self._envelope(request, room)
        if path == "/room/v1/Room/playUrl":
            deadline = int(self.now()) + self.link_ttl_s
            return self._envelope(request, {"current_quality": 4, "accept_quality": ["4"], "durl": [
                {"url": f"{base}/live/{q.get('cid')}.flv?deadline={deadline}", "order": 1}]})
        if path.startswith("/live/"):
            referer = (request.getHeader(b"referer") or b"").decode()
            if not referer.startswith("https://live.bilibili.com"):
                request.setResponseCode(403)
                return b"Forbidden"
            return self.file(request, self.media["live.flv"], "video/x-flv")
        request.setResponseCode(404)
        return b""


def listen(reactor: Any, fake: Fake) -> Any:
    port = reactor.listenTCP(0, server.Site(fake), interface="127.0.0.1")
    fake.base = f"http://127.0.0.1:{port.getHost().port}"
    return port


ROOT = Path(__file__).resolve().parents[2]


class FakeUpstreams:
    """``with FakeUpstreams(folder) as info:`` the four fakes in a child process (``main``);
    ``info`` is its JSON line (base URLs, credentials, item ids). For tests and benchmarks that
    run synctv as a real process."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.proc: subprocess.Popen[str] | None = None
        self.info: dict[str, Any] = {}

    def __enter__(self) -> dict[str, Any]:
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.providers.upstreams", str(self.folder)],
                                     cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # ffmpeg makes the media first: seconds
        if not line:
            raise RuntimeError(f"the fake upstreams did not start (exit {self.proc.wait(timeout=30)})")
        self.info = json.loads(line)
        return self.info

    def calls(self, name: str) -> dict[str, int]:
        """The call counts of one fake (``alist``, ``emby``, ``jellyfin``, ``bilibili``)."""
        import urllib.request

        with urllib.request.urlopen(self.info[name] + "/_calls", timeout=30) as answer:
            return json.loads(answer.read())

    def __exit__(self, *exc: Any) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


def main(argv: list[str]) -> int:
    from twisted.internet import reactor

    media = make_media(Path(argv[0]))
    fakes = {"alist": FakeAlist(media), "emby": FakeMediaBrowser(media, "emby"),
             "jellyfin": FakeMediaBrowser(media, "jellyfin"), "bilibili": FakeBilibili(media)}
    for fake in fakes.values():
        listen(reactor, fake)
    info = {name: fake.base for name, fake in fakes.items()}
    info.update({"alist_user": "alice", "alist_password": "alist-pass", "mb_user": "alice", "mb_password": "mb-pass",
                 "bilibili_cookie": fakes["bilibili"].sessdata,
                 "emby_ids": fakes["emby"].ids, "jellyfin_ids": fakes["jellyfin"].ids})
    print(json.dumps(info), flush=True)
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
