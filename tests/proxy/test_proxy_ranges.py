"""The proxy route against a real nginx upstream on loopback: the bytes of any range equal the
upstream's, 416 for unsatisfiable ranges, X-Cache HIT on a second read, HEAD, If-Range, CORS."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.defer import Deferred

from ._support import until
from .conftest import SLICE
from .upstreams import pattern

SIZE = 5 * SLICE + 12345  # five whole slices and a short last one
RANGES = settings(max_examples=40, deadline=None, derandomize=True,
                  suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


class Film(tuple):
    def __repr__(self) -> str:
        return "<film>"


@pytest.fixture
def film(make_world: Any, nginx: Any) -> tuple[Any, str, bytes]:
    """A world with one item served by nginx; returns (world, proxy URL, the upstream bytes)."""
    data = pattern(SIZE, seed=1)
    nginx.write("film.mp4", data)

    async def setup() -> tuple[Any, str, bytes]:
        world = await make_world()
        room, media = await world.item(nginx.url("film.mp4"))
        return Film((world, await world.proxy_url(room, media), data))

    return pytest_twisted.blockon(Deferred.fromCoroutine(setup()))


def first_difference(a: bytes, b: bytes) -> int | None:
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), None)


@st.composite
def range_headers(draw: Any) -> tuple[str, int, int]:
    """A Range value and the bytes it selects: closed (often across slice edges), open-ended, suffix."""
    edge = st.sampled_from([k * SLICE + d for k in range(6) for d in (-1, 0, 1) if 0 <= k * SLICE + d < SIZE])
    offset = draw(st.integers(0, SIZE - 1) | edge)
    form = draw(st.sampled_from(["closed", "closed", "open", "suffix"]))
    if form == "closed":
        length = draw(st.integers(1, 3 * SLICE) | st.integers(1, 16))
        last = offset + length - 1
        return f"bytes={offset}-{last}", offset, min(last, SIZE - 1)
    if form == "open":
        return f"bytes={offset}-", offset, SIZE - 1
    n = draw(st.integers(1, SIZE + 100))
    return f"bytes=-{n}", max(0, SIZE - n), SIZE - 1


@RANGES
@given(case=range_headers())
@pytest_twisted.ensureDeferred
async def test_any_range_gives_the_upstreams_bytes(film, case):
    """For random closed, open-ended and suffix ranges (spanning slices or not, cold or cached), the
    answer is 206 with the upstream's bytes and the right Content-Range / Content-Length."""
    world, url, data = film
    value, first, last = case
    r = await world.fetch(url, headers={"Range": value})
    assert r.status == 206, (value, r.raw[:200])
    assert r.header("Content-Range") == f"bytes {first}-{last}/{SIZE}"
    assert r.header("Accept-Ranges") == "bytes"
    assert len(r.raw) == last - first + 1, value
    assert r.raw == data[first:last + 1], (value, first_difference(r.raw, data[first:last + 1]))


@pytest_twisted.ensureDeferred
async def test_whole_body_and_head(film):
    """No Range: 200 with every byte; HEAD: the same headers and no body; both name the type."""
    world, url, data = film
    status, headers, body = await world.raw(url, method="HEAD")
    assert (status, body, headers["content-length"]) == (200, b"", str(SIZE))
    assert headers["content-type"] == "video/mp4"
    status, headers, body = await world.raw(url)
    assert (status, headers["content-length"], headers.get("content-range")) == (200, str(SIZE), None)
    assert body == data
    status, headers, body = await world.raw(url, method="HEAD", headers={"Range": "bytes=10-19"})
    assert (status, headers["content-range"], headers["content-length"], body) == (206, f"bytes 10-19/{SIZE}", "10", b"")
    status, headers, body = await world.raw(url, headers={"Range": f"bytes={SLICE - 5}-{SLICE + 4}"})
    assert (status, headers["content-length"], body) == (206, "10", data[SLICE - 5:SLICE + 5])


@pytest.mark.parametrize("value", [f"bytes={SIZE}-", f"bytes={SIZE + 5}-{SIZE + 10}", "bytes=-0"])
@pytest_twisted.ensureDeferred
async def test_unsatisfiable_ranges_are_416_cold_and_warm(film, value):
    """A range past the end is 416 with Content-Range bytes */total, on a cold resource (the length
    is learnt from the upstream's own 416) and on a known one."""
    world, url, _ = film
    for _ in range(2):
        r = await world.fetch(url, headers={"Range": value})
        assert r.status == 416, r.raw
        assert r.header("Content-Range") == f"bytes */{SIZE}"
        assert r.json["error"]["code"] == "range_not_satisfiable"


@pytest.mark.parametrize("value", ["bytes=5-2", "items=0-10", "bytes=abc", "bytes=0-1,5000-6000"])
@pytest_twisted.ensureDeferred
async def test_ranges_that_cannot_be_honoured_give_the_whole_body(film, value):
    """Invalid syntax, another unit, or ranges that do not coalesce: the Range is ignored (200)."""
    world, url, data = film
    r = await world.fetch(url, headers={"Range": value})
    assert (r.status, r.raw == data) == (200, True)


@pytest_twisted.ensureDeferred
async def test_second_read_is_a_hit_and_the_upstream_is_not_asked_again(film):
    """The first read of a range is MISS; the same range again is HIT with the same bytes, and the
    cache statistics count it."""
    world, url, data = film
    rng = {"Range": f"bytes={SLICE - 100}-{2 * SLICE + 100}"}
    first = await world.fetch(url, headers=rng)
    assert first.header("X-Cache") == "MISS"
    # the answer ends with the 101st byte of slice 2, whose fetch goes on to the slice's end and
    # is cached then: a second read before that joins the fetch (MISS), so wait for it
    await until(lambda: not world.proxy.service.flights)
    requests = world.proxy.service.counters["upstream_requests"]
    second = await world.fetch(url, headers=rng)
    assert second.header("X-Cache") == "HIT"
    assert second.raw == first.raw == data[SLICE - 100:2 * SLICE + 101]
    assert world.proxy.service.counters["upstream_requests"] == requests
    assert world.proxy.stats()["answers"]["hit"] >= 1


@pytest_twisted.ensureDeferred
async def test_if_range_honoured_only_for_the_current_validator(film):
    """If-Range with the upstream's ETag gets 206; with another ETag, the whole body (200)."""
    world, url, data = film
    head = await world.fetch(url, method="HEAD")
    etag = head.header("ETag")
    assert etag
    r = await world.fetch(url, headers={"Range": "bytes=0-9", "If-Range": etag})
    assert (r.status, r.raw) == (206, data[:10])
    r = await world.fetch(url, headers={"Range": "bytes=0-9", "If-Range": '"other"'})
    assert (r.status, len(r.raw)) == (200, SIZE)


@pytest_twisted.ensureDeferred
async def test_cors_headers_and_preflight(film):
    """Answers carry Access-Control-Allow-Origin * and expose the range headers; OPTIONS is a
    preflight answer allowing Range."""
    world, url, _ = film
    r = await world.fetch(url, headers={"Range": "bytes=0-0", "Origin": "https://player.example"})
    assert r.header("Access-Control-Allow-Origin") == "*"
    exposed = r.header("Access-Control-Expose-Headers")
    for name in ("Content-Range", "Accept-Ranges", "Content-Length", "X-Cache"):
        assert name in exposed
    pre = await world.fetch(url, method="OPTIONS", headers={"Access-Control-Request-Headers": "range"})
    assert pre.status == 204
    assert "Range" in pre.header("Access-Control-Allow-Headers")
    assert "GET" in pre.header("Access-Control-Allow-Methods")
