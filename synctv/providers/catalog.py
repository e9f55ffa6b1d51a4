"""Providers backed by a media library (Alist, Emby, Jellyfin, Bilibili): the shared machinery.

A *backend* (``synctv.providers.alist``, ``mediabrowser``, ``bilibili``) knows one upstream API:
how to log in, browse, describe an item, list a folder's playable children, and resolve an item
into every way it can play (a :class:`Resolved`). :class:`CatalogProvider` turns a backend into a
synctv provider:

- ``describe`` / ``children`` (adding an item, importing a folder, season or series) run with the
  *adding member's own* account (``provider_data.account`` must be theirs);
- ``playback`` runs with the account of the member who added the item (``created_by``), for every
  viewer: the backend's answer is cached per item (:class:`PlaybackCache`) until shortly before its
  URLs expire, and every answer, fresh or cached, is filtered for the client profile by
  :func:`select_infos` -- so a cache hit offers exactly the modes a fresh answer does;
- a ``direct`` PlaybackInfo (the upstream URL with the account's credential in it or in its
  headers) is offered only to clients that said ``headers=1`` and only when the account's owner
  set ``share_direct``; browsers get ``proxy`` (and ``hls``) infos, which the server signs for
  each viewer and relays itself (``signer="proxy"``).

Calls run through ``synctv.providers.accounts.ProviderAccounts.run``: the account's session is
used, renewed once when the upstream refuses it, and a second refusal is a 502 with its reason.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

import attrs
from twisted.internet.defer import Deferred

from synctv.core.accounts import ProviderAccount
from synctv.core.clock import Clock
from synctv.core.errors import BadGateway, BadRequest, NotFound
from synctv.core.models import MediaItem, User
from synctv.providers.base import ClientProfile, ItemDescription, PlaybackInfo, PlaybackResult
from synctv.providers.calls import ApiAnswer, ApiCall
from synctv.providers.client import ApiClient
from synctv.proxy.cache import Collapser

BROWSE_KINDS = ("folder", "video", "audio", "series", "season", "episode")
DEFAULT_TTL_MS = 10 * 60 * 1000  # cache an answer whose URLs do not say when they expire this long
CACHE_MARGIN_MS = 2 * 60 * 1000  # ...and one that does until this long (or 1/10 of its life) before
MAX_CACHED = 4096
MAX_IMPORT = 1000
MAX_IMAGE_BYTES = 4 << 20
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif", "image/avif"})


@attrs.frozen
class BrowseEntry:
    """One line of ``GET /api/me/accounts/{id}/browse``: ``id`` is what ``path`` or ``item`` take."""

    id: str
    title: str
    kind: str  # one of BROWSE_KINDS
    playable: bool
    duration: float | None = None
    has_thumbnail: bool = False


@attrs.frozen
class Resolved:
    """Every way one item plays (best first, before any client profile), and until when."""

    infos: tuple[PlaybackInfo, ...]
    expires_at: int | None = None  # server ms when the upstream URLs stop working, if known
    metadata: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class Connection:
    """What a backend call runs with: the account (None: anonymous), its open session, the client."""

    account: ProviderAccount | None
    session: Mapping[str, Any]
    http: ApiClient

    @property
    def server(self) -> str:
        return self.account.server if self.account is not None else ""

    def secrets(self) -> tuple[str, ...]:
        """Values to mask in any upstream message shown to people."""
        return tuple(str(v) for v in self.session.values() if isinstance(v, str) and len(v) >= 8)


class Backend(Protocol):
    kind: str
    needs_account: bool

    async def login(self, http: ApiClient, server: str, username: str,
                    credentials: Mapping[str, Any], session: Mapping[str, Any]) -> dict[str, Any]:
        """A new session (its ``username`` key, if any, is the upstream's name for the user);
        ``CredentialsRejected`` when the upstream refuses the credentials."""

    async def browse(self, conn: Connection, path: str) -> list[BrowseEntry]: ...

    async def describe(self, conn: Connection, url: str, provider_data: Mapping[str, Any]) -> ItemDescription: ...

    async def children(self, conn: Connection, url: str, provider_data: Mapping[str, Any]) -> list[ItemDescription]: ...

    async def resolve(self, conn: Connection, item: MediaItem, now_ms: int) -> Resolved: ...

    async def thumbnail(self, conn: Connection, item_ref: str) -> ApiCall | None:
        """The call that fetches the item's image, None when it has none."""


class AccountSource(Protocol):
    """What a CatalogProvider needs of ``synctv.providers.accounts.ProviderAccounts``."""

    http: ApiClient

    async def owned(self, actor: User, account_id: Any, *, kind: str | None = None,
                    field: str | None = None) -> ProviderAccount: ...

    async def of_item(self, item: MediaItem) -> ProviderAccount | None: ...

    async def run(self, account: ProviderAccount | None, kind: str,
                  call: Callable[[Connection], Awaitable[Any]]) -> Any: ...


def cache_until(now_ms: int, expires_at: int | None, ttl_ms: int = DEFAULT_TTL_MS) -> int:
    """Until when an answer may be served from the cache (see the module docstring)."""
    if expires_at is None:
        return now_ms + ttl_ms
    life = max(0, expires_at - now_ms)
    margin = min(max(CACHE_MARGIN_MS, life // 10), life // 2)
    return min(now_ms + ttl_ms, expires_at - margin)


def select_infos(infos: Sequence[PlaybackInfo], profile: ClientProfile, share_direct: bool) -> tuple[PlaybackInfo, ...]:
    """The infos ``profile`` may get, in order (see the module docstring)."""
    out = []
    for info in infos:
        if not profile.accepts_mode(info.mode) or not profile.accepts_format(info.format):
            continue
        if info.mode == "direct" and (not share_direct or profile.can_send_headers is not True):
            continue
        out.append(info)
    return tuple(out)


def image_of(answer: ApiAnswer, what: str) -> tuple[str, bytes]:
    """``(content_type, bytes)`` of an upstream image; a 404 is NotFound, anything but a raster
    image a 502 (an upstream must not make this server serve HTML or SVG from its own origin)."""
    if answer.status == 404:
        raise NotFound(f"the {what} has no image")
    if answer.status != 200:
        raise BadGateway(f"the {what} image answered {answer.status}", detail={"upstream_status": answer.status})
    content_type = (answer.header("content-type") or "").split(";", 1)[0].strip().lower()
    if content_type not in IMAGE_TYPES:
        raise BadGateway(f"the {what} image is not a JPEG, PNG, WebP, GIF or AVIF image")
    return content_type, answer.body


class PlaybackCache:
    """Resolved answers by key, each until its ``cache_until``; concurrent misses of one key share
    one upstream fetch. Bounded (least recently used out). ``clock`` is server time in ms."""

    def __init__(self, clock: Clock, max_entries: int = MAX_CACHED) -> None:
        self.clock = clock
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, ...], tuple[int, Resolved]] = OrderedDict()
        self._fetches: Collapser[tuple[str, ...], Resolved] = Collapser()
        self.hits = 0
        self.misses = 0

    def drop(self, key: tuple[str, ...]) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()

    async def get(self, key: tuple[str, ...], fetch: Callable[[], Awaitable[Resolved]]) -> Resolved:
        entry = self._entries.get(key)
        if entry is not None and self.clock() < entry[0]:
            self.hits += 1
            self._entries.move_to_end(key)
            return entry[1]
        self.misses += 1

        async def fetch_and_keep() -> Resolved:
            resolved = await fetch()
            self._entries[key] = (cache_until(self.clock(), resolved.expires_at), resolved)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
            return resolved

        return await self._fetches.run(key, lambda: Deferred.fromCoroutine(fetch_and_keep()))


def _account_ref(provider_data: Mapping[str, Any]) -> Any:
    return provider_data.get("account")


class CatalogProvider:
    """A backend as a synctv provider (see the module docstring)."""

    def __init__(self, backend: Backend, accounts: AccountSource, cache: PlaybackCache) -> None:
        self.backend = backend
        self.name = backend.kind
        self.accounts = accounts
        self.cache = cache

    # -- Provider -------------------------------------------------------------------------------

    def validate(self, url: str, provider_data: Mapping[str, Any]) -> None:
        raise BadRequest(f"a {self.name} item's address comes from {self.name}; remove the item and add it "
                         "again to change it", field="url")

    async def _account_for_adding(self, actor: User, provider_data: Mapping[str, Any]) -> ProviderAccount | None:
        ref = _account_ref(provider_data)
        if ref is None and not self.backend.needs_account:
            return None
        if ref is None:
            raise BadRequest(f"provider_data.account: name one of your {self.name} accounts "
                             "(GET /api/me/accounts)", field="provider_data.account")
        return await self.accounts.owned(actor, ref, kind=self.name, field="provider_data.account")

    def _stamp(self, found: ItemDescription, account: ProviderAccount | None) -> ItemDescription:
        data = dict(found.provider_data)
        if account is not None:
            data["account"] = account.id
        return attrs.evolve(found, provider_data=data)

    def describe(self, actor: User, url: str, provider_data: Mapping[str, Any]) -> Deferred[ItemDescription]:
        """The item ``actor`` adds (their own account); BadRequest/NotFound when it cannot be played."""

        async def run() -> ItemDescription:
            account = await self._account_for_adding(actor, provider_data)
            found = await self.accounts.run(account, self.name,
                                            lambda conn: self.backend.describe(conn, url, provider_data))
            return self._stamp(found, account)

        return Deferred.fromCoroutine(run())

    def children(self, actor: User, url: str, provider_data: Mapping[str, Any]) -> Deferred[list[ItemDescription]]:
        """Every playable child of a folder, season or series, in the provider's order."""

        async def run() -> list[ItemDescription]:
            account = await self._account_for_adding(actor, provider_data)
            found = await self.accounts.run(account, self.name,
                                            lambda conn: self.backend.children(conn, url, provider_data))
            if not found:
                raise BadRequest(f"that {self.name} folder has nothing playable in it", field="provider_data.item")
            if len(found) > MAX_IMPORT:
                raise BadRequest(f"that {self.name} folder has {len(found)} playable items; import at most "
                                 f"{MAX_IMPORT} at once (a sub-folder)", field="provider_data.item")
            return [self._stamp(item, account) for item in found]

        return Deferred.fromCoroutine(run())

    async def _account_of(self, media: MediaItem) -> ProviderAccount | None:
        account = await self.accounts.of_item(media)
        if account is None and self.backend.needs_account:
            raise NotFound(f"this {self.name} item names no account; add it again", field="provider_data.account")
        return account

    async def _resolved(self, media: MediaItem) -> tuple[Resolved, ProviderAccount | None]:
        account = await self._account_of(media)
        key = (self.name, media.room_id, media.id, account.id if account is not None else "")
        resolved = await self.cache.get(key, lambda: self.accounts.run(
            account, self.name, lambda conn: self.backend.resolve(conn, media, self.cache.clock())))
        return resolved, account

    def playback(self, media: MediaItem, profile: ClientProfile, now_ms: int) -> Deferred[PlaybackResult]:
        async def run() -> PlaybackResult:
            resolved, account = await self._resolved(media)
            share = account.share_direct if account is not None else True  # anonymous: no credential
            infos = select_infos(resolved.infos, profile, share)
            return PlaybackResult(media_id=media.id, provider=self.name, infos=infos)

        return Deferred.fromCoroutine(run())

    def thumbnail(self, media: MediaItem) -> Deferred[tuple[str, bytes]]:
        """The item's image from the provider, as ``(content_type, bytes)``."""

        async def run() -> tuple[str, bytes]:
            account = await self._account_of(media)
            ref = str(media.provider_data.get("item") or media.provider_data.get("thumbnail") or "")

            async def fetch(conn: Connection) -> tuple[str, bytes]:
                call = await self.backend.thumbnail(conn, ref)
                if call is None:
                    raise NotFound(f"this {self.name} item has no image")
                return image_of(await conn.http.send(call, limit=MAX_IMAGE_BYTES), self.name)

            return await self.accounts.run(account, self.name, fetch)

        return Deferred.fromCoroutine(run())
