"""Prometheus figures for the HTTP side, on a registry owned by one API instance (tests build
several per process, so nothing goes to the global default registry)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class HttpMetrics:
    """Requests by method, route template and status; latency; requests in flight; rooms.

    ``route`` is a route template such as ``/api/rooms/{room}`` (never a concrete path, which
    would let clients grow the label set without bound), ``static`` for web files or
    ``unmatched``.
    """

    def __init__(self) -> None:
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
