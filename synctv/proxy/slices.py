"""Slice arithmetic and cache keys for the media proxy. Pure functions, no I/O.

An upstream resource is cut into fixed-size slices: slice ``i`` holds bytes
``[i * S, (i + 1) * S - 1]`` (the last slice of a resource of known length is shorter). A client
range is served from the slices that cover it, cutting the head of the first and the tail of the
last.

Keys are SHA-256 hex digests of a canonical JSON encoding (unambiguous, unlike plain
concatenation):

- the **resource key** names one upstream resource as fetched: the URL and the upstream request
  headers, names lower-cased, values trimmed, pairs sorted; it keys validators and purges;
- the **slice key** adds the slice size and the slice index. The slice size is in the key
  (beyond the brief) because slice ``i`` means different bytes under another size, so changing
  ``[proxy] slice_size`` must never serve old slices.

Request headers that only steer one exchange (``Range``, ``If-Range``, the other conditionals)
never enter a key, so a route cannot split the cache by passing them through by mistake.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping

import attrs

DEFAULT_SLICE_SIZE = 1 << 20

Headers = Mapping[str, str] | Iterable[tuple[str, str]]

_NOT_IN_KEY = frozenset(
    {"range", "if-range", "if-match", "if-none-match", "if-modified-since", "if-unmodified-since"}
)
_KEY_VERSION = "synctv-slice-v1"


@attrs.frozen
class SlicePiece:
    """One slice used to serve a range.

    ``first``/``last``: the slice's own byte span in the resource (inclusive; clipped to the
    resource when its length is known). ``cut_start``/``cut_end``: the wanted bytes are
    ``slice_data[cut_start:cut_end]``.
    """

    index: int
    first: int
    last: int
    cut_start: int
    cut_end: int

    @property
    def length(self) -> int:
        """Bytes this slice holds (the full slice, not only the wanted part)."""
        return self.last - self.first + 1

    @property
    def wanted_length(self) -> int:
        return self.cut_end - self.cut_start


@attrs.frozen
class SliceKey:
    """What a slice cache stores a slice under: the digest, and the resource it belongs to."""

    digest: str
    resource: str
    index: int


def _check_size(slice_size: int) -> None:
    if slice_size <= 0:
        raise ValueError(f"slice size must be positive, not {slice_size}")


def slice_count(total: int, slice_size: int = DEFAULT_SLICE_SIZE) -> int:
    """Number of slices of a resource of ``total`` bytes."""
    _check_size(slice_size)
    if total < 0:
        raise ValueError(f"negative total length {total}")
    return -(-total // slice_size)


def slice_span(index: int, slice_size: int = DEFAULT_SLICE_SIZE, total: int | None = None) -> tuple[int, int]:
    """The inclusive byte span ``(first, last)`` of slice ``index``, clipped to ``total`` if known."""
    _check_size(slice_size)
    if index < 0:
        raise ValueError(f"negative slice index {index}")
    first = index * slice_size
    last = first + slice_size - 1
    if total is not None:
        if first >= total:
            raise ValueError(f"slice {index} starts past the end of a {total}-byte resource")
        last = min(last, total - 1)
    return first, last


def slice_indexes(first: int, last: int, slice_size: int = DEFAULT_SLICE_SIZE) -> range:
    """Indexes of the slices covering bytes ``first..last`` inclusive."""
    _check_size(slice_size)
    if first < 0 or last < first:
        raise ValueError(f"invalid byte range {first}-{last}")
    return range(first // slice_size, last // slice_size + 1)


def iter_slices(
    first: int, last: int, slice_size: int = DEFAULT_SLICE_SIZE, total: int | None = None
) -> Iterator[SlicePiece]:
    """The slices covering bytes ``first..last`` inclusive, in order, with the cuts to make in each."""
    if total is not None and last >= total:
        raise ValueError(f"range {first}-{last} runs past a {total}-byte resource")
    for index in slice_indexes(first, last, slice_size):
        s_first, s_last = slice_span(index, slice_size, total)
        yield SlicePiece(
            index=index,
            first=s_first,
            last=s_last,
            cut_start=max(first, s_first) - s_first,
            cut_end=min(last, s_last) - s_first + 1,
        )


def plan_slices(
    first: int, last: int, slice_size: int = DEFAULT_SLICE_SIZE, total: int | None = None
) -> list[SlicePiece]:
    """:func:`iter_slices` as a list (prefer the iterator for very long ranges)."""
    return list(iter_slices(first, last, slice_size, total))


def slice_request_range(index: int, slice_size: int = DEFAULT_SLICE_SIZE, total: int | None = None) -> str:
    """The upstream ``Range`` value that fetches slice ``index``."""
    s_first, s_last = slice_span(index, slice_size, total)
    return f"bytes={s_first}-{s_last}"


def canonical_headers(headers: Headers | None) -> list[tuple[str, str]]:
    """Header pairs as they enter a key: names lower-cased, values trimmed, sorted, conditionals out."""
    if headers is None:
        return []
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    out = [(str(name).strip().lower(), str(value).strip()) for name, value in pairs]
    return sorted(p for p in out if p[0] not in _NOT_IN_KEY)


def _digest(parts: list[object]) -> str:
    text = json.dumps(parts, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def resource_key(url: str, headers: Headers | None = None) -> str:
    """The key of an upstream resource (URL plus request headers), for validators and purges."""
    return _digest([_KEY_VERSION, "resource", url, canonical_headers(headers)])


def slice_key(
    url: str, headers: Headers | None, index: int, slice_size: int = DEFAULT_SLICE_SIZE
) -> SliceKey:
    """The cache key of slice ``index`` of the resource at ``url`` fetched with ``headers``."""
    _check_size(slice_size)
    if index < 0:
        raise ValueError(f"negative slice index {index}")
    canon = canonical_headers(headers)
    return SliceKey(
        digest=_digest([_KEY_VERSION, "slice", url, canon, slice_size, index]),
        resource=_digest([_KEY_VERSION, "resource", url, canon]),
        index=index,
    )


def slice_keys(
    url: str, headers: Headers | None, indexes: Iterable[int], slice_size: int = DEFAULT_SLICE_SIZE
) -> list[SliceKey]:
    """:func:`slice_key` for several slices of one resource, equal to it key for key (the file
    cache's keys on disk depend on it), at a fraction of the cost: the headers are canonicalized
    and the resource digested once, and each slice's digest continues a SHA-256 of the JSON text
    they share (everything but the index)."""
    _check_size(slice_size)
    canon = canonical_headers(headers)
    resource = _digest([_KEY_VERSION, "resource", url, canon])
    # the JSON text of [..., slice_size, index] is that of [..., slice_size] with "," + index before "]"
    head = json.dumps([_KEY_VERSION, "slice", url, canon, slice_size], ensure_ascii=False, separators=(",", ":"))
    shared = hashlib.sha256(head[:-1].encode("utf-8", "surrogatepass") + b",")
    keys = []
    for index in indexes:
        if index < 0:
            raise ValueError(f"negative slice index {index}")
        h = shared.copy()
        h.update(b"%d]" % index)
        keys.append(SliceKey(digest=h.hexdigest(), resource=resource, index=index))
    return keys
