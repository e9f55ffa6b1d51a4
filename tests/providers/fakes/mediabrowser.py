"""A local Emby (``kind="emby"``: ``/emby`` base, ``X-Emby-Token``/``api_key``) or Jellyfin (no base,
``Authorization: MediaBrowser Token=``/``ApiKey`` only; quick connect): views, items, episodes,
PlaybackInfo, the direct stream, an HLS transcode whose playlists carry the token, subtitles,
images."""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlencode

from tests.providers.fakes.base import VTT, Fake


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


