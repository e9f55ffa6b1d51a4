"""The use-cases of docs/api.md, shared by the HTTP API and (later) the realtime sessions.

``Actions`` only orchestrates: load from the store, ask synctv.core who may do what and what the
next state is, persist, announce on the bus. Every public method returns a Deferred (they are
``async def`` wrapped by ``deferred``) and signals refusals with synctv.core.errors.

Decisions taken here where docs/api.md is silent:

- site roles: admins (and root) may create users and admins; nobody may create a second root,
  delete root or change root's role; only root may change root's password; nobody may delete
  themselves. A user may read and change (password only) their own account.
- joining: a room password is needed unless the caller is the room's creator or a site admin;
  joining again is idempotent and keeps the member's role and permissions.
- members: the creator cannot be removed, demoted or have permissions changed; nobody can be made
  ``creator``. Changing a role without naming permissions resets them to the role's defaults.
- ``{room}`` / ``{user}`` references are tried as an id first, then as a name.
"""

from __future__ import annotations

import functools
import posixpath
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, ParamSpec, TypeVar
from urllib.parse import unquote, urlsplit

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread
from twisted.logger import Logger

from synctv.bus import Bus, room_channel
from synctv.core import auth, permissions, playback
from synctv.core.clock import Clock
from synctv.core.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    StaleVersion,
    Unauthorized,
    Unavailable,
)
from synctv.core.models import MediaItem, Member, PlaybackState, Room, Subtitle, User
from synctv.core.permissions import DEFAULT_PERMISSIONS, Permission
from synctv.providers.base import ClientProfile, PlaybackResult, ProviderRegistry
from synctv.store.interface import UNSET, Store

_P = ParamSpec("_P")
_T = TypeVar("_T")
CLEAR_RETRIES = 5
MAX_TITLE = 256


def deferred(f: Callable[_P, Coroutine[Any, Any, _T]]) -> Callable[_P, Deferred[_T]]:
    """Make an ``async def`` method return a Deferred (what Twisted callers expect)."""

    @functools.wraps(f)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> Deferred[_T]:
        return Deferred.fromCoroutine(f(*args, **kwargs))

    return wrapper


def _show(ref: str) -> str:
    """A reference as it may appear in a message: quoted and cut short."""
    return repr(ref[:64] + ("..." if len(ref) > 64 else ""))


def title_from_url(url: str) -> str:
    """A readable default title: the URL's last path segment, else its host, else the URL."""
    try:
        parts = urlsplit(url)
        name = posixpath.basename(unquote(parts.path.rstrip("/"))) or parts.hostname or url
    except ValueError:
        name = url
    name = "".join(ch for ch in name if ch.isprintable()).strip() or "untitled"
    return name[:MAX_TITLE]


@attrs.frozen
class LoginResult:
    token: str
    expires_at: int
    user: User


@attrs.frozen
class RoomView:
    """A room as one user sees it: with their membership, or None when they have not joined."""

    room: Room
    member: Member | None


class Actions:
    log = Logger()

    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        secret: str,
        bus: Bus,
        providers: ProviderRegistry,
        scrypt_n: int = auth.SCRYPT_N,
        token_ttl_ms: int = auth.TOKEN_TTL_MS,
        run_in_thread: Callable[..., Deferred[Any]] = deferToThread,
        proxy_links: Any = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.bus = bus
        self.providers = providers
        self._secret = secret
        self._scrypt_n = scrypt_n
        self._token_ttl_ms = token_ttl_ms
        self._run_in_thread = run_in_thread
        self.proxy_links = proxy_links  # synctv.proxy.links.ProxyLinks; None: no proxy mode offered
        self._dummy_hash: str | None = None

    # -- helpers --------------------------------------------------------------------------------

    async def _hash(self, password: str) -> str:
        return await self._run_in_thread(auth.hash_password, password, n=self._scrypt_n)

    async def _verify(self, password: str, encoded: str) -> bool:
        return bool(await self._run_in_thread(auth.verify_password, password, encoded))

    def _publish(self, room_id: str, message: dict[str, Any]) -> None:
        message = {**message, "room_id": room_id}
        try:
            self.bus.publish(room_channel(room_id), message)
        except Exception:
            # the change is stored; listeners catch up on their next read
            self.log.failure("publishing {message_type} for room {room_id} failed",
                             message_type=message.get("type"), room_id=room_id)

    async def _user_by_ref(self, ref: str) -> User:
        user = await self.store.get_user(ref) or await self.store.get_user_by_name(ref)
        if user is None:
            raise NotFound(f"no user {_show(ref)}")
        return user

    async def _room_by_ref(self, ref: str) -> Room:
        room = await self.store.get_room(ref) or await self.store.get_room_by_name(ref)
        if room is None:
            raise NotFound(f"no room {_show(ref)}")
        return room

    async def _view(self, actor: User, ref: str) -> RoomView:
        room = await self._room_by_ref(ref)
        member = await self.store.get_member(room.id, actor.id)
        return RoomView(room, _named(member, actor))

    @staticmethod
    def _require(actor: User, member: Member | None, needed: Permission, what: str) -> None:
        permissions.require(actor.role, member.permissions if member else None, needed, what)

    @staticmethod
    def _require_member(actor: User, member: Member | None, what: str) -> None:
        if member is None and not permissions.is_site_admin(actor.role):
            raise Forbidden(f"join the room first to {what}")

    async def _state(self, room_id: str) -> PlaybackState:
        state = await self.store.get_playback(room_id)
        return state if state is not None else PlaybackState()

    async def _media(self, room_id: str, media_id: str, field: str | None = None) -> MediaItem:
        item = await self.store.get_media(room_id, media_id)
        if item is None:
            raise NotFound(f"no media item {_show(media_id)} in this room", field=field)
        return item

    # -- health ---------------------------------------------------------------------------------

    @deferred
    async def ping(self) -> None:
        """A cheap query; raises whatever the store raises when the database does not answer."""
        await self.store.get_setting("synctv.ping")

    @deferred
    async def count_rooms(self) -> int:
        return len(await self.store.list_rooms())

    # -- auth -----------------------------------------------------------------------------------

    @deferred
    async def login(self, name: str, password: str) -> LoginResult:
        user = await self.store.get_user_by_name(name)
        if user is None:
            if self._dummy_hash is None:
                self._dummy_hash = await self._hash(auth.new_password())
            await self._verify(password, self._dummy_hash)  # same cost as a real check
            raise Unauthorized("wrong name or password")
        if not await self._verify(password, user.password_hash):
            self.log.info("failed login for {user_name}", user_name=user.name)
            raise Unauthorized("wrong name or password")
        token, expires = auth.issue_token(
            self._secret, user.id, user.token_generation, self.clock(), self._token_ttl_ms
        )
        self.log.info("{user_name} logged in", user_name=user.name)
        return LoginResult(token=token, expires_at=expires, user=user)

    @deferred
    async def authenticate(self, token: str) -> User:
        claims = auth.read_token(self._secret, token, self.clock())
        user = await self.store.get_user(claims.user_id)
        if user is None:
            raise Unauthorized("the token's user no longer exists")
        if user.token_generation != claims.generation:
            raise Unauthorized("the token was revoked; log in again")
        return user

    @deferred
    async def revoke(self, actor: User) -> None:
        """Every token of ``actor`` stops working."""
        await self.store.update_user(actor.id, bump_generation=True)
        self.log.info("{user_name} revoked their tokens", user_name=actor.name)

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
    async def get_room(self, actor: User, ref: str) -> RoomView:
        return await self._view(actor, ref)

    @deferred
    async def update_room(
        self, actor: User, ref: str, *, name: str = UNSET, password: str | None = UNSET,
        settings: Mapping[str, Any] = UNSET,
    ) -> Room:
        view = await self._view(actor, ref)
        self._require(actor, view.member, Permission.manage_room, "change the room")
        changes: dict[str, Any] = {}
        if name is not UNSET and name != view.room.name:
            changes["name"] = name
        if password is not UNSET:
            changes["password_hash"] = None if password is None else await self._hash(password)
        if settings is not UNSET:
            changes["settings"] = dict(settings)
        if not changes:
            return view.room
        room = await self.store.update_room(view.room.id, **changes)
        if room is None:
            raise NotFound(f"no room {_show(ref)}")
        self._publish(room.id, {"type": "room", "room": room.to_json()})
        return room

    @deferred
    async def delete_room(self, actor: User, ref: str) -> str:
        view = await self._view(actor, ref)
        self._require(actor, view.member, Permission.manage_room, "delete the room")
        if not await self.store.delete_room(view.room.id):
            raise NotFound(f"no room {_show(ref)}")
        self.log.info("{actor} deleted room {room_name}", actor=actor.name, room_name=view.room.name)
        self._publish(view.room.id, {"type": "roomDeleted"})
        return view.room.id

    @deferred
    async def join(self, actor: User, ref: str, password: str | None = None) -> RoomView:
        view = await self._view(actor, ref)
        if view.member is not None:
            return view
        room = view.room
        is_creator = room.creator_id == actor.id
        if room.password_hash is not None and not (is_creator or permissions.is_site_admin(actor.role)):
            if password is None:
                raise Forbidden("this room needs a password", field="password")
            if not await self._verify(password, room.password_hash):
                raise Forbidden("wrong room password", field="password")
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
        view = await self._view(actor, ref)
        self._require_member(actor, view.member, "see its members")
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
        view = await self._view(actor, ref)
        self._require(actor, view.member, Permission.manage_members, "change members")
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
        view = await self._view(actor, ref)
        if user_ref not in (actor.id, actor.name):
            self._require(actor, view.member, Permission.manage_members, "remove members")
        user, target = await self._target_member(view.room, user_ref)
        if target.role == "creator":
            raise Forbidden("the room's creator cannot be removed")
        if not await self.store.delete_member(view.room.id, user.id):
            raise NotFound(f"{_show(user.name)} is not a member of this room")
        self._publish(view.room.id, {"type": "member", "user_id": user.id, "member": None})
        return user.id

    # -- media ----------------------------------------------------------------------------------

    @deferred
    async def list_media(self, actor: User, ref: str) -> list[MediaItem]:
        view = await self._view(actor, ref)
        self._require_member(actor, view.member, "see its playlist")
        return await self.store.list_media(view.room.id)

    @deferred
    async def get_media(self, actor: User, ref: str, media_id: str) -> MediaItem:
        view = await self._view(actor, ref)
        self._require_member(actor, view.member, "see its media")
        return await self._media(view.room.id, media_id)

    @deferred
    async def add_media(
        self, actor: User, ref: str, *, url: str, title: str | None = None, provider: str = "direct",
        provider_data: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None,
        subtitles: Sequence[Subtitle] = (), duration: float | None = None,
    ) -> MediaItem:
        view = await self._view(actor, ref)
        self._require(actor, view.member, Permission.manage_media, "add media")
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
    async def update_media(
        self, actor: User, ref: str, media_id: str, *, title: str = UNSET, url: str = UNSET,
        headers: Mapping[str, str] = UNSET, subtitles: Sequence[Subtitle] = UNSET, duration: float | None = UNSET,
    ) -> MediaItem:
        view = await self._view(actor, ref)
        self._require(actor, view.member, Permission.manage_media, "change media")
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
        view = await self._view(actor, ref)
        self._require(actor, view.member, Permission.manage_media, "remove media")
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
        view = await self._view(actor, ref)
        self._require(actor, view.member, Permission.manage_media, "reorder media")
        items = await self.store.reorder_media(view.room.id, list(order))
        if items is None:
            raise BadRequest("order must name every media item of the room exactly once", field="order")
        self._publish(view.room.id, {"type": "playlist"})
        return items

    # -- playback -------------------------------------------------------------------------------

    @deferred
    async def get_playback_state(self, actor: User, ref: str) -> PlaybackState:
        view = await self._view(actor, ref)
        self._require_member(actor, view.member, "see its playback")
        return await self._state(view.room.id)

    @deferred
    async def update_playback(self, actor: User, ref: str, update: playback.Update) -> PlaybackState:
        """Apply ``update`` (from ``core.playback.parse_update``) by compare-and-set on the version."""
        view = await self._view(actor, ref)
        room_id = view.room.id
        self._require(actor, view.member, Permission.control_playback, "control playback")
        state = await self._state(room_id)
        duration: float | None = None
        if update.action == "media":
            assert update.media_id is not None
            duration = (await self._media(room_id, update.media_id, field="media_id")).duration
        elif state.media_id is not None:
            current = await self.store.get_media(room_id, state.media_id)
            duration = current.duration if current is not None else None
        new = playback.apply_update(state, update, self.clock(), duration)
        if not await self.store.set_playback(room_id, new, state.version):
            current_state = await self._state(room_id)
            raise StaleVersion(
                f"version {update.version} is stale; the current version is {current_state.version}",
                detail=current_state.to_json(),
            )
        self._publish(room_id, {"type": "playbackState", "state": new.to_json()})
        return new

    @deferred
    async def playback_result(
        self, actor: User, ref: str, media_id: str, profile: ClientProfile
    ) -> PlaybackResult:
        view = await self._view(actor, ref)
        self._require_member(actor, view.member, "play its media")
        item = await self._media(view.room.id, media_id)
        provider = self.providers.get(item.provider)
        if provider is None:
            raise Unavailable(f"the {item.provider!r} provider is not available on this server")
        result = await provider.playback(item, profile, self.clock())
        if self.proxy_links is None:  # a provider's "proxy" infos name upstreams: only the proxy may use them
            return attrs.evolve(result, infos=tuple(i for i in result.infos if i.mode != "proxy"))
        return self.proxy_links.sign_result(result, room_id=view.room.id, user_id=actor.id, now_ms=self.clock())


def _named(member: Member | None, user: User) -> Member | None:
    """``member`` with ``user_name`` filled in from ``user`` when the store left it empty."""
    if member is not None and member.user_name is None and member.user_id == user.id:
        return attrs.evolve(member, user_name=user.name)
    return member
