"""A local Bilibili: ``finger/spi``, ``nav`` (WBI keys), ``wbi/view`` and ``wbi/playurl`` (the WBI
signature checked; 412 without ``buvid3``; ``-404`` for an unknown video), the CDN (403 without
Referer and a browser User-Agent), raw-deflated danmaku XML, the live room API. ``DASH_ONLY``
answers ``playurl`` with DASH tracks only."""

from __future__ import annotations

import hashlib
import secrets
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

from tests.providers.fakes.base import Fake

MIXIN_TAB = [46, 47, 18, 2, 53, 8, 23, 32, 15, 50, 10, 31, 58, 3, 45, 35, 27, 43, 5, 49, 33, 9, 42, 19, 29, 28,
             14, 39, 12, 38, 41, 13, 37, 48, 7, 16, 24, 55, 40, 61, 26, 17, 0, 1, 60, 51, 30, 4, 22, 25, 54, 21,
             56, 59, 6, 63, 57, 62, 11, 36, 20, 34, 44, 52]
# (at, text, mode, colour): Bilibili's modes, 1 scrolls, 5 stays at the top, 4 at the bottom
DANMAKU = [(0.2, "first!", 1, 0xFFFFFF), (0.6, "at 0.6", 5, 0xFF4D4F), (1.1, "<b>&amp; one</b>", 1, 0xFFD400),
           (1.7, "late one", 4, 0x33CCFF), (30.0, "never", 1, 0xFFFFFF)]
DASH_ONLY = "BV1Dq4y1X7dA"


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


