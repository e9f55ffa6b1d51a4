"""What a UDP trigger packet means: which events it fires, and who may fire or force them.

Pure and sans-IO: ``synctv.triggers.udp.TriggerListener`` only hands each datagram's bytes and
source address to ``decide``. A packet's trailing CR and LF bytes are stripped, then it must equal
an event's payload (UTF-8) exactly; the source must be inside the event's ``allowed_sources``
when it has any. Several events may share a port, and even a payload (one packet, several
display groups).

Who may bind what: an event's ``udp_port`` makes every node bind that UDP port, so only site admins
may set it (``check_udp_port``), and only inside the ports the operator allows (``PortRanges``,
``[triggers] udp_ports``). ``?force=1`` (skip the cooldown) is for site admins and sources inside
``[triggers] lan_networks``, by default ``PRIVATE_NETWORKS``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

import attrs

from synctv.core.displays import DisplayEvent, Network
from synctv.core.errors import BadRequest, Forbidden

MAX_DATAGRAM_MATCH = 4096  # longer packets cannot match a payload of at most 1024 characters
DEFAULT_UDP_PORTS = "5000-5999"
MAX_PORT_RANGES = 64
# loopback, RFC 1918, unique local (fc00::/7), link-local: the default [triggers] lan_networks
PRIVATE_NETWORKS = ("127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                    "fc00::/7", "169.254.0.0/16", "fe80::/10")


@attrs.frozen
class PortRanges:
    """A set of UDP ports written as ``"5000-5999,7000"``: comma-separated items, each a port
    ``N`` or an inclusive range ``N-M`` (1 <= N <= M <= 65535), spaces allowed around items.
    The empty string allows no port (UDP triggers off). ``str()`` gives the canonical form."""

    ranges: tuple[tuple[int, int], ...] = ()

    @classmethod
    def parse(cls, text: str) -> PortRanges:
        """Raises ValueError with a message naming the bad item."""
        if not isinstance(text, str):
            raise ValueError(f"{text!r} is not a string such as \"5000-5999,7000\"")
        if not text.strip():
            return cls(())
        items = text.split(",")
        if len(items) > MAX_PORT_RANGES:
            raise ValueError(f"at most {MAX_PORT_RANGES} items")
        ranges = []
        for raw in items:
            item = raw.strip()
            low_text, dash, high_text = item.partition("-")
            low = _port(low_text.strip(), item)
            high = _port(high_text.strip(), item) if dash else low
            if low > high:
                raise ValueError(f"{item!r} is a range that ends before it starts")
            ranges.append((low, high))
        merged: list[tuple[int, int]] = []
        for low, high in sorted(ranges):
            if merged and low <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], high))
            else:
                merged.append((low, high))
        return cls(tuple(merged))

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and any(low <= port <= high for low, high in self.ranges)

    def __str__(self) -> str:
        return ",".join(str(low) if low == high else f"{low}-{high}" for low, high in self.ranges)


def _port(text: str, item: str) -> int:
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"{item[:40]!r} is not a port (1-65535) or a range such as 5000-5999")
    return int(text)


DEFAULT_PORT_RANGES = PortRanges.parse(DEFAULT_UDP_PORTS)


def check_udp_port(port: int | None, current: int | None, *, site_admin: bool, allowed: PortRanges) -> None:
    """Whether an event may get ``port`` (``current`` is its port now, None for a new event).

    Keeping the current port or removing it (None) is always allowed: deleting the event would
    release the port as well. Any other port binds a socket on every node, so it needs a site
    admin (Forbidden) and a port inside ``[triggers] udp_ports`` (BadRequest)."""
    if port is None or port == current:
        return
    if not site_admin:
        raise Forbidden("only site admins may set an event's udp_port (it opens a UDP port on the server); "
                        "ask a site admin, or trigger the event over HTTP (/trigger/{event})", field="udp_port")
    if port not in allowed:
        ports = str(allowed) or "none"
        raise BadRequest(f"udp_port {port} is outside the UDP ports this server allows ([triggers] udp_ports: "
                         f"{ports})", field="udp_port")


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
