"""What every part of ``Actions`` stands on: the views it answers, its construction, the one way
into a room (``access``, ``access_media``, ``access_by_grant``, ``member_of``, ``may``), health and
sign-in. ``synctv.actions`` (the package docstring) states the contract of the whole."""


from __future__ import annotations

import functools
import posixpath
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, ParamSpec, TypeVar
from urllib.parse import unquote, urlsplit

import attrs
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from synctv.bus import Bus, room_channel
from synctv.core import auth, permissions
from synctv.core.clock import Clock
from synctv.core.displays import DISPLAY_USER_PREFIX, display_stand_in
from synctv.core.errors import (
    BadRequest,
    Forbidden,
    NotFound,
    Unauthorized,
)
from synctv.core.models import MediaItem, Member, PlaybackState, Room, User
from synctv.core.permissions import Permission
from synctv.core.throttle import PasswordThrottle
from synctv.passwords import PasswordHasher
from synctv.providers.base import ClientProfile, ProviderRegistry, UrlSigner
from synctv.store.interface import Store

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




class ActionsBase:
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


def _named(member: Member | None, user: User) -> Member | None:
    """``member`` with ``user_name`` filled in from ``user`` when the store left it empty."""
    if member is not None and member.user_name is None and member.user_id == user.id:
        return attrs.evolve(member, user_name=user.name)
    return member
