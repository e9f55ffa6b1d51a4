"""Prometheus figures for the HTTP side, on a registry owned by one API instance (tests build
several per process, so nothing goes to the global default registry), and who may scrape them.

Labels never name a room, a user or a concrete path: a route label is a template
(``/api/rooms/{room}``), so the set of series is bounded whatever clients do, and the exposition
reveals no room ids. Other modules that add collectors to this registry (the trigger counters of
``synctv.triggers.udp``) follow the same rule.

``GET /metrics`` (:func:`authorize_scrape`) answers a caller whose TCP source address lies in
``scrape_networks`` (``[server] metrics_networks``, default loopback), or one with a site admin's
bearer token; anyone else gets 401 ``unauthorized`` (no token) or 403 ``forbidden`` (a token that
is not a site admin's). A request carrying a forwarding header (``Forwarded``,
``X-Forwarded-For``, ``X-Real-IP``) came through a reverse proxy, whose own address says nothing
about the real caller, so it needs the token whatever its source.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from twisted.web.iweb import IRequest

from synctv.config import DEFAULT_METRICS_NETWORKS, Network
from synctv.core import permissions
from synctv.core.errors import Forbidden, Unauthorized

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
FORWARDING_HEADERS = (b"forwarded", b"x-forwarded-for", b"x-real-ip")


class HttpMetrics:
    """Requests by method, route template and status; latency; requests in flight; rooms.

    ``route`` is a route template such as ``/api/rooms/{room}`` (never a concrete path, which
    would let clients grow the label set without bound), ``static`` for web files,
    ``too_large`` for bodies refused before routing, or ``unmatched``. ``scrape_networks``:
    the sources that may read the exposition without a token (module docstring).
    """

    def __init__(self, *, scrape_networks: Iterable[Network] = DEFAULT_METRICS_NETWORKS) -> None:
        self.scrape_networks = tuple(scrape_networks)
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "synctv_http_requests", "HTTP requests answered", ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "synctv_http_request_duration_seconds", "Time from request received to response finished",
            ["method", "route"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.in_flight = Gauge(
            "synctv_http_requests_in_flight", "HTTP requests being processed", registry=self.registry
        )
        self.rooms = Gauge("synctv_rooms", "Rooms in the database (updated at each scrape)",
                           registry=self.registry)

    def observe(self, method: bytes | str, route: str, status: int, seconds: float) -> None:
        name = method.decode("ascii", "replace") if isinstance(method, bytes) else method
        name = name.upper() if name.upper() in KNOWN_METHODS else "other"
        self.requests.labels(method=name, route=route, status=str(status)).inc()
        self.latency.labels(method=name, route=route).observe(max(0.0, seconds))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def source_may_scrape(request: IRequest, networks: Iterable[Network]) -> bool:
    """Whether the request's TCP source lies in ``networks`` and it did not come through a proxy."""
    if any(request.requestHeaders.hasHeader(name) for name in FORWARDING_HEADERS):
        return False
    host = getattr(request.getClientAddress(), "host", None)
    try:
        address = ipaddress.ip_address(str(host))
    except ValueError:  # a UNIX socket, or no address at all
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # a dual-stack listener sees IPv4 callers as ::ffff:a.b.c.d
    return any(address.version == net.version and address in net for net in networks)


async def authorize_scrape(
    request: IRequest, networks: Iterable[Network], authenticate: Callable[[IRequest], Awaitable[Any]],
) -> None:
    """Return if ``request`` may read /metrics; raise Unauthorized or Forbidden (module docstring).
    ``authenticate`` turns the request's bearer token into its user (raising Unauthorized)."""
    if source_may_scrape(request, networks):
        return
    if request.getHeader(b"authorization") is None:
        raise Unauthorized("/metrics needs a site admin's bearer token, or a source address in "
                           "[server] metrics_networks (loopback by default)")
    user = await authenticate(request)
    if not permissions.is_site_admin(user.role):
        raise Forbidden("/metrics is for site admins (or sources in [server] metrics_networks)")
