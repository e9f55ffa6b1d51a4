"""Autobahn internals (see ``synctv.compat``); pinned by tests/compat/test_autobahn_internals.py.

- ``compresses(protocol)``: the connection negotiated a per-message compression extension
  (Autobahn's private ``_perMessageCompress``, which ``sendPreparedMessage`` consults). When it
  did not, ``sendPreparedMessage`` writes the prepared frame's ``payloadHybi`` as it is, so the
  realtime fan-out may write those bytes itself.
"""

from __future__ import annotations

from typing import Any


def compresses(protocol: Any) -> bool:
    """Whether ``protocol`` (a WebSocketProtocol) compresses the messages it sends."""
    return protocol._perMessageCompress is not None
