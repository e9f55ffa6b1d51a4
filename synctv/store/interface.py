"""The one storage interface. ``sqlite.SQLiteStore`` and ``postgres.PostgresStore`` implement it
and pass the same test suite (tests/store/).

Every method returns a Deferred. Methods never raise for "not there": they fire with ``None`` or
``False``; they raise ``Conflict`` when a unique name is taken. Writes are committed before the
Deferred fires.
"""

from __future__ import annotations

from typing import Any, Protocol

from twisted.internet.defer import Deferred

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

    def close(self) -> Deferred[None]: ...
