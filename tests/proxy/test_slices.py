"""Slice arithmetic and cache keys (synctv.proxy.slices)."""

from __future__ import annotations

import hashlib
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synctv.proxy.slices import (
    DEFAULT_SLICE_SIZE,
    SlicePiece,
    canonical_headers,
    iter_slices,
    plan_slices,
    resource_key,
    slice_count,
    slice_indexes,
    slice_key,
    slice_keys,
    slice_request_range,
    slice_span,
)

FAST = settings(max_examples=200, deadline=None)
URL = "https://media.example/video.mp4"


def test_default_slice_size_is_one_mebibyte() -> None:
    """Slices are 1 MiB unless configured otherwise."""
    assert DEFAULT_SLICE_SIZE == 1024 * 1024


def test_a_range_inside_one_slice_cuts_both_ends_of_it() -> None:
    """A range within one slice uses that slice alone, cut at both ends."""
    assert plan_slices(10, 19, 100) == [SlicePiece(index=0, first=0, last=99, cut_start=10, cut_end=20)]


def test_a_range_across_slices_cuts_the_first_head_and_the_last_tail() -> None:
    """The first slice loses its head, the last its tail; slices in between are whole."""
    pieces = plan_slices(150, 420, 100)
    assert [p.index for p in pieces] == [1, 2, 3, 4]
    assert (pieces[0].cut_start, pieces[0].cut_end) == (50, 100)
    assert (pieces[1].cut_start, pieces[1].cut_end) == (0, 100)
    assert (pieces[-1].cut_start, pieces[-1].cut_end) == (0, 21)
    assert sum(p.wanted_length for p in pieces) == 420 - 150 + 1


def test_the_last_slice_of_a_known_resource_is_short() -> None:
    """With a known total, the final slice's span stops at the resource's last byte."""
    assert slice_span(2, 100, total=250) == (200, 249)
    assert slice_span(2, 100) == (200, 299)
    assert plan_slices(200, 249, 100, total=250)[0].length == 50
    assert slice_count(250, 100) == 3
    assert slice_count(300, 100) == 3
    assert slice_count(0, 100) == 0
    assert slice_request_range(2, 100, total=250) == "bytes=200-249"
    assert slice_request_range(0) == f"bytes=0-{DEFAULT_SLICE_SIZE - 1}"


def test_bad_arguments_are_refused() -> None:
    """Negative or inverted positions, non-positive sizes and slices past the end raise ValueError."""
    with pytest.raises(ValueError):
        slice_indexes(5, 4, 100)
    with pytest.raises(ValueError):
        slice_indexes(-1, 4, 100)
    with pytest.raises(ValueError):
        slice_span(0, 0)
    with pytest.raises(ValueError):
        slice_span(-1, 100)
    with pytest.raises(ValueError):
        slice_span(3, 100, total=300)
    with pytest.raises(ValueError):
        plan_slices(0, 300, 100, total=300)
    with pytest.raises(ValueError):
        slice_key(URL, {}, -1)


@FAST
@given(
    first=st.integers(0, 10**10),
    size=st.integers(1, 2 * 1024 * 1024),
    span=st.integers(1, 300),
    length_frac=st.floats(0, 1),
    extra=st.one_of(st.none(), st.integers(0, 10**6)),
)
def test_slices_cover_the_range_exactly(
    first: int, size: int, span: int, length_frac: float, extra: int | None
) -> None:
    """The wanted parts of the planned slices, in order, are the requested range: no gap, no overlap;
    each slice is aligned on the slice size, no longer than it, and within the resource."""
    length = max(1, int(span * size * length_frac))  # at most ~300 slices, any alignment
    last = first + length - 1
    total = None if extra is None else last + 1 + extra
    pieces = list(iter_slices(first, last, size, total))
    assert [p.index for p in pieces] == list(range(first // size, last // size + 1))
    position = first
    for p in pieces:
        assert p.first == p.index * size
        assert 1 <= p.length <= size
        if total is not None:
            assert p.last <= total - 1
        assert 0 <= p.cut_start < p.cut_end <= p.length
        assert p.first + p.cut_start == position
        position = p.first + p.cut_end
    assert position == last + 1


@FAST
@given(
    data=st.binary(min_size=1, max_size=2000),
    size=st.integers(1, 300),
    bounds=st.tuples(st.integers(0, 1999), st.integers(0, 1999)),
)
def test_cutting_real_slices_reassembles_the_range(data: bytes, size: int, bounds: tuple[int, int]) -> None:
    """Slicing a real byte string and applying the cuts gives back exactly data[first:last+1]."""
    first, last = sorted(b % len(data) for b in bounds)
    out = b""
    for p in iter_slices(first, last, size, total=len(data)):
        chunk = data[p.first : p.last + 1]
        assert len(chunk) == p.length
        out += chunk[p.cut_start : p.cut_end]
    assert out == data[first : last + 1]


def test_keys_ignore_header_order_and_name_case() -> None:
    """Header names are lower-cased and pairs sorted, so order and case do not split the cache."""
    a = slice_key(URL, {"Referer": "https://a/", "Cookie": "x=1"}, 3)
    b = slice_key(URL, [("cookie", "x=1"), ("REFERER", "https://a/")], 3)
    assert a == b
    assert canonical_headers({"B": " 2 ", "a": "1"}) == [("a", "1"), ("b", "2")]


def test_keys_separate_everything_that_changes_the_bytes() -> None:
    """URL, header values, slice index and slice size each give a different slice key."""
    base = slice_key(URL, {"Referer": "https://a/"}, 3)
    others = [
        slice_key(URL + "?v=2", {"Referer": "https://a/"}, 3),
        slice_key(URL, {"Referer": "https://b/"}, 3),
        slice_key(URL, {}, 3),
        slice_key(URL, {"Referer": "https://a/"}, 4),
        slice_key(URL, {"Referer": "https://a/"}, 3, slice_size=512 * 1024),
    ]
    assert len({base.digest, *(o.digest for o in others)}) == 1 + len(others)
    assert base.digest != base.resource


def test_conditional_headers_never_enter_a_key() -> None:
    """Range and the conditional request headers are left out of keys."""
    plain = slice_key(URL, {"Referer": "r"}, 0)
    noisy = slice_key(URL, {"Referer": "r", "Range": "bytes=0-", "If-None-Match": '"x"', "If-Range": "y"}, 0)
    assert plain == noisy


def test_resource_key_is_shared_by_the_slices_of_a_resource() -> None:
    """Every slice of one resource carries the resource key that validators and purges use."""
    rk = resource_key(URL, {"Referer": "r"})
    keys = [slice_key(URL, {"referer": "r"}, i) for i in range(3)]
    assert {k.resource for k in keys} == {rk}
    assert [k.index for k in keys] == [0, 1, 2]
    assert len({k.digest for k in keys}) == 3


def test_keys_are_sha256_hex_of_an_unambiguous_encoding() -> None:
    """Keys are 64 hex digits, and moving text between URL and headers cannot collide."""
    k = slice_key(URL, {"a": "b"}, 0)
    assert re.fullmatch(r"[0-9a-f]{64}", k.digest) and re.fullmatch(r"[0-9a-f]{64}", k.resource)
    assert resource_key("u", {"a": "bc"}) != resource_key("u", {"ab": "c"})
    assert resource_key("ua", {"b": "c"}) != resource_key("u", {"ab": "c"})
    naive = hashlib.sha256(("u" + "a:bc" + "0").encode()).hexdigest()
    assert slice_key("u", {"a": "bc"}, 0).digest != naive


@FAST
@given(
    headers=st.dictionaries(
        st.text("abcXYZ-", min_size=1, max_size=5), st.text(max_size=10), max_size=4
    ).filter(lambda h: len({k.lower() for k in h}) == len(h)),
    index=st.integers(0, 10**6),
)
def test_key_is_independent_of_header_order_property(headers: dict[str, str], index: int) -> None:
    """Reversing header order or swapping name case never changes a key."""
    forward = slice_key(URL, list(headers.items()), index)
    backward = slice_key(URL, [(k.swapcase(), v) for k, v in reversed(list(headers.items()))], index)
    assert forward == backward


@FAST
@given(
    url=st.text(min_size=1, max_size=40),
    headers=st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=12), max_size=4),
    indexes=st.lists(st.integers(0, 10**9), max_size=8),
    size=st.integers(4096, 64 << 20),
)
def test_slice_keys_equal_slice_key_key_for_key(url: str, headers: dict[str, str], indexes: list[int], size: int) -> None:
    """The batch form gives exactly the keys of the one-at-a-time form (any URL or header text,
    non-ASCII included: the file cache's keys on disk must not change)."""
    assert slice_keys(url, headers, indexes, size) == [slice_key(url, headers, i, size) for i in indexes]


def test_slice_keys_refuse_what_slice_key_refuses() -> None:
    with pytest.raises(ValueError):
        slice_keys(URL, None, [0, -1])
    with pytest.raises(ValueError):
        slice_keys(URL, None, [0], slice_size=0)
