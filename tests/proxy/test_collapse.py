"""Request collapsing: one fetch for many concurrent waiters (synctv.proxy.cache.Collapser)."""

from __future__ import annotations

import pytest
from twisted.internet import defer
from twisted.python.failure import Failure

from synctv.proxy.cache import Collapser


class Upstream:
    """A fetch whose Deferreds the test fires by hand; records calls and cancellations."""

    def __init__(self) -> None:
        self.calls: list[defer.Deferred[bytes]] = []
        self.cancelled = 0

    def fetch(self) -> defer.Deferred[bytes]:
        def cancel(_: defer.Deferred[bytes]) -> None:
            self.cancelled += 1

        d: defer.Deferred[bytes] = defer.Deferred(cancel)
        self.calls.append(d)
        return d


def outcomes(ds: list[defer.Deferred[bytes]]) -> list[object]:
    box: list[object] = []
    for d in ds:
        d.addBoth(box.append)
    return box


def test_twenty_waiters_share_one_fetch_and_all_get_the_bytes() -> None:
    """20 concurrent requests for one cold key make one upstream fetch; each gets the result."""
    upstream, collapser = Upstream(), Collapser[str, bytes]()
    waiters = [collapser.run("slice-0", upstream.fetch) for _ in range(20)]
    assert len(upstream.calls) == 1
    assert len({id(w) for w in waiters}) == 20
    assert collapser.waiters("slice-0") == 20
    got = outcomes(waiters)
    assert got == []
    upstream.calls[0].callback(b"payload")
    assert got == [b"payload"] * 20
    assert not collapser.in_flight("slice-0") and len(collapser) == 0


def test_a_failure_reaches_every_waiter() -> None:
    """When the shared fetch fails, every waiter receives the failure."""
    upstream, collapser = Upstream(), Collapser[str, bytes]()
    waiters = [collapser.run("k", upstream.fetch) for _ in range(20)]
    got = outcomes(waiters)
    upstream.calls[0].errback(ConnectionError("upstream reset"))
    assert len(got) == 20
    assert all(isinstance(f, Failure) and f.check(ConnectionError) for f in got)


def test_different_keys_fetch_separately() -> None:
    """Collapsing is per key: two keys make two fetches."""
    upstream, collapser = Upstream(), Collapser[str, bytes]()
    a, b = collapser.run("a", upstream.fetch), collapser.run("b", upstream.fetch)
    assert len(upstream.calls) == 2
    got = outcomes([a, b])
    upstream.calls[1].callback(b"B")
    upstream.calls[0].callback(b"A")
    assert got == [b"B", b"A"]


def test_after_completion_the_next_request_fetches_again() -> None:
    """Collapsing covers only the fetch in flight; a later request starts a new fetch."""
    upstream, collapser = Upstream(), Collapser[str, bytes]()
    first = collapser.run("k", upstream.fetch)
    upstream.calls[0].callback(b"1")
    second = collapser.run("k", upstream.fetch)
    assert len(upstream.calls) == 2
    assert outcomes([first]) == [b"1"]
    upstream.calls[1].callback(b"2")
    assert outcomes([second]) == [b"2"]


def test_cancelling_one_waiter_leaves_the_fetch_for_the_others() -> None:
    """A cancelled waiter fails with CancelledError alone; the shared fetch goes on for the rest."""
    upstream, collapser = Upstream(), Collapser[str, bytes]()
    waiters = [collapser.run("k", upstream.fetch) for _ in range(3)]
    got = outcomes(waiters)
    waiters[1].cancel()
    assert upstream.cancelled == 0
    assert len(got) == 1 and isinstance(got[0], Failure) and got[0].check(defer.CancelledError)
    upstream.calls[0].callback(b"data")
    assert got[1:] == [b"data", b"data"]


def test_cancelling_every_waiter_cancels_the_fetch() -> None:
    """When the last waiter is cancelled, the shared fetch is cancelled and the key is free again."""
    upstream, collapser = Upstream(), Collapser[str, bytes]()
    waiters = [collapser.run("k", upstream.fetch) for _ in range(3)]
    got = outcomes(waiters)
    for w in waiters:
        w.cancel()
    assert upstream.cancelled == 1
    assert len(got) == 3 and all(isinstance(f, Failure) and f.check(defer.CancelledError) for f in got)
    assert not collapser.in_flight("k")
    collapser.run("k", upstream.fetch)
    assert len(upstream.calls) == 2


def test_a_fetch_that_answers_at_once_or_raises_still_works() -> None:
    """A fetch returning a fired Deferred, or raising, is delivered like any other outcome."""
    collapser = Collapser[str, bytes]()
    assert outcomes([collapser.run("k", lambda: defer.succeed(b"now"))]) == [b"now"]
    assert not collapser.in_flight("k")

    def boom() -> defer.Deferred[bytes]:
        raise ValueError("bad url")

    (failure,) = outcomes([collapser.run("k", boom)])
    assert isinstance(failure, Failure) and failure.check(ValueError)
    assert not collapser.in_flight("k")


@pytest.mark.parametrize("fail", [False, True])
def test_a_waiter_joining_from_a_callback_starts_a_fresh_fetch(fail: bool) -> None:
    """A request made while outcomes are being delivered does not join the finished fetch."""
    upstream, collapser = Upstream(), Collapser[str, bytes]()
    later: list[defer.Deferred[bytes]] = []
    first = collapser.run("k", upstream.fetch)
    first.addBoth(lambda r: later.append(collapser.run("k", upstream.fetch)))
    if fail:
        upstream.calls[0].errback(RuntimeError("x"))
    else:
        upstream.calls[0].callback(b"old")
    assert len(upstream.calls) == 2 and not later[0].called
    upstream.calls[1].callback(b"new")
    assert outcomes(later) == [b"new"]
