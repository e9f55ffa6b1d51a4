"""Which addresses the media proxy and the live pull may connect to: the special-purpose ranges.

:func:`refusal` names why an address is refused, or answers ``None`` for an ordinary globally
routable unicast address. It is pure (no I/O) and is the one rule behind every upstream
connection (``synctv.proxy.addresses.AddressGuard`` applies it after DNS, at connect time).

The rule (docs/proxy.md, "Safety"):

- **IPv4**: every block of the IANA IPv4 Special-Purpose Address Registry is refused, whatever
  its "globally reachable" flag (a media upstream never lives on PCP/TURN anycast, AS112 or AMT
  relays), and so are multicast (224.0.0.0/4), reserved (240.0.0.0/4) and broadcast.
- **IPv6**: only global unicast space (2000::/3) is admitted, minus every block of the IANA IPv6
  Special-Purpose Address Registry inside it (2001::/23 with Teredo 2001::/32, documentation,
  AS112, ...). Teredo is refused outright: it is obsolete, and no media upstream is reached
  through it.
- **IPv6 forms that carry an IPv4 address** are judged by that IPv4 address: IPv4-mapped
  (``::ffff:a.b.c.d``), NAT64 with the well-known prefix (``64:ff9b::a.b.c.d``, RFC 6052), the
  local-use NAT64 prefix used as a /96 (``64:ff9b:1::a.b.c.d``, RFC 8215) and 6to4
  (``2002:AABB:CCDD::/48``, RFC 3056). The rest of ``64:ff9b:1::/48`` is refused: the layout of
  a local-use prefix longer or shorter than /96 is the operator's choice, so where the IPv4
  address sits cannot be known. The deprecated IPv4-compatible form (``::a.b.c.d``, RFC 4291)
  is refused whatever it carries (no stack routes it to IPv4 any more).
- **allow_networks** (``[proxy] allow_networks``) admits an address inside one of them, or an
  IPv6 form whose embedded IPv4 address is inside one of them.

The registries are read as of 2025 (IANA "iana-ipv4-special-registry" and
"iana-ipv6-special-registry"); tests/proxy/test_special_addresses.py checks the rule against its
own copy of them, and against Python's ``ipaddress`` flags.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_V4_BLOCKS = (  # most specific first: the first match names the reason
    ("0.0.0.0/32", "unspecified"),
    ("0.0.0.0/8", "this-network"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "shared address space (carrier-grade NAT)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "IETF protocol assignment"),
    ("192.0.2.0/24", "documentation"),
    ("192.31.196.0/24", "AS112"),
    ("192.52.193.0/24", "AMT"),
    ("192.88.99.0/24", "6to4 relay anycast"),
    ("192.168.0.0/16", "private"),
    ("192.175.48.0/24", "AS112"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("255.255.255.255/32", "broadcast"),
    ("240.0.0.0/4", "reserved"),
)
_V6_BLOCKS = (
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::/96", "IPv4-compatible (deprecated)"),
    ("64:ff9b:1::/48", "local-use NAT64 (not as a /96)"),
    ("100::/64", "discard-only"),
    ("100:0:0:1::/64", "dummy prefix"),
    ("2001::/32", "Teredo"),
    ("2001::/23", "IETF protocol assignment"),
    ("2001:db8::/32", "documentation"),
    ("2620:4f:8000::/48", "AS112"),
    ("3fff::/20", "documentation"),
    ("5f00::/16", "SRv6 SIDs"),
    ("fc00::/7", "private"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local (deprecated)"),
    ("ff00::/8", "multicast"),
)
SPECIAL_V4: tuple[tuple[ipaddress.IPv4Network, str], ...] = tuple(
    (ipaddress.IPv4Network(n), reason) for n, reason in _V4_BLOCKS)
SPECIAL_V6: tuple[tuple[ipaddress.IPv6Network, str], ...] = tuple(
    (ipaddress.IPv6Network(n), reason) for n, reason in _V6_BLOCKS)
GLOBAL_UNICAST_V6 = ipaddress.IPv6Network("2000::/3")

#: IPv6 ranges that carry an IPv4 address in their low 32 bits, and what they are called.
_LOW_32_FORMS = (
    (ipaddress.IPv6Network("::ffff:0:0/96"), "IPv4-mapped"),
    (ipaddress.IPv6Network("64:ff9b::/96"), "NAT64"),
    (ipaddress.IPv6Network("64:ff9b:1::/96"), "local-use NAT64"),
)
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")


def embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, str] | None:
    """The IPv4 address an IPv6 address carries, and the form's name (module docstring)."""
    for network, form in _LOW_32_FORMS:
        if address in network:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), form
    if address in _SIX_TO_FOUR:
        return ipaddress.IPv4Address((int(address) >> 80) & 0xFFFFFFFF), "6to4"
    return None


def _inside(address: Address, networks: Iterable[Network]) -> bool:
    return any(address.version == net.version and address in net for net in networks)


def _v4_reason(address: ipaddress.IPv4Address) -> str | None:
    for network, reason in SPECIAL_V4:
        if address in network:
            return reason
    return None


def _v6_reason(address: ipaddress.IPv6Address) -> str | None:
    for network, reason in SPECIAL_V6:
        if address in network:
            return reason
    if address not in GLOBAL_UNICAST_V6:
        return "not globally routable"
    return None


def refusal(address: Address, allow: Iterable[Network] = ()) -> str | None:
    """Why no upstream connection may go to ``address`` (``None``: it may); see the module docstring."""
    allow = tuple(allow)
    if isinstance(address, ipaddress.IPv4Address):
        return None if _inside(address, allow) else _v4_reason(address)
    inner = embedded_ipv4(address)
    if _inside(address, allow) or (inner is not None and _inside(inner[0], allow)):
        return None
    if inner is None:
        return _v6_reason(address)
    v4, form = inner
    reason = _v4_reason(v4)
    return None if reason is None else f"{reason} ({form} form of {v4})"
