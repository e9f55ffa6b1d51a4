"""Range header parsing and decisions, Content-Range, If-Range (synctv.proxy.ranges)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synctv.proxy.ranges import (
    COALESCE_GAP,
    MAX_RANGES,
    ByteRange,
    ContentRange,
    RangeNotSatisfiable,
    SuffixRange,
    content_range,
    evaluate_range,
    if_range_allows,
    parse_content_range,
    parse_http_date,
    parse_range_header,
    resolve_ranges,
    unsatisfied_content_range,
)

FAST = settings(max_examples=200, deadline=None)


@pytest.mark.parametrize(
    ("header", "total", "expected"),
    [
        ("bytes=0-499", 1000, ByteRange(0, 499)),
        ("bytes=500-999", 1000, ByteRange(500, 999)),
        ("bytes=500-5000", 1000, ByteRange(500, 999)),
        ("bytes=9500-", 10000, ByteRange(9500, 9999)),
        ("bytes=0-", 10000, ByteRange(0, 9999)),
        ("bytes=-500", 10000, ByteRange(9500, 9999)),
        ("bytes=-5000", 1000, ByteRange(0, 999)),
        ("bytes=0-0", 1, ByteRange(0, 0)),
        ("Bytes=1-2", 10, ByteRange(1, 2)),
        (" bytes=1-2 ", 10, ByteRange(1, 2)),
        ("bytes=1-2,,", 10, ByteRange(1, 2)),
    ],
)
def test_single_ranges_resolve_against_a_known_length(header: str, total: int, expected: ByteRange) -> None:
    """A single satisfiable range resolves to its clipped inclusive span (RFC 9110 14.1.2)."""
    assert evaluate_range(header, total) == expected


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "bytes=",
        "bytes",
        "bytes 0-5",
        "items=0-5",
        "bytes=5-2",
        "bytes=a-b",
        "bytes=-",
        "bytes=1-2-3",
        "bytes=--5",
        "bytes=+1-2",
        "bytes=1 -2",
        "bytes=0-1,5",
        "bytes=" + "9" * 40 + "-",
    ],
)
def test_invalid_or_foreign_range_headers_are_ignored(header: str | None) -> None:
    """Bad syntax, another unit or last < first: the header is ignored and the whole body served (200)."""
    assert parse_range_header(header) is None
    assert evaluate_range(header, 1000) is None


@pytest.mark.parametrize(
    ("header", "total"),
    [("bytes=1000-", 1000), ("bytes=1000-2000", 1000), ("bytes=-0", 1000), ("bytes=0-", 0), ("bytes=-5", 0)],
)
def test_unsatisfiable_ranges_answer_416_with_the_total(header: str, total: int) -> None:
    """A first-pos at or past the end, a zero suffix or an empty representation gives 416 bytes */total."""
    decision = evaluate_range(header, total)
    assert decision == RangeNotSatisfiable(total)
    assert isinstance(decision, RangeNotSatisfiable)
    assert decision.content_range == f"bytes */{total}"


def test_multiple_ranges_that_overlap_or_touch_are_served_as_one() -> None:
    """Overlapping, adjacent and nearly adjacent ranges coalesce into one single-part 206 range."""
    assert evaluate_range("bytes=0-99,50-199", 1000) == ByteRange(0, 199)
    assert evaluate_range("bytes=200-299,0-199", 1000) == ByteRange(0, 299)
    assert evaluate_range(f"bytes=0-9,{10 + COALESCE_GAP}-500", 10**6) == ByteRange(0, 500)


def test_multiple_distant_ranges_fall_back_to_the_whole_body() -> None:
    """Ranges too far apart to coalesce are not served as multipart: the Range is ignored (200)."""
    assert evaluate_range(f"bytes=0-9,{11 + COALESCE_GAP}-{20 + COALESCE_GAP}", 10**6) is None


def test_unsatisfiable_members_of_a_range_set_are_dropped() -> None:
    """Only satisfiable ranges count; 416 only when none is satisfiable."""
    assert evaluate_range("bytes=5000-6000,10-19", 1000) == ByteRange(10, 19)
    assert evaluate_range("bytes=5000-6000,7000-", 1000) == RangeNotSatisfiable(1000)


def test_too_many_ranges_are_ignored() -> None:
    """A Range with more than MAX_RANGES ranges is ignored as abusive."""
    many = ",".join(f"{i}-{i}" for i in range(MAX_RANGES + 1))
    assert parse_range_header("bytes=" + many) is None
    assert parse_range_header("bytes=" + ",".join(f"{i}-{i}" for i in range(MAX_RANGES))) is not None


def test_unknown_total_returns_the_unresolved_spec() -> None:
    """Without a known length, a single range comes back as written; multiple ranges are ignored."""
    assert evaluate_range("bytes=10-20", None) == ByteRange(10, 20)
    assert evaluate_range("bytes=10-", None) == ByteRange(10, None)
    assert evaluate_range("bytes=-20", None) == SuffixRange(20)
    assert evaluate_range("bytes=0-1,5-6", None) is None
    specs = parse_range_header("bytes=-20")
    assert specs is not None
    assert resolve_ranges(specs, 100) == ByteRange(80, 99)


def test_content_range_values() -> None:
    """Content-Range values for 206 (known and unknown total) and 416; invalid spans refused."""
    assert content_range(0, 499, 1234) == "bytes 0-499/1234"
    assert content_range(0, 499, None) == "bytes 0-499/*"
    assert ByteRange(5, 9).content_range(10) == "bytes 5-9/10"
    assert unsatisfied_content_range(1234) == "bytes */1234"
    for first, last, total in [(5, 4, 10), (-1, 3, 10), (0, 10, 10)]:
        with pytest.raises(ValueError):
            content_range(first, last, total)
    with pytest.raises(ValueError):
        ByteRange(5, None).content_range(10)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("bytes 0-499/1234", ContentRange(0, 499, 1234)),
        ("bytes 0-499/*", ContentRange(0, 499, None)),
        ("bytes */1234", ContentRange(None, None, 1234)),
        ("BYTES 1-1/2", ContentRange(1, 1, 2)),
        (None, None),
        ("bytes */*", None),
        ("bytes 5-4/10", None),
        ("bytes 0-10/10", None),
        ("bytes 0-1", None),
        ("items 0-1/2", None),
        ("bytes=0-1/2", None),
    ],
)
def test_upstream_content_range_parsing(value: str | None, expected: ContentRange | None) -> None:
    """The three Content-Range forms parse; inconsistent or malformed values give None."""
    assert parse_content_range(value) == expected


def test_content_range_reports_length_and_satisfaction() -> None:
    """A parsed Content-Range knows its length and whether it was a 416 form."""
    assert ContentRange(0, 499, 1234).length == 500
    assert ContentRange(0, 499, 1234).satisfied
    assert ContentRange(None, None, 5).length is None
    assert not ContentRange(None, None, 5).satisfied


LM = "Sun, 06 Nov 1994 08:49:37 GMT"


@pytest.mark.parametrize(
    ("if_range", "etag", "last_modified", "date", "allowed"),
    [
        (None, None, None, None, True),
        ('"abc"', '"abc"', None, None, True),
        ('"abc"', '"abd"', None, None, False),
        ('W/"abc"', 'W/"abc"', None, None, False),
        ('"abc"', 'W/"abc"', None, None, False),
        ('"abc"', None, LM, None, False),
        (LM, '"abc"', LM, None, True),
        ("Sunday, 06-Nov-94 08:49:37 GMT", None, LM, None, True),
        ("Sun Nov  6 08:49:37 1994", None, LM, None, True),
        ("Sun, 06 Nov 1994 08:49:38 GMT", None, LM, None, False),
        (LM, None, None, None, False),
        ("not a date", None, LM, None, False),
        (LM, None, LM, "Sun, 06 Nov 1994 08:49:37 GMT", False),
        (LM, None, LM, "Sun, 06 Nov 1994 08:49:38 GMT", True),
    ],
)
def test_if_range(
    if_range: str | None, etag: str | None, last_modified: str | None, date: str | None, allowed: bool
) -> None:
    """If-Range honours the Range only on a strong ETag match or an exact, strong Last-Modified match."""
    assert if_range_allows(if_range, etag=etag, last_modified=last_modified, date=date) is allowed


def test_http_dates_in_all_three_forms_parse_to_one_instant() -> None:
    """IMF-fixdate, RFC 850 and asctime dates give the same aware UTC instant; garbage gives None."""
    forms = [LM, "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"]
    parsed = {parse_http_date(f) for f in forms}
    assert len(parsed) == 1
    (instant,) = parsed
    assert instant is not None and instant.utcoffset() is not None
    assert parse_http_date("garbage") is None
    assert parse_http_date("") is None


# ---- properties ---------------------------------------------------------------------------

positions = st.integers(min_value=0, max_value=300)


@st.composite
def range_specs(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["closed", "open", "suffix"]))
    a = draw(positions)
    if kind == "closed":
        return f"{a}-{a + draw(st.integers(0, 300))}"
    if kind == "open":
        return f"{a}-"
    return f"-{a}"


def selected(spec: str, total: int) -> set[int]:
    """The byte positions one spec selects, by brute force from the RFC wording."""
    first_text, _, last_text = spec.partition("-")
    if first_text == "":
        n = int(last_text)
        return set(range(max(0, total - n), total)) if n > 0 else set()
    first = int(first_text)
    last = total - 1 if last_text == "" else int(last_text)
    return set(range(first, min(last, total - 1) + 1))


@FAST
@given(spec=range_specs(), total=st.integers(min_value=0, max_value=400))
def test_single_range_selects_exactly_the_rfc_bytes(spec: str, total: int) -> None:
    """For one range-spec, the decision covers exactly the bytes the RFC selects, or is 416 when none."""
    decision = evaluate_range("bytes=" + spec, total)
    want = selected(spec, total)
    if not want:
        assert decision == RangeNotSatisfiable(total)
    else:
        assert isinstance(decision, ByteRange)
        assert decision.last is not None
        assert set(range(decision.first, decision.last + 1)) == want
        parsed = parse_content_range(decision.content_range(total))
        assert parsed == ContentRange(decision.first, decision.last, total)


@FAST
@given(specs=st.lists(range_specs(), min_size=1, max_size=6), total=st.integers(min_value=0, max_value=400))
def test_range_sets_serve_a_covering_range_or_the_whole_body(specs: list[str], total: int) -> None:
    """A range set gives 416 iff nothing is selected; a served range covers every selected byte and
    starts and ends on selected bytes; a refusal (200) means the selection could not be coalesced."""
    decision = evaluate_range("bytes=" + ",".join(specs), total)
    want: set[int] = set().union(*(selected(s, total) for s in specs))
    if not want:
        assert decision == RangeNotSatisfiable(total)
    elif decision is None:
        ordered = sorted(want)
        assert any(b - a > COALESCE_GAP + 1 for a, b in itertools.pairwise(ordered))
    else:
        assert isinstance(decision, ByteRange) and decision.last is not None
        assert decision.first == min(want) and decision.last == max(want)


@FAST
@given(
    first=st.integers(0, 10**12),
    length=st.integers(1, 10**9),
    extra=st.integers(0, 10**6),
    known=st.booleans(),
)
def test_content_range_round_trips(first: int, length: int, extra: int, known: bool) -> None:
    """Every Content-Range this module builds parses back to the same values."""
    last = first + length - 1
    total = last + 1 + extra if known else None
    assert parse_content_range(content_range(first, last, total)) == ContentRange(first, last, total)
