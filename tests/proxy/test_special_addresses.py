"""The upstream address rule (synctv.proxy.special) against the IANA special-purpose registries
and Python's ``ipaddress``, in both directions: every special address is refused unless inside
allow_networks, every ordinary global address is admitted, and the IPv6 forms that carry an IPv4
address (IPv4-mapped, NAT64, 6to4) are judged by that IPv4 address.

The registries below are this test's own copy (IANA "iana-ipv4-special-registry" and
"iana-ipv6-special-registry", 2025, plus the multicast blocks), written as the registries list
them -- every entry, nested ones included -- so they are an independent statement of the rule,
not the implementation's table.
"""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synctv.proxy.special import embedded_ipv4, refusal

IANA_V4 = (
    "0.0.0.0/8", "0.0.0.0/32", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/24", "192.0.0.0/29", "192.0.0.8/32", "192.0.0.9/32", "192.0.0.10/32",
    "192.0.0.170/32", "192.0.0.171/32", "192.0.2.0/24", "192.31.196.0/24", "192.52.193.0/24",
    "192.88.99.0/24", "192.88.99.2/32", "192.168.0.0/16", "192.175.48.0/24", "198.18.0.0/15",
    "198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4", "255.255.255.255/32",
    "224.0.0.0/4",  # multicast (its own registry)
)
IANA_V6 = (
    "::1/128", "::/128", "100::/64", "100:0:0:1::/64", "2001::/23", "2001::/32", "2001:1::1/128",
    "2001:1::2/128", "2001:1::3/128", "2001:2::/48", "2001:3::/32", "2001:4:112::/48", "2001:10::/28",
    "2001:20::/28", "2001:30::/28", "2001:db8::/32", "2620:4f:8000::/48", "3fff::/20", "5f00::/16",
    "fc00::/7", "fe80::/10",
    "ff00::/8",  # multicast
    "64:ff9b:1::/48",  # local-use NAT64: refused except as a /96 (below)
)
# IPv6 registry entries that carry an IPv4 address: judged by it (tested separately)
WRAPPERS = ("::ffff:0:0/96", "64:ff9b::/96", "64:ff9b:1::/96", "2002::/16")
DEPRECATED_COMPATIBLE = ipaddress.ip_network("::/96")  # ::a.b.c.d: refused whatever it carries
GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")

V4_BLOCKS = [ipaddress.ip_network(n) for n in IANA_V4]
V6_BLOCKS = [ipaddress.ip_network(n) for n in IANA_V6]
WRAPPER_BLOCKS = [ipaddress.ip_network(n) for n in WRAPPERS]
SETTINGS = settings(max_examples=60, deadline=None)


def special_v4(address: ipaddress.IPv4Address) -> bool:
    return any(address in block for block in V4_BLOCKS)


def wrapped(address: ipaddress.IPv6Address) -> bool:
    return any(address in block for block in WRAPPER_BLOCKS)


def special_v6(address: ipaddress.IPv6Address) -> bool:
    """Per the registry, for an address of no IPv4-carrying form."""
    return (any(address in block for block in V6_BLOCKS) or address in DEPRECATED_COMPATIBLE
            or address not in GLOBAL_UNICAST)


def python_says_not_global(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return (not address.is_global or address.is_private or address.is_loopback or address.is_link_local
            or address.is_multicast or address.is_unspecified or address.is_reserved
            or getattr(address, "is_site_local", False))


def forms_of(v4: ipaddress.IPv4Address, suffix: int) -> list[ipaddress.IPv6Address]:
    """``v4`` as IPv4-mapped, NAT64 (well-known and local-use /96) and 6to4 (any subnet and host)."""
    n = int(v4)
    return [
        ipaddress.IPv6Address((0xFFFF << 32) | n),
        ipaddress.IPv6Address((0x0064_FF9B << 96) | n),
        ipaddress.IPv6Address((0x0064_FF9B_0001 << 80) | n),
        ipaddress.IPv6Address((0x2002 << 112) | (n << 80) | (suffix & ((1 << 80) - 1))),
    ]


# -- IPv4 -------------------------------------------------------------------------------------

@pytest.mark.parametrize("block", V4_BLOCKS, ids=str)
@SETTINGS
@given(data=st.data())
def test_every_special_ipv4_address_is_refused_unless_allowed(block, data):
    """Any address of any IPv4 special-purpose block is refused; inside allow_networks it passes."""
    address = data.draw(st.ip_addresses(network=block))
    assert refusal(address) is not None
    assert refusal(address, [block]) is None
    assert refusal(address, [ipaddress.ip_network("2001:db8::/32")]) is not None  # other families do not allow


@SETTINGS
@given(address=st.ip_addresses(v=4))
def test_an_ipv4_address_is_refused_exactly_when_the_registry_names_it(address):
    """Both directions over the whole IPv4 space: refused iff special; admitted iff ordinary."""
    assert (refusal(address) is not None) == special_v4(address)


@settings(max_examples=300, deadline=None)
@given(address=st.ip_addresses(v=4))
def test_whatever_python_calls_non_global_ipv4_is_refused(address):
    """Python's ipaddress flags (private, loopback, reserved, not is_global, ...) never admit more."""
    if python_says_not_global(address):
        assert refusal(address) is not None


@SETTINGS
@given(address=st.ip_addresses(v=4).filter(lambda a: not special_v4(a)))
def test_ordinary_ipv4_addresses_are_admitted_and_python_agrees_they_are_global(address):
    """An address outside every special block passes, and Python calls it global too."""
    assert refusal(address) is None
    assert address.is_global and not address.is_multicast


# -- IPv6 -------------------------------------------------------------------------------------

@pytest.mark.parametrize("block", V6_BLOCKS, ids=str)
@SETTINGS
@given(data=st.data())
def test_every_special_ipv6_address_is_refused_unless_allowed(block, data):
    """Any address of any IPv6 special-purpose block (Teredo included) is refused, unless inside
    allow_networks; the local-use NAT64 prefix counts only outside its /96 (judged below)."""
    address = data.draw(st.ip_addresses(network=block).filter(lambda a: not wrapped(a)))
    assert refusal(address) is not None
    assert refusal(address, [block]) is None


ipv6_samples = st.one_of(st.ip_addresses(v=6), st.ip_addresses(network=GLOBAL_UNICAST),
                         st.sampled_from(V6_BLOCKS).flatmap(lambda b: st.ip_addresses(network=b)))


@settings(max_examples=400, deadline=None)
@given(address=ipv6_samples.filter(lambda a: not wrapped(a)))
def test_an_ipv6_address_is_refused_exactly_when_the_registry_names_it(address):
    """Both directions: outside 2000::/3, inside a special block or IPv4-compatible: refused; the
    rest of global unicast space: admitted."""
    assert (refusal(address) is not None) == special_v6(address)


@settings(max_examples=400, deadline=None)
@given(address=ipv6_samples.filter(lambda a: not wrapped(a)))
def test_whatever_python_calls_non_global_ipv6_is_refused(address):
    """For IPv6 without an embedded IPv4 address, Python's non-global flags never admit more."""
    if python_says_not_global(address):
        assert refusal(address) is not None


# -- IPv6 forms that carry an IPv4 address ----------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(v4=st.one_of(st.ip_addresses(v=4), st.sampled_from(V4_BLOCKS).flatmap(lambda b: st.ip_addresses(network=b))),
       suffix=st.integers(0, (1 << 80) - 1))
def test_ipv4_mapped_nat64_and_6to4_forms_are_judged_by_their_ipv4_address(v4, suffix):
    """Each form of a special IPv4 address is refused, and admitted once the IPv4 block is in
    allow_networks; each form of an ordinary address passes. The deprecated IPv4-compatible form
    (::a.b.c.d) is refused whatever it carries."""
    for form in forms_of(v4, suffix):
        assert embedded_ipv4(form)[0] == v4
        assert (refusal(form) is not None) == special_v4(v4), form
        assert refusal(form, [ipaddress.ip_network(f"{v4}/32")]) is None
    compatible = ipaddress.IPv6Address(int(v4))
    assert refusal(compatible) is not None
    if int(v4) > 1:  # :: and ::1 are the unspecified and loopback addresses, not IPv4 forms
        assert "IPv4-compatible" in refusal(compatible)


def test_python_reads_the_mapped_and_6to4_forms_the_same_way():
    """Python's own decoding of IPv4-mapped and 6to4 agrees with embedded_ipv4."""
    for text in ("::ffff:127.0.0.1", "::ffff:10.1.2.3", "2002:7f00:1::1", "2002:c0a8:101:5::9"):
        address = ipaddress.IPv6Address(text)
        assert embedded_ipv4(address)[0] == (address.ipv4_mapped or address.sixtofour)


@pytest.mark.parametrize("text, reason", [
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("10.1.2.3", "private"), ("192.168.1.20", "private"),
    ("172.16.0.1", "private"), ("169.254.169.254", "link-local"), ("fe80::1", "link-local"),
    ("fe80::1%eth0", "link-local"), ("224.0.0.1", "multicast"), ("0.0.0.0", "unspecified"),
    ("100.64.0.1", "shared address space (carrier-grade NAT)"), ("fd00::1", "private"),
    ("::ffff:127.0.0.1", "loopback (IPv4-mapped form of 127.0.0.1)"),
    ("64:ff9b::7f00:1", "loopback (NAT64 form of 127.0.0.1)"),
    ("64:ff9b::a9fe:a9fe", "link-local (NAT64 form of 169.254.169.254)"),
    ("64:ff9b:1::c0a8:101", "private (local-use NAT64 form of 192.168.1.1)"),
    ("64:ff9b:1:2::c0a8:101", "local-use NAT64 (not as a /96)"),
    ("2002:7f00:1::1", "loopback (6to4 form of 127.0.0.1)"),
    ("2002:a00:1:1::1", "private (6to4 form of 10.0.0.1)"),
    ("::7f00:1", "IPv4-compatible (deprecated)"), ("::a00:1", "IPv4-compatible (deprecated)"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"), ("3fff::1", "documentation"),
    ("8.8.8.8", None), ("2606:4700::1111", None), ("64:ff9b::808:808", None), ("2002:808:808::1", None),
])
def test_reasons_name_what_the_address_is(text, reason):
    """The refusal names the kind of address, and for IPv4 forms which IPv4 address they carry."""
    assert refusal(ipaddress.ip_address(text)) == reason
