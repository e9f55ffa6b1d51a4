"""Signed, expiring playback URLs of live streams, for players that cannot send headers.

A live item's FLV and HLS URLs carry ``exp`` (server time, ms) and ``sig``, an HMAC under the
server secret of ``live``, the room id, the media id and ``exp``. One signature covers every
live route of that item (the FLV stream, the playlist and its segments), so a playlist can hand
its own query on to the segments it names. The prefix keeps these signatures apart from login
tokens, which are signed with the same secret.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlencode

from synctv.core import auth

DEFAULT_TTL_MS = 6 * 3600 * 1000


def _first(args: Mapping[Any, Sequence[Any]], name: str) -> str | None:
    for key in (name, name.encode("ascii")):
        values = args.get(key)
        if values:
            value = values[0]
            return value.decode("latin-1") if isinstance(value, bytes) else str(value)
    return None


def item_path(room_id: str, media_id: str) -> str:
    return f"/api/rooms/{quote(room_id, safe='')}/media/{quote(media_id, safe='')}"


class LiveLinks:
    def __init__(self, secret: str, *, ttl_ms: int = DEFAULT_TTL_MS, public_url: str | None = None) -> None:
        self._secret = secret
        self.ttl_ms = ttl_ms
        self.public_url = public_url.rstrip("/") if public_url else ""

    @staticmethod
    def _message(room_id: str, media_id: str, expires: int) -> str:
        return f"live\n{room_id}\n{media_id}\n{expires}"

    def sign(self, room_id: str, media_id: str, now_ms: int) -> dict[str, str]:
        """The query parameters (``exp``, ``sig``) of a URL valid for ``ttl_ms`` from now."""
        expires = now_ms + self.ttl_ms
        return {"exp": str(expires), "sig": auth.sign(self._secret, self._message(room_id, media_id, expires))}

    def verify(self, room_id: str, media_id: str, args: Mapping[Any, Sequence[Any]], now_ms: int) -> bool:
        """Whether the request's ``exp``/``sig`` are a valid, unexpired signature for the item."""
        expires, sig = _first(args, "exp"), _first(args, "sig")
        if not expires or not sig or len(expires) > 20 or not expires.isdigit():
            return False
        if int(expires) <= now_ms:
            return False
        return auth.check_signature(self._secret, self._message(room_id, media_id, int(expires)), sig)

    @staticmethod
    def query_of(args: Mapping[Any, Sequence[Any]]) -> str:
        """The ``exp=..&sig=..`` of a request, to hand on to the segments a playlist names."""
        expires, sig = _first(args, "exp"), _first(args, "sig")
        return urlencode({"exp": expires, "sig": sig}) if expires and sig else ""

    def url(self, room_id: str, media_id: str, tail: str, now_ms: int) -> tuple[str, int]:
        """``(url, expires_at)`` of ``tail`` (``live.flv``, ``hls/index.m3u8``) under the item;
        absolute when ``public_url`` is configured, else a path on this server."""
        params = self.sign(room_id, media_id, now_ms)
        return f"{self.public_url}{item_path(room_id, media_id)}/{tail}?{urlencode(params)}", int(params["exp"])
