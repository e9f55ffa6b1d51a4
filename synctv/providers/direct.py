"""The ``direct`` provider: a plain http(s) URL the client plays itself.

It offers one PlaybackInfo, mode ``direct``, carrying the item's headers and subtitles, when
the client profile admits it:

- ``modes`` given without ``direct`` -> nothing;
- ``headers=0`` and the item needs request headers -> nothing (a browser ``<video>`` cannot send
  them); subtitles that need headers are dropped for such a client;
- ``formats`` given -> the item's format must be listed, unless it is ``unknown``.

The proxy mode (the server fetches and relays the URL) arrives with synctv.proxy; until then a
client that cannot use the direct URL gets an empty ``infos`` list, which is a valid answer.
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
        if not (
            profile.accepts_mode("direct")
            and profile.accepts_headers(media.headers)
            and profile.accepts_format(fmt)
        ):
            return []
        subtitles = tuple(s for s in media.subtitles if profile.accepts_headers(s.headers))
        return [
            PlaybackInfo(
                mode="direct", url=media.url, format=fmt, headers=dict(media.headers),
                subtitles=subtitles,
            )
        ]

    def playback(self, media: MediaItem, profile: ClientProfile, now_ms: int) -> Deferred[PlaybackResult]:
        return succeed(
            PlaybackResult(media_id=media.id, provider=self.name, infos=tuple(self.infos(media, profile)))
        )
