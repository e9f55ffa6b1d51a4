"""The ``Store`` interface over the ``sql`` interactions; each driver subclasses ``SQLStore``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from twisted.internet.defer import Deferred

from synctv.core.accounts import ProviderAccount
from synctv.core.displays import Display, DisplayEvent, Video
from synctv.core.live import PublisherRecord, StreamKey
from synctv.core.models import MediaItem, Member, PlaybackState, Room, User
from synctv.store import account_sql, display_sql, sql, worker_sql
from synctv.store.interface import UNSET
from synctv.store.statements import Interaction

T = TypeVar("T")


class SQLStore:
    """The ``Store`` methods; a driver subclass supplies ``dialect``, ``_run`` and ``close``."""

    dialect: str

    def _run(self, interaction: Callable[..., Interaction[T]], *args: Any) -> Deferred[T]:
        raise NotImplementedError

    def run_query(self, statement: str, params: tuple[Any, ...] = ()) -> Deferred[list[tuple[Any, ...]]]:
        """Run one statement (``?`` placeholders) and fire with its rows; for tests and diagnostics."""
        return self._run(sql.query, statement, tuple(params))

    def get_setting(self, key: str) -> Deferred[str | None]:
        return self._run(sql.get_setting, key)

    def put_setting_if_absent(self, key: str, value: str) -> Deferred[str]:
        return self._run(sql.put_setting_if_absent, key, value)

    def create_user(self, user: User) -> Deferred[User]:
        return self._run(sql.create_user, user)

    def get_user(self, user_id: str) -> Deferred[User | None]:
        return self._run(sql.get_user, user_id)

    def get_user_by_name(self, name: str) -> Deferred[User | None]:
        return self._run(sql.get_user_by_name, name)

    def list_users(self) -> Deferred[list[User]]:
        return self._run(sql.list_users)

    def count_users(self) -> Deferred[int]:
        return self._run(sql.count_users)

    def update_user(
        self, user_id: str, *, role: str = UNSET, password_hash: str = UNSET, bump_generation: bool = False
    ) -> Deferred[User | None]:
        return self._run(sql.update_user, user_id, role, password_hash, bump_generation)

    def delete_user(self, user_id: str) -> Deferred[bool]:
        return self._run(sql.delete_user, user_id)

    def create_room(self, room: Room, creator: Member, state: PlaybackState) -> Deferred[Room]:
        return self._run(sql.create_room, room, creator, state)

    def get_room(self, room_id: str) -> Deferred[Room | None]:
        return self._run(sql.get_room, room_id)

    def get_room_by_name(self, name: str) -> Deferred[Room | None]:
        return self._run(sql.get_room_by_name, name)

    def list_rooms(self) -> Deferred[list[Room]]:
        return self._run(sql.list_rooms)

    def update_room(
        self,
        room_id: str,
        *,
        name: str = UNSET,
        password_hash: str | None = UNSET,
        settings: dict[str, Any] = UNSET,
    ) -> Deferred[Room | None]:
        return self._run(sql.update_room, room_id, name, password_hash, settings)

    def delete_room(self, room_id: str) -> Deferred[bool]:
        return self._run(sql.delete_room, room_id)

    def put_member(self, member: Member) -> Deferred[Member]:
        return self._run(sql.put_member, member)

    def get_member(self, room_id: str, user_id: str) -> Deferred[Member | None]:
        return self._run(sql.get_member, room_id, user_id)

    def list_members(self, room_id: str) -> Deferred[list[Member]]:
        return self._run(sql.list_members, room_id)

    def delete_member(self, room_id: str, user_id: str) -> Deferred[bool]:
        return self._run(sql.delete_member, room_id, user_id)

    def add_media(self, item: MediaItem) -> Deferred[MediaItem]:
        return self._run(sql.add_media, item)

    def get_media(self, room_id: str, media_id: str) -> Deferred[MediaItem | None]:
        return self._run(sql.get_media, room_id, media_id)

    def list_media(self, room_id: str) -> Deferred[list[MediaItem]]:
        return self._run(sql.list_media, room_id)

    def update_media(self, room_id: str, media_id: str, **fields: Any) -> Deferred[MediaItem | None]:
        return self._run(sql.update_media, room_id, media_id, fields)

    def delete_media(self, room_id: str, media_id: str) -> Deferred[bool]:
        return self._run(sql.delete_media, room_id, media_id)

    def reorder_media(self, room_id: str, media_ids: list[str]) -> Deferred[list[MediaItem] | None]:
        return self._run(sql.reorder_media, room_id, list(media_ids))

    def get_playback(self, room_id: str) -> Deferred[PlaybackState | None]:
        return self._run(sql.get_playback, room_id)

    def set_playback(self, room_id: str, state: PlaybackState, expected_version: int) -> Deferred[bool]:
        return self._run(sql.set_playback, room_id, state, expected_version)

    def put_stream_key(self, key: StreamKey) -> Deferred[StreamKey]:
        return self._run(sql.put_stream_key, key)

    def get_stream_key(self, room_id: str, media_id: str) -> Deferred[StreamKey | None]:
        return self._run(sql.get_stream_key, room_id, media_id)

    def find_stream_key(self, key: str) -> Deferred[StreamKey | None]:
        return self._run(sql.find_stream_key, key)

    def delete_stream_key(self, room_id: str, media_id: str) -> Deferred[bool]:
        return self._run(sql.delete_stream_key, room_id, media_id)

    def claim_publisher(self, record: PublisherRecord, stale_before_ms: int) -> Deferred[PublisherRecord | None]:
        return self._run(sql.claim_publisher, record, stale_before_ms)

    def get_publisher(self, room_id: str, media_id: str) -> Deferred[PublisherRecord | None]:
        return self._run(sql.get_publisher, room_id, media_id)

    def release_publisher(self, room_id: str, media_id: str, node_id: str) -> Deferred[bool]:
        return self._run(sql.release_publisher, room_id, media_id, node_id)

    def touch_publishers(self, node_id: str, now_ms: int) -> Deferred[int]:
        return self._run(sql.touch_publishers, node_id, now_ms)

    # -- displays (synctv.store.display_sql) --------------------------------------------------------

    def create_display(self, display: Display) -> Deferred[Display]:
        return self._run(display_sql.create_display, display)

    def get_display(self, display_id: str) -> Deferred[Display | None]:
        return self._run(display_sql.get_display, display_id)

    def get_display_by_name(self, name: str) -> Deferred[Display | None]:
        return self._run(display_sql.get_display_by_name, name)

    def get_display_by_public_id(self, public_id: str) -> Deferred[Display | None]:
        return self._run(display_sql.get_display_by_public_id, public_id)

    def list_displays(self) -> Deferred[list[Display]]:
        return self._run(display_sql.list_displays)

    def update_display(self, display_id: str, **fields: Any) -> Deferred[Display | None]:
        return self._run(display_sql.update_display, display_id, fields)

    def delete_display(self, display_id: str) -> Deferred[bool]:
        return self._run(display_sql.delete_display, display_id)

    def create_event(self, event: DisplayEvent) -> Deferred[DisplayEvent]:
        return self._run(display_sql.create_event, event)

    def get_event(self, event_id: str) -> Deferred[DisplayEvent | None]:
        return self._run(display_sql.get_event, event_id)

    def get_event_by_name(self, name: str) -> Deferred[DisplayEvent | None]:
        return self._run(display_sql.get_event_by_name, name)

    def list_events(self) -> Deferred[list[DisplayEvent]]:
        return self._run(display_sql.list_events)

    def update_event(self, event_id: str, **fields: Any) -> Deferred[DisplayEvent | None]:
        return self._run(display_sql.update_event, event_id, fields)

    def delete_event(self, event_id: str) -> Deferred[bool]:
        return self._run(display_sql.delete_event, event_id)

    def claim_event_trigger(self, event_id: str, expected_last: int | None, now_ms: int) -> Deferred[bool]:
        return self._run(display_sql.claim_event_trigger, event_id, expected_last, now_ms)

    def create_video(self, video: Video) -> Deferred[Video]:
        return self._run(display_sql.create_video, video)

    def get_video(self, video_id: str) -> Deferred[Video | None]:
        return self._run(display_sql.get_video, video_id)

    def list_videos(self) -> Deferred[list[Video]]:
        return self._run(display_sql.list_videos)

    def update_video(self, video_id: str, **fields: Any) -> Deferred[Video | None]:
        return self._run(display_sql.update_video, video_id, fields)

    def delete_video(self, video_id: str) -> Deferred[bool]:
        return self._run(display_sql.delete_video, video_id)

    def list_upload_media(self) -> Deferred[list[tuple[str, str, str]]]:
        return self._run(display_sql.list_upload_media)

    # -- provider accounts (synctv.store.account_sql) -------------------------------------------------

    def create_provider_account(self, account: ProviderAccount) -> Deferred[ProviderAccount]:
        return self._run(account_sql.create_provider_account, account)

    def get_provider_account(self, account_id: str) -> Deferred[ProviderAccount | None]:
        return self._run(account_sql.get_provider_account, account_id)

    def list_provider_accounts(self, user_id: str) -> Deferred[list[ProviderAccount]]:
        return self._run(account_sql.list_provider_accounts, user_id)

    def update_provider_account(self, account_id: str, **fields: Any) -> Deferred[ProviderAccount | None]:
        return self._run(account_sql.update_provider_account, account_id, fields)

    def delete_provider_account(self, account_id: str, user_id: str) -> Deferred[bool]:
        return self._run(account_sql.delete_provider_account, account_id, user_id)

    # -- background workers (synctv.store.worker_sql, docs/workers.md) ---------------------------

    def claim_probes(
        self, room_ids: Sequence[str], node: str, now_ms: int, lease_ms: int, limit: int,
        skip_providers: Sequence[str] = (),
    ) -> Deferred[list[worker_sql.Claim]]:
        return self._run(worker_sql.claim_probes, self.dialect, tuple(room_ids), node, now_ms, lease_ms, limit,
                         tuple(skip_providers) or ("",))

    def finish_probe(self, room_id: str, media_id: str, node: str, duration: float) -> Deferred[bool]:
        return self._run(worker_sql.finish_probe, room_id, media_id, node, duration)

    def fail_probe(self, room_id: str, media_id: str, node: str, error: str, retry_at_ms: int) -> Deferred[bool]:
        return self._run(worker_sql.fail_probe, room_id, media_id, node, error, retry_at_ms)

    def playing_rooms(self, room_ids: Sequence[str]) -> Deferred[list[worker_sql.PlayingRoom]]:
        return self._run(worker_sql.playing_rooms, tuple(room_ids))

    def prune_bus_spill(self, before_ms: int) -> Deferred[int]:
        return self._run(worker_sql.prune_bus_spill, before_ms)

    def prune_publishers(self, stale_before_ms: int) -> Deferred[int]:
        return self._run(worker_sql.prune_publishers, stale_before_ms)
