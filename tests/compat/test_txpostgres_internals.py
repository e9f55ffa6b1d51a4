"""synctv.compat.txpostgres against the installed txpostgres and a real PostgreSQL: a
connection's ``_connection`` is its psycopg2 connection (None before connect, closed after close), and
``runInteraction`` on a connection and on a pool runs their private ``_runInteraction``, which the
adapter forwards to public hooks. Fix the adapter, not the call sites, when this fails after an
upgrade, and raise the bound in setup.cfg."""

from __future__ import annotations

from typing import Any

import psycopg2.extensions
import pytest
import pytest_twisted

from synctv.compat.txpostgres import (
    TransactionConnection,
    TransactionPool,
    connection_open,
    psycopg_connection,
)
from synctv.store import DatabaseURL

pytestmark = pytest.mark.postgres


class Recording(TransactionConnection):
    calls: list[str]

    def run_transaction(self, interaction: Any, *args: Any, **kwargs: Any) -> Any:
        self.calls.append("run_transaction")
        return super().run_transaction(interaction, *args, **kwargs)


class RecordingPool(TransactionPool):
    calls: list[str] = []

    def run_pooled_transaction(self, interaction: Any, *args: Any, **kwargs: Any) -> Any:
        RecordingPool.calls.append("run_pooled_transaction")
        return super().run_pooled_transaction(interaction, *args, **kwargs)

    def connectionFactory(self, *args: Any, **kwargs: Any) -> Any:
        connection = Recording(*args, **kwargs)
        connection.calls = []
        return connection


def _select_one(cursor: Any) -> Any:
    return cursor.execute("SELECT 1").addCallback(lambda c: c.fetchall())


@pytest_twisted.inlineCallbacks
def test_a_connection_exposes_its_psycopg2_connection_and_runs_transactions_through_the_hook(
    postgres_admin_url: DatabaseURL,
) -> None:
    from twisted.internet import reactor

    connection = Recording(reactor=reactor)
    connection.calls = []
    assert psycopg_connection(connection) is None and not connection_open(connection)
    assert psycopg_connection(None) is None
    yield connection.connect(postgres_admin_url.dsn)
    try:
        raw = psycopg_connection(connection)
        assert isinstance(raw, psycopg2.extensions.connection) and raw.closed == 0
        assert connection_open(connection)
        assert (yield connection.runInteraction(_select_one)) == [(1,)]
        assert connection.calls == ["run_transaction"]
    finally:
        connection.close()
    assert psycopg_connection(connection).closed and not connection_open(connection)


@pytest_twisted.inlineCallbacks
def test_a_pool_runs_transactions_through_the_hook_and_puts_the_connection_back(
    postgres_admin_url: DatabaseURL,
) -> None:
    RecordingPool.calls = []
    pool = RecordingPool(None, postgres_admin_url.dsn, min=2)
    yield pool.start()
    try:
        assert len(pool.connections) == 2
        assert (yield pool.runInteraction(_select_one)) == [(1,)]
        assert RecordingPool.calls == ["run_pooled_transaction"]
        assert len(pool.connections) == 2  # put_back returned it
        assert sum(len(c.calls) for c in pool.connections) == 1
        marker = object()
        taken = pool.connections.pop()
        assert pool.put_back(marker, taken) is marker and taken in pool.connections
    finally:
        pool.close()
