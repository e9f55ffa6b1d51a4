"""Where the media proxy may connect: address checks, and an endpoint that connects only to checked
addresses (docs/proxy.md, "Safety").

:class:`CheckedEndpoint` resolves the host itself (``getaddrinfo`` in a thread, no lookup for an IP
literal), drops every address :func:`refusal` names a reason for unless it lies in
``allow_networks``, and connects to one of the checked addresses (TLS still verifies and sends SNI
for the host name). There is no second lookup between the check and the connect, so a DNS answer
that changes in between (DNS rebinding) cannot steer the connection elsewhere.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from typing import Any

from twisted.internet import defer, error, threads
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint, wrapClientTLS
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.web.client import BrowserLikePolicyForHTTPS
from twisted.web.iweb import IAgentEndpointFactory
from zope.interface import implementer

from synctv.core.errors import BadGateway, Forbidden, GatewayTimeout

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
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

def refusal(address: Address, allow: Iterable[Network] = ()) -> str | None:
    """Why the proxy must not connect to ``address`` (``None`` when it may).

    Addresses inside ``allow`` are admitted whatever they are; otherwise loopback, private,
    link-local, multicast, unspecified and other not globally routable addresses are refused.
    An IPv4-mapped IPv6 address is judged as the IPv4 address it maps.
    """
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address.version == net.version and address in net for net in allow):
        return None
    for reason, flag in (("loopback", address.is_loopback), ("unspecified", address.is_unspecified),
                         ("link-local", address.is_link_local), ("multicast", address.is_multicast),
                         ("private", address.is_private)):
        if flag:
            return reason
    if not address.is_global:
        return "not globally routable"
    return None


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
        allowed = [a for a in candidates if refusal(a, self.allow_networks) is None]
        if not allowed:
            if not candidates:
                raise UpstreamError(f"the upstream host {host[:80]!r} has no address")
            first = candidates[0]
            raise AddressRefused(
                f"the upstream {host[:80]} resolves to a {refusal(first, self.allow_networks)} address "
                f"({first}); an operator can admit its network with [proxy] allow_networks",
                detail={"address": str(first), "reason": refusal(first, self.allow_networks)},
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
        host = uri.host.decode("idna") if isinstance(uri.host, bytes) else uri.host
        return CheckedEndpoint(self._reactor, self._guard, host, uri.port,
                               tls=self._tls if scheme == "https" else None, timeout_s=self._timeout_s)


