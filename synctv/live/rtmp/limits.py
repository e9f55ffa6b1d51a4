"""The bounds of the RTMP door: what one connection may make the server hold or do.

``RTMPLimits`` carries the configurable ones (``[live] max_buffer_bytes``, ``max_connections``,
``max_connections_per_address``, ``publish_timeout_s``); the constants are the fixed ones. ``RTMPSession`` applies them (through
its ``ChunkReader``), ``RTMPFactory`` counts connections; docs/live.md "Limits" lists them all.

- ``max_buffer_bytes``: the chunk reader's partly assembled messages (counted at their declared
  length, so a header announcing more is refused before anything is buffered) plus the media
  queued while the publish is checked.
- Until a publish is authorized: at most ``pre_publish_chunk_streams`` chunk streams,
  ``PRE_AUTH_MESSAGES`` messages and ``PRE_AUTH_COMMANDS`` commands; until one is requested,
  messages of at most ``PRE_PUBLISH_MESSAGE_SIZE`` bytes.
- ``publish_timeout_s`` after the connection is accepted, one without an authorized publish is
  closed, whatever stage it stalls in.
- Always: Set Chunk Size at least ``MIN_CHUNK_SIZE``; AMF messages of at most ``MAX_COMMAND_SIZE``
  bytes and ``MAX_AMF_VALUES`` values; ``MAX_STREAMS`` createStream ids; ``MAX_PENDING_BYTES`` /
  ``MAX_PENDING_EVENTS`` of media queued while the key is checked (the excess is dropped).
"""

from __future__ import annotations

import attrs

from synctv.live.rtmp.chunks import MAX_BUFFER_BYTES

MAX_CONNECTIONS = 256  # [live] max_connections
MAX_CONNECTIONS_PER_ADDRESS = 16  # [live] max_connections_per_address
PUBLISH_TIMEOUT_S = 10.0  # [live] publish_timeout_s
PRE_PUBLISH_CHUNK_STREAMS = 8
MAX_STREAMS = 16
MAX_PENDING_BYTES = 8 * 1024 * 1024  # media queued while the application decides on a publish
MAX_PENDING_EVENTS = 2048
MAX_COMMAND_SIZE = 64 * 1024  # AMF command/data messages are small; decoding costs ~0.5 us a byte
MAX_AMF_VALUES = 4096  # per AMF message, nested values included
MIN_CHUNK_SIZE = 128  # as SRS: smaller chunks only make every byte cost a header
PRE_PUBLISH_MESSAGE_SIZE = 64 * 1024  # before the publish command only commands make sense
PRE_AUTH_MESSAGES = 4096  # more than the pending queue holds (MAX_PENDING_EVENTS)
PRE_AUTH_COMMANDS = 64  # connect, releaseStream, FCPublish, createStream, publish... about 6


@attrs.frozen
class RTMPLimits:
    """The per-connection bounds of the RTMP door (``[live]`` keys, docs/live.md)."""

    max_buffer_bytes: int = MAX_BUFFER_BYTES  # [live] max_buffer_bytes
    max_connections: int = MAX_CONNECTIONS  # enforced by the factory (synctv/live/rtmp/protocol.py)
    max_connections_per_address: int = MAX_CONNECTIONS_PER_ADDRESS  # likewise, per source address
    publish_timeout_s: float = PUBLISH_TIMEOUT_S
    pre_publish_chunk_streams: int = PRE_PUBLISH_CHUNK_STREAMS
