"""The ``direct`` provider: a plain http(s) URL, played by the client itself or through the proxy.

It offers, best first, every mode the client profile admits:

- ``direct``: the item's URL, headers and subtitles, for a client that can send the headers the
  item needs (``headers=0`` and an item with headers rules it out; subtitles that need headers
  are dropped for such a client);
- ``proxy``: the server relays the URL (synctv.proxy), so the client needs no headers and the
  upstream need not be reachable from it. The provider's ``proxy`` info names the *upstream* URL,
  headers and subtitles (each with its own headers); the server turns it into a signed proxy URL
  bound to the room, the item and the user (``synctv.proxy.proxy_urls.ProxyLinks.sign_result``), or
  drops it when the proxy is not running.

``modes`` given without a mode rules that mode out; ``formats`` given rules out an item whose
format is not listed, unless it is ``unknown``. With no profile, both modes are offered.
"""
from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from twisted.internet.defer import Deferred, succeed

from synctv.core.errors import BadRequest
from synctv.core.models import MediaItem
from synctv.providers.base import ClientProfile, PlaybackInfo, PlaybackResult

FORMATS_BY_EXTENSION: dict[str, str] = {
    ".m3u8": "hls",
    ".flv": "flv",
    ".mp4": "mp4",
    ".m4v": "mp4",
    ".webm": "webm",
    ".mkv": "mkv",
    ".mp3": "mp3",
    ".m4a": "m4a",
    ".ogg": "ogg",
    ".ogv": "ogg",
    ".mpd": "dash",
}
_BAD_URL_CHARS = re.compile(r"[\x00-\x20\x7f]")


def guess_format(url: str) -> str:
    """The media format named by the URL path's extension, or ``unknown``."""
    try:
        path = urlsplit(url).path
    except ValueError:
        return "unknown"
    ext = posixpath.splitext(unquote(path))[1].lower()
    return FORMATS_BY_EXTENSION.get(ext, "unknown")


def check_http_url(url: str, field: str = "url") -> None:
    """Raise BadRequest unless ``url`` is an absolute http(s) URL with a host."""
    if _BAD_URL_CHARS.search(url):
        raise BadRequest(f"{field} must not contain spaces or control characters", field=field)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a bad port
    except ValueError:
        raise BadRequest(f"{field} is not a valid URL", field=field) from None
    if parts.scheme.lower() not in ("http", "https"):
        raise BadRequest(f"{field} must be an http:// or https:// URL", field=field)
    if not parts.hostname:
        raise BadRequest(f"{field} must name a host", field=field)


class DirectProvider:
    name = "direct"

    def validate(self, url: str, provider_data: Mapping[str, Any]) -> None:
        check_http_url(url)

    def infos(self, media: MediaItem, profile: ClientProfile) -> list[PlaybackInfo]:
        fmt = guess_format(media.url)
        if not profile.accepts_format(fmt):
            return []
        infos = []
        if profile.accepts_mode("direct") and profile.accepts_headers(media.headers):
            subtitles = tuple(s for s in media.subtitles if profile.accepts_headers(s.headers))
            infos.append(PlaybackInfo(
                mode="direct", url=media.url, format=fmt, headers=dict(media.headers), subtitles=subtitles,
            ))
        if profile.accepts_mode("proxy"):
            infos.append(PlaybackInfo(
                mode="proxy", url=media.url, format=fmt, headers=dict(media.headers), subtitles=media.subtitles,
                signer="proxy",
            ))
        return infos

    def playback(self, media: MediaItem, profile: ClientProfile, now_ms: int) -> Deferred[PlaybackResult]:
        return succeed(
            PlaybackResult(media_id=media.id, provider=self.name, infos=tuple(self.infos(media, profile)))
        )
