"""Serving a byte range of an upstream resource from slices: the cache, shared fetches, the client.

For one request (:meth:`SliceService.serve`):

1. The resource's stored validators give its total length. If there are none (a cold resource),
   the first slice the request needs is fetched; its ``Content-Range`` gives the length and its
   ``ETag`` / ``Last-Modified`` the validators. Validators not confirmed by the upstream for
   ``revalidate_s`` are checked first with a one-byte request (stale-if-error: an upstream that
   fails then is logged and the cache is served).
2. ``Range`` is resolved against the length (``synctv.proxy.ranges``: 200, single-part 206 or
   416); ``If-Range`` is evaluated here against the validators (it never reaches the upstream in
   slice mode: slices are fetched unconditionally and compared).
3. The covering slices are sent in order, each cut to the range: from the cache (read one slice
   ahead) or from a :class:`~synctv.proxy.flights.SliceFlight` that streams it as it arrives
   (and the next missing slice is fetched meanwhile). ``X-Cache`` is ``HIT`` when every slice was
   cached when the answer started, else ``MISS``.
4. Every slice answer is checked: status 206, a ``Content-Range`` matching the slice asked for,
   validators matching the stored ones. A mismatch purges the resource and stores the new
   validators; a response that has not started its body is planned again, one that has is cut
   off (the client retries and gets consistent bytes).
5. An upstream that answers a slice request with 200 does not do ranges: that answer is relayed
   as it is (``BYPASS``) and the resource is remembered as such for ``no_range_s``.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import attrs
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest

from synctv.proxy.cache import Collapser, SliceCache, SliceFile, Validators, validators_match
from synctv.proxy.flights import Holds, SliceFlight, SliceHead
from synctv.proxy.media_types import answer_type
from synctv.proxy.ranges import (
    ByteRange,
    RangeNotSatisfiable,
    evaluate_range,
    if_range_allows,
    parse_content_range,
)
from synctv.proxy.relay import ResponsePump, abort, header, is_head, pass_through
from synctv.proxy.slices import (
    DEFAULT_SLICE_SIZE,
    SliceKey,
    SlicePiece,
    iter_slices,
    resource_key,
    slice_key,
    slice_keys,
)
from synctv.proxy.upstream import (
    UpstreamClient,
    UpstreamError,
    UpstreamResponse,
    UpstreamTimeout,
    upstream_headers,
)

log = Logger()

REVALIDATE_S = 60.0
READ_AHEAD = 4  # missing slices fetched ahead of the one being sent (memory: up to this many slices)
NO_RANGE_S = 300.0
_MEMO_LIMIT = 50_000


@attrs.frozen
class Upstream:
    """What to fetch: a URL and the request headers the provider says it needs."""

    url: str
    headers: Mapping[str, str] = attrs.field(factory=dict)
    playlist: bool = False
    hidden_params: frozenset[str] = frozenset()  # PlaybackInfo.hidden_params: removed from playlist URIs
    document: str | None = attrs.field(default=None, repr=False)  # a provider-made manifest (DASH MPD)
    as_webvtt: bool = False  # an SRT subtitle, served converted to WebVTT

    @property
    def resource(self) -> str:
        return resource_key(self.url, self.headers)


class NoRangeSupport(Exception):
    """The upstream answered a range request with 200; whoever claims the answer relays it."""

    def __init__(self, response: UpstreamResponse | None) -> None:
        super().__init__("the upstream does not honour Range")
        self._response = response

    def claim(self) -> UpstreamResponse | None:
        response, self._response = self._response, None
        return response


class UpstreamRangeNotSatisfiable(Exception):
    """The upstream answered 416: the resource is shorter than the slice start (maybe empty)."""

    def __init__(self, total: int, validators: Validators) -> None:
        super().__init__(f"the upstream resource has {total} bytes")
        self.total = total
        self.validators = validators


class _Replan(Exception):
    """The upstream changed before this response sent anything: plan it again."""


@attrs.frozen
class _Plan:
    status: int
    first: int
    last: int
    total: int
    validators: Validators
    pieces: list[SlicePiece]
    keys: list[SliceKey]
    hit: bool


def _close_file(found: Any) -> None:
    if isinstance(found, SliceFile):
        found.close()


def _validators(response: UpstreamResponse, total: int) -> Validators:
    return Validators(etag=response.header("etag"), last_modified=response.header("last-modified"),
                      total_length=total)


def _clear_entity_headers(request: IRequest) -> None:
    for name in (b"content-length", b"content-range", b"content-type", b"accept-ranges", b"etag",
                 b"last-modified", b"x-cache"):
        request.responseHeaders.removeHeader(name)


class SliceService:
    """See the module docstring. ``clock`` is monotonic seconds."""

    def __init__(
        self, cache: SliceCache, client: UpstreamClient, *, slice_size: int = DEFAULT_SLICE_SIZE,
        revalidate_s: float | None = REVALIDATE_S, no_range_s: float = NO_RANGE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cache = cache
        self.client = client
        self.slice_size = slice_size
        self.revalidate_s = revalidate_s
        self.no_range_s = no_range_s
        self.clock = clock
        self.flights: dict[str, SliceFlight] = {}
        self.counters: Counter[str] = Counter()
        self._verified: dict[str, float] = {}
        self._no_range: dict[str, float] = {}
        self._content_types: dict[str, str] = {}
        self._revalidations: Collapser[str, Validators | None] = Collapser()

    # -- bookkeeping ------------------------------------------------------------------------------

    def _memo(self, table: dict[str, Any], key: str, value: Any) -> None:
        if len(table) >= _MEMO_LIMIT:
            table.clear()
        table[key] = value

    def _stale(self, resource: str) -> bool:
        if self.revalidate_s is None:
            return False
        seen = self._verified.get(resource)
        return seen is None or self.clock() - seen >= self.revalidate_s

    def knows_no_range(self, resource: str) -> bool:
        until = self._no_range.get(resource)
        if until is None:
            return False
        if self.clock() >= until:
            del self._no_range[resource]
            return False
        return True

    def forget(self) -> None:
        """Drop what is remembered about upstreams (after a purge)."""
        self._verified.clear()
        self._no_range.clear()
        self._content_types.clear()

    # -- one request ------------------------------------------------------------------------------

    async def serve(self, request: IRequest, upstream: Upstream) -> None:
        """Answer ``request`` (GET or HEAD) with the resource, or a range of it."""
        resource = upstream.resource
        pump = ResponsePump(request)
        holds = Holds()
        keep = False
        try:
            if self.knows_no_range(resource):
                self.counters["bypass"] += 1
                await pass_through(request, self.client, upstream.url, dict(upstream.headers), pump)
            else:
                try:
                    await self._serve_slices(request, upstream, resource, holds, pump)
                except NoRangeSupport as e:
                    if request.startedWriting:
                        raise UpstreamError("the upstream stopped honouring Range mid-answer") from None
                    self.counters["bypass"] += 1
                    _clear_entity_headers(request)
                    await pass_through(request, self.client, upstream.url, dict(upstream.headers), pump,
                                       e.claim())
            keep = True
        except defer.CancelledError:
            raise
        except Exception as e:
            if not request.startedWriting:
                _clear_entity_headers(request)  # the error answer has its own body
                raise
            log.warn("a proxied body failed after it started ({error}); dropping the client connection",
                     error=getattr(e, "message", None) or repr(e))
            abort(request)
        finally:
            holds.release(keep=keep)
            pump.close()

    async def _serve_slices(
        self, request: IRequest, upstream: Upstream, resource: str, holds: Holds, pump: ResponsePump
    ) -> None:
        for _ in range(3):
            plan = await self._plan(request, upstream, resource, holds)
            if plan is None:
                return
            try:
                await self._send(request, upstream, resource, holds, pump, plan)
                return
            except _Replan:
                continue
        raise UpstreamError("the upstream resource kept changing while it was being read")

    async def _plan(self, request: IRequest, upstream: Upstream, resource: str, holds: Holds) -> _Plan | None:
        validators = await self.cache.get_validators(resource)
        if validators is not None and self._stale(resource):
            validators = await self._revalidations.run(
                resource, lambda: defer.Deferred.fromCoroutine(self._revalidate(upstream, resource)))
        if validators is not None and validators.total_length is None:
            validators = None
        range_value, if_range = header(request, b"range"), header(request, b"if-range")
        probed = validators is None
        if validators is None:
            wanted = evaluate_range(range_value, None)
            index = wanted.first // self.slice_size if isinstance(wanted, ByteRange) else 0
            try:
                head = await self._flight(upstream, resource, index, holds).head.wait()
                validators = head.validators
            except UpstreamRangeNotSatisfiable as e:
                validators = e.validators
        total = validators.total_length
        assert total is not None
        decision = evaluate_range(range_value, total)
        if (isinstance(decision, ByteRange) and if_range is not None
                and not if_range_allows(if_range, etag=validators.etag, last_modified=validators.last_modified)):
            decision = None
        if isinstance(decision, RangeNotSatisfiable):
            request.setResponseCode(416)
            request.setHeader(b"Content-Range", decision.content_range.encode("ascii"))
            request.setHeader(b"Content-Type", b"application/json; charset=utf-8")
            request.setHeader(b"Accept-Ranges", b"bytes")
            body = (b'{"error":{"code":"range_not_satisfiable","message":"the range is outside the '
                    b'resource\'s ' + str(total).encode("ascii") + b' bytes"}}')
            request.setHeader(b"Content-Length", str(len(body)).encode("ascii"))
            if not is_head(request):
                request.write(body)
            return None
        if decision is None:
            status, first, last = 200, 0, total - 1
        else:
            assert decision.last is not None
            status, first, last = 206, decision.first, decision.last
        pieces = list(iter_slices(first, last, self.slice_size, total)) if last >= first else []
        keys = slice_keys(upstream.url, upstream.headers, (p.index for p in pieces), self.slice_size)
        hit = not probed and all(self.cache.contains(k) for k in keys)
        return _Plan(status, first, last, total, validators, pieces, keys, hit)

    def _start_answer(self, request: IRequest, upstream: Upstream, resource: str, plan: _Plan) -> None:
        request.setResponseCode(plan.status)
        request.setHeader(b"Content-Length", str(plan.last - plan.first + 1).encode("ascii"))
        request.setHeader(b"Accept-Ranges", b"bytes")
        if plan.status == 206:
            request.setHeader(b"Content-Range", f"bytes {plan.first}-{plan.last}/{plan.total}".encode("ascii"))
        content_type = answer_type(self._content_types.get(resource), upstream.url)
        request.setHeader(b"Content-Type", content_type.encode("ascii"))
        for name, value in ((b"ETag", plan.validators.etag), (b"Last-Modified", plan.validators.last_modified)):
            if value is not None:
                request.setHeader(name, value.encode("latin-1"))
        request.setHeader(b"X-Cache", b"HIT" if plan.hit else b"MISS")

    async def _send(
        self, request: IRequest, upstream: Upstream, resource: str, holds: Holds, pump: ResponsePump, plan: _Plan
    ) -> None:
        self._start_answer(request, upstream, resource, plan)
        self.counters["hit" if plan.hit else "miss"] += 1
        if is_head(request) or not plan.pieces:
            return
        pump.start()
        sources: dict[int, Any] = {}
        open_slice = self.cache.open_slice if pump.direct else None

        def source(i: int) -> Any:
            key = plan.keys[i]
            if self.cache.contains(key):
                return open_slice(key) if open_slice is not None else self.cache.get(key)
            return self._flight(upstream, resource, plan.pieces[i].index, holds)

        try:
            for i, piece in enumerate(plan.pieces):
                src = sources.pop(i) if i in sources else source(i)
                # read one slice ahead from the cache; fetch up to READ_AHEAD missing slices meanwhile
                for j in range(i + 1, min(i + 1 + READ_AHEAD, len(plan.pieces))):
                    if j not in sources:
                        if j > i + 1 and self.cache.contains(plan.keys[j]):
                            break
                        sources[j] = source(j)
                if pump.paused:
                    await pump.writable()
                if isinstance(src, defer.Deferred):
                    data = await src  # at once when it has fired (a hot slice)
                    src = None
                    if isinstance(data, SliceFile):
                        try:
                            if data.length == piece.length:
                                offset, count = data.offset + piece.cut_start, piece.wanted_length
                                sent = pump.sendfile_now(data.fd, offset, count)
                                if sent < count:
                                    await pump.sendfile(data.fd, offset + sent, count - sent)
                                continue
                        finally:
                            data.close()
                    elif data is not None and len(data) == piece.length:
                        await pump.send(data if piece.wanted_length == len(data)
                                        else memoryview(data)[piece.cut_start:piece.cut_end])
                        continue
                    src = self._flight(upstream, resource, piece.index, holds)
                head: SliceHead = await src.head.wait()
                if head.total != plan.total or not validators_match(plan.validators, head.validators):
                    if not request.startedWriting:
                        raise _Replan()
                    raise UpstreamError("the upstream resource changed while it was being sent")
                await src.read(piece.cut_start, piece.cut_end, pump.write)
                holds.drop(src)
        finally:
            for pending in sources.values():  # slice files opened ahead and never sent
                if isinstance(pending, defer.Deferred):
                    pending.addCallback(_close_file)

    # -- upstream fetches -------------------------------------------------------------------------

    def _flight(self, upstream: Upstream, resource: str, index: int, holds: Holds) -> SliceFlight:
        key = slice_key(upstream.url, upstream.headers, index, self.slice_size)
        flight = self.flights.get(key.digest)
        if flight is None or flight.done:
            flight = SliceFlight(key, index * self.slice_size)
            self.flights[key.digest] = flight
            holds.add(flight)
            flight.task = defer.Deferred.fromCoroutine(self._fetch(flight, upstream, resource))
            return flight
        self.counters["collapsed"] += 1
        return holds.add(flight)

    async def _fetch(self, flight: SliceFlight, upstream: Upstream, resource: str) -> None:
        first = flight.first
        last = first + self.slice_size - 1
        try:
            self.counters["upstream_requests"] += 1
            response = await self.client.open(
                "GET", upstream.url, upstream_headers(upstream.headers, {"Range": f"bytes={first}-{last}"}))
            try:
                head, expected = await self._check_answer(response, resource, first, last)
            except NoRangeSupport as e:
                flight.failed(Failure(e))
                unclaimed = e.claim()
                if unclaimed is not None:
                    unclaimed.discard()
                return
            flight.started(head, expected)
            await response.stream(flight.data)
            data = flight.finished()
            self.counters["upstream_bytes"] += len(data)
            current = await self.cache.get_validators(resource)
            if current is not None and validators_match(current, head.validators):
                self.cache.put(flight.key, data)
        except BaseException:
            flight.failed(Failure())
        finally:
            if self.flights.get(flight.key.digest) is flight:
                del self.flights[flight.key.digest]

    async def _check_answer(
        self, response: UpstreamResponse, resource: str, first: int, last: int
    ) -> tuple[SliceHead, int]:
        """Validate an answer to ``Range: bytes=first-last`` and record what it says."""
        code = response.code
        if code == 200:
            self._memo(self._no_range, resource, self.clock() + self.no_range_s)
            if await self.cache.get_validators(resource) is not None:
                self.cache.purge_resource(resource)
            raise NoRangeSupport(response)
        content_range = parse_content_range(response.header("content-range"))
        if code == 416:
            response.discard()
            if content_range is None or content_range.satisfied or content_range.total is None:
                raise UpstreamError("the upstream answered 416 without the resource's length")
            await self._record(resource, _validators(response, content_range.total), response)
            raise UpstreamRangeNotSatisfiable(content_range.total, _validators(response, content_range.total))
        if code != 206:
            response.discard()
            raise UpstreamError(f"the upstream answered {code}", detail={"upstream_status": code})
        if (content_range is None or not content_range.satisfied or content_range.total is None
                or content_range.first != first or content_range.last != min(last, content_range.total - 1)):
            response.discard()
            raise UpstreamError(f"the upstream's Content-Range {response.header('content-range')!r} is not the "
                                f"range asked for (bytes={first}-{last})")
        validators = _validators(response, content_range.total)
        await self._record(resource, validators, response, keep=content_range.total > 0)
        length = content_range.length
        assert length is not None
        return SliceHead(content_range.total, validators, response.header("content-type")), length

    async def _record(self, resource: str, fresh: Validators, response: UpstreamResponse, keep: bool = False) -> None:
        """Compare fresh validators with the stored ones: purge on a mismatch, store when ``keep``."""
        stored = await self.cache.get_validators(resource)
        if stored is not None and not validators_match(stored, fresh):
            log.info("the upstream resource {resource} changed ({old} -> {new}); purging its slices",
                     resource=resource[:12], old=stored.to_json(), new=fresh.to_json())
            self.counters["purged_changed"] += 1
            self.cache.purge_resource(resource)
            stored = None
        if stored is None and keep:
            self.cache.set_validators(resource, fresh)
        self._memo(self._verified, resource, self.clock())
        content_type = response.header("content-type")
        if content_type:
            self._memo(self._content_types, resource, content_type)

    async def _revalidate(self, upstream: Upstream, resource: str) -> Validators | None:
        """Ask the upstream for one byte and compare; the validators to plan with (None: none)."""
        self.counters["revalidations"] += 1
        try:
            self.counters["upstream_requests"] += 1
            response = await self.client.open(
                "GET", upstream.url, upstream_headers(upstream.headers, {"Range": "bytes=0-0"}))
            await self._check_answer(response, resource, 0, 0)
            await response.read(1)
        except UpstreamRangeNotSatisfiable:
            return None
        except (UpstreamError, UpstreamTimeout) as e:
            log.warn("revalidating {resource} failed ({error}); serving the cached slices",
                     resource=resource[:12], error=e.message)
            self._memo(self._verified, resource, self.clock())
        return await self.cache.get_validators(resource)
