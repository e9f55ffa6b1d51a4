"""The workers' statements on both backends (synctv.store.worker_sql): probe claims never hand
one item to two nodes, leases run out, only the holder records, playing rooms, prunes."""

from __future__ import annotations

import pytest_twisted
from twisted.internet.defer import DeferredList

from synctv.core.models import PlaybackState
from tests.store.conftest import T0, Builders

LEASE = 1000


@pytest_twisted.ensureDeferred
async def test_concurrent_claims_never_share_an_item_and_cover_all(store, make: Builders):
    """Two nodes claim at the same moment: the sets are disjoint and together every unprobed item
    of the room, once; items with a duration, live items and other rooms are never claimed."""
    room, other = await make.room(), await make.room()
    unprobed = {(await make.media(room, duration=None)).id for _ in range(8)}
    await make.media(room, duration=12.0)
    await make.media(room, duration=None, provider="rtmp")
    await make.media(other, duration=None)
    results = await DeferredList([store.claim_probes([room.id], node, T0, LEASE, 20, ["rtmp", "live"])
                                  for node in ("a", "b")], fireOnOneErrback=True)
    a, b = ({c.item.id for c in claims} for _, claims in results)
    assert not a & b and a | b == unprobed
    assert await store.claim_probes([room.id], "c", T0 + 1, LEASE, 20, ["rtmp", "live"]) == []


@pytest_twisted.ensureDeferred
async def test_a_lease_runs_out_and_only_its_holder_records(store, make: Builders):
    """A node that died mid-probe (never recorded): its item is claimable once the lease is over,
    and the first node's late answer then writes nothing."""
    room = await make.room()
    item = await make.media(room, duration=None)
    [claim] = await store.claim_probes([room.id], "a", T0, LEASE, 5)
    assert claim.item.id == item.id and claim.attempts == 0
    assert await store.claim_probes([room.id], "b", T0 + LEASE - 1, LEASE, 5) == []
    [again] = await store.claim_probes([room.id], "b", T0 + LEASE, LEASE, 5)
    assert again.item.id == item.id
    assert not await store.finish_probe(room.id, item.id, "a", 9.0)
    assert await store.finish_probe(room.id, item.id, "b", 9.5)
    assert (await store.get_media(room.id, item.id)).duration == 9.5
    assert await store.claim_probes([room.id], "c", T0 + 10 * LEASE, LEASE, 5) == []


@pytest_twisted.ensureDeferred
async def test_a_failure_is_shown_counted_and_retried_after_its_backoff(store, make: Builders):
    room = await make.room()
    item = await make.media(room, duration=None)
    await store.claim_probes([room.id], "a", T0, LEASE, 5)
    assert await store.fail_probe(room.id, item.id, "a", "the upstream answered HTTP 404", T0 + 30_000)
    stored = await store.get_media(room.id, item.id)
    assert stored.probe_error == "the upstream answered HTTP 404" and stored.duration is None
    assert stored.to_json()["probe_error"] == "the upstream answered HTTP 404"
    assert await store.claim_probes([room.id], "a", T0 + 29_999, LEASE, 5) == []
    [claim] = await store.claim_probes([room.id], "a", T0 + 30_000, LEASE, 5)
    assert claim.attempts == 1
    assert await store.finish_probe(room.id, item.id, "a", 3.0)
    assert (await store.get_media(room.id, item.id)).probe_error is None
    assert not await store.fail_probe(room.id, item.id, "a", "late", T0 + 99_999)  # no lease now: nothing
    assert (await store.get_media(room.id, item.id)).probe_error is None


@pytest_twisted.ensureDeferred
async def test_a_new_url_is_probed_afresh(store, make: Builders):
    """A member who fixes the URL of a failing item clears its error and its backoff."""
    room = await make.room()
    item = await make.media(room, duration=None)
    await store.claim_probes([room.id], "a", T0, LEASE, 5)
    await store.fail_probe(room.id, item.id, "a", "the upstream answered HTTP 404", T0 + 3_600_000)
    updated = await store.update_media(room.id, item.id, url="https://example.com/fixed.mp4")
    assert updated.probe_error is None
    [claim] = await store.claim_probes([room.id], "a", T0 + 1, LEASE, 5)
    assert claim.attempts == 0


@pytest_twisted.ensureDeferred
async def test_playing_rooms_reads_only_the_given_rooms_that_play(store, make: Builders):
    playing_room, paused_room, elsewhere = await make.room(), await make.room(), await make.room()
    for room in (playing_room, paused_room, elsewhere):
        item = await make.media(room, duration=42.0)
        state = PlaybackState(media_id=item.id, playing=room is not paused_room, at_ms=T0, version=1)
        assert await store.set_playback(room.id, state, 0)
    found = await store.playing_rooms([playing_room.id, paused_room.id])
    assert [(r.room_id, r.kind, r.duration, r.provider, r.state.version) for r in found] == [
        (playing_room.id, "watch", 42.0, "direct", 1)]
    assert await store.playing_rooms([]) == []


@pytest_twisted.ensureDeferred
async def test_prunes_delete_only_old_rows(store, make: Builders):
    await store.run_query("INSERT INTO bus_spill (id, payload, created_at) VALUES (?, ?, ?)", ("old", "{}", T0))
    await store.run_query("INSERT INTO bus_spill (id, payload, created_at) VALUES (?, ?, ?)", ("new", "{}", T0 + 5))
    assert await store.prune_bus_spill(T0 + 1) == 1
    assert [row[0] for row in await store.run_query("SELECT id FROM bus_spill")] == ["new"]
