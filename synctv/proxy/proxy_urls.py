"""Signed, expiring proxy URLs. Pure: the caller passes the time and the secret.

A proxy URL is bound to a room, a media item, a user and an expiry (server-time ms), plus what
it names inside the item:

- ``/api/rooms/{room}/media/{media}/proxy?u=USER&e=EXPIRES&s=SIG`` -- the item itself (with
  ``m=MODE`` when the item has more than one proxied way to play, e.g. ``m=hls`` for an Emby
  transcode beside its direct stream; the mode picks which of the provider's infos is relayed);
- ``/api/rooms/{room}/media/{media}/proxy/subtitle/{i}.vtt?u=&e=&s=`` -- subtitle ``i`` of the
  provider's proxy PlaybackInfo, fetched with that subtitle's own headers;
- ``/api/rooms/{room}/media/{media}/proxy/{kind}/{i}.ts?u=&e=&r=UPSTREAM&s=`` -- a URI found in an
  HLS playlist of the item (``kind`` is a ``synctv.proxy.m3u8`` kind, ``i`` its index in that
  playlist, ``r`` the absolute upstream URL). The signature covers ``r``, so the proxy fetches only
  URLs that it found itself in a playlist of an item the user may see; nested playlists work
  because every playlist fetched this way is rewritten in turn, and a live playlist whose window
  slides stays right because the URL carries what to fetch instead of an index to look up again.

The extension after ``{i}`` is cosmetic (players and ffmpeg look at it); the signature covers the
index, not the extension. The signature is ``synctv.core.auth.sign`` (HMAC-SHA256 under the server
secret) of a versioned, newline-separated message of every bound field. Everything derived from a
PlaybackInfo URL carries that URL's expiry.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, unquote, urlencode, urlsplit

import attrs

from synctv.core import auth
from synctv.core.errors import Forbidden, NotFound
from synctv.core.models import Subtitle
from synctv.providers.base import PlaybackInfo, PlaybackResult
from synctv.proxy.m3u8 import KIND_SEGMENT, KIND_VARIANT, URI_ATTRIBUTES

#: How long a proxy URL works (a film of several hours plays on one URL).
PROXY_TTL_MS = 12 * 3600 * 1000
KIND_ITEM = "item"  # the media item itself (not m3u8's "media" kind: EXT-X-MEDIA renditions)
KIND_SUBTITLE = "subtitle"
URI_KINDS = frozenset({KIND_SEGMENT, KIND_VARIANT, *(kind for _, kind in URI_ATTRIBUTES.values())})
_VERSION = "synctv-proxy-v1"
_INDEX = re.compile(r"([0-9]{1,9})(\.[A-Za-z0-9]{1,8})?")
_EXT = re.compile(r"\.[A-Za-z0-9]{1,8}")
#: What ``{kind}`` may be in ``.../proxy/{kind}/{index}``: a subtitle, or a kind of playlist URI.
RESOURCE_KINDS = frozenset({KIND_SUBTITLE, *URI_KINDS})


@attrs.frozen
class ProxyGrant:
    """What a verified proxy URL allows: ``url`` is the upstream for manifest-derived kinds."""

    room_id: str
    media_id: str
    user_id: str
    expires_ms: int
    kind: str
    index: int
    url: str | None = None
    mode: str = "proxy"  # which of the item's proxied PlaybackInfos (the mode a provider gave it)


def extension(url: str) -> str:
    """The extension of ``url``'s path (``.ts``), or ``""`` when it has none worth keeping."""
    try:
        ext = posixpath.splitext(unquote(urlsplit(url).path))[1]
    except ValueError:
        return ""
    return ext if _EXT.fullmatch(ext) else ""


def parse_index(text: str) -> int:
    """``3`` from ``3`` or ``3.ts``; ``NotFound`` for anything else."""
    m = _INDEX.fullmatch(text)
    if m is None:
        raise NotFound(f"no proxied resource {text[:40]!r}")
    return int(m.group(1))


def check_resource(kind: str, index: str) -> int:
    """The index of ``.../proxy/{kind}/{index}``; ``NotFound`` for an unknown kind or a bad index."""
    if kind not in RESOURCE_KINDS:
        raise NotFound(f"no proxied resource kind {kind[:40]!r}")
    return parse_index(index)


def _first(args: Mapping[Any, Sequence[Any]], name: str) -> str | None:
    values = args.get(name.encode("ascii"), args.get(name))
    if not values:
        return None
    value = values[0]
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return str(value)


class ProxyLinks:
    """Makes and checks proxy URLs (module docstring); ``public_url`` prefixes the URLs in
    PlaybackInfo (absolute URLs for native players); playlists always use path-absolute URLs."""

    def __init__(self, secret: str, *, ttl_ms: int = PROXY_TTL_MS, public_url: str | None = None) -> None:
        self._secret = secret
        self.ttl_ms = ttl_ms
        self.public_url = public_url.rstrip("/") if public_url else ""

    @staticmethod
    def base_path(room_id: str, media_id: str) -> str:
        return f"/api/rooms/{quote(room_id, safe='')}/media/{quote(media_id, safe='')}/proxy"

    @staticmethod
    def _message(grant: ProxyGrant) -> str:
        fields = [_VERSION, grant.room_id, grant.media_id, grant.user_id, str(grant.expires_ms), grant.kind,
                  str(grant.index), grant.url or ""]
        if grant.mode != "proxy":
            fields.append(grant.mode)
        return "\n".join(fields)

    def path_for(self, grant: ProxyGrant, ext: str = "") -> str:
        """The path and query of the URL carrying ``grant``."""
        query = [("u", grant.user_id), ("e", str(grant.expires_ms))]
        if grant.url is not None:
            query.append(("r", grant.url))
        if grant.mode != "proxy":
            query.append(("m", grant.mode))
        query.append(("s", auth.sign(self._secret, self._message(grant))))
        path = self.base_path(grant.room_id, grant.media_id)
        if grant.kind != KIND_ITEM:
            path += f"/{grant.kind}/{grant.index}{ext if _EXT.fullmatch(ext or '') else ''}"
        return f"{path}?{urlencode(query, quote_via=quote)}"

    def verify(
        self, room_id: str, media_id: str, kind: str, index: int, args: Mapping[Any, Sequence[Any]], now_ms: int
    ) -> ProxyGrant:
        """The grant of a request's query ``args``; ``Forbidden`` if it is unsigned, forged or expired."""
        user, expires, sig = _first(args, "u"), _first(args, "e"), _first(args, "s")
        url = _first(args, "r")
        mode = _first(args, "m") or "proxy"
        if not user or not expires or not sig or not expires.isdigit() or len(expires) > 16:
            raise Forbidden("this proxy URL is not signed; use the URL from the playback info")
        if kind != KIND_ITEM and kind not in RESOURCE_KINDS:
            raise NotFound(f"no proxied resource kind {kind[:40]!r}")
        grant = ProxyGrant(room_id, media_id, user, int(expires), kind, index, url, mode)
        if not auth.check_signature(self._secret, self._message(grant), sig):
            raise Forbidden("the proxy URL's signature does not match; use the URL from the playback info")
        if grant.expires_ms <= now_ms:
            raise Forbidden("the proxy URL has expired; ask for the playback info again")
        return grant

    def sign_info(self, info: PlaybackInfo, *, room_id: str, media_id: str, user_id: str,
                  now_ms: int) -> PlaybackInfo:
        """A provider's ``proxy`` info (naming the *upstream* URL, headers and subtitles) as the
        viewer ``user_id`` gets it: the URL becomes the signed proxy URL, the headers go (the
        server sends them upstream) and each subtitle becomes a proxied subtitle URL (an SRT one
        is served as WebVTT: ``synctv.proxy.documents``)."""
        expires = now_ms + self.ttl_ms
        main = ProxyGrant(room_id, media_id, user_id, expires, KIND_ITEM, 0, mode=info.mode)
        subtitles = tuple(
            Subtitle(name=s.name, format="vtt" if s.format == "srt" else s.format, headers={},
                     url=self.public_url + self.path_for(attrs.evolve(main, kind=KIND_SUBTITLE, index=i),
                                                         ".vtt" if s.format == "srt" else extension(s.url)))
            for i, s in enumerate(info.subtitles)
        )
        return attrs.evolve(info, url=self.public_url + self.path_for(main), headers={}, subtitles=subtitles,
                            expires_at=expires, signer=None, hidden_params=frozenset(), document=None)

    def sign_result(self, result: PlaybackResult, *, room_id: str, user_id: str, now_ms: int) -> PlaybackResult:
        """``result`` with every ``proxy`` info signed for ``user_id`` (``sign_info``)."""
        return attrs.evolve(result, infos=tuple(
            self.sign_info(info, room_id=room_id, media_id=result.media_id, user_id=user_id, now_ms=now_ms)
            if info.mode == "proxy" else info
            for info in result.infos
        ))
