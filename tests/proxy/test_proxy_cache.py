"""The proxy's slice cache in use: HIT after a restart with the file backend, purge and refetch
when the upstream changes, request collapsing, BYPASS for upstreams without Range, client
disconnects cancelling the upstream fetch."""

from __future__ import annotations

import pytest_twisted
import treq
from twisted.internet import defer
from twisted.web.client import HTTPConnectionPool

from ._support import until
from .conftest import SLICE
from .upstreams import pattern


@pytest_twisted.ensureDeferred
async def test_file_cache_still_hits_after_a_restart(make_world, nginx):
    """With cache = "file", a range read once is HIT from a new proxy (a restart) on the same data
    directory, with the same bytes, and the upstream is not asked for it again."""
    data = pattern(3 * SLICE + 77, seed=2)
    nginx.write("restart.mp4", data)
    world = await make_world(cache="file")
    room, media = await world.item(nginx.url("restart.mp4"))
    url = await world.proxy_url(room, media)
    rng = {"Range": f"bytes=100-{2 * SLICE + 50}"}
    first = await world.fetch(url, headers=rng)
    assert (first.status, first.header("X-Cache")) == (206, "MISS")
    await world.proxy.cache.idle()
    await make_world.stop(world)

    again = await make_world(cache="file")
    assert again.proxy.cache.stats()["entries"] >= 3
    second = await again.fetch(url, headers=rng)
    assert (second.status, second.header("X-Cache")) == (206, "HIT")
    assert second.raw == data[100:2 * SLICE + 51]
    assert again.proxy.service.counters["upstream_requests"] == 0


@pytest_twisted.ensureDeferred
async def test_a_changed_upstream_is_purged_and_refetched(make_world, nginx):
    """When the upstream's ETag changes, the next slice fetched from it shows the mismatch: the old
    slices are purged and the answer carries the new bytes; the old cached slice is fetched anew."""
    old, new = pattern(4 * SLICE, seed=3), pattern(4 * SLICE, seed=4)
    nginx.write("changing.mp4", old, mtime=1_600_000_000)
    world = await make_world()
    room, media = await world.item(nginx.url("changing.mp4"))
    url = await world.proxy_url(room, media)
    r = await world.fetch(url, headers={"Range": "bytes=0-99"})
    assert r.raw == old[:100]
    # the answer ended with its 100th byte; slice 0 is cached once its fetch has read the rest
    await until(lambda: not world.proxy.service.flights)
    assert (await world.fetch(url, headers={"Range": "bytes=0-99"})).header("X-Cache") == "HIT"

    nginx.write("changing.mp4", new, mtime=1_700_000_000)
    r = await world.fetch(url, headers={"Range": f"bytes={2 * SLICE}-{2 * SLICE + 99}"})
    assert (r.status, r.raw) == (206, new[2 * SLICE:2 * SLICE + 100])
    assert world.proxy.service.counters["purged_changed"] == 1
    r = await world.fetch(url, headers={"Range": "bytes=0-99"})
    assert (r.header("X-Cache"), r.raw) == ("MISS", new[:100])


@pytest_twisted.ensureDeferred
async def test_revalidation_notices_a_change_even_when_everything_is_cached(make_world, nginx):
    """With revalidate_s = 0 every answer first checks the validators with a one-byte request, so a
    fully cached resource whose upstream changed is purged and served new."""
    old, new = pattern(SLICE, seed=5), pattern(SLICE, seed=6)
    nginx.write("reval.mp4", old, mtime=1_600_000_000)
    world = await make_world(revalidate_s=0)
    room, media = await world.item(nginx.url("reval.mp4"))
    url = await world.proxy_url(room, media)
    assert (await world.fetch(url)).raw == old
    hit = await world.fetch(url)
    assert (hit.header("X-Cache"), hit.raw) == ("HIT", old)
    nginx.write("reval.mp4", new, mtime=1_700_000_000)
    r = await world.fetch(url)
    assert (r.header("X-Cache"), r.raw) == ("MISS", new)


@pytest_twisted.ensureDeferred
async def test_twenty_concurrent_requests_for_a_cold_slice_make_one_upstream_request(make_world, special):
    """20 clients ask for the same cold slice at once: the upstream sees one request, and every
    client gets the right bytes."""
    from twisted.internet import reactor

    size = SLICE // 2
    world = await make_world()
    room, media = await world.item(special.url(f"/gated/{size}"))
    url = await world.proxy_url(room, media)
    pool = HTTPConnectionPool(reactor, persistent=False)
    answers = [treq.get(world.served.base + url, headers={"Range": "bytes=10-1009"}, pool=pool) for _ in range(20)]
    await special.resource.arrived
    await until(lambda: any(f.holders == 20 for f in world.proxy.service.flights.values()))
    special.resource.release()
    responses = await defer.gatherResults(answers)
    bodies = await defer.gatherResults([r.content() for r in responses])
    assert [r.code for r in responses] == [206] * 20
    assert all(body == pattern(size)[10:1010] for body in bodies)
    assert special.resource.counts[f"/gated/{size}"] == 1


@pytest_twisted.ensureDeferred
async def test_an_upstream_without_range_support_is_bypassed_and_still_plays(make_world, special):
    """An upstream that answers 200 to a range request is relayed as it is (200, the whole body,
    X-Cache BYPASS) and nothing is cached; later requests go straight through."""
    size = 3 * SLICE + 5
    world = await make_world()
    room, media = await world.item(special.url(f"/norange/{size}"))
    url = await world.proxy_url(room, media)
    for _ in range(2):
        r = await world.fetch(url, headers={"Range": "bytes=100-199"})
        assert (r.status, r.header("X-Cache"), r.raw) == (200, "BYPASS", pattern(size))
    status, headers, body = await world.raw(url, method="HEAD")
    assert (status, headers["x-cache"], headers["content-length"], body) == (200, "BYPASS", str(size), b"")
    assert world.proxy.cache.stats()["entries"] == 0


@pytest_twisted.ensureDeferred
async def test_a_client_that_goes_away_cancels_its_upstream_request(make_world, special):
    """The client drops its request while the upstream has not answered: the proxy closes the
    upstream connection and frees its slot."""
    from twisted.internet import reactor

    world = await make_world()
    room, media = await world.item(special.url(f"/gated/{SLICE}"))
    url = await world.proxy_url(room, media)
    pool = HTTPConnectionPool(reactor, persistent=False)
    d = treq.get(world.served.base + url, pool=pool)
    d.addErrback(lambda _: None)
    await special.resource.arrived
    d.cancel()
    await special.resource.lost.addTimeout(10, reactor)
    await until(lambda: world.proxy.client.in_use == 0 and not world.proxy.service.flights)
