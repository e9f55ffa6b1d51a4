"""The realtime protocol's pure rules (docs/realtime.md): message parsing, limits, rate limiting,
presence merging and the version-ordering decision.

No I/O and no reactor: callers pass the time. Every refusal is a ``DomainError`` whose ``field``
names the offending field, so the WebSocket edge can answer with an ``error`` frame.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from synctv.core.errors import BadRequest, PayloadTooLarge
from synctv.core.playback import MAX_POSITION, Update, number_field, parse_update

RESOURCES = ("playbackState", "playback", "presence", "chat", "viewers", "playlist")
MAX_ID_CHARS = 64
MAX_CONNECTION_ID_CHARS = 64
MAX_PROFILE_ITEMS = 32
MAX_JS_INT = 2**53
MessageId = str | int | None


@attrs.frozen
class RealtimeConfig:
    """The ``[realtime]`` config section: the operator's bounds (docs/realtime.md); counts are
    per node. ``synctv.config`` reads it from the TOML file."""

    max_frame_bytes: int = 64 * 1024
    messages_per_s: float = 20.0
    messages_burst: int = 40
    max_connections_per_room: int = 5000
    max_connections_per_user: int = 20
    idle_s: float = 60.0
    ping_s: float = 20.0
    send_buffer_bytes: int = 1 << 20


@attrs.frozen
class RealtimeLimits(RealtimeConfig):
    """Every bound of the realtime layer: the configured ones, then the protocol constants (some
    published in ``welcome``)."""

    chat_max_chars: int = 500
    danmaku_max_chars: int = 100
    webrtc_max_bytes: int = 6 * 1024
    chat_backlog: int = 50
    presence_interval_s: float = 10.0
    presence_expire_s: float = 30.0
    viewers_interval_s: float = 1.0  # telemetry in ``viewers`` is announced and pushed at most this often

    def public(self) -> dict[str, Any]:
        """The limits a client needs to know (the ``limits`` field of ``welcome``)."""
        return {
            "max_frame_bytes": self.max_frame_bytes,
            "messages_per_s": self.messages_per_s,
            "messages_burst": self.messages_burst,
            "chat_max_chars": self.chat_max_chars,
            "danmaku_max_chars": self.danmaku_max_chars,
            "webrtc_max_bytes": self.webrtc_max_bytes,
        }


# -- client messages ------------------------------------------------------------------------------


@attrs.frozen
class TimeRequest:
    id: MessageId
    t0: int | float


@attrs.frozen
class ProfileSpec:
    """The ``profile`` of ``observe playback``; ``None`` means "not said"."""

    modes: tuple[str, ...] | None = None
    formats: tuple[str, ...] | None = None
    headers: bool | None = None

    def as_query(self) -> dict[str, list[str]]:
        """The same profile as the query parameters of ``GET .../playback``."""
        query: dict[str, list[str]] = {}
        if self.modes is not None:
            query["modes"] = [",".join(self.modes)]
        if self.formats is not None:
            query["formats"] = [",".join(self.formats)]
        if self.headers is not None:
            query["headers"] = ["1" if self.headers else "0"]
        return query


@attrs.frozen
class Observe:
    id: MessageId
    resource: str
    profile: ProfileSpec | None = None


@attrs.frozen
class Unobserve:
    id: MessageId
    resource: str


@attrs.frozen
class UpdateRequest:
    id: MessageId
    update: Update


@attrs.frozen
class ChatSend:
    id: MessageId
    text: str


@attrs.frozen
class DanmakuSend:
    id: MessageId
    text: str
    at: float


@attrs.frozen
class Telemetry:
    id: MessageId
    drift_ms: float | None
    rate: float | None
    offset_ms: float | None
    rtt_ms: float | None

    def to_json(self) -> dict[str, Any]:
        return {"drift_ms": self.drift_ms, "rate": self.rate, "offset_ms": self.offset_ms, "rtt_ms": self.rtt_ms}


@attrs.frozen
class Readiness:
    """``readiness {ready, wait?}``: whether this viewer's player can play at the room's position
    now, and (``wait``, None: unchanged) whether the room should wait for it (synctv.core.wait)."""

    id: MessageId
    ready: bool
    wait: bool | None = None


@attrs.frozen
class WebRTCSignal:
    id: MessageId
    to: str
    signal: Any


ClientMessage = (
    TimeRequest | Observe | Unobserve | UpdateRequest | ChatSend | DanmakuSend | Telemetry | WebRTCSignal
    | Readiness
)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def decode_frame(payload: bytes) -> dict[str, Any]:
    """A text frame's payload as a JSON object, or BadRequest saying what is wrong."""
    try:
        value = json.loads(payload.decode("utf-8"), parse_constant=_reject_constant)
    except RecursionError:
        raise BadRequest("the message is nested too deeply") from None
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError
        raise BadRequest(f"the message is not valid JSON: {str(e)[:200]}") from None
    if not isinstance(value, dict):
        raise BadRequest("a message must be a JSON object with a type")
    return value


def message_id(obj: Mapping[str, Any]) -> MessageId:
    """The ``id`` to echo; BadRequest (field ``id``) when present but not a short string or an integer."""
    value = obj.get("id")
    if value is None:
        return None
    if isinstance(value, str) and len(value) <= MAX_ID_CHARS:
        return value
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) <= MAX_JS_INT:
        return value
    raise BadRequest(f"id must be a string of at most {MAX_ID_CHARS} characters or an integer", field="id")


def _text(obj: Mapping[str, Any], name: str, max_chars: int) -> str:
    value = obj.get(name)
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string", field=name)
    if not value.strip():
        raise BadRequest(f"{name} must not be empty", field=name)
    if len(value) > max_chars:
        raise BadRequest(f"{name} may have at most {max_chars} characters", field=name)
    return value


def _resource(obj: Mapping[str, Any]) -> str:
    resource = obj.get("resource")
    if resource not in RESOURCES:
        raise BadRequest(f"resource must be one of {', '.join(RESOURCES)}", field="resource")
    return resource


def _names(value: Any, field: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest(f"{field} must be a list of names", field=field)
    if len(value) > MAX_PROFILE_ITEMS:
        raise BadRequest(f"{field} may name at most {MAX_PROFILE_ITEMS} values", field=field)
    return tuple(v.strip().lower() for v in value)


def parse_profile(value: Any) -> ProfileSpec | None:
    """``{modes?, formats?, headers?}``; names are checked further by the providers' ClientProfile."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadRequest("profile must be an object {modes?, formats?, headers?}", field="profile")
    headers = value.get("headers")
    if headers is not None and not isinstance(headers, bool):
        raise BadRequest("profile.headers must be true or false", field="profile.headers")
    return ProfileSpec(
        modes=None if value.get("modes") is None else _names(value["modes"], "profile.modes"),
        formats=None if value.get("formats") is None else _names(value["formats"], "profile.formats"),
        headers=headers,
    )


def encoded_size(value: Any) -> int:
    """Bytes of ``value`` as compact UTF-8 JSON (how it travels)."""
    return len(encode_message(value))


def parse_message(obj: Mapping[str, Any], limits: RealtimeLimits) -> ClientMessage:
    """Validate one decoded client message (docs/realtime.md, "Client -> server")."""
    mid = message_id(obj)
    kind = obj.get("type")
    if kind == "time":
        number_field(obj, "t0", required=True)
        return TimeRequest(mid, obj["t0"])  # echoed as sent (an integer stays one)
    if kind == "observe":
        resource = _resource(obj)
        profile = parse_profile(obj.get("profile")) if resource == "playback" else None
        return Observe(mid, resource, profile)
    if kind == "unobserve":
        return Unobserve(mid, _resource(obj))
    if kind == "update":
        return UpdateRequest(mid, parse_update(dict(obj)))
    if kind == "chat":
        return ChatSend(mid, _text(obj, "text", limits.chat_max_chars))
    if kind == "danmaku":
        text = _text(obj, "text", limits.danmaku_max_chars)
        at = number_field(obj, "at", required=True)
        assert at is not None
        if not 0 <= at <= MAX_POSITION:
            raise BadRequest("at must be a media position in seconds, not negative", field="at")
        return DanmakuSend(mid, text, at)
    if kind == "telemetry":
        return Telemetry(
            mid, *(number_field(obj, name) for name in ("drift_ms", "rate", "offset_ms", "rtt_ms"))
        )
    if kind == "readiness":
        ready, wait = obj.get("ready"), obj.get("wait")
        if not isinstance(ready, bool):
            raise BadRequest("ready must be true or false", field="ready")
        if wait is not None and not isinstance(wait, bool):
            raise BadRequest("wait must be true or false", field="wait")
        return Readiness(mid, ready, wait)
    if kind == "webrtc":
        to = obj.get("to")
        if not isinstance(to, str) or not to or len(to) > MAX_CONNECTION_ID_CHARS:
            raise BadRequest("to must be the connection id of a member of this room", field="to")
        if "signal" not in obj or obj["signal"] is None:
            raise BadRequest("signal is required", field="signal")
        try:
            size = encoded_size(obj["signal"])
        except ValueError:
            raise BadRequest("signal must be plain JSON", field="signal") from None
        if size > limits.webrtc_max_bytes:
            raise PayloadTooLarge(f"signal may be at most {limits.webrtc_max_bytes} bytes as JSON", field="signal")
        return WebRTCSignal(mid, to, obj["signal"])
    if not isinstance(kind, str):
        raise BadRequest("a message needs a string type", field="type")
    raise BadRequest(f"unknown message type {kind[:40]!r}", field="type")


def encode_message(message: Any) -> bytes:
    """Compact UTF-8 JSON for a text frame; refuses NaN and Infinity (ValueError)."""
    return json.dumps(message, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")


# -- rate limiting --------------------------------------------------------------------------------


class RateVerdict(enum.Enum):
    accept = "accept"
    refuse = "refuse"  # answer error rate_limited, keep the connection
    close = "close"  # keeps going: close with 1008


@attrs.define
class RateLimiter:
    """A token bucket of ``burst`` tokens refilled at ``rate`` per second, plus a strike count.

    Each refused message is a strike; strikes leak at one per second. A sender whose strikes
    pass ``strikes_to_close`` is abusing the connection (at twice the rate, that is after about
    ``strikes_to_close / rate`` seconds); one slightly over the rate is only refused.
    """

    rate: float
    burst: float
    strikes_to_close: float
    tokens: float = attrs.field(default=None)
    strikes: float = 0.0
    updated_s: float | None = None

    def __attrs_post_init__(self) -> None:
        if self.tokens is None:
            self.tokens = float(self.burst)

    @classmethod
    def for_limits(cls, limits: RealtimeLimits) -> RateLimiter:
        return cls(rate=limits.messages_per_s, burst=limits.messages_burst,
                   strikes_to_close=max(float(limits.messages_burst), 1.0))

    def check(self, now_s: float) -> RateVerdict:
        if self.updated_s is not None and now_s > self.updated_s:
            elapsed = now_s - self.updated_s
            self.tokens = min(float(self.burst), self.tokens + elapsed * self.rate)
            self.strikes = max(0.0, self.strikes - elapsed)
        if self.updated_s is None or now_s > self.updated_s:
            self.updated_s = now_s
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return RateVerdict.accept
        self.strikes += 1.0
        return RateVerdict.close if self.strikes > self.strikes_to_close else RateVerdict.refuse


# -- version ordering -----------------------------------------------------------------------------


class Relay(enum.Enum):
    send = "send"  # the next version: send it
    drop = "drop"  # already sent (or older): never send N after N+1
    gap = "gap"  # versions were skipped: re-read the state and send that


def relay_decision(last_sent: int | None, version: int) -> Relay:
    """What to do with version ``version`` of the playback state for a connection that last got
    ``last_sent`` (None: nothing yet, so the state must be read)."""
    if last_sent is None:
        return Relay.gap
    if version <= last_sent:
        return Relay.drop
    if version == last_sent + 1:
        return Relay.send
    return Relay.gap


# -- presence -------------------------------------------------------------------------------------


@attrs.frozen
class PresenceEntry:
    """One user's connections on one node."""

    user_id: str
    user_name: str
    connection_ids: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "user_name": self.user_name, "connection_ids": list(self.connection_ids)}

    @classmethod
    def from_json(cls, value: Any) -> PresenceEntry:
        if not isinstance(value, dict):
            raise BadRequest("a presence entry must be an object")
        ids = value.get("connection_ids")
        if not isinstance(value.get("user_id"), str) or not isinstance(ids, list):
            raise BadRequest("a presence entry needs user_id and connection_ids")
        name = value.get("user_name")
        return cls(value["user_id"], name if isinstance(name, str) else "", tuple(str(i) for i in ids))


def local_presence(connections: Iterable[tuple[str, str, str]]) -> tuple[PresenceEntry, ...]:
    """Entries from ``(connection_id, user_id, user_name)`` triples, one per user, sorted."""
    by_user: dict[str, tuple[str, list[str]]] = {}
    for connection_id, user_id, user_name in connections:
        by_user.setdefault(user_id, (user_name, []))[1].append(connection_id)
    return tuple(
        PresenceEntry(user_id, name, tuple(sorted(ids))) for user_id, (name, ids) in sorted(by_user.items())
    )


class PresenceBoard:
    """Every node's presence entries for one room, merged into the ``online`` list.

    The local node's entries never expire; another node's expire ``expire_ms`` after it last
    announced them (a node that died stops announcing).
    """

    def __init__(self, local_node: str, expire_ms: int) -> None:
        self.local_node = local_node
        self.expire_ms = expire_ms
        self._nodes: dict[str, tuple[int, tuple[PresenceEntry, ...]]] = {}
        self._online: list[dict[str, Any]] = []
        self.revision = 0  # counts changes of the merged list

    def knows(self, node: str) -> bool:
        return node in self._nodes

    def put(self, node: str, entries: tuple[PresenceEntry, ...], now_ms: int) -> bool:
        """Record ``node``'s entries; True when the merged ``online`` list changed."""
        if entries or node == self.local_node:
            self._nodes[node] = (now_ms, entries)
        else:
            self._nodes.pop(node, None)  # a node with nobody here: forget it
        return self._merge()

    def expire(self, now_ms: int) -> bool:
        """Forget nodes silent for more than ``expire_ms``; True when ``online`` changed."""
        stale = [
            node for node, (seen, _) in self._nodes.items()
            if node != self.local_node and now_ms - seen > self.expire_ms
        ]
        for node in stale:
            del self._nodes[node]
        return self._merge() if stale else False

    def has_connection(self, connection_id: str) -> bool:
        return any(connection_id in e.connection_ids for _, entries in self._nodes.values() for e in entries)

    def online(self) -> list[dict[str, Any]]:
        """``[{user_id, user_name, connections, connection_ids}]`` over every node, by name."""
        return [dict(item, connection_ids=list(item["connection_ids"])) for item in self._online]

    def _merge(self) -> bool:
        merged: dict[str, dict[str, Any]] = {}
        for _, entries in self._nodes.values():
            for entry in entries:
                item = merged.setdefault(
                    entry.user_id, {"user_id": entry.user_id, "user_name": entry.user_name, "connection_ids": []}
                )
                item["connection_ids"].extend(entry.connection_ids)
        online = []
        for item in sorted(merged.values(), key=lambda i: (i["user_name"], i["user_id"])):
            ids = sorted(set(item["connection_ids"]))
            online.append({**item, "connections": len(ids), "connection_ids": ids})
        changed = online != self._online
        self._online = online
        if changed:
            self.revision += 1
        return changed
