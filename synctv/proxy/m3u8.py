"""Rewrite the URIs of an HLS playlist (RFC 8216, with the rfc8216bis low-latency tags). Pure.

:func:`rewrite_playlist` sends every URI of a master or media playlist through a callback
``rewrite(absolute_url, kind, index) -> str`` after resolving it against the playlist's own URL
(``urllib.parse.urljoin``), and puts the callback's answer in its place. Every other byte stays as
it was: tags, comments, blank lines, line endings (LF or CRLF, even mixed), a leading BOM, the
presence or absence of a final newline.

``kind`` says what the URI names (see the ``KIND_*`` constants; :data:`PLAYLIST_KINDS` are the ones
that name another playlist, which the proxy rewrites in turn); ``index`` counts the URIs of that
kind from 0 in playlist order.

URI sources: URI lines (a variant stream after ``EXT-X-STREAM-INF`` in a master playlist, a
segment in a media playlist) and the ``URI`` attribute of ``EXT-X-KEY``, ``EXT-X-SESSION-KEY``,
``EXT-X-MAP``, ``EXT-X-MEDIA``, ``EXT-X-I-FRAME-STREAM-INF``, ``EXT-X-SESSION-DATA``, ``EXT-X-PART``,
``EXT-X-PRELOAD-HINT``, ``EXT-X-RENDITION-REPORT``, plus ``SERVER-URI`` of
``EXT-X-CONTENT-STEERING``. A URI attribute written without quotes (not allowed, but seen) is
written back quoted. An empty URI is left alone.

Playlists are UTF-8. Bytes that are not are kept as they are outside URIs; inside a URI, every
non-ASCII byte is percent-encoded before resolution (what a browser does), so the callback always
gets an ASCII URL.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import overload
from urllib.parse import urljoin

from synctv.core.errors import Unavailable

KIND_VARIANT = "variant"
KIND_SEGMENT = "segment"
KIND_IFRAME = "iframe"
KIND_MEDIA = "media"
KIND_KEY = "key"
KIND_SESSION_KEY = "session_key"
KIND_SESSION_DATA = "session_data"
KIND_MAP = "map"
KIND_PART = "part"
KIND_PRELOAD_HINT = "preload_hint"
KIND_RENDITION_REPORT = "rendition_report"
KIND_STEERING = "steering"

#: Kinds whose URI names another playlist.
PLAYLIST_KINDS = frozenset({KIND_VARIANT, KIND_IFRAME, KIND_MEDIA, KIND_RENDITION_REPORT})

Rewrite = Callable[[str, str, int], str]

#: Tag -> (attribute holding a URI, kind).
URI_ATTRIBUTES: dict[str, tuple[str, str]] = {
    "EXT-X-KEY": ("URI", KIND_KEY),
    "EXT-X-SESSION-KEY": ("URI", KIND_SESSION_KEY),
    "EXT-X-MAP": ("URI", KIND_MAP),
    "EXT-X-MEDIA": ("URI", KIND_MEDIA),
    "EXT-X-I-FRAME-STREAM-INF": ("URI", KIND_IFRAME),
    "EXT-X-SESSION-DATA": ("URI", KIND_SESSION_DATA),
    "EXT-X-PART": ("URI", KIND_PART),
    "EXT-X-PRELOAD-HINT": ("URI", KIND_PRELOAD_HINT),
    "EXT-X-RENDITION-REPORT": ("URI", KIND_RENDITION_REPORT),
    "EXT-X-CONTENT-STEERING": ("SERVER-URI", KIND_STEERING),
}

_MASTER_TAGS = frozenset(
    {"EXT-X-STREAM-INF", "EXT-X-I-FRAME-STREAM-INF", "EXT-X-MEDIA", "EXT-X-SESSION-DATA", "EXT-X-SESSION-KEY"}
)
_MEDIA_TAGS = frozenset(
    {
        "EXTINF",
        "EXT-X-TARGETDURATION",
        "EXT-X-MEDIA-SEQUENCE",
        "EXT-X-DISCONTINUITY-SEQUENCE",
        "EXT-X-ENDLIST",
        "EXT-X-PLAYLIST-TYPE",
        "EXT-X-I-FRAMES-ONLY",
        "EXT-X-BYTERANGE",
        "EXT-X-PART",
        "EXT-X-PART-INF",
    }
)
_BOM = "\ufeff"
_OWS = " \t"
_ATTR_NAME = re.compile(r"[ \t]*([A-Za-z0-9_-]+)[ \t]*=")
_NON_ASCII = re.compile("[^\x00-\x7f]+")


class M3U8Error(Unavailable, ValueError):
    """The upstream body is not an HLS playlist this proxy can rewrite."""


def _decode(body: bytes | str) -> str:
    if isinstance(body, bytes):
        return body.decode("utf-8", "surrogateescape")
    return body


def _lines(text: str) -> list[str]:
    """The playlist's lines (``\\r`` kept on CRLF lines), after checking the ``#EXTM3U`` header."""
    head = text[1:] if text.startswith(_BOM) else text
    first = head.split("\n", 1)[0].rstrip("\r" + _OWS)
    if first != "#EXTM3U":
        shown = first[:40].encode("ascii", "backslashreplace").decode("ascii")
        raise M3U8Error(f"not an HLS playlist: the first line is {shown!r}, not '#EXTM3U'")
    return text.split("\n")


def _tag_name(stripped: str) -> str | None:
    """``EXT-X-KEY`` for ``#EXT-X-KEY:...``; ``None`` for comments and non-tag lines."""
    if not stripped.startswith("#EXT"):
        return None
    return stripped[1:].split(":", 1)[0].rstrip(_OWS)


def _kind_of(lines: list[str]) -> bool:
    master = media = False
    for line in lines:
        name = _tag_name(line.strip(_OWS + "\r"))
        if name in _MASTER_TAGS:
            master = True
        elif name in _MEDIA_TAGS:
            media = True
    if master and media:
        raise M3U8Error("the playlist mixes master playlist tags and media playlist tags")
    return master


def is_master(body: bytes | str) -> bool:
    """Whether ``body`` is a master playlist (variant streams) rather than a media playlist.

    ``M3U8Error`` when it is not a playlist, or mixes the tags of both kinds (RFC 8216 4.1).
    """
    return _kind_of(_lines(_decode(body)))


def _ascii_uri(uri: str) -> str:
    """Percent-encode the non-ASCII bytes of a URI (raw undecodable bytes included)."""

    def encode(m: re.Match[str]) -> str:
        try:
            raw = m.group().encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raw = m.group().encode("utf-8", "surrogatepass")
        return "".join(f"%{b:02X}" for b in raw)

    return _NON_ASCII.sub(encode, uri)


class _Rewriter:
    def __init__(self, base_url: str, rewrite: Rewrite) -> None:
        self.base_url = base_url
        self.rewrite = rewrite
        self.counts: dict[str, int] = {}

    def uri(self, raw: str, kind: str) -> str:
        absolute = urljoin(self.base_url, _ascii_uri(raw.strip(_OWS)))
        index = self.counts.get(kind, 0)
        self.counts[kind] = index + 1
        out = self.rewrite(absolute, kind, index)
        if not isinstance(out, str) or any(c in out for c in '"\r\n'):
            raise ValueError(f"rewrite callback returned {out!r} for a {kind} URI")
        return out

    def uri_line(self, content: str, kind: str) -> str:
        start = len(content) - len(content.lstrip(_OWS))
        end = len(content.rstrip(_OWS))
        return content[:start] + self.uri(content[start:end], kind) + content[end:]

    def tag_line(self, content: str, attribute: str, kind: str) -> str:
        """Rewrite the value of ``attribute`` in the tag's attribute list; leave the rest untouched."""
        colon = content.find(":")
        if colon < 0:
            return content
        pos, n = colon + 1, len(content)
        while pos < n:
            m = _ATTR_NAME.match(content, pos)
            if m is None:
                return content
            name, pos = m.group(1), m.end()
            quoted = pos < n and content[pos] == '"'
            if quoted:
                close = content.find('"', pos + 1)
                if close < 0:
                    return content
                v_start, v_end, after = pos + 1, close, close + 1
            else:
                comma = content.find(",", pos)
                v_end = n if comma < 0 else comma
                v_start, after = pos, v_end
            if name == attribute:
                value = content[v_start:v_end]
                if not value.strip(_OWS):
                    return content
                new = self.uri(value, kind)
                if quoted:
                    return content[:v_start] + new + content[v_end:]
                return content[:v_start] + '"' + new + '"' + content[v_end:]
            comma = content.find(",", after)
            if comma < 0:
                return content
            pos = comma + 1
        return content


@overload
def rewrite_playlist(body: bytes, playlist_url: str, rewrite: Rewrite) -> bytes: ...
@overload
def rewrite_playlist(body: str, playlist_url: str, rewrite: Rewrite) -> str: ...
def rewrite_playlist(body: bytes | str, playlist_url: str, rewrite: Rewrite) -> bytes | str:
    """``body`` with every URI replaced by ``rewrite(absolute_url, kind, index)`` (module docstring).

    Returns the same type it was given. ``M3U8Error`` when ``body`` does not start with
    ``#EXTM3U`` (after an optional BOM) or mixes master and media tags; ``ValueError`` when the
    callback answers something that cannot stand in a playlist (a quote or a line break).
    """
    text = _decode(body)
    lines = _lines(text)
    master = _kind_of(lines)
    rewriter = _Rewriter(playlist_url, rewrite)
    out: list[str] = []
    for i, line in enumerate(lines):
        cr = "\r" if line.endswith("\r") else ""
        content = line[:-1] if cr else line
        if i == 0:  # the #EXTM3U line
            out.append(line)
            continue
        stripped = content.strip(_OWS)
        if not stripped:
            out.append(line)
        elif stripped.startswith("#"):
            name = _tag_name(stripped)
            target = URI_ATTRIBUTES.get(name) if name is not None else None
            if target is None:
                out.append(line)
            else:
                out.append(rewriter.tag_line(content, *target) + cr)
        else:
            out.append(rewriter.uri_line(content, KIND_VARIANT if master else KIND_SEGMENT) + cr)
    result = "\n".join(out)
    if isinstance(body, bytes):
        return result.encode("utf-8", "surrogateescape")
    return result
