"""What a UDP trigger packet means: which events it fires, and who may fire or force them.

Pure and sans-IO: ``synctv.triggers.udp.TriggerListener`` only hands each datagram's bytes and
source address to ``decide``. A packet's trailing CR and LF bytes are stripped, then it must equal
an event's payload (UTF-8) exactly; the source must be inside the event's ``allowed_sources``
when it has any. Several events may share a port, and even a payload (one packet, several
display groups).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

import attrs

from synctv.core.displays import DisplayEvent, Network

MAX_DATAGRAM_MATCH = 4096  # longer packets cannot match a payload of at most 1024 characters


def normalize_payload(data: bytes) -> bytes:
    """The packet as matched: trailing CR and LF bytes removed (``SHOW_START\\r\\n`` -> ``SHOW_START``)."""
    return data.rstrip(b"\r\n")


def parse_host(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address as sockets report it; IPv4-mapped IPv6 (``::ffff:10.0.0.1``) becomes IPv4 and a
    zone (``fe80::1%eth0``) is dropped. None when it is not an IP address (a UNIX socket, say)."""
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def host_in(host: str, networks: Iterable[Network]) -> bool:
    """Whether ``host`` is inside one of ``networks`` (never, for an empty list)."""
    address = parse_host(host)
    if address is None:
        return False
    return any(address.version == net.version and address in net for net in networks)


def source_allowed(host: str, networks: Iterable[Network]) -> bool:
    """An event's source rule: any source when it names no networks, else one inside them."""
    networks = tuple(networks)
    return not networks or host_in(host, networks)


def match(payload: bytes, events: Iterable[DisplayEvent]) -> list[DisplayEvent]:
    """The events whose payload equals the packet (after ``normalize_payload``)."""
    if len(payload) > MAX_DATAGRAM_MATCH:
        return []
    wanted = normalize_payload(payload)
    return [event for event in events if event.payload_bytes is not None and event.payload_bytes == wanted]


@attrs.frozen
class Decision:
    """What one packet does: ``fire`` these events; ``refused`` matched but came from a source the
    event does not allow; ``unknown`` when no event's payload matched at all."""

    fire: tuple[DisplayEvent, ...] = ()
    refused: tuple[DisplayEvent, ...] = ()

    @property
    def unknown(self) -> bool:
        return not self.fire and not self.refused


def decide(payload: bytes, host: str, events: Iterable[DisplayEvent]) -> Decision:
    fire: list[DisplayEvent] = []
    refused: list[DisplayEvent] = []
    for event in match(payload, events):
        (fire if source_allowed(host, event.networks()) else refused).append(event)
    return Decision(tuple(fire), tuple(refused))


class LogLimiter:
    """At most one log line per key per ``interval_ms``; counts what it held back.

    ``allow(key, now_ms)`` is None when the line should be skipped, else the number of lines
    skipped for that key since the last one allowed (to say "and N more").
    """

    def __init__(self, interval_ms: int = 10_000, max_keys: int = 1024) -> None:
        self.interval_ms = interval_ms
        self.max_keys = max_keys
        self._last: dict[str, int] = {}
        self._skipped: dict[str, int] = {}

    def allow(self, key: str, now_ms: int) -> int | None:
        last = self._last.get(key)
        if last is not None and now_ms - last < self.interval_ms:
            self._skipped[key] = self._skipped.get(key, 0) + 1
            return None
        if last is None and len(self._last) >= self.max_keys:  # bounded, whatever sources do
            self._last.clear()
            self._skipped.clear()
        self._last[key] = now_ms
        return self._skipped.pop(key, 0)
