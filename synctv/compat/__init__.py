"""The one place synctv touches private names of its dependencies.

Every attribute or method whose name starts with ``_`` on a Twisted, Autobahn or txpostgres
object is used here and nowhere else in the package; the rest of synctv calls these adapters:

- ``synctv.compat.twisted``: a TCP transport's empty write buffer, the request line an
  ``HTTPChannel`` parsed before the body arrives, and a cap on an HTTP client's response header
  section.
- ``synctv.compat.autobahn``: whether a WebSocket connection compresses its messages.
- ``synctv.compat.txpostgres``: a connection's psycopg2 connection, and the transaction runners of
  ``Connection`` and ``ConnectionPool`` under public names to override.

``tests/compat/`` asserts, against the installed versions, that each private name exists and
behaves as assumed, so an upgrade that changes one fails there, loudly, by name. setup.cfg bounds
these dependencies to the versions those tests passed on; raising a bound means running them.
"""
