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

import os
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

    def open_slice(self, key: SliceKey) -> defer.Deferred[SliceFile | bytes | None]:
        """Like ``get``, for ``sendfile``: an open :class:`SliceFile` the caller closes, or the
        bytes when the slice has no file (yet), or ``None`` on a miss."""

    def contains(self, key: SliceKey) -> bool:
        """Whether the slice is indexed now (a later ``get`` may still miss: evicted, corrupt)."""

    def get_validators(self, resource_key: str) -> defer.Deferred[Validators | None]: ...

    def set_validators(self, resource_key: str, validators: Validators) -> defer.Deferred[None]: ...

    def purge_resource(self, resource_key: str) -> defer.Deferred[None]:
        """Remove every slice of the resource and its validators."""

    def purge_all(self) -> defer.Deferred[None]: ...

    def stats(self) -> dict[str, int]:
        """``{entries, bytes, hits, misses, evictions}``."""


@attrs.define
class SliceFile:
    """An open slice for ``sendfile``: the payload is ``length`` bytes at ``offset`` of ``fd`` (a
    slice file of the file cache, or the memory cache's memfd). The caller closes it."""

    fd: int
    offset: int
    length: int

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


#: The memory cache keeps each slice in a memfd when it would hold at most this many slices (and
#: an eighth of the process's file descriptor limit, so the cache never takes the descriptors
#: that connections need): one descriptor per slice.
MEMFD_MAX_SLICES = 4096


def memfd_slices_fit(max_bytes: int, slice_size: int | None) -> bool:
    """Whether the memory cache may keep its slices in memfds (see :class:`MemorySliceCache`)."""
    if slice_size is None or not hasattr(os, "memfd_create"):
        return False
    slots = -(-max_bytes // max(1, slice_size))
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, ValueError, OSError):
        return False
    limit = MEMFD_MAX_SLICES if soft == resource.RLIM_INFINITY else min(MEMFD_MAX_SLICES, soft // 8)
    return slots <= limit


def _memfd_with(data: bytes) -> int:
    """A new memfd holding ``data``; ``OSError`` when the kernel cannot (memory, descriptors)."""
    fd = os.memfd_create("synctv-slice", os.MFD_CLOEXEC)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    except BaseException:
        os.close(fd)
        raise
    return fd


def _read_memfd(fd: int, size: int) -> bytes:
    chunks = []
    offset = 0
    while offset < size:
        chunk = os.pread(fd, size - offset, offset)
        if not chunk:
            raise OSError(f"a memfd slice ended at {offset} of {size} bytes")
        chunks.append(chunk)
        offset += len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class _Held:
    """One cached slice: its bytes, or the memfd that holds them."""

    __slots__ = ("data", "fd", "key", "size")

    def __init__(self, key: SliceKey, data: bytes | None, fd: int, size: int) -> None:
        self.key, self.data, self.fd, self.size = key, data, fd, size

    def bytes(self) -> bytes:
        return self.data if self.data is not None else _read_memfd(self.fd, self.size)

    def drop(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class MemorySliceCache:
    """A :class:`SliceCache` in memory: LRU, bounded by the total bytes of the slices it holds.

    A slice larger than ``max_bytes`` is not stored. Given the ``slice_size`` and where the
    cache holds few enough slices (:func:`memfd_slices_fit`; Linux), each slice lives in a memfd
    (anonymous shared memory, one descriptor per slice): :meth:`open_slice` then hands out a
    duplicate of its descriptor and a hit goes to the socket by ``sendfile``, without being copied
    from Python's memory (the file cache's path: 1.11-1.18x the hit throughput of ``bytes`` in
    one run, docs/benchmarks.md "Proxy"). An evicted slice's memory is freed when the last response sending
    it closes its duplicate. A slice the kernel refuses a memfd for (memory, descriptors) is
    simply not cached. Without memfds the slices are ``bytes`` and :meth:`open_slice` returns
    them.
    """

    def __init__(self, max_bytes: int, slice_size: int | None = None) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must not be negative, not {max_bytes}")
        self.max_bytes = max_bytes
        self.memfd = memfd_slices_fit(max_bytes, slice_size)
        self._slices: OrderedDict[str, _Held] = OrderedDict()
        self._by_resource: dict[str, set[str]] = {}
        self._validators: dict[str, Validators] = {}
        self._bytes = 0
        self._hits = 0
        self._misses = 0
        self._evictions = 0

    def _hit(self, key: SliceKey) -> _Held | None:
        held = self._slices.get(key.digest)
        if held is None:
            self._misses += 1
            return None
        self._slices.move_to_end(key.digest)
        self._hits += 1
        return held

    def get(self, key: SliceKey) -> defer.Deferred[bytes | None]:
        held = self._hit(key)
        return defer.succeed(None if held is None else held.bytes())

    def open_slice(self, key: SliceKey) -> defer.Deferred[SliceFile | bytes | None]:
        """Like :meth:`get`, for ``sendfile``: the slice's memfd (a duplicate the caller closes),
        or its bytes when it has none, or None (a miss)."""
        held = self._hit(key)
        if held is None:
            return defer.succeed(None)
        if held.fd < 0:
            return defer.succeed(held.data)
        try:
            return defer.succeed(SliceFile(os.dup(held.fd), 0, held.size))
        except OSError:  # out of descriptors: the bytes still serve the hit
            return defer.succeed(held.bytes())

    def contains(self, key: SliceKey) -> bool:
        return key.digest in self._slices

    def put(self, key: SliceKey, data: bytes) -> defer.Deferred[None]:
        if len(data) > self.max_bytes:
            self._remove(key.digest)
            if key.resource not in self._by_resource:
                self._validators.pop(key.resource, None)
            return defer.succeed(None)
        if self.memfd:
            try:
                held = _Held(key, None, _memfd_with(data), len(data))
            except OSError:
                self._remove(key.digest)  # never serve an older copy of the slice
                return defer.succeed(None)
        else:
            held = _Held(key, bytes(data), -1, len(data))
        # Register the new slice with its resource first, so replacing a slice keeps the validators.
        self._by_resource.setdefault(key.resource, set()).add(key.digest)
        old = self._slices.pop(key.digest, None)
        if old is not None:
            self._bytes -= old.size
            old.drop()
            if old.key.resource != key.resource:
                self._detach(old.key.resource, key.digest)
        self._slices[key.digest] = held
        self._bytes += held.size
        while self._bytes > self.max_bytes:
            victim = next(iter(self._slices))
            self._remove(victim)
            self._evictions += 1
        return defer.succeed(None)

    def _remove(self, digest: str) -> None:
        held = self._slices.pop(digest, None)
        if held is None:
            return
        self._bytes -= held.size
        held.drop()
        self._detach(held.key.resource, digest)

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
        for held in self._slices.values():
            held.drop()
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
