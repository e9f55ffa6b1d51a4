"""Upstream fetches of the media proxy: a redirect-following Agent that checks where it connects.

:class:`UpstreamClient` opens one upstream request and hands back an :class:`UpstreamResponse`
whose body is streamed (never buffered whole) to a callback, with pause/resume for back-pressure
and cancellation that closes the upstream connection.

Safety (docs/proxy.md):

- **Addresses** (``synctv.proxy.addresses``). Every new upstream connection goes through
  ``CheckedEndpoint``: it resolves the host itself (``getaddrinfo`` in a thread, or no lookup for an IP literal), drops
  every address that is loopback, private, link-local, multicast, unspecified or otherwise not
  globally routable unless it lies in ``[proxy] allow_networks``, and then connects to one of the
  *checked addresses* (TLS still verifies and sends SNI for the host name). There is no second
  lookup between the check and the connect, so a DNS answer that changes in between (DNS
  rebinding) cannot steer the connection elsewhere. Redirects are followed by the same agent, so
  each hop is checked too; pooled connections were checked when they were made.
- **Caps.** A ``DeferredSemaphore`` bounds concurrent upstream requests (held from the request
  until its body ends or is dropped); the status line plus headers of an answer may not exceed
  ``max_header_bytes`` (checked line by line while parsing, so an endless header section is cut
  off early); connect, answer (headers) and idle-body timeouts.
- **No shared client state.** Cookies an upstream sets are never kept (no cookie agent: one
  user's session must not leak into another's request); ``Accept-Encoding: identity`` is always
  sent and nothing is decompressed, so byte positions are the upstream representation's own.
- **URLs.** :func:`request_uri` turns the item's URL into the request target: hyperlink's
  IRI-to-URI conversion (percent-encoding, IDNA host names), except for IPv6 literal hosts,
  which hyperlink would IDNA-encode and fail on (python-hyper/hyperlink#68); a URL that cannot
  be encoded is a 502, never a traceback.

Errors: :class:`AddressRefused` (403 ``forbidden``), :class:`UpstreamError` (502
``bad_gateway``), :class:`UpstreamTimeout` (504 ``gateway_timeout``); cancelling passes through
as ``CancelledError``.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from hyperlink import EncodedURL
from twisted.internet import defer, error
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.client import (
    Agent,
    FileBodyProducer,
    HTTPConnectionPool,
    PotentialDataLoss,
    RedirectAgent,
    ResponseDone,
)
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgent
from zope.interface import implementer

from synctv.compat.twisted import cap_response_headers
from synctv.proxy.addresses import (
    CONNECT_TIMEOUT_S,
    AddressGuard,
    AddressRefused,
    Network,
    Resolver,
    UpstreamError,
    UpstreamTimeout,
    _CheckedEndpoints,
)

log = Logger()


MAX_CONNECTIONS = 64
MAX_HEADER_BYTES = 64 * 1024
ANSWER_TIMEOUT_S = 30.0
IDLE_TIMEOUT_S = 30.0
USER_AGENT = "synctv-proxy"
#: Request headers a provider may not set: connection control, and what the proxy sets itself.
_NOT_FORWARDED = frozenset({
    "host", "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
    "upgrade", "content-length", "range", "if-range", "accept-encoding", "expect",
})


class HeadersTooLarge(Exception):
    """The upstream's header section is over the cap (raised inside the HTTP parser)."""


# -- the HTTP client --------------------------------------------------------------------------

@implementer(IAgent)
class _IdentityAgent:
    """Sends ``Accept-Encoding: identity`` whatever a wrapper added."""

    def __init__(self, agent: IAgent) -> None:
        self._agent = agent

    def request(self, method: bytes, uri: bytes, headers: Headers | None = None, bodyProducer: Any = None) -> Any:
        headers = Headers() if headers is None else headers.copy()
        headers.setRawHeaders(b"accept-encoding", [b"identity"])
        return self._agent.request(method, uri, headers, bodyProducer)


def upstream_headers(provider_headers: Mapping[str, str], extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The request headers of an upstream fetch: the provider's (minus the ones the proxy controls),
    a default ``User-Agent``, then ``extra`` (``Range``, ``If-Range``)."""
    out = {k: v for k, v in provider_headers.items() if k.strip().lower() not in _NOT_FORWARDED}
    if not any(k.strip().lower() == "user-agent" for k in out):
        out["User-Agent"] = USER_AGENT
    out.update(extra or {})
    return out


_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"


@functools.lru_cache(maxsize=1024)
def request_uri(url: str) -> bytes:
    """The absolute URI to request for ``url`` (see the module docstring, "URLs"). Remembered for
    the last 1,024 URLs: a slice fetch asks again for the same URL, and hyperlink's IDNA pass is
    a fifth of the cost of starting an upstream request."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if ":" in host:  # an IPv6 literal: keep the authority as written, encode path and query
            path, query = quote(parts.path or "/", safe=_PATH_SAFE), quote(parts.query, safe=_QUERY_SAFE)
            return urlunsplit((parts.scheme, parts.netloc, path, query, "")).encode("ascii")
        return EncodedURL.from_text(url).to_uri().to_text().encode("ascii")
    except (ValueError, UnicodeError) as e:  # hyperlink's URLParseError and idna's errors included
        raise UpstreamError(f"the upstream URL cannot be requested: {str(e)[:120]}") from None


def _explain(failure: Failure, url: str) -> Failure:
    """Turn a failed request into a domain error (cancellation passes through)."""
    host = urlsplit(url).hostname or "?"
    value = failure.value
    if isinstance(value, (defer.CancelledError, AddressRefused, UpstreamError, UpstreamTimeout)):
        return failure
    if isinstance(value, (defer.TimeoutError, error.TimeoutError)):
        return Failure(UpstreamTimeout(f"the upstream {host} did not answer in time"))
    reasons = getattr(value, "reasons", None) or []
    for reason in reasons:
        if isinstance(reason, Failure) and reason.check(HeadersTooLarge):
            return Failure(UpstreamError(f"the upstream {host} sent response headers over the limit"))
        if isinstance(reason, Failure) and reason.check(AddressRefused, UpstreamError, UpstreamTimeout):
            return reason
    return Failure(UpstreamError(f"the upstream {host} failed: {value.__class__.__name__}"))


class UpstreamResponse:
    """An upstream answer whose body has not been read yet. Read it once with :meth:`stream`
    (or :meth:`read`), or drop it with :meth:`discard`; either way the slot is freed."""

    def __init__(self, response: Any, release: Callable[[], None], reactor: IReactorTime, idle_s: float) -> None:
        self.code: int = response.code
        self.headers: Headers = response.headers
        length = getattr(response, "length", None)
        self.length: int | None = length if isinstance(length, int) else None  # Content-Length, if sent
        self._response = response
        self._release = release
        self._released = False
        self._reactor = reactor
        self._idle_s = idle_s
        self._receiver: _BodyReceiver | None = None
        request = getattr(response, "request", None)
        uri = getattr(request, "absoluteURI", None)
        self.url: str | None = uri.decode("ascii", "replace") if isinstance(uri, bytes) else None

    def header(self, name: str) -> str | None:
        values = self.headers.getRawHeaders(name.encode("ascii"))
        return values[-1].decode("latin-1") if values else None

    def _free(self) -> None:
        if not self._released:
            self._released = True
            self._release()

    def stream(self, on_data: Callable[[bytes], None]) -> defer.Deferred[None]:
        """Deliver the body to ``on_data`` chunk by chunk; fires at the end. Cancelling it drops the
        connection. Fails with ``UpstreamError`` (reset, truncated, ``on_data`` raised) or
        ``UpstreamTimeout`` (no byte for the idle timeout while not paused)."""
        if self._receiver is not None:
            raise RuntimeError("the body is already being read")
        done: defer.Deferred[None] = defer.Deferred(lambda _: receiver.stop())
        receiver = _BodyReceiver(on_data, done, self._reactor, self._idle_s)
        self._receiver = receiver
        done.addBoth(lambda r: (self._free(), r)[1])
        self._response.deliverBody(receiver)
        return done

    def read(self, limit: int) -> defer.Deferred[bytes]:
        """The whole body, if it is at most ``limit`` bytes (``UpstreamError`` otherwise)."""
        parts: list[bytes] = []
        size = 0

        def collect(data: bytes) -> None:
            nonlocal size
            size += len(data)
            if size > limit:
                raise UpstreamError(f"the upstream body is over the limit of {limit} bytes")
            parts.append(data)

        return self.stream(collect).addCallback(lambda _: b"".join(parts))

    def pause(self) -> None:
        if self._receiver is not None:
            self._receiver.pause()

    def resume(self) -> None:
        if self._receiver is not None:
            self._receiver.resume()

    def discard(self) -> None:
        """Drop the body unread and close the connection."""
        if self._receiver is None:
            self.stream(lambda data: None).addErrback(lambda _: None).cancel()
        else:
            self._receiver.stop()
        self._free()


class _BodyReceiver(Protocol):
    """Passes body bytes on, with back-pressure and an idle timer; like ``treq.collect`` with pause."""

    def __init__(self, on_data: Callable[[bytes], None], done: defer.Deferred[None], reactor: IReactorTime,
                 idle_s: float) -> None:
        self._on_data = on_data
        self._done = done
        self._reactor = reactor
        self._idle_s = idle_s
        self._timer: Any = None
        self._paused = False
        self._stopped = False

    def connectionMade(self) -> None:
        self._arm()

    def _arm(self) -> None:
        self._disarm()
        if not self._paused and not self._stopped:
            self._timer = self._reactor.callLater(self._idle_s, self._idle)

    def _disarm(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _idle(self) -> None:
        self._timer = None
        self._finish(Failure(UpstreamTimeout(f"the upstream sent nothing for {self._idle_s:g} s")))
        self.stop()

    def dataReceived(self, data: bytes) -> None:
        if self._stopped:
            return
        self._arm()
        try:
            self._on_data(data)
        except Exception:
            failure = Failure()
            if not failure.check(UpstreamError):
                failure = Failure(UpstreamError(f"the body could not be passed on: {failure.value!r}"))
            self._finish(failure)
            self.stop()

    def connectionLost(self, reason: Failure = ResponseDone) -> None:
        self._disarm()
        if reason.check(ResponseDone, PotentialDataLoss):
            self._finish(None)
        else:
            why = reason.value
            inner = getattr(why, "reasons", None) or [reason]
            self._finish(Failure(UpstreamError(f"the upstream body failed: {inner[0].value.__class__.__name__}")))

    def _finish(self, outcome: Failure | None) -> None:
        self._disarm()
        if self._done.called:
            return
        if outcome is None:
            self._done.callback(None)
        else:
            self._done.errback(outcome)

    def pause(self) -> None:
        if not self._paused and not self._stopped and self.transport is not None:
            self._paused = True
            self._disarm()
            self.transport.pauseProducing()

    def resume(self) -> None:
        if self._paused and not self._stopped and self.transport is not None:
            self._paused = False
            self.transport.resumeProducing()
            self._arm()

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._disarm()
        if self.transport is not None:
            self.transport.stopProducing()


class UpstreamClient:
    """Opens upstream requests (see the module docstring)."""

    def __init__(
        self, reactor: Any, *, allow_networks: Iterable[Network] = (), resolver: Resolver | None = None,
        max_connections: int = MAX_CONNECTIONS, max_header_bytes: int = MAX_HEADER_BYTES,
        connect_timeout_s: float = CONNECT_TIMEOUT_S, answer_timeout_s: float = ANSWER_TIMEOUT_S,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
    ) -> None:
        self.reactor = reactor
        self.guard = AddressGuard(allow_networks, resolver)
        self.max_connections = max_connections
        self.answer_timeout_s = answer_timeout_s
        self.idle_timeout_s = idle_timeout_s
        self._slots = defer.DeferredSemaphore(max_connections)
        self.pool = HTTPConnectionPool(reactor, persistent=True)
        self.pool.maxPersistentPerHost = min(max_connections, 16)
        self.pool.cachedConnectionTimeout = 60
        cap_response_headers(self.pool, max_header_bytes, HeadersTooLarge)
        agent = Agent.usingEndpointFactory(reactor, _CheckedEndpoints(reactor, self.guard, connect_timeout_s),
                                           pool=self.pool)
        self._agent = RedirectAgent(_IdentityAgent(agent))
        self.requests = 0

    @property
    def in_use(self) -> int:
        """Upstream requests holding a slot now."""
        return self.max_connections - self._slots.tokens

    def open(self, method: str, url: str, headers: Mapping[str, str],
             body: bytes | None = None) -> defer.Deferred[UpstreamResponse]:
        """Send one request (with ``body``, for the providers' API calls); fires with the answer
        once its headers arrived, whatever its status."""
        return defer.Deferred.fromCoroutine(self._open(method, url, headers, body))

    async def _open(self, method: str, url: str, headers: Mapping[str, str],
                    body: bytes | None = None) -> UpstreamResponse:
        await self._slots.acquire()
        try:
            self.requests += 1
            producer = None if body is None else FileBodyProducer(io.BytesIO(body))
            d = self._agent.request(method.encode("ascii"), request_uri(url),
                                    Headers({name: [value] for name, value in headers.items()}), producer)
            expired: list[bool] = []

            def expire() -> None:
                expired.append(True)
                d.cancel()

            timer = self.reactor.callLater(self.answer_timeout_s, expire)

            def settle(result: Any) -> Any:
                if timer.active():
                    timer.cancel()
                if expired and isinstance(result, Failure):
                    host = urlsplit(url).hostname or "?"
                    return Failure(UpstreamTimeout(f"the upstream {host} did not answer in time"))
                return result

            response = await d.addBoth(settle).addErrback(_explain, url)
        except BaseException:
            self._slots.release()
            raise
        return UpstreamResponse(response, self._slots.release, self.reactor, self.idle_timeout_s)

    def close(self) -> defer.Deferred[None]:
        """Close the pooled connections."""
        return self.pool.closeCachedConnections()
