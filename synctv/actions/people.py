"""Users, rooms and members: the use-cases of docs/api.md on them (``Actions`` is the whole)."""


from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from synctv.actions.base import (
    LOBBY_ROOMS,
    ActionsBase,
    LobbyRoom,
    RoomView,
    _named,
    _show,
    deferred,
)
from synctv.core import auth, permissions, playlist, wait
from synctv.core.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
)
from synctv.core.models import Member, PlaybackState, Room, User
from synctv.core.permissions import DEFAULT_PERMISSIONS, Permission
from synctv.store.interface import UNSET


class PeopleActions(ActionsBase):
    # -- users ----------------------------------------------------------------------------------

    @deferred
    async def list_users(self, actor: User) -> list[User]:
        permissions.require_site_admin(actor.role)
        return await self.store.list_users()

    @deferred
    async def create_user(self, actor: User, name: str, password: str, role: str = "user") -> User:
        permissions.require_site_admin(actor.role)
        if role not in ("admin", "user"):
            raise BadRequest("role must be admin or user", field="role")
        if await self.store.get_user_by_name(name) is not None:
            raise Conflict(f"the name {_show(name)} is taken", field="name")
        user = User(
            id=auth.new_id(), name=name, role=role, password_hash=await self._hash(password),
            token_generation=0, created_at=self.clock(),
        )
        created = await self.store.create_user(user)
        self.log.info("{actor} created user {user_name} ({role})", actor=actor.name, user_name=name, role=role)
        return created

    @deferred
    async def get_user(self, actor: User, ref: str) -> User:
        if not permissions.is_site_admin(actor.role) and ref not in (actor.id, actor.name):
            raise Forbidden("only site admins can see other users")
        return await self._user_by_ref(ref)

    @deferred
    async def update_user(self, actor: User, ref: str, *, role: str = UNSET, password: str = UNSET) -> User:
        admin = permissions.is_site_admin(actor.role)
        if not admin and ref not in (actor.id, actor.name):
            raise Forbidden("only site admins can change other users")
        target = await self._user_by_ref(ref)
        changes: dict[str, Any] = {}
        if role is not UNSET:
            if not admin:
                raise Forbidden("only site admins can change roles", field="role")
            if target.role == "root":
                raise Forbidden("root's role cannot change", field="role")
            if role not in ("admin", "user"):
                raise BadRequest("role must be admin or user", field="role")
            changes["role"] = role
        if password is not UNSET:
            if target.role == "root" and target.id != actor.id:
                raise Forbidden("only root can change root's password", field="password")
            changes.update(password_hash=await self._hash(password), bump_generation=True)
        if not changes:
            return target
        updated = await self.store.update_user(target.id, **changes)
        if updated is None:
            raise NotFound(f"no user {_show(ref)}")
        self.log.info("{actor} changed user {user_name}: {what}", actor=actor.name, user_name=target.name,
                      what=", ".join(k for k in ("role", "password_hash") if k in changes))
        return updated

    @deferred
    async def delete_user(self, actor: User, ref: str) -> str:
        permissions.require_site_admin(actor.role)
        target = await self._user_by_ref(ref)
        if target.role == "root":
            raise Forbidden("root cannot be deleted")
        if target.id == actor.id:
            raise Forbidden("you cannot delete yourself")
        if not await self.store.delete_user(target.id):
            raise NotFound(f"no user {_show(ref)}")
        self.log.info("{actor} deleted user {user_name}", actor=actor.name, user_name=target.name)
        return target.id

    # -- rooms ----------------------------------------------------------------------------------

    @deferred
    async def list_rooms(self, actor: User) -> list[Room]:
        return await self.store.list_rooms()

    @deferred
    async def create_room(
        self, actor: User, name: str, *, password: str | None = None, kind: str = "watch",
        settings: Mapping[str, Any] | None = None,
    ) -> RoomView:
        if kind not in ("watch", "display"):
            raise BadRequest("kind must be watch or display", field="kind")
        settings = playlist.check_settings(wait.check_settings(settings or {}))
        if await self.store.get_room_by_name(name) is not None:
            raise Conflict(f"the room name {_show(name)} is taken", field="name")
        now = self.clock()
        room = Room(
            id=auth.new_id(), name=name, kind=kind,
            password_hash=None if password is None else await self._hash(password),
            settings=dict(settings or {}), creator_id=actor.id, created_at=now,
        )
        creator = Member(
            room_id=room.id, user_id=actor.id, role="creator", permissions=DEFAULT_PERMISSIONS["creator"],
            joined_at=now, user_name=actor.name,
        )
        stored = await self.store.create_room(room, creator, PlaybackState(at_ms=now))
        self.log.info("{actor} created room {room_name}", actor=actor.name, room_name=name)
        return RoomView(stored, creator)

    @deferred
    async def lobby(self, actor: User, limit: int = LOBBY_ROOMS) -> list[LobbyRoom]:
        """The home page's rooms for ``actor``: watch rooms they belong to, then those without a
        password (site admins: every watch room), at most ``limit``, each with what it plays."""
        admin = permissions.is_site_admin(actor.role)
        mine, public = [], []
        for room in await self.store.list_rooms():
            if room.kind != "watch":
                continue
            member = await self.member_of(room.id, actor)
            if member is not None:
                mine.append((room, member))
            elif admin or not room.has_password:
                public.append((room, None))
        found = []
        for room, member in (mine + public)[:limit]:
            state = await self._state(room.id)
            item = await self.store.get_media(room.id, state.media_id) if state.media_id else None
            found.append(LobbyRoom(room, member, state, item.title if item is not None else None))
        return found

    @deferred
    async def get_room(self, actor: User, ref: str) -> RoomView:
        return await self._view(actor, ref)

    @deferred
    async def update_room(
        self, actor: User, ref: str, *, name: str = UNSET, password: str | None = UNSET,
        settings: Mapping[str, Any] = UNSET,
    ) -> Room:
        view = await self.access(actor, ref, to="change the room", needs=Permission.manage_room)
        changes: dict[str, Any] = {}
        if name is not UNSET and name != view.room.name:
            changes["name"] = name
        if password is not UNSET:
            changes["password_hash"] = None if password is None else await self._hash(password)
        if settings is not UNSET:
            changes["settings"] = playlist.check_settings(wait.check_settings(settings))
        if not changes:
            return view.room
        room = await self.store.update_room(view.room.id, **changes)
        if room is None:
            raise NotFound(f"no room {_show(ref)}")
        self._publish(room.id, {"type": "room", "room": room.to_json()})
        return room

    @deferred
    async def delete_room(self, actor: User, ref: str) -> str:
        view = await self.access(actor, ref, to="delete the room", needs=Permission.manage_room)
        if not await self.store.delete_room(view.room.id):
            raise NotFound(f"no room {_show(ref)}")
        self.log.info("{actor} deleted room {room_name}", actor=actor.name, room_name=view.room.name)
        self._publish(view.room.id, {"type": "roomDeleted"})
        return view.room.id

    @deferred
    async def join(self, actor: User, ref: str, password: str | None = None, *, source: str | None = None) -> RoomView:
        """Join ``ref``; a wrong room password counts against the room and ``source`` (the
        client's address) in ``self.throttle``."""
        view = await self._view(actor, ref)
        if view.member is not None:
            return view
        room = view.room
        is_creator = room.creator_id == actor.id
        if room.password_hash is not None and not (is_creator or permissions.is_site_admin(actor.role)):
            if password is None:
                raise Forbidden("this room needs a password", field="password")
            target, now = f"room\n{room.id}", self.clock()
            self.throttle.check(target, source, now, "room password")
            if not await self._verify(password, room.password_hash):
                self.throttle.failed(target, source, now)
                self.log.info("{actor} gave a wrong password for room {room_name}", actor=actor.name,
                              room_name=room.name)
                raise Forbidden("wrong room password", field="password")
            self.throttle.succeeded(target)
        role = "creator" if is_creator else "member"
        member = Member(
            room_id=room.id, user_id=actor.id, role=role, permissions=DEFAULT_PERMISSIONS[role],
            joined_at=self.clock(), user_name=actor.name,
        )
        member = _named(await self.store.put_member(member), actor)
        self._publish(room.id, {"type": "member", "user_id": actor.id, "member": member.to_json()})
        return RoomView(room, member)

    # -- members --------------------------------------------------------------------------------

    @deferred
    async def list_members(self, actor: User, ref: str) -> list[Member]:
        view = await self.access(actor, ref, to="see its members")
        return await self.store.list_members(view.room.id)

    async def _target_member(self, room: Room, user_ref: str) -> tuple[User, Member]:
        user = await self._user_by_ref(user_ref)
        member = await self.store.get_member(room.id, user.id)
        if member is None:
            raise NotFound(f"{_show(user.name)} is not a member of this room")
        return user, _named(member, user)

    @deferred
    async def update_member(
        self, actor: User, ref: str, user_ref: str, *, role: str = UNSET, permissions: Sequence[str] = UNSET,
    ) -> Member:
        view = await self.access(actor, ref, to="change members", needs=Permission.manage_members)
        user, target = await self._target_member(view.room, user_ref)
        if target.role == "creator":
            raise Forbidden("the room's creator cannot be changed")
        if role is not UNSET and role not in ("admin", "member", "guest"):
            raise BadRequest("role must be admin, member or guest", field="role")
        new_role = target.role if role is UNSET else role
        if permissions is not UNSET:
            flags = Permission.from_names(list(permissions))
        elif role is not UNSET:
            flags = DEFAULT_PERMISSIONS[new_role]
        else:
            return target
        member = _named(await self.store.put_member(attrs.evolve(target, role=new_role, permissions=flags)), user)
        self.log.info("{actor} set {user_name} in {room_name} to {role} {permissions}", actor=actor.name,
                      user_name=user.name, room_name=view.room.name, role=new_role, permissions=flags.names())
        self._publish(view.room.id, {"type": "member", "user_id": user.id, "member": member.to_json()})
        return member

    @deferred
    async def remove_member(self, actor: User, ref: str, user_ref: str) -> str:
        leaving = user_ref in (actor.id, actor.name)
        view = await self.access(actor, ref, to="leave it" if leaving else "remove members",
                                 needs=None if leaving else Permission.manage_members)
        user, target = await self._target_member(view.room, user_ref)
        if target.role == "creator":
            raise Forbidden("the room's creator cannot be removed")
        if not await self.store.delete_member(view.room.id, user.id):
            raise NotFound(f"{_show(user.name)} is not a member of this room")
        self._publish(view.room.id, {"type": "member", "user_id": user.id, "member": None})
        return user.id
