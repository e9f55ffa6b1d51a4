"""txpostgres internals (see ``synctv.compat``); pinned by tests/compat/test_txpostgres_internals.py.

- ``psycopg_connection(connection)``: the psycopg2 connection under a txpostgres ``Connection``
  (its private ``_connection``): ``None`` before it connects (and for ``None``), closed after
  ``close()``.
- ``connection_open(connection)``: it has a psycopg2 connection that is not closed.
- ``TransactionConnection``: txpostgres' ``Connection`` whose ``runInteraction`` body (the private
  ``_runInteraction``, run one at a time per connection) is ``run_transaction``, to override.
- ``TransactionPool``: txpostgres' ``ConnectionPool`` whose ``runInteraction`` body (the private
  ``_runInteraction``, run under the pool's semaphore) is ``run_pooled_transaction``, to
  override; ``put_back(result, connection)`` returns a connection to the pool and passes
  ``result`` through (the private ``_putBackAndPassthrough``).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from txpostgres import txpostgres


def psycopg_connection(connection: Any) -> Any:
    """The psycopg2 connection of a txpostgres ``Connection``, or ``None``."""
    return None if connection is None else connection._connection


def connection_open(connection: Any) -> bool:
    raw = psycopg_connection(connection)
    return raw is not None and not raw.closed


class TransactionConnection(txpostgres.Connection):
    def _runInteraction(self, interaction: Any, *args: Any, **kwargs: Any) -> Deferred[Any]:
        return self.run_transaction(interaction, *args, **kwargs)

    def run_transaction(self, interaction: Any, *args: Any, **kwargs: Any) -> Deferred[Any]:
        """``begin``, ``interaction(cursor, ...)``, then ``commit`` or ``rollback`` (txpostgres')."""
        return txpostgres.Connection._runInteraction(self, interaction, *args, **kwargs)


class TransactionPool(txpostgres.ConnectionPool):
    def _runInteraction(self, interaction: Any, *args: Any, **kwargs: Any) -> Deferred[Any]:
        return self.run_pooled_transaction(interaction, *args, **kwargs)

    def run_pooled_transaction(self, interaction: Any, *args: Any, **kwargs: Any) -> Deferred[Any]:
        """Take a connection from ``connections``, run the interaction on it, ``put_back``."""
        return txpostgres.ConnectionPool._runInteraction(self, interaction, *args, **kwargs)

    def put_back(self, result: Any, connection: Any) -> Any:
        return self._putBackAndPassthrough(result, connection)
