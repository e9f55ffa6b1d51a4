"""Building a node's workers from ``[workers]`` (``synctv.tap`` adopts both as child services):
``scheduler`` (named ``workers``: display following, duration probe, auto-advance on this node's
active rooms) and ``leader`` (named ``leader``: the cluster-once jobs)."""

from __future__ import annotations

from typing import Any

import attrs

from synctv.config import WorkersConfig
from synctv.workers.advance import AdvanceStep
from synctv.workers.leader import LeaderElection, cluster_jobs
from synctv.workers.probe import MediaReader, ProbeStep
from synctv.workers.scheduler import WorkerScheduler
from synctv.workers.steps import DisplayFollowStep


@attrs.frozen
class NodeWorkers:
    scheduler: WorkerScheduler
    leader: LeaderElection
    probe: ProbeStep | None
    advance: AdvanceStep


def build_workers(
    config: WorkersConfig, *, actions: Any, realtime: Any, displays: Any, upstream: Any, reactor: Any,
    dsn: str | None, ffprobe: str | None = "ffprobe",
) -> NodeWorkers:
    """``realtime``: the ``ConnectionRuntime`` (its ``active_room_ids`` and ``node_id``);
    ``upstream``: the media proxy's ``UpstreamClient``; ``dsn``: the PostgreSQL database to
    elect a leader on, None on SQLite."""
    steps: list[Any] = []
    if displays is not None:
        steps.append(DisplayFollowStep(displays))
    probe = None
    if config.probe:
        probe = ProbeStep(
            actions=actions, reader=MediaReader(upstream, reactor, ffprobe=ffprobe), node=realtime.node_id,
            reactor=reactor, lease_s=config.probe_lease_s, timeout_s=config.probe_timeout_s,
            backoff_s=config.probe_backoff_s, max_backoff_s=config.probe_max_backoff_s,
            max_concurrent=config.probe_concurrency,
        )
        steps.append(probe)
    advance = AdvanceStep(actions=actions, reactor=reactor, horizon_s=config.tick_s * 1.5 + 0.05)
    steps.append(advance)
    scheduler = WorkerScheduler(active_rooms=realtime.active_room_ids, steps=steps, interval_s=config.tick_s,
                                clock=reactor)
    leader = LeaderElection(dsn=dsn, jobs=cluster_jobs(actions.store, actions.clock), interval_s=config.leader_s,
                            reactor=reactor, node=realtime.node_id)
    return NodeWorkers(scheduler, leader, probe, advance)
