"""Store operations of provider accounts (schema 0006), in the style of ``synctv.store.sql``.

The ``credentials`` and ``session`` columns hold sealed blobs (``synctv.providers.secrets``); this
module stores and returns them as opaque text.
"""

from __future__ import annotations

from typing import Any

from synctv.core.accounts import ProviderAccount
from synctv.core.errors import Conflict, NotFound
from synctv.store.sql import _first
from synctv.store.statements import Execute, IntegrityViolation, Interaction

ACCOUNT_COLUMNS = (
    "id, user_id, kind, server, username, credentials, session, status, share_direct, created_at, updated_at"
)
_UPDATABLE = {
    "username": str, "credentials": str, "session": str, "status": str, "share_direct": bool, "updated_at": int,
}


def account_from_row(row: tuple[Any, ...]) -> ProviderAccount:
    return ProviderAccount(
        id=row[0], user_id=row[1], kind=row[2], server=row[3], username=row[4], credentials=row[5],
        session=row[6], status=row[7], share_direct=bool(row[8]), created_at=int(row[9]), updated_at=int(row[10]),
    )


def _select(account_id: str) -> Interaction[ProviderAccount | None]:
    r = yield Execute(f"SELECT {ACCOUNT_COLUMNS} FROM provider_accounts WHERE id = ?", (account_id,))
    return _first(r, account_from_row)


def create_provider_account(account: ProviderAccount) -> Interaction[ProviderAccount]:
    try:
        yield Execute(
            f"INSERT INTO provider_accounts ({ACCOUNT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (account.id, account.user_id, account.kind, account.server, account.username, account.credentials,
             account.session, account.status, bool(account.share_direct), account.created_at, account.updated_at),
        )
    except IntegrityViolation as e:
        if e.kind == "foreign_key":
            raise NotFound("the account's user no longer exists") from None
        if e.kind == "unique":
            raise Conflict("that account already exists") from None
        raise
    return account


def get_provider_account(account_id: str) -> Interaction[ProviderAccount | None]:
    return (yield from _select(account_id))


def list_provider_accounts(user_id: str) -> Interaction[list[ProviderAccount]]:
    r = yield Execute(
        f"SELECT {ACCOUNT_COLUMNS} FROM provider_accounts WHERE user_id = ? ORDER BY created_at, id", (user_id,))
    return [account_from_row(row) for row in r.rows]


def update_provider_account(account_id: str, fields: dict[str, Any]) -> Interaction[ProviderAccount | None]:
    unknown = sorted(set(fields) - set(_UPDATABLE))
    if unknown:
        raise TypeError(f"unknown provider account fields {unknown}; known: {sorted(_UPDATABLE)}")
    if fields:
        sets = ", ".join(f"{name} = ?" for name in fields)
        values = tuple(_UPDATABLE[name](value) for name, value in fields.items())
        yield Execute(f"UPDATE provider_accounts SET {sets} WHERE id = ?", (*values, account_id))
    return (yield from _select(account_id))


def delete_provider_account(account_id: str, user_id: str) -> Interaction[bool]:
    r = yield Execute("DELETE FROM provider_accounts WHERE id = ? AND user_id = ?", (account_id, user_id))
    return r.rowcount > 0
