"""Who may fetch what through the proxy, and from which upstream.

A proxy request names a room and a media item in its path and carries a signed grant in its
query (``synctv.proxy.proxy_urls``). :meth:`MediaAccess.resolve` answers 404 for an unknown room or
item (before looking at the signature, like every route), 403 for a missing, forged or expired
signature, and 403 when the signed user is gone or no longer a member of the room (site admins
see every room; ``Actions.access_by_grant``, the same check as every route). It then asks the item's
provider how to proxy it: the PlaybackInfo of the URL's mode (``proxy``, or what the signed
``m=`` names, e.g. ``hls`` for an Emby transcode) whose ``signer`` is ``proxy``. The upstream URL
and headers always come from the provider, never from the client.

Successful resolutions are remembered for ``ttl_s`` seconds per (room, item, user, mode) -- less
when the provider's upstream URL expires sooner (its ``expires_at``) -- so a player's
many range requests cost no database round trips; a membership removed or an item deleted is
noticed within that time.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from synctv.core.errors import Forbidden, NotFound
from synctv.core.models import MediaItem
from synctv.providers.base import ClientProfile, PlaybackInfo
from synctv.proxy.m3u8 import PLAYLIST_KINDS
from synctv.proxy.proxy_urls import KIND_ITEM, KIND_SUBTITLE, ProxyGrant, ProxyLinks
from synctv.proxy.service import Upstream

TTL_S = 5.0
MAX_ENTRIES = 4096
PROXIED_MODES = frozenset({"proxy", "hls"})  # modes a provider may hand to the proxy (``m=``)
EXPIRY_MARGIN_MS = 30_000


@attrs.frozen
class ProxyTarget:
    """A media item as the proxy relays it: the provider's ``proxy`` PlaybackInfo."""

    room_id: str
    media: MediaItem
    info: PlaybackInfo


def _expiring(info: PlaybackInfo, now_ms: int) -> bool:
    """Whether the upstream URL of a provider's info expires within ``EXPIRY_MARGIN_MS`` (then it
    is asked for again rather than reused)."""
    return info.expires_at is not None and now_ms >= info.expires_at - EXPIRY_MARGIN_MS


def upstream_for(grant: ProxyGrant, target: ProxyTarget) -> Upstream:
    """What a grant fetches: the item, one of its subtitles, or a URI from one of its playlists."""
    info = target.info
    if grant.kind == KIND_ITEM:
        return Upstream(info.url, dict(info.headers), playlist=info.format == "hls" and info.document is None,
                        hidden_params=info.hidden_params, document=info.document)
    if grant.kind == KIND_SUBTITLE:
        if grant.index >= len(info.subtitles):
            raise NotFound(f"this media item has no subtitle {grant.index}")
        subtitle = info.subtitles[grant.index]
        return Upstream(subtitle.url, dict(subtitle.headers), as_webvtt=subtitle.format == "srt")
    if grant.url is None:
        raise Forbidden("this proxy URL does not name an upstream")
    return Upstream(grant.url, dict(info.headers), playlist=grant.kind in PLAYLIST_KINDS,
                    hidden_params=info.hidden_params)


class MediaAccess:
    """See the module docstring. ``clock`` is monotonic seconds; ``now_ms`` is server time."""

    def __init__(
        self, actions: Any, links: ProxyLinks, *, ttl_s: float = TTL_S, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.actions = actions
        self.links = links
        self.ttl_s = ttl_s
        self.clock = clock
        self._known: OrderedDict[tuple[str, str, str, str], tuple[float, ProxyTarget]] = OrderedDict()

    def forget(self) -> None:
        self._known.clear()

    def _param(self, args: Mapping[Any, Sequence[Any]], name: str, default: str = "") -> str:
        values = args.get(name.encode("ascii")) or args.get(name) or [default.encode("ascii")]
        value = values[0]
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)

    async def resolve(
        self, room_ref: str, media_id: str, kind: str, index: int, args: Mapping[Any, Sequence[Any]]
    ) -> tuple[ProxyGrant, Upstream]:
        now_ms = self.actions.clock()
        mode = self._param(args, "m", "proxy")
        if mode not in PROXIED_MODES:
            raise NotFound(f"no proxied way to play named {mode[:40]!r}")
        key = (room_ref, media_id, self._param(args, "u"), mode)
        known = self._known.get(key)
        if known is not None and self.clock() - known[0] < self.ttl_s and not _expiring(known[1].info, now_ms):
            target = known[1]
            grant = self.links.verify(target.room_id, media_id, kind, index, args, now_ms)
            return grant, upstream_for(grant, target)
        room, media = await self.actions.find_media(room_ref, media_id)
        grant = self.links.verify(room.id, media_id, kind, index, args, now_ms)
        await self.actions.access_by_grant(grant.user_id, room, to="play its media through the proxy")
        provider = self.actions.providers.get(media.provider)
        if provider is None:
            raise NotFound(f"the {media.provider!r} provider is not available on this server")
        result = await provider.playback(media, ClientProfile(modes=frozenset({mode})), now_ms)
        info = next((i for i in result.infos if i.mode == mode and i.signer == "proxy"), None)
        if info is None:
            raise NotFound("this media item is not offered through the proxy")
        target = ProxyTarget(room.id, media, info)
        self._known[key] = (self.clock(), target)
        self._known.move_to_end(key)
        while len(self._known) > MAX_ENTRIES:
            self._known.popitem(last=False)
        return grant, upstream_for(grant, target)
