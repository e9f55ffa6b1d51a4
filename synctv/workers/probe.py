"""The duration probe: items of this node's active rooms that have no duration get one.

Each scheduler tick (``ProbeStep.run``) leases a few unprobed items of the active rooms through
the store (``claim_probes``: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the single-writer
transaction on SQLite; docs/workers.md) and probes each in the background, at most
``max_concurrent`` at a time, so a slow upstream never holds up a tick.

Reading an item (``MediaReader``): the source is the item's PlaybackResult as its provider gives
it (``Actions.probe_source``: direct items and provider items alike), fetched through the media
proxy's ``UpstreamClient`` -- the same address checks as the proxy (no loopback or private
upstream unless ``[proxy] allow_networks`` admits it), the item's headers, a ``Range`` of
``head_bytes``. The bytes are read by ``synctv.core.media_probe``: MP4 ``mvhd`` (following the
box sizes to a ``moov`` after ``mdat`` with one more ranged fetch), FLV ``onMetaData``, the EXTINF
sum of a VOD HLS playlist (a master playlist's first variant). A container those do not read is
handed to ffprobe when it is on the PATH (the fetched bytes, in a temporary file: ffprobe never
opens a URL itself, so it cannot reach what the address check refuses). Given only the head of a
longer file, ffprobe's answer is taken only for containers that state their duration in their
header (``HEADER_DURATION_FORMATS``: Matroska/WebM, AVI, ASF, WAV); for the others (MPEG-TS, MP3,
Ogg, ...) it would measure the head, a few seconds, and auto-advance would cut the item short, so
the probe fails with a reason instead.

Outcome (``Actions.record_probe``): the duration, or ``probe_error`` (why, shown on the item) and
a retry after ``backoff_s * 2**attempts`` (at most ``max_backoff_s``). A lease lost meanwhile
(the probe took longer than ``lease_s``) writes nothing.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from typing import Any

from twisted.internet.defer import CancelledError, Deferred, DeferredList, TimeoutError
from twisted.internet.utils import getProcessOutputAndValue
from twisted.logger import Logger

from synctv.core.media_probe import Found, ProbeError, flv_duration, hls_read, mp4_walk, sniff
from synctv.core.playlist import LIVE_PROVIDERS
from synctv.proxy.upstream import upstream_headers

HEAD_BYTES = 64 * 1024
MAX_PLAYLIST_BYTES = 2 << 20
MAX_HOPS = 6
FFPROBE_TIMEOUT_S = 20.0
# ffprobe format names whose duration is read from the header, so the head of the file suffices.
HEADER_DURATION_FORMATS = frozenset({"matroska", "webm", "avi", "asf", "wav"})


class MediaReader:
    """Reads durations over ``client`` (a ``synctv.proxy.upstream.UpstreamClient``)."""

    def __init__(self, client: Any, reactor: Any, *, head_bytes: int = HEAD_BYTES, ffprobe: str | None = "ffprobe"):
        self.client = client
        self.reactor = reactor
        self.head_bytes = head_bytes
        self.ffprobe = shutil.which(ffprobe) if ffprobe else None

    async def fetch(self, url: str, headers: dict[str, str], start: int = 0, length: int | None = None,
                    ranged: bool = True) -> bytes:
        """Up to ``length`` bytes from ``start`` (the whole body up to ``MAX_PLAYLIST_BYTES`` when
        not ``ranged``); ProbeError for an answer that is not the bytes asked for."""
        length = length or self.head_bytes
        extra = {"Range": f"bytes={start}-{start + length - 1}"} if ranged else {}
        response = await self.client.open("GET", url, upstream_headers(headers, extra))
        if response.code not in (200, 206):
            response.discard()
            raise ProbeError(f"the upstream answered HTTP {response.code}")
        if response.code == 200 and start > 0:
            response.discard()
            raise ProbeError("the upstream does not serve byte ranges, so the end of the file cannot be read")
        if not ranged:
            return await response.read(MAX_PLAYLIST_BYTES)
        parts: list[bytes] = []
        size = 0
        done: Deferred[None] | None = None

        def collect(data: bytes) -> None:
            nonlocal size
            parts.append(data)
            size += len(data)
            if size >= length and done is not None:
                done.cancel()  # enough: drop the rest (an upstream that ignored Range)

        done = response.stream(collect)
        try:
            await done
        except CancelledError:
            pass
        return b"".join(parts)[:length]

    async def duration(self, url: str, headers: dict[str, str]) -> float:
        head = await self.fetch(url, headers)
        kind = sniff(head)
        if kind == "flv":
            return flv_duration(head).duration
        if kind == "hls":
            for _ in range(MAX_HOPS):
                text = (await self.fetch(url, headers, ranged=False)).decode("utf-8", "replace")
                found = hls_read(text, url)
                if isinstance(found, Found):
                    return found.duration
                url = found.url  # a master playlist: its first variant
            raise ProbeError("too many nested HLS playlists")
        if kind == "mp4":
            data, base = head, 0
            for _ in range(MAX_HOPS):
                step = mp4_walk(data, base)
                if isinstance(step, Found):
                    return step.duration
                if step.offset <= base and base > 0:
                    raise ProbeError("the MP4 boxes do not lead to a moov box")
                base = step.offset
                data = await self.fetch(url, headers, start=base)
                if not data:
                    raise ProbeError("the MP4 file ends before its moov box")
            raise ProbeError("the MP4 moov box was not found within a few reads")
        if self.ffprobe is not None:
            return await self._ffprobe(head, whole=len(head) < self.head_bytes)
        raise ProbeError("an unknown container (not MP4, FLV or HLS) and ffprobe is not installed")

    async def _ffprobe(self, head: bytes, *, whole: bool) -> float:
        """ffprobe's duration of ``head`` (all of the file when ``whole``)."""
        fd, path = tempfile.mkstemp(prefix="synctv-probe-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(head)
            assert self.ffprobe is not None
            d = getProcessOutputAndValue(
                self.ffprobe, ["-v", "error", "-show_entries", "format=duration,format_name", "-of",
                               "default=noprint_wrappers=1", path], env={}, reactor=self.reactor)
            out, _err, code = await d.addTimeout(FFPROBE_TIMEOUT_S, self.reactor)
        finally:
            os.unlink(path)
        fields = dict(line.partition("=")[::2] for line in out.decode("utf-8", "replace").splitlines()) \
            if code == 0 else {}
        try:
            value = float(fields.get("duration", ""))
        except ValueError:
            value = None
        if value is None or not value > 0 or value == float("inf"):
            raise ProbeError("ffprobe found no duration in the first bytes of the file")
        names = fields.get("format_name", "")
        if not whole and not HEADER_DURATION_FORMATS.intersection(names.split(",")):
            raise ProbeError(f"a {names or 'file of this kind'} file does not state its duration in its first "
                             f"{self.head_bytes // 1024} KiB; ffprobe could only measure that part")
        return value


def describe(error: BaseException, timeout_s: float) -> str:
    """A failure as ``probe_error`` shows it."""
    if isinstance(error, (TimeoutError, CancelledError)):
        return f"no answer within {timeout_s:g}s"
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:300]


class ProbeStep:
    """The scheduler's probe step (see the module docstring)."""

    log = Logger()
    name = "probe"

    def __init__(
        self, *, actions: Any, reader: MediaReader, node: str, reactor: Any, lease_s: float = 120.0,
        timeout_s: float = 30.0, backoff_s: float = 30.0, max_backoff_s: float = 3600.0, max_concurrent: int = 4,
    ) -> None:
        self.actions = actions
        self.store = actions.store
        self.clock = actions.clock
        self.reader = reader
        self.node = node
        self.reactor = reactor
        self.lease_ms = int(lease_s * 1000)
        self.timeout_s = timeout_s
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.max_concurrent = max_concurrent
        self.in_flight: set[Deferred[None]] = set()
        self.stopping = False
        self.probed = 0
        self.failed = 0

    async def run(self, active: Sequence[str]) -> None:
        room_ids = sorted(active)
        free = self.max_concurrent - len(self.in_flight)
        if not room_ids or free <= 0:
            return
        claims = await self.store.claim_probes(room_ids, self.node, self.clock(), self.lease_ms, free,
                                               sorted(LIVE_PROVIDERS))
        for claim in claims:
            d = Deferred.fromCoroutine(self._probe(claim.item, claim.attempts))
            if not d.called:
                self.in_flight.add(d)
                d.addBoth(lambda _, d=d: self.in_flight.discard(d))

    async def _probe(self, item: Any, attempts: int) -> None:
        try:
            try:
                url, headers = await self.actions.probe_source(item)
                read = Deferred.fromCoroutine(self.reader.duration(url, headers))
                duration = await read.addTimeout(self.timeout_s, self.reactor)
            except Exception as e:
                if self.stopping:
                    return  # the server stops: the lease runs out and another node (or a restart) retries
                reason = describe(e, self.timeout_s)
                delay_s = min(self.max_backoff_s, self.backoff_s * (2 ** min(attempts, 30)))
                self.failed += 1
                self.log.info("probing {media_id} of room {room_id} failed ({reason}); retry in {delay_s}s",
                              media_id=item.id, room_id=item.room_id, reason=reason, delay_s=round(delay_s))
                await self.actions.record_probe(item, self.node, None, reason, self.clock() + int(delay_s * 1000))
                return
            self.probed += 1
            self.log.info("media {media_id} of room {room_id} lasts {duration}s", media_id=item.id,
                          room_id=item.room_id, duration=round(duration, 3))
            await self.actions.record_probe(item, self.node, duration)
        except Exception:
            self.log.failure("recording the probe of {media_id} failed", media_id=item.id)

    def stop(self) -> Deferred[Any]:
        """Cancel the probes in flight (their leases run out); fires once they have settled."""
        self.stopping = True
        pending = list(self.in_flight)
        for d in pending:
            d.cancel()
        return DeferredList(pending, consumeErrors=True)
