"""Provider accounts (schema 0006), on every backend: stored as given (the secrets are sealed blobs
the store never opens), listed per user, updated field by field, deleted only by their owner and
with their user."""

from __future__ import annotations

import attrs
import pytest
import pytest_twisted

from synctv.core.accounts import ProviderAccount
from synctv.core.errors import BadRequest, NotFound
from tests.store.conftest import T0, new_id


def _account(user_id: str, **fields) -> ProviderAccount:
    return ProviderAccount(id=new_id(), user_id=user_id, kind="emby", server="http://e", username="u",
                           credentials="v1.sealed-credentials", session="v1.sealed-session",
                           created_at=T0, updated_at=T0, **fields)


@pytest_twisted.ensureDeferred
async def test_create_get_list_update_delete(store, make):
    alice, bob = await make.user(), await make.user()
    first = await store.create_provider_account(_account(alice.id, share_direct=True))
    second = await store.create_provider_account(attrs.evolve(_account(alice.id), created_at=T0 + 1, kind="alist"))
    await store.create_provider_account(_account(bob.id))
    assert await store.get_provider_account(first.id) == first
    assert [a.id for a in await store.list_provider_accounts(alice.id)] == [first.id, second.id]
    updated = await store.update_provider_account(first.id, session="v1.new", status="login_failed",
                                                  share_direct=False, updated_at=T0 + 9)
    assert updated == attrs.evolve(first, session="v1.new", status="login_failed", share_direct=False,
                                   updated_at=T0 + 9)
    assert await store.update_provider_account(new_id(), status="ok") is None
    with pytest.raises(TypeError):
        await store.update_provider_account(first.id, user_id=bob.id)
    assert await store.delete_provider_account(first.id, bob.id) is False  # not bob's
    assert await store.delete_provider_account(first.id, alice.id) is True
    assert await store.get_provider_account(first.id) is None


@pytest_twisted.ensureDeferred
async def test_bad_values_and_a_missing_user(store, make):
    alice = await make.user()
    with pytest.raises(NotFound):
        await store.create_provider_account(_account(new_id()))
    with pytest.raises(BadRequest):
        await store.create_provider_account(_account(alice.id, status="hacked"))
    with pytest.raises(BadRequest):
        await store.create_provider_account(attrs.evolve(_account(alice.id), kind="youtube"))


@pytest_twisted.ensureDeferred
async def test_accounts_go_with_their_user(store, make):
    alice = await make.user()
    account = await store.create_provider_account(_account(alice.id))
    assert await store.delete_user(alice.id)
    assert await store.get_provider_account(account.id) is None
