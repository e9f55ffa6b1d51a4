"""AMF0 encoding and decoding: golden vectors, round trips and hostile input."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synctv.live.rtmp import amf0
from synctv.live.rtmp.amf0 import UNDEFINED, AMF0Date, AMF0Error, ECMAArray

# "connect", 1.0, {app: "live", tcUrl: "rtmp://localhost/live"} -- hand-assembled from the AMF0 spec.
CONNECT_GOLDEN = bytes.fromhex(
    "02 0007 636f6e6e656374"  # string "connect"
    "00 3ff0000000000000"  # number 1.0
    "03"  # object
    "0003 617070 02 0004 6c697665"  # app: "live"
    "0005 746355726c 02 0015 72746d703a2f2f6c6f63616c686f73742f6c697665"  # tcUrl
    "0000 09"  # object end
)


def test_connect_command_golden_vector() -> None:
    """A connect command encodes to exactly the bytes the spec prescribes, and decodes back."""
    values = ["connect", 1.0, {"app": "live", "tcUrl": "rtmp://localhost/live"}]
    assert amf0.encode(*values) == CONNECT_GOLDEN
    assert amf0.decode_all(CONNECT_GOLDEN) == values


def test_scalar_markers() -> None:
    """Each scalar type uses its own marker byte and layout."""
    assert amf0.encode(None) == b"\x05"
    assert amf0.encode(UNDEFINED) == b"\x06"
    assert amf0.encode(True, False) == b"\x01\x01\x01\x00"
    assert amf0.encode(2) == b"\x00" + struct.pack(">d", 2.0)
    assert amf0.encode("") == b"\x02\x00\x00"
    assert amf0.encode(AMF0Date(1000.0)) == b"\x0b" + struct.pack(">dh", 1000.0, 0)
    assert amf0.decode_all(b"\x06\x05") == [UNDEFINED, None]


def test_long_string_chosen_for_long_text() -> None:
    """Strings over 65535 UTF-8 bytes use the long string marker with a 32-bit length."""
    text = "x" * 70000
    encoded = amf0.encode(text)
    assert encoded[:5] == b"\x0c" + (70000).to_bytes(4, "big")
    assert amf0.decode_all(encoded) == [text]
    assert amf0.decode_all(b"\x0c\x00\x00\x00\x02hi") == ["hi"]


def test_ecma_and_strict_arrays() -> None:
    """ECMA arrays keep their type across a round trip; lists become strict arrays."""
    value = ECMAArray(duration=2.0, width=320.0)
    encoded = amf0.encode(value, [1, "a", None])
    assert encoded[:5] == b"\x08\x00\x00\x00\x02"
    decoded = amf0.decode_all(encoded)
    assert isinstance(decoded[0], ECMAArray) and decoded[0] == {"duration": 2.0, "width": 320.0}
    assert decoded[1] == [1.0, "a", None]


def test_ecma_array_count_is_advisory() -> None:
    """Encoders that write a wrong ECMA count (0 is common) still decode, by the end marker."""
    data = b"\x08\x00\x00\x00\x00" + b"\x00\x01a\x00" + struct.pack(">d", 1.0) + b"\x00\x00\x09"
    assert amf0.decode_all(data) == [{"a": 1.0}]


def test_decode_value_returns_offset() -> None:
    """decode_value reads one value and says where the next starts."""
    data = amf0.encode("a", 2.0)
    value, offset = amf0.decode_value(data)
    assert (value, offset) == ("a", 4)
    assert amf0.decode_value(data, offset) == (2.0, len(data))


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x00",  # truncated number
        b"\x02\x00\x05ab",  # string longer than the bytes left
        b"\x0c\xff\xff\xff\xffab",  # long string claiming 4 GiB
        b"\x0a\x7f\xff\xff\xff\x05",  # strict array claiming 2**31 items
        b"\x03\x00\x01a\x05",  # object without end marker
        b"\x09",  # object end outside an object
        b"\x07\x00\x01",  # reference: unsupported
        b"\x11",  # AMF3 switch: unsupported here
        b"\x02\x00\x02\xff\xfe",  # invalid UTF-8
        b"\x0b\x00",  # truncated date
    ],
)
def test_malformed_input_raises_amf0error(data: bytes) -> None:
    """Each kind of malformed input raises AMF0Error, a ValueError."""
    with pytest.raises(AMF0Error):
        amf0.decode_all(data)
    assert issubclass(AMF0Error, ValueError)


def test_nesting_depth_is_bounded() -> None:
    """Deeply nested arrays are refused rather than recursing without limit."""
    deep = b"\x0a\x00\x00\x00\x01" * 1000 + b"\x05"
    with pytest.raises(AMF0Error, match="nesting"):
        amf0.decode_all(deep)
    nested: list = []
    for _ in range(100):
        nested = [nested]
    with pytest.raises(AMF0Error):
        amf0.encode(nested)


def test_unencodable_values_raise_amf0error() -> None:
    """Values with no AMF0 form (bytes, sets, non-str keys, huge ints) raise AMF0Error."""
    for value in (b"x", {1, 2}, {1: "a"}, 10**400, "\ud800"):
        with pytest.raises(AMF0Error):
            amf0.encode(value)


amf_values = st.recursive(
    st.none()
    | st.just(UNDEFINED)
    | st.booleans()
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.builds(AMF0Date, st.floats(allow_nan=False), st.integers(-32768, 32767)),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=8), children, max_size=4)
        | st.dictionaries(st.text(max_size=8), children, max_size=4).map(ECMAArray)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(st.lists(amf_values, max_size=5))
def test_round_trip(values: list) -> None:
    """Whatever encodes decodes to an equal value with the same container types."""
    decoded = amf0.decode_all(amf0.encode(*values))
    assert decoded == values
    assert [type(v) for v in decoded] == [type(v) for v in values]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_amf0error(data: bytes) -> None:
    """Random bytes either decode or raise AMF0Error; nothing else escapes."""
    try:
        amf0.decode_all(data)
    except AMF0Error:
        pass


@settings(max_examples=300, deadline=None)
@given(st.lists(amf_values, min_size=1, max_size=3), st.data())
def test_mutated_valid_input_raises_only_amf0error(values: list, data: st.DataObject) -> None:
    """Valid encodings with bytes flipped, cut or inserted never raise anything but AMF0Error."""
    encoded = bytearray(amf0.encode(*values))
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        index = data.draw(st.integers(0, max(0, len(encoded) - 1)))
        if op == "flip" and encoded:
            encoded[index] = data.draw(st.integers(0, 255))
        elif op == "cut":
            del encoded[index:]
        else:
            encoded[index:index] = data.draw(st.binary(min_size=1, max_size=4))
    try:
        amf0.decode_all(bytes(encoded))
    except AMF0Error:
        pass


def _count_values(value: object) -> int:
    """Every value, nested ones included, as the decoder counts them."""
    if isinstance(value, dict):
        return 1 + sum(_count_values(v) for v in value.values())
    if isinstance(value, list):
        return 1 + sum(_count_values(v) for v in value)
    return 1


@settings(max_examples=200, deadline=None)
@given(st.lists(amf_values, max_size=5), st.integers(0, 40))
def test_value_count_is_bounded(values: list, limit: int) -> None:
    """With max_values, input with more values than that (nested ones included) is an AMF0Error,
    and input with at most that many decodes as without the bound."""
    encoded = amf0.encode(*values)
    total = sum(_count_values(v) for v in values)
    if total > limit:
        with pytest.raises(AMF0Error, match="values"):
            amf0.decode_all(encoded, max_values=limit)
    else:
        assert amf0.decode_all(encoded, max_values=limit) == values


def test_value_count_bound_stops_a_cheap_flood_early() -> None:
    """64 KiB of one-byte nulls (65536 Python values) stops at the bound."""
    flood = b"\x0a" + (65530).to_bytes(4, "big") + b"\x05" * 65530
    assert len(amf0.decode_all(flood)[0]) == 65530
    with pytest.raises(AMF0Error, match="values"):
        amf0.decode_all(flood, max_values=4096)
