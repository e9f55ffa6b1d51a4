"""``[triggers] udp_ports`` as a value (synctv.core.triggers.PortRanges) and the rule of who may give
an event which port (``check_udp_port``): pure, no reactor."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from synctv.core.errors import BadRequest, Forbidden
from synctv.core.triggers import DEFAULT_UDP_PORTS, PortRanges, check_udp_port


@pytest.mark.parametrize(("text", "canonical", "inside", "outside"), [
    ("5000-5999", "5000-5999", [5000, 5500, 5999], [4999, 6000, 1, 65535]),
    ("5000-5999,7000", "5000-5999,7000", [5000, 7000], [6000, 6999, 7001]),
    (" 7000 , 5000 - 5010 ", "5000-5010,7000", [5005, 7000], [5011]),
    ("1-65535", "1-65535", [1, 80, 65535], [0, 65536]),
    ("6000-6010,6005-6020,6021", "6000-6021", [6000, 6021], [5999, 6022]),  # overlaps and neighbours merge
    ("", "", [], [1, 5000, 65535]),  # no port: UDP triggers off
    ("  ", "", [], [5000]),
])
def test_port_ranges_parse_and_hold(text, canonical, inside, outside):
    """Ports and inclusive ranges, comma-separated; str() is the merged, sorted form."""
    ranges = PortRanges.parse(text)
    assert str(ranges) == canonical
    assert all(port in ranges for port in inside)
    assert not any(port in ranges for port in outside)
    assert PortRanges.parse(str(ranges)) == ranges


@pytest.mark.parametrize(("text", "needle"), [
    ("0", "'0' is not a port"),
    ("65536", "'65536'"),
    ("5999-5000", "ends before it starts"),
    ("5000-", "'5000-'"),
    ("-5000", "'-5000'"),
    ("5000-6000-7000", "'5000-6000-7000'"),
    ("5000,,6000", "'' is not a port"),
    ("five", "'five'"),
    ("\uff15\uff10\uff10\uff10", "is not a port"),  # full-width digits are digits to str.isdigit, not to us
    ("1e3", "'1e3'"),
    (",".join(["5000"] * 65), "at most 64"),
])
def test_bad_port_specs_name_the_bad_item(text, needle):
    """Every malformed spec is a ValueError whose message names what is wrong."""
    with pytest.raises(ValueError) as info:
        PortRanges.parse(text)
    assert needle in str(info.value)


def test_the_default_is_5000_to_5999():
    assert str(PortRanges.parse(DEFAULT_UDP_PORTS)) == "5000-5999"


_item = st.one_of(
    st.integers(1, 65535).map(str),
    st.tuples(st.integers(1, 65535), st.integers(1, 65535)).map(lambda t: f"{min(t)}-{max(t)}"),
)


@given(items=st.lists(_item, min_size=1, max_size=8), probe=st.integers(-5, 70000))
def test_membership_matches_the_items(items, probe):
    """A port is inside exactly when one of the written items covers it (merging changes nothing)."""
    ranges = PortRanges.parse(",".join(items))
    covered = False
    for item in items:
        low, _, high = item.partition("-")
        covered |= int(low) <= probe <= int(high or low)
    assert (probe in ranges) == covered


@given(text=st.text(max_size=40))
def test_any_text_parses_or_is_a_value_error(text):
    """No input makes the parser fail in another way."""
    try:
        ranges = PortRanges.parse(text)
    except ValueError:
        return
    assert all(1 <= low <= high <= 65535 for low, high in ranges.ranges)


ALLOWED = PortRanges.parse("5000-5999")


def test_only_site_admins_set_a_port_and_only_inside_the_ranges():
    """A manager may keep or drop the current port; a new port needs a site admin and the ranges."""
    check_udp_port(None, None, site_admin=False, allowed=ALLOWED)  # no port: anyone
    check_udp_port(5001, 5001, site_admin=False, allowed=ALLOWED)  # unchanged
    check_udp_port(None, 5001, site_admin=False, allowed=ALLOWED)  # removed (deleting the event would)
    check_udp_port(9999, 9999, site_admin=False, allowed=ALLOWED)  # unchanged, even if now outside
    with pytest.raises(Forbidden) as info:
        check_udp_port(5001, None, site_admin=False, allowed=ALLOWED)
    assert info.value.field == "udp_port" and "only site admins" in info.value.message
    with pytest.raises(Forbidden):
        check_udp_port(5002, 5001, site_admin=False, allowed=ALLOWED)
    check_udp_port(5002, 5001, site_admin=True, allowed=ALLOWED)
    with pytest.raises(BadRequest) as bad:
        check_udp_port(7777, None, site_admin=True, allowed=ALLOWED)
    assert bad.value.field == "udp_port" and "5000-5999" in bad.value.message
    with pytest.raises(BadRequest) as none:
        check_udp_port(5000, None, site_admin=True, allowed=PortRanges.parse(""))
    assert "none" in none.value.message
