"""Providers of live items: ``rtmp`` (pushed to this server) and ``live`` (an upstream HTTP-FLV URL
pulled by the live proxy). Both are played the same way, from this server:

- mode ``flv``, format ``flv``: ``.../live.flv`` -- low latency (mpegts.js, ffplay, VLC, mpv);
- mode ``hls``, format ``hls``: ``.../hls/index.m3u8`` -- any HLS player.

The provider names the route (``live.flv``, ``hls/index.m3u8``) with ``signer="live"``;
``Actions.playback_results`` has ``synctv.live.live_urls.LiveLinks`` turn it into a URL bound to the
viewer with a signature and an expiry, so a player that cannot send headers plays it as it is.
``metadata.live`` is true, and ``metadata.state`` says whether the stream is on the air on this
node right now.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from twisted.internet.defer import Deferred, succeed

from synctv.core.errors import BadRequest
from synctv.core.models import MediaItem
from synctv.providers.base import ClientProfile, PlaybackInfo, PlaybackResult
from synctv.providers.direct import check_http_url

StateOf = Callable[[MediaItem], str]  # "live" | "ended" | "offline"


class _LiveProvider:
    name = ""

    def __init__(self, state_of: StateOf = lambda item: "offline") -> None:
        self.state_of = state_of

    def infos(self, media: MediaItem, profile: ClientProfile, now_ms: int) -> list[PlaybackInfo]:
        metadata = {"live": True, "state": self.state_of(media)}
        infos = []
        for mode, tail in (("flv", "live.flv"), ("hls", "hls/index.m3u8")):
            if profile.accepts_mode(mode) and profile.accepts_format(mode):
                infos.append(PlaybackInfo(mode=mode, url=tail, format=mode, subtitles=media.subtitles,
                                          metadata=metadata, signer="live"))
        return infos

    def playback(self, media: MediaItem, profile: ClientProfile, now_ms: int) -> Deferred[PlaybackResult]:
        return succeed(PlaybackResult(media_id=media.id, provider=self.name,
                                      infos=tuple(self.infos(media, profile, now_ms))))


class RTMPProvider(_LiveProvider):
    """An item an RTMP publisher pushes to; it has no URL of its own."""

    name = "rtmp"

    def validate(self, url: str, provider_data: Mapping[str, Any]) -> None:
        if url:
            raise BadRequest("an rtmp item takes no url: publish to it with its stream key", field="url")


class LivePullProvider(_LiveProvider):
    """An upstream HTTP-FLV URL that the server pulls while someone watches."""

    name = "live"

    def validate(self, url: str, provider_data: Mapping[str, Any]) -> None:
        check_http_url(url)
