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

The one way into a room: every route, WebSocket connection, proxy URL and live URL that acts in
a room goes through ``access`` (or ``access_media``): the room by id or name (404 first), then
membership (site admins are members of every room) and the permission the use needs (403).

Password guesses (login, room passwords) are throttled by ``synctv.core.throttle`` before any
hashing, and hashing runs on ``synctv.passwords.PasswordHasher``'s own bounded pool.

Catalog providers (Alist, Emby, Jellyfin, Bilibili: ``ProviderRegistry.catalog``) say themselves
what an item is -- title, duration, where it plays -- with the adding member's own account;
``import_media`` adds every playable child of a folder, season or series.

Media secrets: header values of an item (cookies, tokens for the upstream) are shown only to
members with ``manage_media`` (``MediaView``), and a ``direct`` PlaybackInfo that carries header
values goes only to such members whose client declared ``headers=1``; everyone else plays
through the proxy, which sends the headers itself.
"""

from __future__ import annotations

import functools
import posixpath
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, ParamSpec, TypeVar
from urllib.parse import unquote, urlsplit

import attrs
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from synctv.bus import Bus, room_channel
from synctv.core import auth, permissions, playback, playlist, wait
from synctv.core.clock import Clock
from synctv.core.displays import DISPLAY_USER_PREFIX, display_stand_in
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
from synctv.core.throttle import PasswordThrottle
from synctv.passwords import PasswordHasher
from synctv.providers.base import ClientProfile, PlaybackInfo, PlaybackResult, ProviderRegistry, UrlSigner
from synctv.store.interface import UNSET, Store

_P = ParamSpec("_P")
_T = TypeVar("_T")
CLEAR_RETRIES = 5
LOBBY_ROOMS = 100  # rooms the home page lists
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
    actor: User | None = None

    def may(self, needed: Permission) -> bool:
        """Whether the actor holds ``needed`` here (site admins hold every permission)."""
        if self.actor is None:
            return False
        granted = permissions.effective_permissions(
            self.actor.role, self.member.permissions if self.member else None)
        return needed in granted


@attrs.frozen
class LobbyRoom:
    """A room on the home page: the caller's membership (or None), its state and what it plays."""

    room: Room
    member: Member | None
    state: PlaybackState
    title: str | None

    def to_json(self) -> dict[str, Any]:
        return {"room": self.room.to_json(), "member": self.member.to_json() if self.member else None,
                "state": self.state.to_json(), "title": self.title}


@attrs.frozen
class MediaView:
    """A media item as one member sees it: header values only with ``manage_media``."""

    item: MediaItem
    header_values: bool

    def to_json(self) -> dict[str, Any]:
        return self.item.to_json(header_values=self.header_values)


@attrs.frozen
class Viewer:
    """Who a PlaybackResult is made for: a user (or a display's stand-in) and their client."""

    user: User
    member: Member | None
    profile: ClientProfile

    def may(self, needed: Permission) -> bool:
        granted = permissions.effective_permissions(self.user.role, self.member.permissions if self.member else None)
        return needed in granted


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
        hasher: PasswordHasher | None = None,
        throttle: PasswordThrottle | None = None,
        signers: Mapping[str, UrlSigner] | None = None,
        proxy_links: UrlSigner | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.bus = bus
        self.providers = providers
        self._secret = secret
        self._token_ttl_ms = token_ttl_ms
        self.hasher = hasher if hasher is not None else PasswordHasher(scrypt_n=scrypt_n)
        self.throttle = throttle if throttle is not None else PasswordThrottle()
        # who signs what PlaybackInfo.signer names ("proxy": synctv.proxy.proxy_urls, "live":
        # synctv.live.live_urls); an info whose signer is missing is not offered (that part is off)
        self.signers: dict[str, UrlSigner] = dict(signers or {})
        if proxy_links is not None:
            self.signers["proxy"] = proxy_links
        self._dummy_hash: str | None = None

    # -- helpers --------------------------------------------------------------------------------

    async def _hash(self, password: str) -> str:
        return await self.hasher.hash(password)

    async def _verify(self, password: str, encoded: str) -> bool:
        return await self.hasher.verify(password, encoded)

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

    # -- the one way into a room ----------------------------------------------------------------

    async def find_room(self, ref: str, *, kind: str | None = None, field: str | None = None) -> Room:
        """The room ``ref`` names (an id, then a name); NotFound, or BadRequest when it is not
        of ``kind``. Only for callers that authorize otherwise (a signature, a display token)."""
        room = await self.store.get_room(ref) or await self.store.get_room_by_name(ref)
        if room is None:
            raise NotFound(f"no room {_show(ref)}", field=field)
        if kind is not None and room.kind != kind:
            hint = " (synctv room create NAME --kind display)" if kind == "display" else ""
            raise BadRequest(f"room {_show(room.name)} is a {room.kind} room; this needs a {kind} room{hint}",
                             field=field or "room")
        return room

    async def _view(self, actor: User, ref: str, field: str | None = None) -> RoomView:
        room = await self.find_room(ref, field=field)
        member = await self.store.get_member(room.id, actor.id)
        return RoomView(room, _named(member, actor), actor)

    async def access(
        self, actor: User, ref: str, *, to: str, needs: Permission | None = None, kind: str | None = None,
        field: str | None = None,
    ) -> RoomView:
        """The room ``ref`` as ``actor`` may use it ``to`` do something (the words of a refusal).

        NotFound for an unknown room (before anything else; ``field`` names the body field that
        gave ``ref``); BadRequest when it is not of ``kind``; Forbidden unless ``actor`` is a
        member or a site admin, and, with ``needs``, holds that permission (site admins hold all).
        """
        view = await self._view(actor, ref, field)
        if kind is not None and view.room.kind != kind:
            await self.find_room(view.room.id, kind=kind, field=field)  # raises the explanation
        member_permissions = view.member.permissions if view.member else None
        if needs is not None:
            permissions.require(actor.role, member_permissions, needs, to)
        elif not permissions.may_enter(actor.role, member_permissions):
            raise Forbidden(f"join the room first to {to}")
        return view

    async def member_of(self, room_id: str, user: User) -> Member | None:
        """``user``'s membership of the room as stored now (the realtime layer re-reads it when
        a ``member`` bus message did not carry it; ``permissions.may_enter`` decides)."""
        return _named(await self.store.get_member(room_id, user.id), user)

    async def may(self, actor: User, room_id: str, needs: Permission) -> bool:
        """Whether ``actor`` holds ``needs`` in the room (``access`` without the refusal)."""
        try:
            await self.access(actor, room_id, to="", needs=needs)
        except (Forbidden, NotFound):
            return False
        return True

    async def access_media(
        self, actor: User, ref: str, media_id: str, *, to: str, needs: Permission | None = None,
        field: str | None = None,
    ) -> tuple[RoomView, MediaItem]:
        """``access`` and then the room's media item ``media_id`` (NotFound when it has none)."""
        view = await self.access(actor, ref, to=to, needs=needs)
        return view, await self._media(view.room.id, media_id, field=field)

    async def find_media(self, ref: str, media_id: str) -> tuple[Room, MediaItem]:
        """The room and its item, NotFound for either; for signed URLs, which are checked next
        and then authorized with ``access_by_grant``."""
        room = await self.find_room(ref)
        return room, await self._media(room.id, media_id)

    async def access_by_grant(self, user_id: str, room: Room, *, to: str) -> RoomView:
        """``room`` for the user a verified signed URL (proxy, live) was issued to: that user
        must still exist and be in the room, or, for a display's stand-in (``display:ID``), the
        display must still show this room (Forbidden otherwise)."""
        if user_id.startswith(DISPLAY_USER_PREFIX):
            display = await self.store.get_display(user_id[len(DISPLAY_USER_PREFIX):])
            if display is None or display.room_id != room.id:
                raise Forbidden("the display of this URL is gone or shows another room")
            return RoomView(room, None, display_stand_in(display))
        user = await self.store.get_user(user_id)
        if user is None:
            raise Forbidden("the user of this URL no longer exists")
        return await self.access(user, room.id, to=to)

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
    async def login(self, name: str, password: str, *, source: str | None = None) -> LoginResult:
        """A token for ``name``; failures count against the name and ``source`` (the client's
        address) in ``self.throttle``, which refuses further attempts before any hashing."""
        target, now = f"user\n{name}", self.clock()
        self.throttle.check(target, source, now, "login")
        user = await self.store.get_user_by_name(name)
        if user is None:
            if self._dummy_hash is None:
                self._dummy_hash = await self._hash(auth.new_password())
            await self._verify(password, self._dummy_hash)  # same cost as a real check
            self.throttle.failed(target, source, now)
            raise Unauthorized("wrong name or password")
        if not await self._verify(password, user.password_hash):
            self.throttle.failed(target, source, now)
            self.log.info("failed login for {user_name}", user_name=user.name)
            raise Unauthorized("wrong name or password")
        self.throttle.succeeded(target)
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


def _named(member: Member | None, user: User) -> Member | None:
    """``member`` with ``user_name`` filled in from ``user`` when the store left it empty."""
    if member is not None and member.user_name is None and member.user_id == user.id:
        return attrs.evolve(member, user_name=user.name)
    return member
