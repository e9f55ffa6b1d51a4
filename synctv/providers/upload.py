"""The ``upload`` provider: a video uploaded to this server (``POST /api/videos``).

A media item with provider ``upload`` has the URL ``upload:{video id}``. It plays in mode
``direct`` from ``/api/videos/{video}/file`` on this server (absolute when ``public_url`` is
configured), which honours ``Range``; the format is the container ffprobe found at upload. The
item needs no request headers, so every client profile that accepts ``direct`` and the format
gets it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from twisted.internet.defer import Deferred

from synctv.core.displays import video_id_of
from synctv.core.errors import BadRequest
from synctv.core.models import MediaItem
from synctv.providers.base import ClientProfile, PlaybackInfo, PlaybackResult


def video_file_path(video_id: str) -> str:
    """Where this server serves an uploaded video's bytes."""
    return f"/api/videos/{video_id}/file"


class UploadProvider:
    name = "upload"

    def __init__(self, store: Any, base_url: str = "") -> None:
        self.store = store  # a synctv.store Store: only ``get_video`` is used
        self.base_url = base_url.rstrip("/")

    def url_for(self, video_id: str) -> str:
        return self.base_url + video_file_path(video_id)

    def validate(self, url: str, provider_data: Mapping[str, Any]) -> None:
        if video_id_of(url) is None:
            raise BadRequest("an uploaded video's url is 'upload:' followed by the video id from "
                             "GET /api/videos", field="url")

    async def _playback(self, media: MediaItem, profile: ClientProfile) -> PlaybackResult:
        video_id = video_id_of(media.url)
        video = None if video_id is None else await self.store.get_video(video_id)
        infos: tuple[PlaybackInfo, ...] = ()
        if video is not None and profile.accepts_mode("direct") and profile.accepts_format(video.format):
            infos = (
                PlaybackInfo(
                    mode="direct", url=self.url_for(video.id), format=video.format,
                    subtitles=tuple(s for s in media.subtitles if profile.accepts_headers(s.headers)),
                    metadata={"video_id": video.id, "size": video.size, "duration": video.duration,
                              "content_type": video.content_type},
                ),
            )
        return PlaybackResult(media_id=media.id, provider=self.name, infos=infos)

    def playback(self, media: MediaItem, profile: ClientProfile, now_ms: int) -> Deferred[PlaybackResult]:
        return Deferred.fromCoroutine(self._playback(media, profile))
