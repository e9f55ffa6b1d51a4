"""The SliceCache contract, run against every backend (memory with bytes, memory with memfds, file),
memfd lifetimes, and validators_match (synctv.proxy.cache)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from synctv.proxy.cache import (
    MEMFD_MAX_SLICES,
    MemorySliceCache,
    SliceCache,
    SliceFile,
    Validators,
    validators_match,
)
from synctv.proxy.filecache import FileSliceCache, inline_runner
from synctv.proxy.slices import SliceKey, slice_key

from ._support import resolved

URL_A = "https://a.example/movie.mp4"
URL_B = "https://b.example/other.mp4"


def key(url: str, index: int) -> SliceKey:
    return slice_key(url, {"Referer": "https://site/"}, index, slice_size=100)


@pytest.fixture(params=["memory", "memfd", "file"])
def make_cache(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    """Builds a cache of the parametrized backend with a given byte bound (``memfd``: the memory
    cache keeping its slices in memfds, as it does given the slice size on Linux)."""

    made: list[MemorySliceCache] = []

    def make(max_bytes: int) -> SliceCache:
        if request.param == "memory":
            return MemorySliceCache(max_bytes)
        if request.param == "memfd":
            memfd = MemorySliceCache(max_bytes, slice_size=100)
            assert memfd.memfd
            made.append(memfd)
            return memfd
        cache: SliceCache = resolved(FileSliceCache.open(tmp_path / "cache", max_bytes, inline_runner))
        return cache

    yield make
    for memfd in made:  # close the slices' descriptors
        resolved(memfd.purge_all())


def test_put_then_get_returns_the_bytes_and_counts_hits_and_misses(make_cache) -> None:
    """A stored slice comes back byte for byte; a miss is None; stats count both."""
    cache = make_cache(1000)
    assert resolved(cache.get(key(URL_A, 0))) is None
    resolved(cache.put(key(URL_A, 0), b"x" * 100))
    assert resolved(cache.get(key(URL_A, 0))) == b"x" * 100
    assert cache.stats() == {"entries": 1, "bytes": 100, "hits": 1, "misses": 1, "evictions": 0}


def test_least_recently_used_slices_are_evicted_first(make_cache) -> None:
    """Past the byte bound, the slice used longest ago goes first; a get counts as a use."""
    cache = make_cache(300)
    for i in range(3):
        resolved(cache.put(key(URL_A, i), bytes([i]) * 100))
    assert resolved(cache.get(key(URL_A, 0))) == bytes([0]) * 100
    resolved(cache.put(key(URL_A, 3), b"\x03" * 100))
    assert resolved(cache.get(key(URL_A, 1))) is None
    for i in (0, 2, 3):
        assert resolved(cache.get(key(URL_A, i))) == bytes([i]) * 100
    stats = cache.stats()
    assert (stats["entries"], stats["bytes"], stats["evictions"]) == (3, 300, 1)


def test_one_large_put_evicts_as_many_as_needed(make_cache) -> None:
    """A big slice evicts several small ones until the total fits the bound."""
    cache = make_cache(300)
    for i in range(3):
        resolved(cache.put(key(URL_A, i), b"s" * 100))
    resolved(cache.put(key(URL_B, 0), b"L" * 250))
    assert cache.stats()["entries"] == 1
    assert cache.stats()["evictions"] == 3
    assert resolved(cache.get(key(URL_B, 0))) == b"L" * 250


def test_a_slice_larger_than_the_bound_is_not_stored(make_cache) -> None:
    """A slice that alone exceeds max_bytes is not cached and evicts nothing."""
    cache = make_cache(100)
    resolved(cache.put(key(URL_A, 0), b"a" * 50))
    resolved(cache.put(key(URL_A, 1), b"b" * 101))
    assert resolved(cache.get(key(URL_A, 1))) is None
    assert resolved(cache.get(key(URL_A, 0))) == b"a" * 50
    assert cache.stats()["evictions"] == 0


def test_replacing_a_slice_updates_bytes_and_keeps_validators(make_cache) -> None:
    """Putting a key again replaces the bytes, counts them once, and keeps the resource's validators."""
    cache = make_cache(1000)
    k = key(URL_A, 0)
    v = Validators(etag='"1"', total_length=500)
    resolved(cache.set_validators(k.resource, v))
    resolved(cache.put(k, b"old" * 10))
    resolved(cache.put(k, b"new" * 20))
    assert resolved(cache.get(k)) == b"new" * 20
    assert cache.stats()["bytes"] == 60
    assert resolved(cache.get_validators(k.resource)) == v


def test_purge_resource_removes_only_that_resource(make_cache) -> None:
    """purge_resource drops every slice and the validators of one resource, nothing else."""
    cache = make_cache(10_000)
    a0, a1, b0 = key(URL_A, 0), key(URL_A, 1), key(URL_B, 0)
    resolved(cache.set_validators(a0.resource, Validators(etag='"a"')))
    resolved(cache.set_validators(b0.resource, Validators(etag='"b"')))
    for k in (a0, a1, b0):
        resolved(cache.put(k, b"z" * 10))
    resolved(cache.purge_resource(a0.resource))
    assert resolved(cache.get(a0)) is None and resolved(cache.get(a1)) is None
    assert resolved(cache.get(b0)) == b"z" * 10
    assert resolved(cache.get_validators(a0.resource)) is None
    assert resolved(cache.get_validators(b0.resource)) == Validators(etag='"b"')
    assert cache.stats()["entries"] == 1


def test_validators_go_with_the_last_slice_of_their_resource(make_cache) -> None:
    """When eviction removes a resource's last slice, its validators are dropped too."""
    cache = make_cache(100)
    a0, b0 = key(URL_A, 0), key(URL_B, 0)
    resolved(cache.set_validators(a0.resource, Validators(etag='"a"')))
    resolved(cache.put(a0, b"a" * 100))
    assert resolved(cache.get_validators(a0.resource)) == Validators(etag='"a"')
    resolved(cache.put(b0, b"b" * 100))
    assert resolved(cache.get_validators(a0.resource)) is None


def test_purge_all_empties_the_cache_but_keeps_the_counters(make_cache) -> None:
    """purge_all removes every slice and validator; hit/miss/eviction counters are history and stay."""
    cache = make_cache(1000)
    resolved(cache.set_validators(key(URL_A, 0).resource, Validators(total_length=5)))
    resolved(cache.put(key(URL_A, 0), b"12345"))
    resolved(cache.get(key(URL_A, 0)))
    resolved(cache.purge_all())
    assert resolved(cache.get(key(URL_A, 0))) is None
    assert resolved(cache.get_validators(key(URL_A, 0).resource)) is None
    assert cache.stats() == {"entries": 0, "bytes": 0, "hits": 1, "misses": 1, "evictions": 0}


@pytest.mark.parametrize(
    ("stored", "fresh", "match"),
    [
        (None, Validators(etag='"a"'), False),
        (Validators(etag='"a"', total_length=10), Validators(etag='"a"', total_length=10), True),
        (Validators(etag='"a"'), Validators(etag='"b"'), False),
        (Validators(etag='W/"a"'), Validators(etag='W/"a"'), True),
        (Validators(etag='"a"'), Validators(), False),
        (Validators(), Validators(etag='"a"'), False),
        (Validators(etag='"a"', total_length=10), Validators(etag='"a"', total_length=11), False),
        (Validators(total_length=10), Validators(total_length=None), True),
        (Validators(total_length=10), Validators(total_length=10), True),
        (Validators(total_length=10), Validators(total_length=12), False),
        (
            Validators(last_modified="Sun, 06 Nov 1994 08:49:37 GMT"),
            Validators(last_modified="Sunday, 06-Nov-94 08:49:37 GMT"),
            True,
        ),
        (
            Validators(last_modified="Sun, 06 Nov 1994 08:49:37 GMT"),
            Validators(last_modified="Sun, 06 Nov 1994 08:49:38 GMT"),
            False,
        ),
        (Validators(last_modified="Sun, 06 Nov 1994 08:49:37 GMT"), Validators(), False),
        (Validators(last_modified="odd"), Validators(last_modified="odd"), True),
        (
            Validators(etag='"a"', last_modified="Sun, 06 Nov 1994 08:49:37 GMT"),
            Validators(etag='"a"', last_modified="Mon, 07 Nov 1994 08:49:37 GMT"),
            False,
        ),
    ],
)
def test_validators_match(stored: Validators | None, fresh: Validators, match: bool) -> None:
    """Cached slices stay trusted only when no validator contradicts and none appeared or vanished."""
    assert validators_match(stored, fresh) is match


def test_validators_json_round_trip_and_refuses_bad_shapes() -> None:
    """Validators survive to_json/from_json; wrong types are a ValueError."""
    v = Validators(etag='"x"', last_modified="Sun, 06 Nov 1994 08:49:37 GMT", total_length=7)
    assert Validators.from_json(v.to_json()) == v
    for bad in ([], {"etag": 1}, {"last_modified": 2}, {"total_length": -1}, {"total_length": True}):
        with pytest.raises(ValueError):
            Validators.from_json(bad)


def open_fds() -> int:
    """This process's memfd slice descriptors (other descriptors, e.g. of threads left by earlier
    tests, do not count)."""
    count = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}").startswith("/memfd:synctv-slice"):
                count += 1
        except OSError:  # closed meanwhile (the listing's own descriptor)
            pass
    return count


def test_memfd_slices_are_sent_from_their_descriptor_and_outlive_eviction_until_closed() -> None:
    """With memfds, ``open_slice`` gives a duplicate descriptor holding the slice (for sendfile);
    a slice evicted while a response still holds it stays readable through that descriptor until
    the response closes it; dropping slices (eviction, purge) closes their descriptors, so the
    process holds one descriptor per cached slice and no more."""
    base = open_fds()
    cache = MemorySliceCache(300, slice_size=100)
    assert cache.memfd
    resolved(cache.put(key(URL_A, 0), b"a" * 100))
    resolved(cache.put(key(URL_A, 1), b"b" * 60))
    assert open_fds() == base + 2
    opened = resolved(cache.open_slice(key(URL_A, 1)))
    assert isinstance(opened, SliceFile) and (opened.offset, opened.length) == (0, 60)
    assert os.pread(opened.fd, 100, 0) == b"b" * 60
    assert resolved(cache.get(key(URL_A, 1))) == b"b" * 60
    for i in range(2, 6):  # evicts slices 0 and 1 (LRU), and more
        resolved(cache.put(key(URL_B, i), bytes([i]) * 100))
    assert not cache.contains(key(URL_A, 1))
    assert os.pread(opened.fd, 100, 0) == b"b" * 60  # the response still sends the right bytes
    opened.close()
    assert open_fds() == base + 3  # the three slices held, nothing else
    assert resolved(cache.open_slice(key(URL_A, 0))) is None
    resolved(cache.purge_all())
    assert open_fds() == base


def test_memory_cache_keeps_bytes_when_memfds_would_take_too_many_descriptors(monkeypatch) -> None:
    """One descriptor per slice is allowed for at most MEMFD_MAX_SLICES slices and an eighth of
    the soft descriptor limit; a cache of more slices, or one not told the slice size, keeps
    ``bytes`` and ``open_slice`` returns them."""
    import resource

    monkeypatch.setattr(resource, "getrlimit", lambda which: (1024, 4096))
    assert MemorySliceCache(128 * 100, slice_size=100).memfd  # 1,024 / 8
    assert not MemorySliceCache(128 * 100 + 1, slice_size=100).memfd
    monkeypatch.setattr(resource, "getrlimit", lambda which: (10**6, 10**6))
    assert MemorySliceCache(MEMFD_MAX_SLICES * 100, slice_size=100).memfd
    assert not MemorySliceCache(MEMFD_MAX_SLICES * 100 + 1, slice_size=100).memfd
    assert not MemorySliceCache(1000).memfd
    cache = MemorySliceCache(100 * MEMFD_MAX_SLICES * 2, slice_size=100)
    resolved(cache.put(key(URL_A, 0), b"x" * 100))
    assert resolved(cache.open_slice(key(URL_A, 0))) == b"x" * 100


def test_memfd_hit_falls_back_to_the_bytes_when_descriptors_run_out(monkeypatch) -> None:
    """A hit when the process cannot duplicate a descriptor (EMFILE) is served from the memfd's
    bytes, not turned into an error."""
    cache = MemorySliceCache(300, slice_size=100)
    resolved(cache.put(key(URL_A, 0), b"q" * 100))

    def no_more(fd: int) -> int:
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(os, "dup", no_more)
    assert resolved(cache.open_slice(key(URL_A, 0))) == b"q" * 100
    monkeypatch.undo()
    resolved(cache.purge_all())
