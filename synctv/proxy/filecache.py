"""The file backend of the slice cache: slices on disk, an LRU index in memory.

Layout under the cache directory::

    slices/<first 2 hex of key>/<key>                  one slice: a 92-byte header, then the bytes
    validators/<first 2 hex of resource>/<resource>.json

The slice header (``>8s64sQQI``) holds a magic, the resource key, the slice index, the payload
length and its CRC-32. It is what lets a restarted cache know which resource each slice belongs to
(for ``purge_resource``) and tell whole files from partial or corrupt ones: a file whose size does
not match its header is deleted at start; a payload whose length or CRC does not match is a miss
and is deleted when read. :meth:`FileSliceCache.open_slice` serves hits by ``sendfile``: it opens
the file and checks its header in the read pool every time, and its CRC the first time this
process serves it (a slice this process wrote is known good), so after that the payload goes from
the page cache to the socket without passing through Python. The ``OPEN_FILES`` most recently
served slice files stay open (closed when their slice is replaced, evicted or purged), so a hot
slice is served without a trip to the read pool; its recorded access time is then the one of its
last open (the LRU order in memory is exact).

Every file is written crash-safe: a unique ``*.tmp`` file in the same directory, ``fsync``,
``os.replace``, ``fsync`` of the directory (``sync_writes=False`` skips both fsyncs: after a
power loss a slice may then hold wrong bytes, which its CRC turns into a miss when it is read).
A crash leaves at worst a ``*.tmp`` file, deleted at the next start. Last access is persisted
as the file's mtime (set explicitly from a strictly increasing stamp, so the order survives
coarse file-system timestamps), which is the LRU order rebuilt at start.

Blocking file work goes through an injected ``runner(f, *args) -> Deferred``:
:func:`thread_runner` (``deferToThreadPool`` with a given reactor and threadpool) in the server,
:func:`inline_runner` in tests. Operations on one file are serialized in call order (a read after
a write sees the write; an eviction's delete runs after the pending write); the index itself is
only touched on the calling (reactor) thread. A slice still being written is served from memory.
"""

from __future__ import annotations

import json
import os
import re
import struct
import time
import uuid
import zlib
from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

import attrs
from twisted.internet import defer, threads
from twisted.logger import Logger
from twisted.python.failure import Failure

from synctv.proxy.cache import SliceFile, Validators
from synctv.proxy.slices import SliceKey

log = Logger()

Runner = Callable[..., defer.Deferred[Any]]

_MAGIC = b"SYNCTVS1"
_HEADER = struct.Struct(">8s64sQQI")
_HEX64 = re.compile(r"[0-9a-f]{64}")
OPEN_FILES = 256  # slice files kept open for sendfile hits (the most recently served)


def thread_runner(reactor: Any, threadpool: Any) -> Runner:
    """A runner that does the blocking work in ``threadpool`` and fires on ``reactor``'s thread."""

    def run(f: Callable[..., Any], *args: Any) -> defer.Deferred[Any]:
        return threads.deferToThreadPool(reactor, threadpool, f, *args)

    return run


def inline_runner(f: Callable[..., Any], *args: Any) -> defer.Deferred[Any]:
    """A runner that does the work at once on the calling thread (tests, tools)."""
    return defer.maybeDeferred(f, *args)


# ---- blocking helpers (run through the runner) ----------------------------------------------


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def split_runner(reads: Runner, writes: Runner) -> Runner:
    """A runner that sends slice reads to ``reads`` and everything else (writes, deletes, the scan)
    to ``writes``, so a read is never queued behind slow writes."""

    def run(f: Callable[..., Any], *args: Any) -> defer.Deferred[Any]:
        return (reads if f is _read_slice else writes)(f, *args)

    return run


def _write_atomic(path: str, parts: tuple[bytes, ...], stamp_ns: int | None, sync: bool = True) -> None:
    """Write ``parts`` to ``path`` through a temp file, fsync (when ``sync``) and rename; set mtime
    to the stamp. Without fsync a power loss may leave a slice whose bytes are wrong: its CRC
    then fails when it is read, so it is a miss, never wrong bytes."""
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    tmp = f"{path}.{uuid.uuid4().hex}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "wb") as f:
            for part in parts:
                f.write(part)
            if sync:
                f.flush()
                os.fsync(f.fileno())
        if stamp_ns is not None:
            os.utime(tmp, ns=(stamp_ns, stamp_ns))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if sync:
        _fsync_dir(directory)


def _read_slice(path: str, resource: str, size: int, stamp_ns: int) -> bytes | None:
    """The payload of a whole, matching slice file, or ``None`` (missing, partial or corrupt)."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return None
    if len(raw) < _HEADER.size:
        return None
    magic, res, _index, length, crc = _HEADER.unpack_from(raw)
    payload = raw[_HEADER.size :]
    if (
        magic != _MAGIC
        or res != resource.encode("ascii")
        or length != size
        or len(payload) != length
        or zlib.crc32(payload) != crc
    ):
        return None
    try:
        os.utime(path, ns=(stamp_ns, stamp_ns))
    except OSError:
        pass
    return payload


def _open_slice(path: str, resource: str, size: int, stamp_ns: int, verify: bool) -> SliceFile | None:
    """The slice file opened, when its header (and, if ``verify``, its CRC) matches; else None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        if os.fstat(fd).st_size != _HEADER.size + size:
            os.close(fd)
            return None
        raw = os.pread(fd, _HEADER.size + size if verify else _HEADER.size, 0)
        magic, res, _index, length, crc = _HEADER.unpack_from(raw) if len(raw) >= _HEADER.size else (b"",) * 5
        if magic != _MAGIC or res != resource.encode("ascii") or length != size or (
                verify and zlib.crc32(memoryview(raw)[_HEADER.size:]) != crc):
            os.close(fd)
            return None
        if hasattr(os, "posix_fadvise"):  # start reading it into the page cache, off the reactor
            os.posix_fadvise(fd, _HEADER.size, size, os.POSIX_FADV_WILLNEED)
        try:
            os.utime(path, ns=(stamp_ns, stamp_ns))
        except OSError:
            pass
        return SliceFile(fd, _HEADER.size, size)
    except BaseException:
        os.close(fd)
        raise


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


@attrs.frozen
class _ScannedSlice:
    digest: str
    resource: str
    index: int
    size: int
    stamp_ns: int


def _scan(root: str) -> tuple[list[_ScannedSlice], dict[str, Validators]]:
    """Walk the cache directory: delete ``*.tmp`` and broken files, return what is whole."""
    slices: list[_ScannedSlice] = []
    validators: dict[str, Validators] = {}
    for sub in ("slices", "validators"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    slice_root = os.path.join(root, "slices")
    for shard in os.scandir(slice_root):
        if not shard.is_dir(follow_symlinks=False):
            continue
        for item in os.scandir(shard.path):
            if item.name.endswith(".tmp"):
                _unlink(item.path)
                continue
            if not _HEX64.fullmatch(item.name) or item.name[:2] != shard.name:
                continue
            scanned = _scan_slice(item)
            if scanned is None:
                log.warn("deleting a broken cache slice {path}", path=item.path)
                _unlink(item.path)
            else:
                slices.append(scanned)
    val_root = os.path.join(root, "validators")
    for shard in os.scandir(val_root):
        if not shard.is_dir(follow_symlinks=False):
            continue
        for item in os.scandir(shard.path):
            if item.name.endswith(".tmp"):
                _unlink(item.path)
                continue
            name = item.name.removesuffix(".json")
            if not item.name.endswith(".json") or not _HEX64.fullmatch(name):
                continue
            try:
                with open(item.path, encoding="utf-8") as f:
                    validators[name] = Validators.from_json(json.load(f))
            except (OSError, ValueError):
                log.warn("deleting unreadable cache validators {path}", path=item.path)
                _unlink(item.path)
    return slices, validators


def _scan_slice(item: os.DirEntry[str]) -> _ScannedSlice | None:
    try:
        st = item.stat(follow_symlinks=False)
        with open(item.path, "rb") as f:
            head = f.read(_HEADER.size)
    except OSError:
        return None
    if len(head) != _HEADER.size:
        return None
    magic, res, index, length, _crc = _HEADER.unpack(head)
    try:
        resource = res.decode("ascii")
    except UnicodeDecodeError:
        return None
    if magic != _MAGIC or not _HEX64.fullmatch(resource) or st.st_size != _HEADER.size + length:
        return None
    return _ScannedSlice(item.name, resource, index, length, st.st_mtime_ns)


# ---- the cache ------------------------------------------------------------------------------


class _Entry:
    __slots__ = ("index", "pending", "resource", "size", "verified")

    def __init__(self, resource: str, index: int, size: int, pending: bytes | None) -> None:
        self.resource = resource
        self.index = index
        self.size = size
        self.pending = pending  # the bytes while the file is being written
        self.verified = False  # written by this process, or its CRC checked once since the start


def _check_hex(value: str, what: str) -> None:
    if not _HEX64.fullmatch(value):
        raise ValueError(f"{what} must be 64 lower-case hex digits")


class FileSliceCache:
    """A :class:`synctv.proxy.cache.SliceCache` on disk, bounded by payload bytes, LRU.

    Build it with :meth:`open`, which scans the directory; a cache on the same directory later sees
    the slices and validators written before.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        max_bytes: int,
        runner: Runner,
        *,
        clock: Callable[[], float] = time.time,
        sync_writes: bool = True,
    ) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must not be negative, not {max_bytes}")
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self._runner = runner
        self._clock = clock
        self._sync = sync_writes
        self._index: OrderedDict[str, _Entry] = OrderedDict()
        self._by_resource: dict[str, set[str]] = {}
        self._validators: dict[str, Validators] = {}
        self._tails: dict[Hashable, defer.Deferred[None]] = {}
        self._open: OrderedDict[str, int] = OrderedDict()  # digest -> fd of a checked slice file (LRU)
        self._last_stamp = 0
        self._bytes = 0
        self._hits = 0
        self._misses = 0
        self._evictions = 0

    @classmethod
    def open(
        cls,
        directory: str | os.PathLike[str],
        max_bytes: int,
        runner: Runner,
        *,
        clock: Callable[[], float] = time.time,
        sync_writes: bool = True,
    ) -> defer.Deferred[FileSliceCache]:
        """A cache on ``directory``, its index rebuilt from the files found there."""
        cache = cls(directory, max_bytes, runner, clock=clock, sync_writes=sync_writes)
        return cache.load().addCallback(lambda _: cache)

    def load(self) -> defer.Deferred[None]:
        """Scan the directory and rebuild the index (LRU order from the recorded last access)."""
        d = defer.maybeDeferred(self._runner, _scan, str(self.directory))
        return d.addCallback(self._loaded)

    def _loaded(self, scanned: tuple[list[_ScannedSlice], dict[str, Validators]]) -> None:
        slices, validators = scanned
        for s in sorted(slices, key=lambda s: (s.stamp_ns, s.digest)):
            if s.digest in self._index:
                continue
            self._index[s.digest] = _Entry(s.resource, s.index, s.size, None)
            self._by_resource.setdefault(s.resource, set()).add(s.digest)
            self._bytes += s.size
            self._last_stamp = max(self._last_stamp, s.stamp_ns)
        for resource, v in validators.items():
            if resource in self._by_resource:
                self._validators.setdefault(resource, v)
            else:
                self._background(self._serial(("v", resource), _unlink, self._validators_path(resource)))
        self._evict()

    # -- paths, stamps, serialization

    def _slice_path(self, digest: str) -> str:
        return str(self.directory / "slices" / digest[:2] / digest)

    def _validators_path(self, resource: str) -> str:
        return str(self.directory / "validators" / resource[:2] / f"{resource}.json")

    def _stamp(self) -> int:
        self._last_stamp = max(int(self._clock() * 1e9), self._last_stamp + 1)
        return self._last_stamp

    def _serial(self, lane: Hashable, f: Callable[..., Any], *args: Any) -> defer.Deferred[Any]:
        """Run ``f(*args)`` through the runner after every earlier operation on ``lane``."""
        prev = self._tails.get(lane)
        result: defer.Deferred[Any] = defer.Deferred()
        done: defer.Deferred[None] = defer.Deferred()
        self._tails[lane] = done

        def start(_: object = None) -> None:
            def finish(outcome: Any) -> None:
                if self._tails.get(lane) is done:
                    del self._tails[lane]
                if isinstance(outcome, Failure):
                    result.errback(outcome)
                else:
                    result.callback(outcome)
                done.callback(None)

            defer.maybeDeferred(self._runner, f, *args).addBoth(finish)

        if prev is None:
            start()
        else:
            prev.addCallback(start)
        return result

    def _background(self, d: defer.Deferred[Any]) -> defer.Deferred[None]:
        """Log a failure of housekeeping work instead of leaving it unhandled."""

        def failed(failure: Failure) -> None:
            log.failure("slice cache housekeeping failed", failure)

        return d.addCallbacks(lambda _: None, failed)

    def idle(self) -> defer.Deferred[None]:
        """Fires once every file operation started so far has finished."""
        waits = []
        for tail in list(self._tails.values()):
            w: defer.Deferred[None] = defer.Deferred()
            tail.addCallback(lambda r, w=w: (w.callback(None), r)[1])
            waits.append(w)
        return defer.gatherResults(waits).addCallback(lambda _: None)

    # -- index bookkeeping

    def _close_open(self, digest: str) -> None:
        fd = self._open.pop(digest, None)
        if fd is not None:
            os.close(fd)

    def _keep_open(self, digest: str, fd: int) -> None:
        self._close_open(digest)
        self._open[digest] = os.dup(fd)
        while len(self._open) > OPEN_FILES:
            os.close(self._open.popitem(last=False)[1])

    def close_files(self) -> None:
        """Close the slice files kept open (at shutdown)."""
        while self._open:
            os.close(self._open.popitem()[1])

    def _discard(self, digest: str, *, unlink: bool) -> defer.Deferred[None] | None:
        """Forget a slice (and its resource's validators if it was the last); maybe delete the file."""
        self._close_open(digest)
        entry = self._index.pop(digest, None)
        if entry is None:
            return None
        self._bytes -= entry.size
        self._detach(entry.resource, digest)
        if not unlink:
            return None
        return self._background(self._serial(digest, _unlink, self._slice_path(digest)))

    def _detach(self, resource: str, digest: str) -> None:
        digests = self._by_resource.get(resource)
        if digests is not None:
            digests.discard(digest)
            if not digests:
                del self._by_resource[resource]
                if resource in self._validators:
                    self._drop_validators(resource)

    def _drop_validators(self, resource: str) -> defer.Deferred[None]:
        self._validators.pop(resource, None)
        return self._background(self._serial(("v", resource), _unlink, self._validators_path(resource)))

    def _evict(self) -> list[defer.Deferred[None]]:
        removals: list[defer.Deferred[None]] = []
        while self._bytes > self.max_bytes and self._index:
            victim = next(iter(self._index))
            d = self._discard(victim, unlink=True)
            if d is not None:
                removals.append(d)
            self._evictions += 1
        return removals

    # -- SliceCache

    def get(self, key: SliceKey) -> defer.Deferred[bytes | None]:
        entry = self._index.get(key.digest)
        if entry is None:
            self._misses += 1
            return defer.succeed(None)
        digest = key.digest
        self._index.move_to_end(digest)
        if entry.pending is not None:
            self._hits += 1
            return defer.succeed(entry.pending)
        d = self._serial(
            digest, _read_slice, self._slice_path(digest), entry.resource, entry.size, self._stamp()
        )

        def read(data: bytes | None) -> bytes | None:
            if data is None:
                self._misses += 1
                if self._index.get(digest) is entry:
                    log.warn("dropping a missing or corrupt cache slice {digest}", digest=digest)
                    self._discard(digest, unlink=True)
                return None
            self._hits += 1
            return data

        def failed(failure: Failure) -> None:
            log.failure("reading cache slice {digest} failed", failure, digest=digest)
            self._misses += 1
            if self._index.get(digest) is entry:
                self._discard(digest, unlink=True)
            return None

        return d.addCallbacks(read, failed)

    def open_slice(self, key: SliceKey) -> defer.Deferred[SliceFile | bytes | None]:
        """Like :meth:`get`, for ``sendfile``: the slice's file, opened and checked in the read pool
        (its header always; its CRC the first time this process serves it), or the bytes while the
        file is being written, or None (a miss). The caller closes the file."""
        entry = self._index.get(key.digest)
        if entry is None:
            self._misses += 1
            return defer.succeed(None)
        digest = key.digest
        self._index.move_to_end(digest)
        if entry.pending is not None:
            self._hits += 1
            return defer.succeed(entry.pending)
        kept = self._open.get(digest)
        if kept is not None:  # checked before and still open: no trip to the read pool
            self._open.move_to_end(digest)
            self._hits += 1
            return defer.succeed(SliceFile(os.dup(kept), _HEADER.size, entry.size))
        d = self._serial(digest, _open_slice, self._slice_path(digest), entry.resource, entry.size, self._stamp(),
                         not entry.verified)

        def opened(found: SliceFile | None) -> SliceFile | None:
            if found is None:
                self._misses += 1
                if self._index.get(digest) is entry:
                    log.warn("dropping a missing or corrupt cache slice {digest}", digest=digest)
                    self._discard(digest, unlink=True)
                return None
            self._hits += 1
            entry.verified = True
            if self._index.get(digest) is entry and entry.pending is None:
                self._keep_open(digest, found.fd)
            return found

        def failed(failure: Failure) -> None:
            log.failure("opening cache slice {digest} failed", failure, digest=digest)
            self._misses += 1
            if self._index.get(digest) is entry:
                self._discard(digest, unlink=True)
            return None

        return d.addCallbacks(opened, failed)

    def contains(self, key: SliceKey) -> bool:
        return key.digest in self._index

    def put(self, key: SliceKey, data: bytes) -> defer.Deferred[None]:
        _check_hex(key.digest, "slice key")
        _check_hex(key.resource, "resource key")
        data = bytes(data)
        digest = key.digest
        if len(data) > self.max_bytes:
            # Not cached; an older file of this key may still be on disk.
            self._discard(digest, unlink=False)
            if key.resource not in self._by_resource and key.resource in self._validators:
                self._drop_validators(key.resource)
            return self._background(self._serial(digest, _unlink, self._slice_path(digest)))
        # Register the new slice with its resource first, so replacing a slice keeps the validators.
        self._by_resource.setdefault(key.resource, set()).add(digest)
        self._close_open(digest)  # a file kept open holds the bytes being replaced
        old = self._index.pop(digest, None)
        if old is not None:
            self._bytes -= old.size
            if old.resource != key.resource:
                self._detach(old.resource, digest)
        entry = _Entry(key.resource, key.index, len(data), data)
        self._index[digest] = entry
        self._bytes += len(data)
        self._evict()
        stamp = self._stamp()
        header = _HEADER.pack(_MAGIC, key.resource.encode("ascii"), key.index, len(data), zlib.crc32(data))
        d = self._serial(digest, _write_atomic, self._slice_path(digest), (header, data), stamp, self._sync)

        def written(_: object) -> None:
            entry.pending = None
            entry.verified = True

        def failed(failure: Failure) -> None:
            log.failure("writing cache slice {digest} failed", failure, digest=digest)
            entry.pending = None
            if self._index.get(digest) is entry:
                self._discard(digest, unlink=True)

        return d.addCallbacks(written, failed)

    def get_validators(self, resource_key: str) -> defer.Deferred[Validators | None]:
        return defer.succeed(self._validators.get(resource_key))

    def set_validators(self, resource_key: str, validators: Validators) -> defer.Deferred[None]:
        _check_hex(resource_key, "resource key")
        self._validators[resource_key] = validators
        body = json.dumps(validators.to_json(), sort_keys=True).encode("utf-8")
        d = self._serial(
            ("v", resource_key), _write_atomic, self._validators_path(resource_key), (body,), None, self._sync
        )
        return self._background(d)

    def purge_resource(self, resource_key: str) -> defer.Deferred[None]:
        removals = [
            d
            for digest in list(self._by_resource.get(resource_key, ()))
            if (d := self._discard(digest, unlink=True)) is not None
        ]
        if resource_key in self._validators:
            removals.append(self._drop_validators(resource_key))
        return defer.gatherResults(removals).addCallback(lambda _: None)

    def purge_all(self) -> defer.Deferred[None]:
        removals = [
            d for digest in list(self._index) if (d := self._discard(digest, unlink=True)) is not None
        ]
        removals.extend(self._drop_validators(r) for r in list(self._validators))
        return defer.gatherResults(removals).addCallback(lambda _: None)

    def stats(self) -> dict[str, int]:
        return {
            "entries": len(self._index),
            "bytes": self._bytes,
            "hits": self._hits,
            "misses": self._misses,
            "evictions": self._evictions,
        }
