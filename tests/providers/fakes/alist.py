"""A local Alist (../../../shared/providers-api.md): ``/api/auth/login/hash`` (code 400 in an HTTP
200 for a wrong password), a tree with ``/movies`` and ``/clips``, ``/api/fs/list`` (``content:
null`` for an empty folder), ``/api/fs/get`` (``raw_url`` signed with an expiry, ``related``
subtitles), ``/d/...`` (403 for an expired sign, and for a User-Agent other than the one that
asked ``fs/get`` for the link). A raw token in ``Authorization`` (``Bearer`` is refused)."""

from __future__ import annotations

import hashlib
import hmac
import posixpath
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tests.providers.fakes.base import SRT, Fake

ALIST_SUFFIX = "-https://github.com/alist-org/alist"


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


