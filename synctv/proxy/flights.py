"""One upstream fetch of one slice, shared by every response that needs that slice. No reactor.

A :class:`SliceFlight` is created by the first response that misses a slice and found by the
others while it runs, so N concurrent requests for one cold slice cost one upstream request
(request collapsing). Unlike ``synctv.proxy.cache.Collapser``, which shares a finished value, a
flight is a tee: every reader gets the bytes it wants *as they arrive* (a late reader first gets
what came before), so a miss streams to the client at the upstream's pace instead of waiting for
the whole slice. The flight keeps the slice's bytes (at most one slice) to put them in the cache.

Holding: each response holds the flights it uses (:class:`Holds`) until it ends. When the last
holder goes away because its client disconnected, and no response finished normally with it, the
upstream fetch is cancelled; otherwise the slice is fetched to the end and cached.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

import attrs
from twisted.internet import defer
from twisted.python.failure import Failure

from synctv.proxy.cache import Validators
from synctv.proxy.slices import SliceKey

T = TypeVar("T")


class Once(Generic[T]):
    """A value (or failure) that arrives once and can be awaited by any number of callers.

    Cancelling one waiter's Deferred detaches that waiter only.
    """

    def __init__(self) -> None:
        self._outcome: Any = None
        self._fired = False
        self._waiters: list[defer.Deferred[T]] = []

    @property
    def fired(self) -> bool:
        return self._fired

    def wait(self) -> defer.Deferred[T]:
        if self._fired:
            if isinstance(self._outcome, Failure):
                return defer.fail(self._outcome)
            return defer.succeed(self._outcome)

        def cancel(d: defer.Deferred[T]) -> None:
            if d in self._waiters:
                self._waiters.remove(d)

        d: defer.Deferred[T] = defer.Deferred(cancel)
        self._waiters.append(d)
        return d

    def fire(self, outcome: T | Failure) -> None:
        if self._fired:
            return
        self._fired, self._outcome = True, outcome
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            if isinstance(outcome, Failure):
                d.errback(outcome)
            else:
                d.callback(outcome)


@attrs.frozen
class SliceHead:
    """What the upstream's answer said about the resource."""

    total: int
    validators: Validators
    content_type: str | None = None


class _Reader:
    __slots__ = ("d", "end", "start", "write")

    def __init__(self, start: int, end: int, write: Callable[[bytes], None], d: defer.Deferred[None]) -> None:
        self.start, self.end, self.write, self.d = start, end, write, d

    def feed(self, offset: int, chunk: bytes) -> bool:
        """Pass on the wanted part of ``chunk`` (which starts at ``offset``); True once complete."""
        lo, hi = max(self.start, offset), min(self.end, offset + len(chunk))
        if lo < hi:
            self.write(chunk if (lo, hi) == (offset, offset + len(chunk)) else chunk[lo - offset:hi - offset])
        return offset + len(chunk) >= self.end


class SliceFlight:
    """See the module docstring. The service drives it: :meth:`started`, :meth:`data`,
    :meth:`finished` or :meth:`failed`; responses use :attr:`head`, :meth:`read` and holding."""

    def __init__(self, key: SliceKey, first: int) -> None:
        self.key = key
        self.first = first
        self.head: Once[SliceHead] = Once()
        self.expected: int | None = None
        self.chunks: list[bytes] = []
        self.received = 0
        self.done = False
        self.failure: Failure | None = None
        self.holders = 0
        self.keep = False
        self.task: defer.Deferred[None] | None = None
        self._readers: list[_Reader] = []

    # -- the fetch side

    def started(self, head: SliceHead, expected: int) -> None:
        self.expected = expected
        self.head.fire(head)

    def data(self, chunk: bytes) -> None:
        offset = self.received
        self.received += len(chunk)
        if self.expected is not None and self.received > self.expected:
            raise ValueError(f"the upstream sent more than the {self.expected} bytes it announced")
        self.chunks.append(chunk)
        for reader in list(self._readers):
            try:
                complete = reader.feed(offset, chunk)
            except Exception:
                self._readers.remove(reader)
                reader.d.errback(Failure())
                continue
            if complete:
                self._readers.remove(reader)
                reader.d.callback(None)

    def finished(self) -> bytes:
        """The whole slice; fails the flight if the body fell short."""
        if self.expected is not None and self.received != self.expected:
            raise ValueError(f"the upstream sent {self.received} of {self.expected} bytes")
        self.done = True
        data = self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
        self.chunks = [data]
        return data

    def failed(self, failure: Failure) -> None:
        self.done = True
        self.failure = failure
        self.head.fire(failure)
        readers, self._readers = self._readers, []
        for reader in readers:
            reader.d.errback(failure)

    # -- the response side

    def read(self, start: int, end: int, write: Callable[[bytes], None]) -> defer.Deferred[None]:
        """Pass bytes ``[start, end)`` of the slice to ``write`` as they come; fires when all went."""

        def cancel(d: defer.Deferred[None]) -> None:
            self._readers[:] = [r for r in self._readers if r.d is not d]

        d: defer.Deferred[None] = defer.Deferred(cancel)
        reader = _Reader(start, end, write, d)
        offset = 0
        for chunk in self.chunks:
            if reader.feed(offset, chunk):
                d.callback(None)
                return d
            offset += len(chunk)
        if self.failure is not None:
            d.errback(self.failure)
        elif self.done or (self.expected is not None and end > self.expected):
            d.errback(Failure(ValueError(f"bytes {start}-{end} are not in this slice")))
        else:
            self._readers.append(reader)
        return d

    def hold(self) -> None:
        self.holders += 1

    def release(self, *, keep: bool) -> None:
        """A response is done with the flight: normally (``keep``) or because its client left."""
        self.holders -= 1
        self.keep = self.keep or keep
        if self.holders <= 0 and not self.keep and not self.done and self.task is not None:
            self.task.cancel()


class Holds:
    """The flights one response holds; released together when the response ends."""

    def __init__(self) -> None:
        self._flights: list[SliceFlight] = []

    def add(self, flight: SliceFlight) -> SliceFlight:
        if flight not in self._flights:
            flight.hold()
            self._flights.append(flight)
        return flight

    def drop(self, flight: SliceFlight) -> None:
        """Done with one flight (its bytes were sent): let it finish and be cached."""
        if flight in self._flights:
            self._flights.remove(flight)
            flight.release(keep=True)

    def release(self, *, keep: bool) -> None:
        flights, self._flights = self._flights, []
        for flight in flights:
            flight.release(keep=keep)
