"""Builders for the store tests: users, rooms and media items with fresh ids and names."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import attrs
import pytest

from synctv.core.models import MediaItem, Member, PlaybackState, Room, Subtitle, User
from synctv.core.permissions import DEFAULT_PERMISSIONS
from synctv.store.interface import Store

T0 = 1_700_000_000_000  # a server time in milliseconds, past 2**31 on purpose


def new_id() -> str:
    return uuid.uuid4().hex


class Builders:
    """Creates records through the store under test; every call makes distinct names."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._counter = itertools.count(1)

    @staticmethod
    def id() -> str:
        return new_id()

    def tick(self) -> int:
        return T0 + next(self._counter)

    def user_value(self, name: str | None = None, role: str = "user") -> User:
        n = next(self._counter)
        return User(
            id=new_id(), name=name or f"user{n}", role=role, password_hash=f"hash{n}", created_at=T0 + n
        )

    async def user(self, name: str | None = None, role: str = "user") -> User:
        return await self.store.create_user(self.user_value(name, role))

    def room_value(
        self, creator: User, name: str | None = None, kind: str = "watch", **fields: Any
    ) -> tuple[Room, Member, PlaybackState]:
        n = next(self._counter)
        room = Room(
            id=new_id(),
            name=name or f"room{n}",
            kind=kind,
            creator_id=creator.id,
            created_at=T0 + n,
            **fields,
        )
        member = Member(
            room_id=room.id,
            user_id=creator.id,
            role="creator",
            permissions=DEFAULT_PERMISSIONS["creator"],
            joined_at=T0 + n,
        )
        return room, member, PlaybackState(at_ms=T0 + n)

    async def room(
        self, creator: User | None = None, name: str | None = None, kind: str = "watch", **fields: Any
    ) -> Room:
        if creator is None:
            creator = await self.user()
        return await self.store.create_room(*self.room_value(creator, name, kind, **fields))

    def media_value(self, room: Room, **fields: Any) -> MediaItem:
        n = next(self._counter)
        base = MediaItem(
            id=new_id(),
            room_id=room.id,
            sort=0,
            title=f"video {n}",
            url=f"https://example.com/{n}.mp4",
            provider="direct",
            provider_data={"n": n},
            headers={"Referer": "https://example.com/"},
            subtitles=(Subtitle(name="English", url=f"https://example.com/{n}.vtt"),),
            duration=61.5,
            created_by=room.creator_id,
            created_at=T0 + n,
        )
        return attrs.evolve(base, **fields)

    async def media(self, room: Room, **fields: Any) -> MediaItem:
        return await self.store.add_media(self.media_value(room, **fields))


@pytest.fixture
def make(store: Store) -> Builders:
    return Builders(store)
