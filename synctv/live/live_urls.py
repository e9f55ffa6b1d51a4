"""Signed, expiring playback URLs of live streams, for players that cannot send headers.

A live item's FLV and HLS URLs carry ``u`` (the user, or a display's stand-in, they were made
for), ``exp`` (server time, ms) and ``sig``, an HMAC under the server secret of a versioned
message of the room id, the media id, ``u`` and ``exp``. One signature covers every live route
of that item for that viewer (the FLV stream, the playlist and its segments), so a playlist can
hand its own query on to the segments it names. ``verify`` answers the user a valid URL names;
the route then asks ``Actions.access_by_grant`` whether that user may still watch, as every
other door does. The version prefix keeps these signatures apart from login tokens and proxy
URLs, which are signed with the same secret.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlencode

import attrs

from synctv.core import auth
from synctv.providers.base import PlaybackInfo

DEFAULT_TTL_MS = 6 * 3600 * 1000
_VERSION = "synctv-live-v2"


def _first(args: Mapping[Any, Sequence[Any]], name: str) -> str | None:
    for key in (name, name.encode("ascii")):
        values = args.get(key)
        if values:
            value = values[0]
            return value.decode("latin-1") if isinstance(value, bytes) else str(value)
    return None


def item_path(room_id: str, media_id: str) -> str:
    return f"/api/rooms/{quote(room_id, safe='')}/media/{quote(media_id, safe='')}"


RELAY_ROUTE = "/api/internal/live/{room}/{media}/live.flv"  # the nodes' internal door (node-signed)


def relay_path(room_id: str, media_id: str) -> str:
    """The path another node reads an item's live FLV from (``synctv.api.node_routes``)."""
    return f"/api/internal/live/{quote(room_id, safe='')}/{quote(media_id, safe='')}/live.flv"


class LiveLinks:
    """Makes and checks live URLs (module docstring); a ``UrlSigner`` for ``signer="live"`` infos."""

    def __init__(self, secret: str, *, ttl_ms: int = DEFAULT_TTL_MS, public_url: str | None = None) -> None:
        self._secret = secret
        self.ttl_ms = ttl_ms
        self.public_url = public_url.rstrip("/") if public_url else ""

    @staticmethod
    def _message(room_id: str, media_id: str, user_id: str, expires: int) -> str:
        return f"{_VERSION}\n{room_id}\n{media_id}\n{user_id}\n{expires}"

    def sign(self, room_id: str, media_id: str, user_id: str, now_ms: int) -> dict[str, str]:
        """The query parameters (``u``, ``exp``, ``sig``) of a URL valid for ``ttl_ms`` from now."""
        expires = now_ms + self.ttl_ms
        sig = auth.sign(self._secret, self._message(room_id, media_id, user_id, expires))
        return {"u": user_id, "exp": str(expires), "sig": sig}

    def verify(self, room_id: str, media_id: str, args: Mapping[Any, Sequence[Any]], now_ms: int) -> str | None:
        """The user a request's valid, unexpired ``u``/``exp``/``sig`` name for the item, else None."""
        user, expires, sig = _first(args, "u"), _first(args, "exp"), _first(args, "sig")
        if not user or not expires or not sig or len(expires) > 20 or not expires.isdigit() or len(user) > 128:
            return None
        if int(expires) <= now_ms:
            return None
        if not auth.check_signature(self._secret, self._message(room_id, media_id, user, int(expires)), sig):
            return None
        return user

    @staticmethod
    def query_of(args: Mapping[Any, Sequence[Any]]) -> str:
        """The ``u=..&exp=..&sig=..`` of a request, to hand on to the segments a playlist names."""
        user, expires, sig = _first(args, "u"), _first(args, "exp"), _first(args, "sig")
        return urlencode({"u": user, "exp": expires, "sig": sig}) if user and expires and sig else ""

    def url(self, room_id: str, media_id: str, tail: str, user_id: str, now_ms: int) -> tuple[str, int]:
        """``(url, expires_at)`` of ``tail`` (``live.flv``, ``hls/index.m3u8``) under the item;
        absolute when ``public_url`` is configured, else a path on this server."""
        params = self.sign(room_id, media_id, user_id, now_ms)
        return f"{self.public_url}{item_path(room_id, media_id)}/{tail}?{urlencode(params)}", int(params["exp"])

    def sign_info(self, info: PlaybackInfo, *, room_id: str, media_id: str, user_id: str,
                  now_ms: int) -> PlaybackInfo:
        """A live provider's info (``url`` is the route's tail) as the viewer ``user_id`` plays it."""
        url, expires = self.url(room_id, media_id, info.url, user_id, now_ms)
        return attrs.evolve(info, url=url, expires_at=expires, signer=None)
