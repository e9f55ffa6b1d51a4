"""The upload provider: upload:<video id> items play in mode direct from the served file."""

from __future__ import annotations

import pytest
import pytest_twisted

from synctv.core.displays import Video
from synctv.core.errors import BadRequest
from synctv.core.models import MediaItem, Subtitle
from synctv.providers.base import ClientProfile
from synctv.providers.upload import UploadProvider


def item(url: str) -> MediaItem:
    return MediaItem(id="m1", room_id="r1", sort=0, title="t", url=url, provider="upload",
                     subtitles=(Subtitle(name="en", url="https://h/en.vtt"),))


def test_only_upload_urls_validate():
    """An upload item's URL must name a video."""
    provider = UploadProvider(store=None)
    provider.validate("upload:abc123", {})
    for bad in ("https://h/a.mp4", "upload:", "upload:../../etc/passwd"):
        with pytest.raises(BadRequest) as info:
            provider.validate(bad, {})
        assert info.value.field == "url"


@pytest_twisted.ensureDeferred
async def test_playback_is_the_served_file_when_the_profile_admits_it(store):
    """direct + the probed format; absolute with public_url; nothing for profiles that exclude it."""
    await store.create_video(Video(id="v1", title="Intro", file_name="v1", size=99, content_type="video/webm",
                                   format="webm", duration=3.5))
    provider = UploadProvider(store, base_url="https://show.example/")
    result = await provider.playback(item("upload:v1"), ClientProfile(), 0)
    [info] = result.infos
    assert (info.mode, info.url, info.format) == ("direct", "https://show.example/api/videos/v1/file", "webm")
    assert info.metadata == {"video_id": "v1", "size": 99, "duration": 3.5, "content_type": "video/webm"}
    assert [s.name for s in info.subtitles] == ["en"]
    for profile in (ClientProfile(modes=frozenset({"proxy"})), ClientProfile(formats=frozenset({"mp4"}))):
        assert (await provider.playback(item("upload:v1"), profile, 0)).infos == ()
    assert (await provider.playback(item("upload:gone"), ClientProfile(), 0)).infos == ()
