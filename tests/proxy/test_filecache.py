"""The file slice cache on a real directory (synctv.proxy.filecache)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer

from synctv.proxy import filecache
from synctv.proxy.cache import Validators
from synctv.proxy.filecache import FileSliceCache, inline_runner, thread_runner
from synctv.proxy.slices import SliceKey, slice_key

from ._support import resolved

URL = "https://media.example/film.mkv"
HEADER_SIZE = 92


def key(index: int, url: str = URL) -> SliceKey:
    return slice_key(url, {"Referer": "https://site/"}, index, slice_size=100)


class FixedClock:
    """A wall clock that stands still: access stamps must still order every use."""

    def __call__(self) -> float:
        return 1_700_000_000.0


def open_cache(directory: Path, max_bytes: int = 10_000, runner: Any = inline_runner) -> FileSliceCache:
    return resolved(FileSliceCache.open(directory, max_bytes, runner, clock=FixedClock()))


def slice_path(directory: Path, k: SliceKey) -> Path:
    return directory / "slices" / k.digest[:2] / k.digest


def files_under(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())


class ManualRunner:
    """A runner that queues blocking work until the test runs it, to observe operation order."""

    def __init__(self) -> None:
        self.queue: list[tuple[Callable[..., Any], tuple[Any, ...], defer.Deferred[Any]]] = []

    def __call__(self, f: Callable[..., Any], *args: Any) -> defer.Deferred[Any]:
        d: defer.Deferred[Any] = defer.Deferred()
        self.queue.append((f, args, d))
        return d

    def names(self) -> list[str]:
        return [f.__name__ for f, _, _ in self.queue]

    def run_all(self) -> None:
        while self.queue:
            f, args, d = self.queue.pop(0)
            try:
                result = f(*args)
            except Exception:
                d.errback()
            else:
                d.callback(result)


def test_slices_and_validators_are_files_in_sharded_directories(tmp_path: Path) -> None:
    """A slice is a header plus its bytes at slices/<2 hex>/<key>; validators are JSON per resource."""
    cache = open_cache(tmp_path)
    k = key(0)
    resolved(cache.set_validators(k.resource, Validators(etag='"e1"', total_length=1234)))
    resolved(cache.put(k, b"m" * 100))
    path = slice_path(tmp_path, k)
    assert path.stat().st_size == HEADER_SIZE + 100
    assert path.read_bytes().endswith(b"m" * 100)
    vpath = tmp_path / "validators" / k.resource[:2] / f"{k.resource}.json"
    assert json.loads(vpath.read_text()) == {"etag": '"e1"', "last_modified": None, "total_length": 1234}
    assert not [p for p in tmp_path.rglob("*.tmp")]


def test_a_new_cache_on_the_same_directory_sees_earlier_slices(tmp_path: Path) -> None:
    """Slices and validators survive a restart: a fresh FileSliceCache serves them and counts them."""
    first = open_cache(tmp_path)
    v = Validators(etag='"v"', last_modified="Sun, 06 Nov 1994 08:49:37 GMT", total_length=250)
    resolved(first.set_validators(key(0).resource, v))
    for i in range(3):
        resolved(first.put(key(i), bytes([65 + i]) * (100 if i < 2 else 50)))
    second = open_cache(tmp_path)
    assert second.stats() == {"entries": 3, "bytes": 250, "hits": 0, "misses": 0, "evictions": 0}
    assert [resolved(second.get(key(i))) for i in range(3)] == [b"A" * 100, b"B" * 100, b"C" * 50]
    assert resolved(second.get_validators(key(0).resource)) == v
    resolved(second.purge_resource(key(0).resource))
    assert files_under(tmp_path) == []


def test_eviction_is_least_recently_used_across_a_restart(tmp_path: Path) -> None:
    """The order of use is persisted: after a restart the slice used longest ago is evicted first."""
    cache = open_cache(tmp_path, max_bytes=300)
    for i in range(3):
        resolved(cache.put(key(i), bytes([i]) * 100))
    assert resolved(cache.get(key(0))) == bytes([0]) * 100  # 1 is now the least recently used
    restarted = open_cache(tmp_path, max_bytes=300)
    resolved(restarted.put(key(3), b"\x03" * 100))
    assert not slice_path(tmp_path, key(1)).exists()
    assert resolved(restarted.get(key(1))) is None
    assert [resolved(restarted.get(key(i))) is not None for i in (0, 2, 3)] == [True, True, True]
    assert restarted.stats()["evictions"] == 1


def test_a_smaller_bound_at_restart_evicts_down_to_it(tmp_path: Path) -> None:
    """Opening with a lower max_bytes evicts least recently used slices until the bound holds."""
    cache = open_cache(tmp_path)
    for i in range(4):
        resolved(cache.put(key(i), b"x" * 100))
    smaller = open_cache(tmp_path, max_bytes=200)
    assert smaller.stats()["entries"] == 2
    assert [slice_path(tmp_path, key(i)).exists() for i in range(4)] == [False, False, True, True]


def test_leftover_temp_files_are_ignored_and_deleted(tmp_path: Path) -> None:
    """A crash mid-write leaves a *.tmp file: the next start neither indexes nor keeps it."""
    cache = open_cache(tmp_path)
    resolved(cache.put(key(0), b"whole" * 20))
    k = key(1)
    shard = tmp_path / "slices" / k.digest[:2]
    shard.mkdir(parents=True, exist_ok=True)
    (shard / f"{k.digest}.0123abcd.tmp").write_bytes(b"SYNCTVS1 partial")
    vshard = tmp_path / "validators" / k.resource[:2]
    vshard.mkdir(parents=True, exist_ok=True)
    (vshard / f"{k.resource}.json.99.tmp").write_text('{"etag": ')
    (tmp_path / "slices" / "README").write_text("not ours")
    restarted = open_cache(tmp_path)
    assert restarted.stats()["entries"] == 1
    assert resolved(restarted.get(k)) is None
    assert not list(tmp_path.rglob("*.tmp"))
    assert (tmp_path / "slices" / "README").exists()


def test_a_truncated_slice_is_deleted_at_start(tmp_path: Path) -> None:
    """A slice file shorter than its header says (a partial write) is removed when the index is rebuilt."""
    cache = open_cache(tmp_path)
    resolved(cache.put(key(0), b"a" * 100))
    resolved(cache.put(key(1), b"b" * 100))
    path = slice_path(tmp_path, key(0))
    with open(path, "r+b") as f:
        f.truncate(HEADER_SIZE + 40)
    restarted = open_cache(tmp_path)
    assert restarted.stats()["entries"] == 1
    assert not path.exists()
    assert resolved(restarted.get(key(1))) == b"b" * 100


def test_a_corrupt_or_vanished_slice_is_a_miss_and_is_removed(tmp_path: Path) -> None:
    """A payload that fails its checks (same size, bytes changed) or a file gone from disk is a miss."""
    cache = open_cache(tmp_path)
    resolved(cache.put(key(0), b"a" * 100))
    resolved(cache.put(key(1), b"b" * 100))
    path = slice_path(tmp_path, key(0))
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0xFF
    path.write_bytes(bytes(raw))
    assert resolved(cache.get(key(0))) is None
    assert not path.exists()
    os.unlink(slice_path(tmp_path, key(1)))
    assert resolved(cache.get(key(1))) is None
    assert cache.stats() == {"entries": 0, "bytes": 0, "hits": 0, "misses": 2, "evictions": 0}


def test_a_failed_write_leaves_no_temp_file_and_no_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the rename never happens (disk error, crash), put still succeeds, caches nothing, cleans up."""
    cache = open_cache(tmp_path)

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(filecache.os, "replace", broken_replace)
    assert resolved(cache.put(key(0), b"a" * 100)) is None
    monkeypatch.undo()
    assert cache.stats()["entries"] == 0
    assert resolved(cache.get(key(0))) is None
    assert files_under(tmp_path) == []


def test_unreadable_validators_and_orphans_are_dropped_at_start(tmp_path: Path) -> None:
    """Validators files that are not valid JSON, or whose resource has no slices, are deleted."""
    cache = open_cache(tmp_path)
    kept, orphan = key(0), key(0, url="https://other.example/x")
    resolved(cache.set_validators(kept.resource, Validators(etag='"k"')))
    resolved(cache.put(kept, b"k" * 10))
    resolved(cache.set_validators(orphan.resource, Validators(etag='"o"')))
    bad = "f" * 64
    (tmp_path / "validators" / "ff").mkdir()
    (tmp_path / "validators" / "ff" / f"{bad}.json").write_text("{not json")
    restarted = open_cache(tmp_path)
    assert resolved(restarted.get_validators(kept.resource)) == Validators(etag='"k"')
    assert resolved(restarted.get_validators(orphan.resource)) is None
    assert resolved(restarted.get_validators(bad)) is None
    remaining = [p.name for p in (tmp_path / "validators").rglob("*.json")]
    assert remaining == [f"{kept.resource}.json"]


def test_purge_all_deletes_every_file(tmp_path: Path) -> None:
    """purge_all leaves no slice or validators file behind, and a restart finds nothing."""
    cache = open_cache(tmp_path)
    for i in range(5):
        resolved(cache.set_validators(key(i, url=f"{URL}?{i}").resource, Validators(total_length=i)))
        resolved(cache.put(key(i, url=f"{URL}?{i}"), b"p" * 10))
    resolved(cache.purge_all())
    assert files_under(tmp_path) == []
    assert open_cache(tmp_path).stats()["entries"] == 0


def test_keys_that_are_not_hex_digests_are_refused(tmp_path: Path) -> None:
    """A key that is not 64 lower-case hex digits never becomes a path."""
    cache = open_cache(tmp_path)
    with pytest.raises(ValueError):
        cache.put(SliceKey(digest="../../etc/passwd", resource="a" * 64, index=0), b"x")
    with pytest.raises(ValueError):
        cache.set_validators("../x", Validators())


def test_a_slice_being_written_is_served_from_memory_and_deleted_only_after_the_write(tmp_path: Path) -> None:
    """While its write is queued a slice is a hit from memory; a purge meanwhile runs after the write,
    so the file is gone at the end and the purge fires only then."""
    runner = ManualRunner()
    d = FileSliceCache.open(tmp_path, 10_000, runner, clock=FixedClock())
    runner.run_all()
    cache = resolved(d)
    k = key(0)
    put = cache.put(k, b"fresh" * 20)
    assert runner.names() == ["_write_atomic"]
    assert resolved(cache.get(k)) == b"fresh" * 20
    assert runner.names() == ["_write_atomic"]
    purged = cache.purge_resource(k.resource)
    assert runner.names() == ["_write_atomic"]  # the delete waits for the write
    assert not purged.called
    runner.run_all()
    assert put.called and purged.called
    assert not slice_path(tmp_path, k).exists()


def test_reads_queue_behind_writes_of_the_same_slice(tmp_path: Path) -> None:
    """Operations on one slice run in call order; other slices do not wait for them."""
    runner = ManualRunner()
    d = FileSliceCache.open(tmp_path, 10_000, runner, clock=FixedClock())
    runner.run_all()
    cache = resolved(d)
    resolved_put = cache.put(key(0), b"a" * 10)
    runner.run_all()
    assert resolved_put.called
    cache.put(key(1), b"b" * 10)
    got = cache.get(key(0))
    assert runner.names() == ["_write_atomic", "_read_slice"]
    runner.run_all()
    assert resolved(got) == b"a" * 10


@pytest_twisted.inlineCallbacks
def test_thread_runner_keeps_file_work_in_a_threadpool(tmp_path: Path) -> Any:
    """With a real threadpool and reactor, concurrent puts and gets work and survive a reopen."""
    import threading

    from twisted.internet import reactor
    from twisted.python.threadpool import ThreadPool

    pool = ThreadPool(minthreads=1, maxthreads=3, name="test-slice-cache")
    pool.start()
    threads_used: set[str] = set()
    base = thread_runner(reactor, pool)

    def runner(f: Callable[..., Any], *args: Any) -> defer.Deferred[Any]:
        def spy(*a: Any) -> Any:
            threads_used.add(threading.current_thread().name)
            return f(*a)

        return base(spy, *args)

    try:
        cache = yield FileSliceCache.open(tmp_path, 100_000, runner)
        keys = [key(i) for i in range(20)]
        yield defer.gatherResults([cache.put(k, bytes([i]) * 100) for i, k in enumerate(keys)])
        got = yield defer.gatherResults([cache.get(k) for k in keys])
        assert got == [bytes([i]) * 100 for i in range(20)]
        yield cache.idle()
        reopened = yield FileSliceCache.open(tmp_path, 100_000, runner)
        assert reopened.stats()["entries"] == 20
        again = yield reopened.get(keys[7])
        assert again == bytes([7]) * 100
        assert threads_used and threading.current_thread().name not in threads_used
    finally:
        pool.stop()


def _payload(found: Any) -> bytes:
    try:
        return os.pread(found.fd, found.length, found.offset)
    finally:
        found.close()


def test_open_slice_gives_the_file_for_sendfile_and_checks_a_restarted_slice_once(tmp_path: Path) -> None:
    """open_slice: the bytes while a write is pending, then the open file (payload at its offset);
    after a restart the first open checks the CRC (a corrupt payload is a miss and is deleted), a
    good one is then opened on its header alone; a vanished file is a miss."""
    runner = ManualRunner()
    cache = open_cache(tmp_path, runner=inline_runner)
    resolved(cache.put(key(0), b"a" * 100))
    resolved(cache.put(key(1), b"b" * 60))
    assert _payload(resolved(cache.open_slice(key(0)))) == b"a" * 100
    opening = FileSliceCache.open(tmp_path / "other", 10_000, runner, clock=FixedClock())
    runner.run_all()
    pending = resolved(opening)
    runner_d = pending.put(key(2), b"c" * 100)
    assert resolved(pending.open_slice(key(2))) == b"c" * 100  # still being written: from memory
    runner.run_all()
    resolved(runner_d)

    again = open_cache(tmp_path)
    path = slice_path(tmp_path, key(0))
    raw = bytearray(path.read_bytes())
    raw[HEADER_SIZE + 5] ^= 0xFF
    path.write_bytes(bytes(raw))
    assert resolved(again.open_slice(key(0))) is None  # CRC checked on the first open
    assert not path.exists()
    assert _payload(resolved(again.open_slice(key(1)))) == b"b" * 60
    assert _payload(resolved(again.open_slice(key(1)))) == b"b" * 60  # kept open from now on
    resolved(again.put(key(1), b"B" * 60))  # a new version closes the file kept open
    assert _payload(resolved(again.open_slice(key(1)))) == b"B" * 60
    again.close_files()
    os.unlink(slice_path(tmp_path, key(1)))
    assert resolved(again.open_slice(key(1))) is None  # vanished, and not kept open
    assert again.stats() == {"entries": 0, "bytes": 0, "hits": 3, "misses": 2, "evictions": 0}
