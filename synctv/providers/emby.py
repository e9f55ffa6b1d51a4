"""Emby: the MediaBrowser dialect with the ``/emby`` API base.

Where Emby differs from Jellyfin (``../shared/providers-api.md`` section 2): every call goes to
``{server}/emby/...`` and the URLs it returns are relative to that base; the authorization scheme
is ``Emby``; the token goes in ``X-Emby-Token``; ``MediaSources[].DirectStreamUrl`` exists (used
when present, with its ``api_key`` removed); the user's items are ``/Users/{user}/Items``.
"""

from __future__ import annotations

from synctv.providers.mediabrowser import Dialect, MediaBrowserBackend

EMBY = Dialect(
    kind="emby", prefix="/emby", scheme="Emby", token_header="X-Emby-Token",
    stream_params=("Static", "MediaSourceId", "PlaySessionId"), views_path="/Users/{user}/Views",
    has_direct_stream_url=True,
)


class EmbyBackend(MediaBrowserBackend):
    def __init__(self) -> None:
        super().__init__(EMBY)
