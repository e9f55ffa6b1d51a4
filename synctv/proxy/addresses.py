"""Where the media proxy may connect: address checks, and an endpoint that connects only to checked
addresses (docs/proxy.md, "Safety").

:class:`CheckedEndpoint` resolves the host itself (``getaddrinfo`` in a thread, no lookup for an IP
literal), drops every address that :func:`synctv.proxy.special.refusal` names a reason for (loopback,
private, NAT64 or 6to4 forms of them, and every other special-purpose range, unless inside
``allow_networks``), and connects to one of the checked addresses (TLS still verifies and sends SNI
for the host name). There is no second lookup between the check and the connect, so a DNS answer
that changes in between (DNS rebinding) cannot steer the connection elsewhere. Host names the C
library reads as numbers (``2130706433``, ``0x7f.1``, ``017700000001``) reach ``getaddrinfo`` like
any name and are judged by the address it returns.

The media proxy's ``UpstreamClient`` and the live pull (it opens through an ``UpstreamClient``)
both connect only through this endpoint.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote

from twisted.internet import defer, error, threads
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint, wrapClientTLS
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.web.client import BrowserLikePolicyForHTTPS
from twisted.web.iweb import IAgentEndpointFactory
from zope.interface import implementer

from synctv.core.errors import BadGateway, Forbidden, GatewayTimeout
from synctv.proxy.special import Address, Network, refusal

__all__ = ["Address", "AddressGuard", "AddressRefused", "CheckedEndpoint", "Network", "UpstreamError",
           "UpstreamTimeout", "refusal", "thread_resolver"]
Resolver = Callable[[str, int], defer.Deferred[list[str]]]

CONNECT_TIMEOUT_S = 10.0
READ_BYTES = 256 * 1024  # socket read size on upstream connections (Twisted's default is 64 KiB)


class AddressRefused(Forbidden):
    """The upstream host resolves only to addresses the proxy may not reach."""


class UpstreamError(BadGateway):
    """The upstream could not be reached or answered something unusable."""


class UpstreamTimeout(GatewayTimeout):
    """The upstream did not connect, answer or send body bytes in time."""


# -- addresses --------------------------------------------------------------------------------

def _getaddrinfo(host: str, port: int) -> list[str]:
    seen: list[str] = []
    for *_, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        text = str(sockaddr[0])
        if text not in seen:
            seen.append(text)
    return seen


def thread_resolver(reactor: Any) -> Resolver:
    """Resolve with ``getaddrinfo`` in the reactor's thread pool."""

    def resolve(host: str, port: int) -> defer.Deferred[list[str]]:
        return threads.deferToThreadPool(reactor, reactor.getThreadPool(), _getaddrinfo, host, port)

    return resolve


class AddressGuard:
    """Resolves a host and keeps only the addresses the proxy may connect to."""

    def __init__(self, allow_networks: Iterable[Network] = (), resolver: Resolver | None = None) -> None:
        self.allow_networks = tuple(allow_networks)
        self._resolver = resolver

    async def addresses(self, reactor: Any, host: str, port: int) -> list[Address]:
        """The allowed addresses of ``host``, in resolver order; ``AddressRefused`` if none is."""
        try:
            candidates: list[Address] = [ipaddress.ip_address(host)]
        except ValueError:
            resolve = self._resolver or thread_resolver(reactor)
            try:
                names = await resolve(host, port)
            except (OSError, UnicodeError) as e:
                raise UpstreamError(f"cannot resolve the upstream host {host[:80]!r}: {e}") from None
            candidates = [ipaddress.ip_address(n.split("%", 1)[0]) for n in names]
        reasons = [refusal(a, self.allow_networks) for a in candidates]
        allowed = [a for a, reason in zip(candidates, reasons, strict=True) if reason is None]
        if not allowed:
            if not candidates:
                raise UpstreamError(f"the upstream host {host[:80]!r} has no address")
            first, reason = candidates[0], reasons[0]
            raise AddressRefused(
                f"the upstream {host[:80]} resolves to {first}, an address the proxy does not connect to: "
                f"{reason}; an operator can admit its network with [proxy] allow_networks",
                detail={"address": str(first), "reason": reason},
            )
        return allowed


@implementer(IStreamClientEndpoint)
class CheckedEndpoint:
    """Connect to ``host:port`` through an address the guard admitted (see the module docstring)."""

    def __init__(
        self, reactor: Any, guard: AddressGuard, host: str, port: int, *, tls: Any = None,
        timeout_s: float = CONNECT_TIMEOUT_S,
    ) -> None:
        self._reactor = reactor
        self._guard = guard
        self._host = host
        self._port = port
        self._tls = tls
        self._timeout_s = timeout_s

    def connect(self, factory: Any) -> defer.Deferred[Any]:
        return defer.Deferred.fromCoroutine(self._connect(factory))

    async def _connect(self, factory: Any) -> Any:
        last: BaseException | None = None
        for address in await self._guard.addresses(self._reactor, self._host, self._port):
            kind = TCP6ClientEndpoint if address.version == 6 else TCP4ClientEndpoint
            endpoint: Any = kind(self._reactor, str(address), self._port, timeout=self._timeout_s)
            if self._tls is not None:
                endpoint = wrapClientTLS(self._tls.creatorForNetloc(self._host.encode("idna"), self._port),
                                         endpoint)
            try:
                protocol = await endpoint.connect(factory)
            except error.TimeoutError as e:
                last = UpstreamTimeout(f"connecting to the upstream {self._host[:80]} timed out")
                last.__cause__ = e
            except error.ConnectError as e:
                last = UpstreamError(f"cannot connect to the upstream {self._host[:80]}: {e.__class__.__name__}")
            else:
                transport = getattr(protocol, "transport", None)
                if self._tls is None and transport is not None and hasattr(transport, "bufferSize"):
                    transport.bufferSize = READ_BYTES  # fewer, larger reads of media bodies
                    transport.setTcpNoDelay(True)  # the request goes out at once
                return protocol
        assert last is not None
        raise last


@implementer(IAgentEndpointFactory)
class _CheckedEndpoints:
    def __init__(self, reactor: Any, guard: AddressGuard, connect_timeout_s: float) -> None:
        self._reactor = reactor
        self._guard = guard
        self._timeout_s = connect_timeout_s
        self._tls = BrowserLikePolicyForHTTPS()

    def endpointForURI(self, uri: Any) -> IStreamClientEndpoint:
        scheme = uri.scheme.decode("ascii").lower()
        if scheme not in ("http", "https"):
            raise UpstreamError(f"the proxy fetches http and https URLs only, not {scheme}")
        host = uri.host.decode("ascii", "replace") if isinstance(uri.host, bytes) else uri.host
        if ":" in host:  # an IPv6 literal; its zone id (if any) is percent-encoded in a URI
            host = unquote(host)
        else:
            host = host.encode("ascii", "replace").decode("idna")
        return CheckedEndpoint(self._reactor, self._guard, host, uri.port,
                               tls=self._tls if scheme == "https" else None, timeout_s=self._timeout_s)


