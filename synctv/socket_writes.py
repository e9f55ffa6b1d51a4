"""``write_now``: bytes straight to a plain TCP socket when nothing is queued ahead of them.

A plain ``transport.write`` appends to Twisted's buffer and arms EPOLLOUT, so a fan-out to N
sockets (a realtime state change, a live FLV batch) costs two epoll calls and a second reactor
pass per socket. When the transport's buffer is empty the bytes can go out at once, in order;
what the kernel does not take is buffered by Twisted as usual (so it still counts for
back-pressure). Only plain TCP server transports (``tcp.Server``) take this path; TLS and
anything else use ``write``. Used by ``synctv.realtime.protocol`` and ``synctv.live.fanout``;
``tests/realtime/test_write_now.py`` pins the byte order under partial writes.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import tcp

from synctv.compat.twisted import write_buffer_empty


def write_now(transport: Any, data: bytes) -> None:
    """Write ``data`` to ``transport``, straight to the socket when nothing is queued ahead of it."""
    if (type(transport) is tcp.Server and not transport.disconnecting and not transport.disconnected
            and write_buffer_empty(transport)):
        sent = transport.writeSomeData(data)
        if isinstance(sent, int) and sent >= 0:
            if sent < len(data):
                transport.write(data[sent:])
            return
    transport.write(data)
