"""The one storage interface. ``sqlite.SQLiteStore`` and ``postgres.PostgresStore`` implement it
and pass the same test suite (tests/store/).

Every method returns a Deferred. Methods never raise for "not there": they fire with ``None`` or
``False``; they raise ``Conflict`` when a unique name is taken. Writes are committed before the
Deferred fires.
"""

from __future__ import annotations

from typing import Any, Protocol

from twisted.internet.defer import Deferred

from synctv.core.accounts import ProviderAccount
from synctv.core.displays import Display, DisplayEvent, Video
from synctv.core.live import PublisherRecord, StreamKey
from synctv.core.models import MediaItem, Member, PlaybackState, Room, User


class Unset:
    """Marks a keyword that was not given (distinct from an explicit ``None``)."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = Unset()


class Store(Protocol):
    dialect: str  # "sqlite" | "postgres"

    # settings: small server-wide values such as the token secret
    def get_setting(self, key: str) -> Deferred[str | None]: ...
    def put_setting_if_absent(self, key: str, value: str) -> Deferred[str]:
        """Store ``value`` unless the key exists; fire with the value that is stored now."""

    # users
    def create_user(self, user: User) -> Deferred[User]: ...
    def get_user(self, user_id: str) -> Deferred[User | None]: ...
    def get_user_by_name(self, name: str) -> Deferred[User | None]: ...
    def list_users(self) -> Deferred[list[User]]: ...
    def count_users(self) -> Deferred[int]: ...
    def update_user(
        self, user_id: str, *, role: str = UNSET, password_hash: str = UNSET, bump_generation: bool = False
    ) -> Deferred[User | None]: ...
    def delete_user(self, user_id: str) -> Deferred[bool]: ...

    # rooms; creating a room also makes its creator a member and its initial playback state
    def create_room(self, room: Room, creator: Member, state: PlaybackState) -> Deferred[Room]: ...
    def get_room(self, room_id: str) -> Deferred[Room | None]: ...
    def get_room_by_name(self, name: str) -> Deferred[Room | None]: ...
    def list_rooms(self) -> Deferred[list[Room]]: ...
    def update_room(
        self, room_id: str, *, name: str = UNSET, password_hash: str | None = UNSET,
        settings: dict[str, Any] = UNSET,
    ) -> Deferred[Room | None]: ...
    def delete_room(self, room_id: str) -> Deferred[bool]:
        """Deletes members, media and playback state with the room."""

    # members
    def put_member(self, member: Member) -> Deferred[Member]:
        """Insert or replace (role, permissions) of one member; ``joined_at`` is kept on replace."""
    def get_member(self, room_id: str, user_id: str) -> Deferred[Member | None]: ...
    def list_members(self, room_id: str) -> Deferred[list[Member]]:
        """Members with ``user_name`` filled in, in join order."""
    def delete_member(self, room_id: str, user_id: str) -> Deferred[bool]: ...

    # media items; ``sort`` of a new item is assigned by the store: after every existing item
    def add_media(self, item: MediaItem) -> Deferred[MediaItem]: ...
    def get_media(self, room_id: str, media_id: str) -> Deferred[MediaItem | None]: ...
    def list_media(self, room_id: str) -> Deferred[list[MediaItem]]:
        """The room's playlist in ``sort`` order."""
    def update_media(self, room_id: str, media_id: str, **fields: Any) -> Deferred[MediaItem | None]:
        """Fields: title, url, provider, provider_data, headers, subtitles, duration."""
    def delete_media(self, room_id: str, media_id: str) -> Deferred[bool]: ...
    def reorder_media(self, room_id: str, media_ids: list[str]) -> Deferred[list[MediaItem] | None]:
        """Set the order to ``media_ids``; None (nothing changed) unless it names every item once."""

    # playback state: one row per room, written by compare-and-set on ``version``
    def get_playback(self, room_id: str) -> Deferred[PlaybackState | None]: ...
    def set_playback(self, room_id: str, state: PlaybackState, expected_version: int) -> Deferred[bool]:
        """Write ``state`` if the stored version is ``expected_version``; fire False if not."""

    # live: one stream key per live media item (rotate = put again, revoke = delete), and which
    # node holds each item's publisher (see synctv.core.live)
    def put_stream_key(self, key: StreamKey) -> Deferred[StreamKey]:
        """Insert or replace the item's key; NotFound if the item does not exist."""
    def get_stream_key(self, room_id: str, media_id: str) -> Deferred[StreamKey | None]: ...
    def find_stream_key(self, key: str) -> Deferred[StreamKey | None]: ...
    def delete_stream_key(self, room_id: str, media_id: str) -> Deferred[bool]: ...
    def claim_publisher(self, record: PublisherRecord, stale_before_ms: int) -> Deferred[PublisherRecord | None]:
        """Record ``record`` unless another node's claim has a heartbeat at or after
        ``stale_before_ms``; fire with the record that holds the item now (compare ``node_id``)."""
    def get_publisher(self, room_id: str, media_id: str) -> Deferred[PublisherRecord | None]: ...
    def release_publisher(self, room_id: str, media_id: str, node_id: str) -> Deferred[bool]:
        """Delete the record if ``node_id`` holds it."""
    def touch_publishers(self, node_id: str, now_ms: int) -> Deferred[int]:
        """Refresh the heartbeat of every record of ``node_id``; fire with how many."""

    # displays (synctv.store.display_sql): screens, display events, uploaded videos
    def create_display(self, display: Display) -> Deferred[Display]:
        """Conflict when the name or public id is taken; NotFound when the room does not exist."""
    def get_display(self, display_id: str) -> Deferred[Display | None]: ...
    def get_display_by_name(self, name: str) -> Deferred[Display | None]: ...
    def get_display_by_public_id(self, public_id: str) -> Deferred[Display | None]: ...
    def list_displays(self) -> Deferred[list[Display]]: ...
    def update_display(self, display_id: str, **fields: Any) -> Deferred[Display | None]:
        """Fields: name, room_id, public_id."""
    def delete_display(self, display_id: str) -> Deferred[bool]: ...
    def create_event(self, event: DisplayEvent) -> Deferred[DisplayEvent]: ...
    def get_event(self, event_id: str) -> Deferred[DisplayEvent | None]: ...
    def get_event_by_name(self, name: str) -> Deferred[DisplayEvent | None]: ...
    def list_events(self) -> Deferred[list[DisplayEvent]]: ...
    def update_event(self, event_id: str, **fields: Any) -> Deferred[DisplayEvent | None]:
        """Fields: name, room_id, media_id, udp_port, udp_payload, allowed_sources, cooldown_s, lead_ms."""
    def delete_event(self, event_id: str) -> Deferred[bool]: ...
    def claim_event_trigger(self, event_id: str, expected_last: int | None, now_ms: int) -> Deferred[bool]:
        """Set the event's ``last_triggered_at`` to ``now_ms`` if it is still ``expected_last``."""
    def create_video(self, video: Video) -> Deferred[Video]: ...
    def get_video(self, video_id: str) -> Deferred[Video | None]: ...
    def list_videos(self) -> Deferred[list[Video]]: ...
    def update_video(self, video_id: str, **fields: Any) -> Deferred[Video | None]:
        """Fields: title, duration."""
    def delete_video(self, video_id: str) -> Deferred[bool]: ...
    def list_upload_media(self) -> Deferred[list[tuple[str, str, str]]]:
        """``(room_id, media_id, url)`` of every media item with provider ``upload``."""

    # provider accounts (synctv.store.account_sql); credentials and session are sealed blobs
    def create_provider_account(self, account: ProviderAccount) -> Deferred[ProviderAccount]:
        """NotFound when the user does not exist."""
    def get_provider_account(self, account_id: str) -> Deferred[ProviderAccount | None]: ...
    def list_provider_accounts(self, user_id: str) -> Deferred[list[ProviderAccount]]:
        """The user's accounts, oldest first."""
    def update_provider_account(self, account_id: str, **fields: Any) -> Deferred[ProviderAccount | None]:
        """Fields: username, credentials, session, status, share_direct, updated_at."""
    def delete_provider_account(self, account_id: str, user_id: str) -> Deferred[bool]:
        """Delete the account if ``user_id`` owns it."""

    # background workers (docs/workers.md): duration-probe claims (a lease per item), the
    # playing rooms among a node's active rooms, cluster-once prunes (the leader runs them)
    def claim_probes(
        self, room_ids: Any, node: str, now_ms: int, lease_ms: int, limit: int, skip_providers: Any = (),
    ) -> Deferred[list[Any]]:
        """Lease up to ``limit`` unprobed items of ``room_ids`` to ``node``: ``worker_sql.Claim``s."""
    def finish_probe(self, room_id: str, media_id: str, node: str, duration: float) -> Deferred[bool]: ...
    def fail_probe(self, room_id: str, media_id: str, node: str, error: str, retry_at_ms: int) -> Deferred[bool]: ...
    def playing_rooms(self, room_ids: Any) -> Deferred[list[Any]]:
        """``worker_sql.PlayingRoom`` of each room among ``room_ids`` that plays."""
    def prune_bus_spill(self, before_ms: int) -> Deferred[int]: ...
    def prune_publishers(self, stale_before_ms: int) -> Deferred[int]: ...

    def close(self) -> Deferred[None]: ...
