"""The slice cache interface, its in-memory backend, and request collapsing.

:class:`SliceCache` is what the proxy route talks to; :class:`MemorySliceCache` here and
``synctv.proxy.filecache.FileSliceCache`` implement it. Every method that may touch storage
returns a Deferred, for both backends, so the route has one code path (the memory backend answers
with already-fired Deferreds). ``put`` never fails: a slice that cannot be stored is simply not
cached.

Validators describe the upstream representation the cached slices of one resource came from. The
route compares fresh ones from an upstream answer with the stored ones (:func:`validators_match`)
and purges the resource on a mismatch. Validators live only as long as the resource has slices:
when its last slice is evicted or purged, they go too. So the route sets validators *before* it puts
a resource's first slice, and "no stored validators" then means "no slices to distrust".

:class:`Collapser` makes N concurrent requests for one cold slice cost one upstream fetch. It uses
``twisted.internet.defer`` only (no reactor).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, Protocol, TypeVar

import attrs
from twisted.internet import defer
from twisted.python.failure import Failure

from synctv.proxy.ranges import parse_http_date
from synctv.proxy.slices import SliceKey

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


@attrs.frozen
class Validators:
    """What identifies one upstream representation: ``ETag``, ``Last-Modified``, total length."""

    etag: str | None = None
    last_modified: str | None = None
    total_length: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"etag": self.etag, "last_modified": self.last_modified, "total_length": self.total_length}

    @classmethod
    def from_json(cls, data: Any) -> Validators:
        """Build from :meth:`to_json` output; ``ValueError`` for any other shape."""
        if not isinstance(data, dict):
            raise ValueError("validators must be an object")
        etag, modified, total = data.get("etag"), data.get("last_modified"), data.get("total_length")
        if etag is not None and not isinstance(etag, str):
            raise ValueError("etag must be a string")
        if modified is not None and not isinstance(modified, str):
            raise ValueError("last_modified must be a string")
        if total is not None and (not isinstance(total, int) or isinstance(total, bool) or total < 0):
            raise ValueError("total_length must be a non-negative integer")
        return cls(etag=etag, last_modified=modified, total_length=total)


def _same_date(a: str, b: str) -> bool:
    da, db = parse_http_date(a), parse_http_date(b)
    if da is None or db is None:
        return a.strip() == b.strip()
    return da == db


def validators_match(stored: Validators | None, fresh: Validators) -> bool:
    """Whether slices cached under ``stored`` may still be served for an upstream now showing ``fresh``.

    ``False`` when there is nothing stored, when a known total length differs, when an ETag or a
    Last-Modified is present on one side only, or when both sides have one and they differ
    (dates compare as instants). ETags compare exactly, weak ones included: strictly, only strong
    validators prove that bytes from two responses may be combined (RFC 9110 15.3.7.3), but
    upstreams with weak ETags alone would then never cache; a weak ETag that changes still purges.
    With no validator on either side, only the length can tell, so equal (or unknown) lengths match.
    """
    if stored is None:
        return False
    if (
        stored.total_length is not None
        and fresh.total_length is not None
        and stored.total_length != fresh.total_length
    ):
        return False
    if (stored.etag is None) != (fresh.etag is None):
        return False
    if stored.etag is not None and stored.etag.strip() != (fresh.etag or "").strip():
        return False
    if (stored.last_modified is None) != (fresh.last_modified is None):
        return False
    if stored.last_modified is not None and not _same_date(stored.last_modified, fresh.last_modified or ""):
        return False
    return True


class SliceCache(Protocol):
    """Storage of slices and of per-resource validators (see the module docstring)."""

    def get(self, key: SliceKey) -> defer.Deferred[bytes | None]:
        """The slice's bytes, or ``None`` on a miss (corrupt entries count as misses)."""

    def put(self, key: SliceKey, data: bytes) -> defer.Deferred[None]:
        """Store a slice (evicting least recently used ones); never fails."""

    def contains(self, key: SliceKey) -> bool:
        """Whether the slice is indexed now (a later ``get`` may still miss: evicted, corrupt)."""

    def get_validators(self, resource_key: str) -> defer.Deferred[Validators | None]: ...

    def set_validators(self, resource_key: str, validators: Validators) -> defer.Deferred[None]: ...

    def purge_resource(self, resource_key: str) -> defer.Deferred[None]:
        """Remove every slice of the resource and its validators."""

    def purge_all(self) -> defer.Deferred[None]: ...

    def stats(self) -> dict[str, int]:
        """``{entries, bytes, hits, misses, evictions}``."""


class MemorySliceCache:
    """A :class:`SliceCache` in memory: LRU, bounded by the total bytes of the slices it holds.

    A slice larger than ``max_bytes`` is not stored.
    """

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must not be negative, not {max_bytes}")
        self.max_bytes = max_bytes
        self._slices: OrderedDict[str, tuple[SliceKey, bytes]] = OrderedDict()
        self._by_resource: dict[str, set[str]] = {}
        self._validators: dict[str, Validators] = {}
        self._bytes = 0
        self._hits = 0
        self._misses = 0
        self._evictions = 0

    def get(self, key: SliceKey) -> defer.Deferred[bytes | None]:
        entry = self._slices.get(key.digest)
        if entry is None:
            self._misses += 1
            return defer.succeed(None)
        self._slices.move_to_end(key.digest)
        self._hits += 1
        return defer.succeed(entry[1])

    def contains(self, key: SliceKey) -> bool:
        return key.digest in self._slices

    def put(self, key: SliceKey, data: bytes) -> defer.Deferred[None]:
        data = bytes(data)
        if len(data) > self.max_bytes:
            self._remove(key.digest)
            if key.resource not in self._by_resource:
                self._validators.pop(key.resource, None)
            return defer.succeed(None)
        # Register the new slice with its resource first, so replacing a slice keeps the validators.
        self._by_resource.setdefault(key.resource, set()).add(key.digest)
        old = self._slices.pop(key.digest, None)
        if old is not None:
            self._bytes -= len(old[1])
            if old[0].resource != key.resource:
                self._detach(old[0].resource, key.digest)
        self._slices[key.digest] = (key, data)
        self._bytes += len(data)
        while self._bytes > self.max_bytes:
            victim = next(iter(self._slices))
            self._remove(victim)
            self._evictions += 1
        return defer.succeed(None)

    def _remove(self, digest: str) -> None:
        entry = self._slices.pop(digest, None)
        if entry is None:
            return
        key, data = entry
        self._bytes -= len(data)
        self._detach(key.resource, digest)

    def _detach(self, resource: str, digest: str) -> None:
        digests = self._by_resource.get(resource)
        if digests is not None:
            digests.discard(digest)
            if not digests:
                del self._by_resource[resource]
                self._validators.pop(resource, None)

    def get_validators(self, resource_key: str) -> defer.Deferred[Validators | None]:
        return defer.succeed(self._validators.get(resource_key))

    def set_validators(self, resource_key: str, validators: Validators) -> defer.Deferred[None]:
        self._validators[resource_key] = validators
        return defer.succeed(None)

    def purge_resource(self, resource_key: str) -> defer.Deferred[None]:
        for digest in list(self._by_resource.get(resource_key, ())):
            self._remove(digest)
        self._validators.pop(resource_key, None)
        return defer.succeed(None)

    def purge_all(self) -> defer.Deferred[None]:
        self._slices.clear()
        self._by_resource.clear()
        self._validators.clear()
        self._bytes = 0
        return defer.succeed(None)

    def stats(self) -> dict[str, int]:
        return {
            "entries": len(self._slices),
            "bytes": self._bytes,
            "hits": self._hits,
            "misses": self._misses,
            "evictions": self._evictions,
        }


class _Flight(Generic[T]):
    """One shared fetch and the Deferreds of the requests waiting for it."""

    def __init__(self) -> None:
        self.waiters: list[defer.Deferred[T]] = []
        self.shared: defer.Deferred[T] | None = None
        self.done = False


class Collapser(Generic[K, T]):
    """Collapse concurrent requests for one key into one fetch.

    ``run(key, fetch)`` calls ``fetch()`` unless a fetch for ``key`` is already in flight, and
    returns a new Deferred per caller. The outcome (result or failure) of the shared fetch goes to
    every waiter. Cancelling a waiter's Deferred detaches that waiter only (it fails with
    ``CancelledError``); the shared fetch is cancelled when its last waiter is. Once the fetch has
    finished, the key is free again: the next ``run`` fetches anew.
    """

    def __init__(self) -> None:
        self._flights: dict[K, _Flight[T]] = {}

    def __len__(self) -> int:
        return len(self._flights)

    def in_flight(self, key: K) -> bool:
        return key in self._flights

    def waiters(self, key: K) -> int:
        """How many callers wait on the fetch for ``key`` (0 when none is in flight)."""
        flight = self._flights.get(key)
        return 0 if flight is None else len(flight.waiters)

    def run(self, key: K, fetch: Callable[[], defer.Deferred[T]]) -> defer.Deferred[T]:
        flight = self._flights.get(key)
        if flight is not None:
            return self._add_waiter(key, flight)
        flight = _Flight()
        self._flights[key] = flight
        waiter = self._add_waiter(key, flight)
        shared: defer.Deferred[T] = defer.maybeDeferred(fetch)
        flight.shared = shared
        shared.addBoth(self._finish, key, flight)
        return waiter

    def _add_waiter(self, key: K, flight: _Flight[T]) -> defer.Deferred[T]:
        def cancel(d: defer.Deferred[T]) -> None:
            if d in flight.waiters:
                flight.waiters.remove(d)
            if not flight.waiters and not flight.done:
                if self._flights.get(key) is flight:
                    del self._flights[key]
                if flight.shared is not None:
                    flight.shared.cancel()

        waiter: defer.Deferred[T] = defer.Deferred(cancel)
        flight.waiters.append(waiter)
        return waiter

    def _finish(self, outcome: T | Failure, key: K, flight: _Flight[T]) -> None:
        flight.done = True
        if self._flights.get(key) is flight:
            del self._flights[key]
        waiters, flight.waiters = flight.waiters, []
        for waiter in waiters:
            if isinstance(outcome, Failure):
                waiter.errback(outcome)
            else:
                waiter.callback(outcome)
        return None
