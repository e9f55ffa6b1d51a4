"""What a proxy answer may call itself: media types only, never a page (docs/proxy.md, "Safety").

A proxy URL is on synctv's own origin, and the member who added the item chose the upstream, so
whatever the upstream says its body is must not let a browser run it as a document there.
:func:`answer_type` turns the upstream's ``Content-Type`` (or, when it has none or a generic one,
the URL's extension) into the type synctv sends:

- audio/*, video/* and image/* pass (image/svg+xml and any ``+xml`` type do not: XML documents
  can carry script), as do application/mp4 and application/ogg (media containers);
- subtitles: ``text/vtt`` and ``application/x-subrip`` pass; ``text/srt`` and ``text/x-srt`` are
  sent as ``application/x-subrip``. No other text/* type leaves the proxy;
- HLS playlists: ``application/vnd.apple.mpegurl``, ``application/x-mpegurl`` (and audio/mpegurl,
  audio/x-mpegurl as audio types). ``application/dash+xml`` does not pass: it is XML, and the
  proxy does not rewrite DASH manifests, so a proxied MPD could not play anyway;
- anything else, and anything unparsable (a list of types, a bad token), is
  ``application/octet-stream``. Only the type synctv computed is sent, never the upstream's text.

Parameters are dropped (``charset`` included: WebVTT is UTF-8 by definition, and SRT parsers
detect their encoding); the type is lowercased. When the upstream sends no type, or
``application/octet-stream``, ``binary/octet-stream`` or ``text/plain`` (servers often say that
for .vtt and .srt files), the URL's extension is looked up in :data:`TYPES_BY_EXTENSION` (never in
the host's mime.types, which differs between machines).

Every proxy answer -- media, playlist, subtitle, HEAD, 206, 416, errors, the CORS preflight --
also carries :data:`ANSWER_HEADERS`: ``X-Content-Type-Options: nosniff`` (the browser believes
the type) and ``Content-Security-Policy: sandbox`` (opened as a page, it gets an opaque origin
and runs no script).
"""

from __future__ import annotations

import posixpath
import re
from urllib.parse import unquote, urlsplit

from twisted.web.iweb import IRequest

OCTET_STREAM = "application/octet-stream"
ANSWER_HEADERS: dict[bytes, bytes] = {
    b"X-Content-Type-Options": b"nosniff",
    b"Content-Security-Policy": b"sandbox",
}
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_TYPE = re.compile(rf"\s*({_TOKEN})/({_TOKEN})\s*(?:;.*)?", re.S)
_MEDIA_TOP_LEVEL = frozenset({"audio", "video", "image"})
_PASSED = frozenset({
    "application/mp4", "application/ogg",
    "text/vtt", "application/x-subrip",
    "application/vnd.apple.mpegurl", "application/x-mpegurl",
})
_RENAMED = {"text/srt": "application/x-subrip", "text/x-srt": "application/x-subrip"}
_GENERIC = frozenset({"", OCTET_STREAM, "binary/octet-stream", "text/plain"})
TYPES_BY_EXTENSION = {
    ".mp4": "video/mp4", ".m4v": "video/mp4", ".m4s": "video/iso.segment", ".mov": "video/quicktime",
    ".webm": "video/webm", ".mkv": "video/x-matroska", ".ts": "video/mp2t", ".m2ts": "video/mp2t",
    ".flv": "video/x-flv", ".ogv": "video/ogg", ".avi": "video/x-msvideo",
    ".mp3": "audio/mpeg", ".m4a": "audio/mp4", ".aac": "audio/aac", ".ogg": "audio/ogg", ".oga": "audio/ogg",
    ".opus": "audio/ogg", ".flac": "audio/flac", ".wav": "audio/wav",
    ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".gif": "image/gif",
    ".webp": "image/webp", ".avif": "image/avif",
    ".vtt": "text/vtt", ".srt": "application/x-subrip",
    ".m3u8": "application/vnd.apple.mpegurl", ".m3u": "audio/mpegurl",
}


def essence(value: str | None) -> str | None:
    """``type/subtype`` of a Content-Type value, lowercased; ``None`` if it is not one media type."""
    if value is None:
        return None
    match = _TYPE.fullmatch(value)  # "video/mp4, text/html" does not match; parameters may hold commas
    if match is None:
        return None
    return f"{match.group(1)}/{match.group(2)}".lower()


def safe_type(mime: str) -> str:
    """``mime`` (an essence) if a proxy answer may carry it, else ``application/octet-stream``."""
    mime = _RENAMED.get(mime, mime)
    top, _, sub = mime.partition("/")
    if sub.endswith("+xml") or sub in ("xml", "svg"):
        return OCTET_STREAM
    if top in _MEDIA_TOP_LEVEL or mime in _PASSED:
        return mime
    return OCTET_STREAM


def type_of_url(url: str) -> str | None:
    """The media type the URL's extension names (:data:`TYPES_BY_EXTENSION`), if any."""
    try:
        path = unquote(urlsplit(url).path)
    except ValueError:
        return None
    return TYPES_BY_EXTENSION.get(posixpath.splitext(posixpath.basename(path))[1].lower())


def answer_type(upstream_value: str | None, url: str) -> str:
    """The Content-Type of a proxy answer for ``upstream_value`` from ``url`` (module docstring)."""
    mime = essence(upstream_value) if upstream_value is not None and upstream_value.strip() else ""
    if mime is None:
        return OCTET_STREAM
    if mime in _GENERIC:
        mime = type_of_url(url) or OCTET_STREAM
    return safe_type(mime)


def mark_answer(request: IRequest) -> None:
    """Set :data:`ANSWER_HEADERS` on a proxy answer (before anything else can fail)."""
    for name, value in ANSWER_HEADERS.items():
        request.setHeader(name, value)
