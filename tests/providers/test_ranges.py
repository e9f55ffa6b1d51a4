"""Every provider's item through the proxy returns the upstream's bytes for any Range: the start,
the end, a suffix, open ranges, ranges across many slices (4 KiB slices here), a whole read, and
416 past the end."""

from __future__ import annotations

import pytest
import pytest_twisted

CASES = ["bytes=0-0", "bytes=0-4095", "bytes=4095-4096", "bytes=1000-13000", "bytes=-1", "bytes=-5000",
         "bytes=7000-", None]


async def _item(pw, kind):
    room = await pw.room("alice")
    if kind == "bilibili":
        return room, await pw.add(room, {"provider": "bilibili", "url": "BV1y7411Q7Eq"}), "video.mp4"
    account = await pw.link(kind)
    ref = "/movies/film.mp4" if kind == "alist" else getattr(pw.fakes, kind).ids["film"]
    item = await pw.add(room, {"provider": kind, "provider_data": {"account": account["id"], "item": ref}})
    return room, item, "video.mp4" if kind == "alist" else "video.mkv"


def _expected(data: bytes, spec: str | None) -> bytes:
    if spec is None:
        return data
    first, _, last = spec.removeprefix("bytes=").partition("-")
    if not first:
        return data[-int(last):]
    return data[int(first):(int(last) + 1 if last else len(data))]


@pytest.mark.parametrize("kind", ["alist", "emby", "jellyfin", "bilibili"])
@pytest_twisted.ensureDeferred
async def test_any_range_through_the_proxy(pw, media, kind):
    room, item, source = await _item(pw, kind)
    data = media[source].read_bytes()
    assert len(data) > 13001, len(data)
    [info] = (await pw.playback(room, item, query="?modes=proxy")).json["infos"]
    for spec in CASES * 2:  # the second pass is served from the slice cache
        got = await pw.fetch(info["url"], {"Range": spec} if spec else {})
        assert got.status == (200 if spec is None else 206), (spec, got.raw[:200])
        assert got.raw == _expected(data, spec), spec
    beyond = await pw.fetch(info["url"], {"Range": f"bytes={len(data)}-"})
    assert beyond.status == 416 and beyond.header("content-range") == f"bytes */{len(data)}"
