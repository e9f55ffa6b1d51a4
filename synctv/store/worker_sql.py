"""The background workers' statements (docs/workers.md): duration-probe claims, the playing rooms
of a node, and the cluster-once prunes. Interactions as in ``sql``; one transaction each.

Claims: ``claim_probes`` selects the unprobed items of the given rooms whose backoff has passed
and whose lease is free, and leases them to ``node`` until ``now + lease``, in one transaction.
On PostgreSQL the select is ``FOR UPDATE SKIP LOCKED``, so a second node's claim running at the
same moment skips the rows the first has locked and, once that commits, sees their leases; on
SQLite the store's transactions are ``BEGIN IMMEDIATE`` (one writer at a time), which serialises
the claims. ``finish_probe`` / ``fail_probe`` write only while ``node`` still holds the lease (a
node that lost it -- it took longer than the lease, and another node re-claimed -- writes
nothing). A killed node's lease simply runs out.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import attrs

from synctv.core.models import MediaItem, PlaybackState
from synctv.store.sql import MEDIA_SELECT, media_from_row, playback_from_row
from synctv.store.statements import Execute, Interaction

MAX_ERROR = 500


@attrs.frozen
class Claim:
    """An item leased to this node for probing; ``attempts`` failed before."""

    item: MediaItem
    attempts: int


@attrs.frozen
class PlayingRoom:
    """A room whose state plays, with what the advance needs to know."""

    room_id: str
    kind: str
    settings: dict[str, Any]
    state: PlaybackState
    duration: float | None
    provider: str | None


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" for _ in values)


def claim_probes(
    dialect: str, room_ids: Sequence[str], node: str, now_ms: int, lease_ms: int, limit: int,
    skip_providers: Sequence[str],
) -> Interaction[list[Claim]]:
    if not room_ids or limit <= 0:
        return []
    lock = " FOR UPDATE SKIP LOCKED" if dialect == "postgres" else ""
    r = yield Execute(
        f"SELECT id FROM media_items WHERE room_id IN ({_marks(room_ids)}) AND duration IS NULL "
        f"AND provider NOT IN ({_marks(skip_providers)}) AND probe_after <= ? AND probe_claim_until <= ? "
        f"ORDER BY probe_after, created_at, id LIMIT ?{lock}",
        (*room_ids, *skip_providers, int(now_ms), int(now_ms), int(limit)),
    )
    ids = [row[0] for row in r.rows]
    if not ids:
        return []
    yield Execute(
        f"UPDATE media_items SET probe_claim = ?, probe_claim_until = ? WHERE id IN ({_marks(ids)})",
        (node, int(now_ms + lease_ms), *ids),
    )
    r = yield Execute(
        f"SELECT {MEDIA_SELECT}, probe_attempts FROM media_items WHERE id IN ({_marks(ids)}) ORDER BY id", tuple(ids)
    )
    return [Claim(media_from_row(row[:13]), int(row[13])) for row in r.rows]


def finish_probe(room_id: str, media_id: str, node: str, duration: float) -> Interaction[bool]:
    r = yield Execute(
        "UPDATE media_items SET duration = ?, probe_error = NULL, probe_claim = NULL, probe_claim_until = 0 "
        "WHERE room_id = ? AND id = ? AND probe_claim = ? AND duration IS NULL",
        (float(duration), room_id, media_id, node),
    )
    return r.rowcount > 0


def fail_probe(room_id: str, media_id: str, node: str, error: str, retry_at_ms: int) -> Interaction[bool]:
    r = yield Execute(
        "UPDATE media_items SET probe_error = ?, probe_attempts = probe_attempts + 1, probe_after = ?, "
        "probe_claim = NULL, probe_claim_until = 0 WHERE room_id = ? AND id = ? AND probe_claim = ?",
        (error[:MAX_ERROR], int(retry_at_ms), room_id, media_id, node),
    )
    return r.rowcount > 0


def playing_rooms(room_ids: Sequence[str]) -> Interaction[list[PlayingRoom]]:
    """The rooms among ``room_ids`` whose state is playing, with their item's duration and provider."""
    if not room_ids:
        return []
    r = yield Execute(
        "SELECT p.media_id, p.playing, p.ended, p.position, p.rate, p.at_ms, p.version, p.event_id, "
        "p.room_id, r.kind, r.settings, m.duration, m.provider FROM playback_states p "
        "JOIN rooms r ON r.id = p.room_id "
        "LEFT JOIN media_items m ON m.id = p.media_id AND m.room_id = p.room_id "
        f"WHERE p.room_id IN ({_marks(room_ids)}) AND p.playing = ? AND p.ended = ?",
        (*room_ids, True, False),
    )
    return [
        PlayingRoom(room_id=row[8], kind=row[9], settings=json.loads(row[10]), state=playback_from_row(row[:8]),
                    duration=None if row[11] is None else float(row[11]), provider=row[12])
        for row in r.rows
    ]


def prune_bus_spill(before_ms: int) -> Interaction[int]:
    r = yield Execute("DELETE FROM bus_spill WHERE created_at < ?", (int(before_ms),))
    return max(r.rowcount, 0)


def prune_publishers(stale_before_ms: int) -> Interaction[int]:
    r = yield Execute("DELETE FROM live_publishers WHERE heartbeat_at < ?", (int(stale_before_ms),))
    return max(r.rowcount, 0)
