"""The ``Store`` interface over the ``sql`` interactions; each driver subclasses ``SQLStore``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from twisted.internet.defer import Deferred

from synctv.core.models import MediaItem, Member, PlaybackState, Room, User
from synctv.store import sql
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
