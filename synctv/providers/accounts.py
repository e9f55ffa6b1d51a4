"""Provider accounts: the use-cases of ``/api/me/accounts`` and the sessions provider calls run with.

``ProviderAccounts`` links a user's own Alist, Emby, Jellyfin or Bilibili account (logging in
upstream first: a refused password is a 400 with the upstream's reason), lists, changes and
removes them, browses them, and runs every provider call with an account's session
(:meth:`run`): the session is opened from its sealed blob, used, and when the upstream refuses
it (``CredentialsRejected``) renewed once with the stored credentials -- a second refusal is a
502 with the upstream's reason. Renewals of one account are collapsed into one login.

Who may use what: an account is only ever listed, browsed, changed or used to *add* items by
its owner; items added with it play for every member of the room with it (the server keeps the
credential). Secrets are sealed with ``synctv.providers.secrets.SecretBox`` under the provider
key; they are never returned, logged or put in an error message.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import attrs
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from synctv.core import auth
from synctv.core.accounts import KINDS, ProviderAccount, normalize_server
from synctv.core.clock import Clock
from synctv.core.errors import BadGateway, BadRequest, Conflict, NotFound, Unavailable
from synctv.core.models import MediaItem, User
from synctv.providers.calls import CredentialsRejected
from synctv.providers.catalog import (
    MAX_IMAGE_BYTES,
    Backend,
    BrowseEntry,
    Connection,
    PlaybackCache,
    image_of,
)
from synctv.providers.client import ApiClient
from synctv.providers.secrets import SecretBox, SecretUnreadable
from synctv.proxy.cache import Collapser

MAX_SECRET = 8192  # characters of a password or cookie


def _context(account_id: str, field: str) -> str:
    return f"synctv-provider-account\n{account_id}\n{field}"


def _scrubbed(reason: str, *secrets: Any) -> str:
    """An upstream's words with any of the account's secrets it may echo masked."""
    for value in secrets:
        for item in (value.values() if isinstance(value, dict) else [value]):
            if isinstance(item, str) and len(item) >= 4:
                reason = reason.replace(item, "***")
    return reason


@attrs.frozen
class Linked:
    """A new account, and the Jellyfin quick-connect code to approve when it is ``pending``."""

    account: ProviderAccount
    quick_connect_code: str | None = None


class ProviderAccounts:
    """See the module docstring. ``backends`` by kind: the providers this server runs."""

    log = Logger()

    def __init__(self, *, store: Any, box: SecretBox, clock: Clock, http: ApiClient,
                 backends: Mapping[str, Backend], cache: PlaybackCache | None = None) -> None:
        self.store = store
        self.box = box
        self.clock = clock
        self.http = http
        self.backends = dict(backends)
        self.playback_cache = cache if cache is not None else PlaybackCache(clock)
        self._logins: Collapser[str, tuple[ProviderAccount, dict[str, Any]]] = Collapser()

    # -- helpers --------------------------------------------------------------------------------

    def _backend(self, kind: str, field: str = "kind") -> Backend:
        backend = self.backends.get(kind)
        if backend is None:
            known = ", ".join(sorted(self.backends)) or "none"
            if kind in KINDS:
                raise BadRequest(f"{kind} accounts are not enabled on this server (it has: {known})", field=field)
            raise BadRequest(f"unknown account kind {kind[:40]!r}; known: {', '.join(KINDS)}", field=field)
        return backend

    def _open(self, account: ProviderAccount, field: str) -> dict[str, Any]:
        blob = account.credentials if field == "credentials" else account.session
        if not blob:
            return {}
        try:
            return self.box.open(blob, context=_context(account.id, field))
        except SecretUnreadable:
            self.log.warn("the {field} of provider account {account_id} do not open with this server's provider "
                          "key", field=field, account_id=account.id)
            raise Unavailable(f"the stored secrets of this {account.kind} account cannot be read with this server's "
                              "provider key ([providers] key_file); its owner must link it again") from None

    def _seal(self, account_id: str, field: str, value: Mapping[str, Any]) -> str:
        return self.box.seal(dict(value), context=_context(account_id, field))

    # -- what the owner does --------------------------------------------------------------------

    async def _link(self, actor: User, kind: str, server: str | None, username: str | None, password: str | None,
                    cookie: str | None, share_direct: bool) -> Linked:
        backend = self._backend(kind)
        base = normalize_server(kind, server)
        for name, value in (("password", password), ("cookie", cookie)):
            if value is not None and len(value) > MAX_SECRET:
                raise BadRequest(f"{name} must be at most {MAX_SECRET} characters", field=name)
        credentials: dict[str, Any] = {}
        if kind == "bilibili":
            if not cookie:
                raise BadRequest("a bilibili account is its browser cookie (SESSDATA=...); anonymous videos need no "
                                 "account", field="cookie")
            credentials["cookie"] = cookie
        else:
            if cookie is not None:
                raise BadRequest(f"a {kind} account logs in with a user name and password, not a cookie",
                                 field="cookie")
            if not username and not (kind == "jellyfin" and password is None):
                raise BadRequest(f"a {kind} account needs the user name", field="username")
            if password is not None:
                credentials["password"] = password
        account_id = auth.new_id()
        try:
            session = await backend.login(self.http, base, username or "", credentials, {})
        except CredentialsRejected as e:
            self.log.info("{kind} server {server} refused a new account of {user_name}", kind=kind, server=base,
                          user_name=actor.name)
            reason = _scrubbed(e.reason, credentials)
            raise BadRequest(f"the {kind} server refused the login: {reason or 'no reason given'}",
                             field="cookie" if kind == "bilibili" else "password",
                             detail={"upstream_reason": reason}) from None
        status = str(session.pop("status", "ok"))
        if status == "pending":  # what finishes the login later is kept with the credentials
            for key in ("quick_connect_secret", "quick_connect_code", "device_id"):
                if key in session:
                    credentials[key] = session.pop(key)
        code = credentials.get("quick_connect_code")
        now = self.clock()
        account = ProviderAccount(
            id=account_id, user_id=actor.id, kind=kind, server=base,
            username=str(session.get("username") or username or ""),
            credentials=self._seal(account_id, "credentials", credentials),
            session=self._seal(account_id, "session", session) if status == "ok" else "",
            status=status, share_direct=share_direct, created_at=now, updated_at=now,
        )
        account = await self.store.create_provider_account(account)
        self.log.info("{user_name} linked {kind} account {account_id} ({server}, {status})", user_name=actor.name,
                      kind=kind, account_id=account_id, server=base or "-", status=status)
        return Linked(account, code if isinstance(code, str) else None)

    def link(self, actor: User, *, kind: str, server: str | None = None, username: str | None = None,
             password: str | None = None, cookie: str | None = None, share_direct: bool = False) -> Deferred[Linked]:
        """Log in upstream with the credentials, then store the account (secrets sealed)."""
        return Deferred.fromCoroutine(self._link(actor, kind, server, username, password, cookie, share_direct))

    def list(self, actor: User) -> Deferred[list[ProviderAccount]]:
        return self.store.list_provider_accounts(actor.id)

    def get(self, actor: User, account_id: str) -> Deferred[ProviderAccount]:
        return Deferred.fromCoroutine(self.owned(actor, account_id))

    def update(self, actor: User, account_id: str, *, share_direct: bool) -> Deferred[ProviderAccount]:
        async def run() -> ProviderAccount:
            account = await self.owned(actor, account_id)
            updated = await self.store.update_provider_account(account.id, share_direct=share_direct,
                                                               updated_at=self.clock())
            if updated is None:
                raise NotFound(f"you have no provider account {account_id[:64]!r}")
            return updated

        return Deferred.fromCoroutine(run())

    def remove(self, actor: User, account_id: str) -> Deferred[str]:
        """Unlink an account; items added with it then answer a clear 404 on playback."""

        async def run() -> str:
            account = await self.owned(actor, account_id)
            if not await self.store.delete_provider_account(account.id, actor.id):
                raise NotFound(f"you have no provider account {account_id[:64]!r}")
            self.log.info("{user_name} removed {kind} account {account_id}", user_name=actor.name, kind=account.kind,
                          account_id=account.id)
            return account.id

        return Deferred.fromCoroutine(run())

    def browse(self, actor: User, account_id: str, path: str) -> Deferred[tuple[ProviderAccount, list[BrowseEntry]]]:
        async def run() -> tuple[ProviderAccount, list[BrowseEntry]]:
            account = await self.owned(actor, account_id)
            backend = self._backend(account.kind)
            entries = await self.run(account, account.kind, lambda conn: backend.browse(conn, path))
            return account, entries

        return Deferred.fromCoroutine(run())

    def thumbnail(self, actor: User, account_id: str, item: str) -> Deferred[tuple[str, bytes]]:
        """An image of an item in one of ``actor``'s accounts (the browse answer's ``thumbnail``)."""

        async def run() -> tuple[str, bytes]:
            account = await self.owned(actor, account_id)
            backend = self._backend(account.kind)

            async def fetch(conn: Connection) -> tuple[str, bytes]:
                call = await backend.thumbnail(conn, item)
                if call is None:
                    raise NotFound(f"this {account.kind} item has no image")
                return image_of(await conn.http.send(call, limit=MAX_IMAGE_BYTES), account.kind)

            return await self.run(account, account.kind, fetch)

        return Deferred.fromCoroutine(run())

    # -- what the providers use -----------------------------------------------------------------

    async def owned(self, actor: User, account_id: Any, *, kind: str | None = None,
                    field: str | None = None) -> ProviderAccount:
        """``actor``'s account ``account_id`` (NotFound for anyone else's: it is not theirs to see)."""
        if not isinstance(account_id, str) or not account_id or len(account_id) > 64:
            raise BadRequest("name an account by its id (GET /api/me/accounts)", field=field or "account")
        account = await self.store.get_provider_account(account_id)
        if account is None or account.user_id != actor.id:
            raise NotFound(f"you have no provider account {account_id[:64]!r}", field=field)
        if kind is not None and account.kind != kind:
            raise BadRequest(f"account {account_id[:64]!r} is a {account.kind} account, not {kind}", field=field)
        return account

    async def of_item(self, item: MediaItem) -> ProviderAccount | None:
        """The account ``item`` plays with (that of the member who added it), None when it names
        none (an anonymous Bilibili item); NotFound when that account was removed."""
        ref = item.provider_data.get("account")
        if ref is None:
            return None
        account = await self.store.get_provider_account(str(ref))
        if account is None or account.user_id != item.created_by:
            raise NotFound(f"the {item.provider} account this item was added with has been removed; its owner can "
                           "link the account again and add the item again",
                           detail={"reason": "account_removed", "account": str(ref)[:64]})
        return account

    async def run(self, account: ProviderAccount | None, kind: str,
                  call: Callable[[Connection], Awaitable[Any]]) -> Any:
        """``call`` with ``account``'s session (see the module docstring)."""
        self._backend(kind)
        if account is None:
            return await call(Connection(None, {}, self.http))
        session = self._open(account, "session") if account.status == "ok" else {}
        if not session:
            account, session = await self._login_again(account)
        try:
            return await call(Connection(account, session, self.http))
        except CredentialsRejected as first:
            self.log.info("{kind} refused the session of account {account_id} ({reason}); logging in again",
                          kind=kind, account_id=account.id, reason=_scrubbed(first.reason, session))
        account, session = await self._login_again(account)
        try:
            return await call(Connection(account, session, self.http))
        except CredentialsRejected as again:
            reason = _scrubbed(again.reason, session)
            raise BadGateway(f"the {kind} server refuses the account {account.username!r} even after a fresh login: "
                             f"{reason or 'no reason given'}", detail={"upstream_reason": reason}) from None

    def _login_again(self, account: ProviderAccount) -> Deferred[tuple[ProviderAccount, dict[str, Any]]]:
        return self._logins.run(account.id, lambda: Deferred.fromCoroutine(self._login(account)))

    async def _login(self, account: ProviderAccount) -> tuple[ProviderAccount, dict[str, Any]]:
        backend = self._backend(account.kind)
        credentials = self._open(account, "credentials")
        previous = self._open(account, "session") if account.session else {}
        try:
            session = await backend.login(self.http, account.server, account.username, credentials, previous)
        except CredentialsRejected as e:
            await self.store.update_provider_account(account.id, status="login_failed", updated_at=self.clock())
            reason = _scrubbed(e.reason, credentials, previous)
            self.log.warn("{kind} refused the stored login of account {account_id}: {reason}", kind=account.kind,
                          account_id=account.id, reason=reason)
            raise BadGateway(f"the {account.kind} server refused the stored login of {account.username!r}: "
                             f"{reason or 'no reason given'}; its owner must link the account again",
                             detail={"upstream_reason": reason}) from None
        status = str(session.pop("status", "ok"))
        if status == "pending":
            code = credentials.get("quick_connect_code") or session.get("quick_connect_code")
            raise Conflict("this Jellyfin account waits for its quick connect code to be approved in Jellyfin"
                           + (f" (code {code})" if isinstance(code, str) else ""))
        for key in ("quick_connect_code", "quick_connect_secret"):
            session.pop(key, None)
        updated = await self.store.update_provider_account(
            account.id, session=self._seal(account.id, "session", session), status="ok", updated_at=self.clock())
        if updated is None:
            raise NotFound("the account was removed while it was logging in")
        return updated, session
