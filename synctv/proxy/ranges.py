"""HTTP byte ranges for the media proxy (RFC 9110 sections 14 and 13.1.5). Pure: no I/O, no reactor.

What the route gets from a request's ``Range`` header (:func:`evaluate_range`):

- ``None``: serve the whole representation with ``200``. This is the answer for an absent header,
  a header with invalid syntax or another unit than ``bytes`` (RFC 9110 14.2: a server ignores a
  Range it cannot or will not honour), and for multiple ranges that cannot be served as one.
- a :class:`ByteRange`: serve ``206`` with ``Content-Range`` from :meth:`ByteRange.content_range`.
- a :class:`RangeNotSatisfiable`: answer ``416`` with ``Content-Range: bytes */total``.
- only when the total length is unknown: a :class:`ByteRange` whose ``last`` is ``None``
  (``bytes=a-``) or a :class:`SuffixRange` (``bytes=-n``); the route learns the length (the first
  upstream answer carries it) and calls :func:`resolve_ranges` again with it.

Multiple ranges (decision): this proxy never sends ``multipart/byteranges``. The satisfiable ranges
are sorted and coalesced (RFC 9110 15.3.7.2 allows coalescing ranges that overlap or are separated
by a gap smaller than the multipart overhead, taken here as :data:`COALESCE_GAP` bytes). If they
coalesce into one range, that one range is served as a single-part ``206``; otherwise the Range
header is ignored and the whole body is served with ``200``, which is always allowed. If none is
satisfiable the answer is ``416``. With an unknown total length, a multi-range request is ignored
(``200``). A header with more than :data:`MAX_RANGES` ranges is ignored as abusive.

A zero-length representation satisfies no range (nothing can be written as ``first-last``), so
every Range on it answers ``416``.

Also here: ``If-Range`` evaluation (:func:`if_range_allows`), parsing an upstream
``Content-Range`` (:func:`parse_content_range`) and HTTP dates (:func:`parse_http_date`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import attrs

#: Ranges further apart than this many bytes are not coalesced into one (about one multipart header).
COALESCE_GAP = 80
#: A Range header with more ranges than this is ignored.
MAX_RANGES = 64
#: Longest run of digits accepted in a position; longer ones make the header invalid.
_MAX_DIGITS = 19

_DIGITS = re.compile(rf"[0-9]{{1,{_MAX_DIGITS}}}")
_OWS = " \t"


@attrs.frozen
class ByteRange:
    """Bytes ``first`` to ``last`` inclusive; ``last`` is ``None`` only for ``a-`` of unknown length."""

    first: int
    last: int | None = None

    @property
    def length(self) -> int | None:
        """Number of bytes, or ``None`` when the end is open."""
        if self.last is None:
            return None
        return self.last - self.first + 1

    def content_range(self, total: int | None) -> str:
        """The ``Content-Range`` value for a 206 carrying this range."""
        if self.last is None:
            raise ValueError("an open-ended range has no Content-Range; resolve it first")
        return content_range(self.first, self.last, total)


@attrs.frozen
class SuffixRange:
    """The last ``length`` bytes of a representation whose length is not known yet."""

    length: int


@attrs.frozen
class RangeNotSatisfiable:
    """No requested range overlaps the representation: answer 416."""

    total: int

    @property
    def content_range(self) -> str:
        return unsatisfied_content_range(self.total)


RangeSpec = ByteRange | SuffixRange
RangeDecision = ByteRange | SuffixRange | RangeNotSatisfiable | None


def parse_range_header(value: str | None) -> list[RangeSpec] | None:
    """The range-specs of a ``Range`` value as written, or ``None`` when it is to be ignored.

    ``None`` for: no header, a unit other than ``bytes``, invalid syntax anywhere (including
    ``last < first``), or more than :data:`MAX_RANGES` ranges. Empty list elements (``0-1,,5-6``)
    are allowed by the list rule and skipped.
    """
    if value is None:
        return None
    value = value.strip(_OWS)
    unit, sep, rest = value.partition("=")
    if not sep or unit.lower() != "bytes":
        return None
    specs: list[RangeSpec] = []
    for element in rest.split(","):
        element = element.strip(_OWS)
        if not element:
            continue
        first_text, dash, last_text = element.partition("-")
        if not dash:
            return None
        if first_text == "":
            if not _DIGITS.fullmatch(last_text):
                return None
            specs.append(SuffixRange(int(last_text)))
            continue
        if not _DIGITS.fullmatch(first_text):
            return None
        first = int(first_text)
        if last_text == "":
            specs.append(ByteRange(first, None))
            continue
        if not _DIGITS.fullmatch(last_text):
            return None
        last = int(last_text)
        if last < first:
            return None
        specs.append(ByteRange(first, last))
    if not specs or len(specs) > MAX_RANGES:
        return None
    return specs


def _resolve_one(spec: RangeSpec, total: int) -> ByteRange | None:
    """The concrete range of one spec against ``total`` bytes, or ``None`` when unsatisfiable."""
    if total <= 0:
        return None
    if isinstance(spec, SuffixRange):
        if spec.length == 0:
            return None
        return ByteRange(max(0, total - spec.length), total - 1)
    if spec.first >= total:
        return None
    last = total - 1 if spec.last is None else min(spec.last, total - 1)
    return ByteRange(spec.first, last)


def coalesce(ranges: list[ByteRange], gap: int = COALESCE_GAP) -> list[ByteRange]:
    """Sort closed ranges and merge those that overlap or lie at most ``gap`` bytes apart."""
    merged: list[ByteRange] = []
    for r in sorted(ranges, key=lambda r: (r.first, r.last)):
        assert r.last is not None
        if merged:
            top = merged[-1]
            assert top.last is not None
            if r.first <= top.last + 1 + gap:
                merged[-1] = ByteRange(top.first, max(top.last, r.last))
                continue
        merged.append(r)
    return merged


def resolve_ranges(specs: list[RangeSpec], total: int | None) -> RangeDecision:
    """Decide what to serve for parsed ``specs`` (see the module docstring for the policy)."""
    if total is None:
        if len(specs) != 1:
            return None
        return specs[0]
    satisfiable = [r for r in (_resolve_one(s, total) for s in specs) if r is not None]
    if not satisfiable:
        return RangeNotSatisfiable(total)
    merged = coalesce(satisfiable)
    if len(merged) != 1:
        return None
    return merged[0]


def evaluate_range(value: str | None, total: int | None) -> RangeDecision:
    """Parse a ``Range`` header and decide against a representation of ``total`` bytes (or unknown)."""
    specs = parse_range_header(value)
    if specs is None:
        return None
    return resolve_ranges(specs, total)


def content_range(first: int, last: int, total: int | None) -> str:
    """``bytes first-last/total`` (``/*`` when the total is unknown)."""
    if first < 0 or last < first or (total is not None and last >= total):
        raise ValueError(f"invalid byte range {first}-{last}/{total}")
    return f"bytes {first}-{last}/{'*' if total is None else total}"


def unsatisfied_content_range(total: int) -> str:
    """``bytes */total``, for a 416 answer."""
    if total < 0:
        raise ValueError(f"invalid total length {total}")
    return f"bytes */{total}"


@attrs.frozen
class ContentRange:
    """A parsed ``Content-Range``: ``first``/``last`` are ``None`` for ``bytes */total``."""

    first: int | None
    last: int | None
    total: int | None

    @property
    def length(self) -> int | None:
        if self.first is None or self.last is None:
            return None
        return self.last - self.first + 1

    @property
    def satisfied(self) -> bool:
        return self.first is not None


_CONTENT_RANGE = re.compile(
    r"bytes[ \t]+(?:(?P<first>[0-9]{1,19})-(?P<last>[0-9]{1,19})|(?P<star>\*))/(?P<total>[0-9]{1,19}|\*)",
    re.IGNORECASE,
)


def parse_content_range(value: str | None) -> ContentRange | None:
    """Parse an upstream ``Content-Range`` (``bytes a-b/total``, ``bytes a-b/*``, ``bytes */total``).

    ``None`` when absent or inconsistent (``b < a``, ``b >= total``, ``*/*``): the caller treats the
    upstream answer as bad.
    """
    if value is None:
        return None
    m = _CONTENT_RANGE.fullmatch(value.strip(_OWS))
    if m is None:
        return None
    total = None if m["total"] == "*" else int(m["total"])
    if m["star"]:
        if total is None:
            return None
        return ContentRange(None, None, total)
    first, last = int(m["first"]), int(m["last"])
    if last < first or (total is not None and last >= total):
        return None
    return ContentRange(first, last, total)


def parse_http_date(value: str | None) -> datetime | None:
    """An HTTP-date (IMF-fixdate, RFC 850 or asctime form) as an aware UTC datetime, or ``None``."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value.strip(_OWS))
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _is_strong_etag(tag: str) -> bool:
    return len(tag) >= 2 and tag.startswith('"') and tag.endswith('"') and '"' not in tag[1:-1]


def if_range_allows(
    if_range: str | None,
    *,
    etag: str | None,
    last_modified: str | None,
    date: str | None = None,
) -> bool:
    """Whether the Range may be honoured given ``If-Range`` (RFC 9110 13.1.5); ``False`` means send 200.

    An entity-tag matches only by strong comparison (a weak tag on either side never matches). A date
    matches only when it equals ``last_modified`` exactly, and, when the response ``date`` is known,
    ``last_modified`` is at least one second before it (a strong validator, 8.8.2.2). Anything else,
    including an unparseable value, is a non-match.
    """
    if if_range is None:
        return True
    value = if_range.strip(_OWS)
    if value.startswith('"') or value.startswith("W/"):
        if etag is None:
            return False
        return _is_strong_etag(value) and _is_strong_etag(etag.strip(_OWS)) and value == etag.strip(_OWS)
    wanted = parse_http_date(value)
    modified = parse_http_date(last_modified)
    if wanted is None or modified is None or wanted != modified:
        return False
    if date is not None:
        sent = parse_http_date(date)
        if sent is None or (sent - modified).total_seconds() < 1:
            return False
    return True
