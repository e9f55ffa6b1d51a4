"""Proxied answers that are not the upstream's bytes as they are: a provider's own manifest, and
SRT subtitles as WebVTT.

- :func:`serve_manifest`: a DASH MPD a provider made (``PlaybackInfo.document``: Bilibili's
  separate video and audio tracks) with every ``BaseURL`` turned into a signed proxy URL of kind
  ``segment`` (fetched with the item's headers, honouring ``Range`` like any proxied body).
- :func:`serve_webvtt`: an SRT subtitle fetched whole (at most ``MAX_SUBTITLE_BYTES``) and answered
  as WebVTT (``synctv.core.subtitles``), since browsers' ``<track>`` reads only WebVTT.

Both answer ``Cache-Control: no-store`` and ``X-Content-Type-Options: nosniff``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable

from twisted.web.iweb import IRequest

from synctv.core.subtitles import srt_to_vtt
from synctv.proxy.m3u8 import KIND_SEGMENT
from synctv.proxy.relay import is_head
from synctv.proxy.upstream import UpstreamClient, UpstreamError, upstream_headers

MAX_SUBTITLE_BYTES = 4 << 20
MPD_TYPE = b"application/dash+xml"
VTT_TYPE = b"text/vtt; charset=utf-8"
_BASE_URL = re.compile(r"<BaseURL>([^<]*)</BaseURL>")


def rewrite_mpd(document: str, rewrite: Callable[[str, str, int], str]) -> str:
    """``document`` with the i-th ``BaseURL`` replaced by ``rewrite(url, "segment", i)``."""
    count = iter(range(1 << 30))

    def replace(m: re.Match[str]) -> str:
        return f"<BaseURL>{html.escape(rewrite(html.unescape(m.group(1)), KIND_SEGMENT, next(count)))}</BaseURL>"

    return _BASE_URL.sub(replace, document)


def _answer(request: IRequest, content_type: bytes, body: bytes) -> None:
    request.setResponseCode(200)
    request.setHeader(b"Content-Type", content_type)
    request.setHeader(b"Content-Length", str(len(body)).encode("ascii"))
    request.setHeader(b"Cache-Control", b"no-store")
    request.setHeader(b"X-Content-Type-Options", b"nosniff")
    if not is_head(request):
        request.write(body)


def serve_manifest(request: IRequest, document: str, rewrite: Callable[[str, str, int], str]) -> None:
    _answer(request, MPD_TYPE, rewrite_mpd(document, rewrite).encode("utf-8"))


async def serve_webvtt(request: IRequest, client: UpstreamClient, url: str, headers: dict[str, str]) -> None:
    response = await client.open("GET", url, upstream_headers(headers))
    if response.code != 200:
        response.discard()
        raise UpstreamError(f"the upstream answered {response.code} for the subtitle",
                            detail={"upstream_status": response.code})
    _answer(request, VTT_TYPE, srt_to_vtt(await response.read(MAX_SUBTITLE_BYTES)))
