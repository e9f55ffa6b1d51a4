"""Media items, playback (compare-and-set on ``version``), the wait for the slowest viewer, what the
background workers ask (auto-advance, probe sources and results) and the one PlaybackResult
(``playback_results``): the use-cases of docs/api.md on them (``Actions`` is the whole)."""


from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from synctv.actions.base import (
    CLEAR_RETRIES,
    MAX_TITLE,
    ActionsBase,
    MediaView,
    Viewer,
    _show,
    deferred,
    title_from_url,
)
from synctv.core import auth, playback, playlist, wait
from synctv.core.errors import (
    BadRequest,
    NotFound,
    StaleVersion,
    Unavailable,
)
from synctv.core.models import MediaItem, PlaybackState, Subtitle, User
from synctv.core.permissions import Permission
from synctv.providers.base import ClientProfile, PlaybackInfo, PlaybackResult
from synctv.store.interface import UNSET


class MediaActions(ActionsBase):
    # -- media ----------------------------------------------------------------------------------

    @deferred
    async def list_media(self, actor: User, ref: str) -> list[MediaView]:
        view = await self.access(actor, ref, to="see its playlist")
        shown = view.may(Permission.manage_media)
        return [MediaView(item, shown) for item in await self.store.list_media(view.room.id)]

    @deferred
    async def get_media(self, actor: User, ref: str, media_id: str) -> MediaView:
        view, item = await self.access_media(actor, ref, media_id, to="see its media")
        return MediaView(item, view.may(Permission.manage_media))

    @deferred
    async def add_media(
        self, actor: User, ref: str, *, url: str, title: str | None = None, provider: str = "direct",
        provider_data: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None,
        subtitles: Sequence[Subtitle] = (), duration: float | None = None,
    ) -> MediaItem:
        view = await self.access(actor, ref, to="add media", needs=Permission.manage_media)
        catalog = self.providers.catalog(provider)
        if catalog is not None:  # the provider says what the item is, with the actor's own account
            found = await catalog.describe(actor, url, provider_data or {})
            url, provider_data, title = found.url, found.provider_data, title or found.title
            duration = found.duration if duration is None else duration
            subtitles = tuple(subtitles) or found.subtitles
        else:
            self.providers.require(provider).validate(url, provider_data or {})
        item = MediaItem(
            id=auth.new_id(), room_id=view.room.id, sort=0, title=title or title_from_url(url), url=url,
            provider=provider, provider_data=dict(provider_data or {}), headers=dict(headers or {}),
            subtitles=tuple(subtitles), duration=duration, created_by=actor.id, created_at=self.clock(),
        )
        stored = await self.store.add_media(item)
        self._publish(view.room.id, {"type": "playlist"})
        return stored

    @deferred
    async def import_media(
        self, actor: User, ref: str, *, provider: str, url: str = "", provider_data: Mapping[str, Any] | None = None,
    ) -> list[MediaItem]:
        """Add every playable child of a catalog provider's folder, season or series, in its order."""
        view = await self.access(actor, ref, to="add media", needs=Permission.manage_media)
        self.providers.require(provider)
        catalog = self.providers.catalog(provider)
        if catalog is None:
            raise BadRequest(f"the {provider!r} provider has no folders to import", field="provider")
        found = await catalog.children(actor, url, provider_data or {})
        stored = []
        for child in found:
            stored.append(await self.store.add_media(MediaItem(
                id=auth.new_id(), room_id=view.room.id, sort=0, title=child.title[:MAX_TITLE], url=child.url,
                provider=provider, provider_data=dict(child.provider_data), subtitles=child.subtitles,
                duration=child.duration, created_by=actor.id, created_at=self.clock(),
            )))
        self._publish(view.room.id, {"type": "playlist"})
        return stored

    @deferred
    async def update_media(
        self, actor: User, ref: str, media_id: str, *, title: str = UNSET, url: str = UNSET,
        headers: Mapping[str, str] = UNSET, subtitles: Sequence[Subtitle] = UNSET, duration: float | None = UNSET,
    ) -> MediaItem:
        view = await self.access(actor, ref, to="change media", needs=Permission.manage_media)
        item = await self._media(view.room.id, media_id)
        if url is not UNSET:
            provider = self.providers.get(item.provider)
            if provider is not None:
                provider.validate(url, item.provider_data)
        changes = {
            key: value
            for key, value in (("title", title), ("url", url), ("headers", headers), ("duration", duration))
            if value is not UNSET
        }
        if subtitles is not UNSET:
            changes["subtitles"] = tuple(subtitles)
        if not changes:
            return item
        updated = await self.store.update_media(view.room.id, media_id, **changes)
        if updated is None:
            raise NotFound(f"no media item {_show(media_id)} in this room")
        self._publish(view.room.id, {"type": "playlist"})
        return updated

    @deferred
    async def delete_media(self, actor: User, ref: str, media_id: str) -> str:
        """Remove an item; if it was playing, the playback state is cleared (a new version)."""
        view = await self.access(actor, ref, to="remove media", needs=Permission.manage_media)
        if not await self.store.delete_media(view.room.id, media_id):
            raise NotFound(f"no media item {_show(media_id)} in this room")
        self._publish(view.room.id, {"type": "playlist"})
        await self._clear_if_playing(view.room.id, media_id)
        return media_id

    async def _clear_if_playing(self, room_id: str, media_id: str) -> None:
        for _ in range(CLEAR_RETRIES):
            state = await self.store.get_playback(room_id)
            if state is None or state.media_id != media_id:
                return
            new = playback.cleared(state, self.clock())
            if await self.store.set_playback(room_id, new, state.version):
                self._publish(room_id, {"type": "playbackState", "state": new.to_json()})
                return
        self.log.warn("could not clear the playback state of room {room_id} after {tries} tries",
                      room_id=room_id, tries=CLEAR_RETRIES)

    @deferred
    async def reorder_media(self, actor: User, ref: str, order: Sequence[str]) -> list[MediaItem]:
        view = await self.access(actor, ref, to="reorder media", needs=Permission.manage_media)
        items = await self.store.reorder_media(view.room.id, list(order))
        if items is None:
            raise BadRequest("order must name every media item of the room exactly once", field="order")
        self._publish(view.room.id, {"type": "playlist"})
        return items

    # -- playback -------------------------------------------------------------------------------

    @deferred
    async def get_playback_state(self, actor: User, ref: str) -> PlaybackState:
        view = await self.access(actor, ref, to="see its playback")
        return await self._state(view.room.id)

    @deferred
    async def update_playback(self, actor: User, ref: str, update: playback.Update) -> PlaybackState:
        """Apply ``update`` (from ``core.playback.parse_update``) by compare-and-set on the version."""
        view = await self.access(actor, ref, to="control playback", needs=Permission.control_playback)
        room_id = view.room.id
        state = await self._state(room_id)
        duration: float | None = None
        if update.action == "media":
            assert update.media_id is not None
            duration = (await self._media(room_id, update.media_id, field="media_id")).duration
        elif state.media_id is not None:
            current = await self.store.get_media(room_id, state.media_id)
            duration = current.duration if current is not None else None
        new = playback.apply_update(state, update, self.clock(), duration)
        if not await self._compare_and_set(room_id, new, state.version):
            current_state = await self._state(room_id)
            raise StaleVersion(
                f"version {update.version} is stale; the current version is {current_state.version}",
                detail=current_state.to_json(),
            )
        return new

    async def _compare_and_set(self, room_id: str, new: PlaybackState, based_on: int) -> bool:
        """Store ``new`` if the state is still at version ``based_on``, then announce it."""
        if not await self.store.set_playback(room_id, new, based_on):
            return False
        self._publish(room_id, {"type": "playbackState", "state": new.to_json()})
        return True

    # -- the room waits for its slowest viewer (synctv.core.wait) -------------------------------

    @deferred
    async def start_wait(self, room_id: str, for_user: str) -> PlaybackState | None:
        """Hold the room for a viewer (``for_user``, a name for the log) whose player is not
        ready: ``core.wait.waiting_state`` by compare-and-set. None when the room does not wait
        or its state changed meanwhile. The caller (a realtime connection) was authorized."""
        room = await self.store.get_room(room_id)
        if room is None:
            return None
        state = await self._state(room_id)
        new = wait.waiting_state(state, wait.WaitSettings.of(room.settings), room.kind, self.clock())
        if new is None or not await self._compare_and_set(room_id, new, state.version):
            return None
        self.log.info("room {room_name} waits for {user_name} (up to {wait_s}s)", room_name=room.name,
                      user_name=for_user, wait_s=round((new.at_ms - self.clock()) / 1000, 1))
        return new

    @deferred
    async def end_wait(self, room_id: str, version: int) -> PlaybackState | None:
        """Everyone is ready: the wait that state ``version`` holds resumes for all at once
        (``core.wait.resumed_state``) by compare-and-set; None when the state moved on."""
        state = await self._state(room_id)
        new = wait.resumed_state(state, version, self.clock())
        if new is None or not await self._compare_and_set(room_id, new, state.version):
            return None
        return new

    # -- the background workers (synctv.workers, docs/workers.md) --------------------------------

    @deferred
    async def auto_advance(self, room_id: str, based_on: PlaybackState, duration: float, end_ms: int,
                           ) -> PlaybackState | None:
        """The room's item ended at ``end_ms``: move on as ``settings.playlist`` says
        (``core.playlist.advanced``), by compare-and-set on ``based_on.version``, and only while
        the stored state is still ``based_on`` (same version, same item). None when it is not
        (another node advanced first, or a member changed it): nothing is written."""
        room = await self.store.get_room(room_id)
        state = await self.store.get_playback(room_id)
        if room is None or state is None or state.version != based_on.version or state.media_id != based_on.media_id:
            return None
        order = [item.id for item in await self.store.list_media(room_id)]
        new = playlist.advanced(state, order, playlist.mode_of(room.settings), duration, end_ms, self.clock())
        if not await self._compare_and_set(room_id, new, state.version):
            return None
        self.log.info("room {room_name}: {media_id} ended; {what}", room_name=room.name, media_id=state.media_id,
                      what="ended" if new.ended else f"now {new.media_id}")
        return new

    @deferred
    async def probe_source(self, item: MediaItem) -> tuple[str, dict[str, str]]:
        """Where the duration probe reads ``item``: the upstream URL and headers of its first
        ``direct``, ``proxy`` or ``hls`` PlaybackInfo as its provider gives it (before signing;
        the probe fetches it through the proxy's address-checked client). Unavailable when the
        provider is missing or names no such source."""
        provider = self.providers.get(item.provider)
        if provider is None:
            raise Unavailable(f"the {item.provider!r} provider is not available on this server")
        result = await provider.playback(item, ClientProfile(), self.clock())
        for info in result.infos:
            if info.mode in ("direct", "proxy", "hls") and info.document is None and info.signer in (None, "proxy"):
                return info.url, dict(info.headers)
        raise Unavailable(f"the {item.provider!r} provider gives no URL to read the duration from")

    @deferred
    async def record_probe(self, item: MediaItem, node: str, duration: float | None, error: str | None = None,
                           retry_at_ms: int = 0) -> bool:
        """Store a probe's outcome for ``item`` (leased to ``node``): its duration, or ``error``
        and when to retry; announce the playlist when written. False when the lease was lost."""
        if duration is not None:
            written = await self.store.finish_probe(item.room_id, item.id, node, duration)
        else:
            written = await self.store.fail_probe(item.room_id, item.id, node, error or "probe failed", retry_at_ms)
        if written:
            self._publish(item.room_id, {"type": "playlist"})
        return written

    @deferred
    async def playback_result(
        self, actor: User, ref: str, media_id: str, profile: ClientProfile
    ) -> PlaybackResult:
        """How ``actor``'s client (``profile``) can play the item: the one PlaybackResult that
        ``GET .../playback`` answers and the WebSocket ``playback`` message carries."""
        view, item = await self.access_media(actor, ref, media_id, to="play its media")
        return (await self.playback_results(item, [Viewer(actor, view.member, profile)]))[0]

    async def playback_results(self, item: MediaItem, viewers: Sequence[Viewer]) -> list[PlaybackResult]:
        """One PlaybackResult of ``item`` per viewer (who must have passed ``access``).

        The provider is asked once per distinct profile. Then each answer is made safe for its
        viewer: entries naming a ``signer`` (proxy, live) become signed, expiring URLs bound to
        the viewer (and are dropped when that signer is not running here), and a ``direct`` entry
        that carries header values goes only to a viewer with ``manage_media`` whose client said
        ``headers=1``; subtitles carrying header values are dropped from other direct entries.
        """
        provider = self.providers.get(item.provider)
        if provider is None:
            raise Unavailable(f"the {item.provider!r} provider is not available on this server")
        now = self.clock()
        by_profile: dict[ClientProfile, PlaybackResult] = {}
        for viewer in viewers:
            if viewer.profile not in by_profile:
                by_profile[viewer.profile] = await provider.playback(item, viewer.profile, now)
        results = []
        for viewer in viewers:
            result = by_profile[viewer.profile]
            infos = []
            for info in result.infos:
                safe = _safe_info(info, viewer)
                if safe is not None and safe.signer is not None:
                    signer = self.signers.get(safe.signer)
                    safe = None if signer is None else signer.sign_info(
                        safe, room_id=item.room_id, media_id=item.id, user_id=viewer.user.id, now_ms=now)
                if safe is not None:
                    infos.append(safe)
            results.append(attrs.evolve(result, infos=tuple(infos)))
        return results


def _safe_info(info: PlaybackInfo, viewer: Viewer) -> PlaybackInfo | None:
    """``info`` as ``viewer`` may receive it (``Actions.playback_results``), or None."""
    if info.signer is not None:
        return info  # the server keeps the upstream and its headers; the viewer gets a signed URL
    may_see = viewer.profile.can_send_headers is True and viewer.may(Permission.manage_media)
    if info.headers and not may_see:
        return None
    if not may_see and any(s.headers for s in info.subtitles):
        return attrs.evolve(info, subtitles=tuple(s for s in info.subtitles if not s.headers))
    return info
