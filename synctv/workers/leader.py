"""Leader election: work that must run once per cluster runs on the node holding a lock.

On PostgreSQL the leader is the node holding a session-level advisory lock
(``pg_try_advisory_lock(LOCK_KEY)``) on a connection of its own, kept open while it leads. Every
``interval_s`` (``[workers] leader_s``) each node either tries to take the lock or, holding it,
checks that its connection still answers (``SELECT 1`` within ``interval_s``); a leader whose
connection fails stops leading at once and closes it. The lock goes with the session: a node
that stops unlocks it and closes the connection; a node that dies or loses the network loses it
when PostgreSQL notices the session is gone (TCP keepalives: ~1 minute at most with the defaults
below), and the next node to try takes it on its next interval. On SQLite there is one process,
and it is the leader.

While leader, each interval runs every job (``Job``: a name and a call returning a Deferred),
each failure caught and logged. Jobs are prunes, safe to repeat, so a moment with two nodes
believing they lead (the old leader's connection dead but not yet noticed) costs nothing.
The jobs (``cluster_jobs``): delete bus spill rows older than the bus' TTL, and publisher
records whose node has not sent a heartbeat for ``STALE_PUBLISHER_MS``. Tokens are signed and
not stored, so there are none to prune; chat is not persisted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs
import psycopg2.extensions
from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

LOCK_KEY = 0x5359_4E43_5456_0001  # "SYNCTV" + 1: the one cluster lock (a signed 64-bit key)
if LOCK_KEY >= 1 << 63:
    LOCK_KEY -= 1 << 64
STALE_PUBLISHER_MS = 10 * 60_000
CONNECT_KWARGS = {"connect_timeout": "5", "keepalives": "1", "keepalives_idle": "20",
                  "keepalives_interval": "10", "keepalives_count": "3"}


@attrs.frozen
class Job:
    name: str
    run: Callable[[], Deferred[Any]]


def cluster_jobs(store: Any, clock: Callable[[], int]) -> list[Job]:
    """The cluster-once prunes (see the module docstring)."""
    from synctv.bus_postgres import SPILL_TTL_MS

    return [
        Job("prune bus spill rows", lambda: store.prune_bus_spill(clock() - SPILL_TTL_MS)),
        Job("prune stale publisher records", lambda: store.prune_publishers(clock() - STALE_PUBLISHER_MS)),
    ]


class LeaderElection(Service):
    log = Logger()

    def __init__(self, *, dsn: str | None, jobs: Sequence[Job], interval_s: float, reactor: Any,
                 node: str = "", lock_key: int = LOCK_KEY) -> None:
        """``dsn``: the PostgreSQL database to elect on; None for SQLite (always the leader)."""
        self.dsn = dsn
        self.jobs = tuple(jobs)
        self.interval_s = interval_s
        self.reactor = reactor
        self.node = node
        self.lock_key = lock_key
        self.leader = False
        self.terms = 0  # times this node became leader
        self.job_runs = 0
        self._conn: Any = None
        self._loop: LoopingCall | None = None
        self._pass: Deferred[None] | None = None

    def startService(self) -> None:
        super().startService()
        self._loop = LoopingCall(self._tick)
        self._loop.clock = self.reactor
        self._loop.start(self.interval_s, now=True).addErrback(
            lambda f: self.log.failure("the leader election loop stopped", f))

    def _tick(self) -> Deferred[None]:
        self._pass = Deferred.fromCoroutine(self._round())
        return self._pass

    async def _round(self) -> None:
        try:
            await self._elect()
        except Exception as e:
            self._lose(f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}")
        if not self.leader:
            return
        for job in self.jobs:
            try:
                await job.run()
                self.job_runs += 1
            except Exception:
                self.log.failure("cluster job {job} failed; it runs again next interval", job=job.name)

    async def _elect(self) -> None:
        if self.dsn is None:
            if not self.leader:
                self.leader, self.terms = True, self.terms + 1
            return
        if self._conn is None or self._conn.is_closed():
            await self._connect()
        if self.leader:
            await self._query("SELECT 1")
            return
        rows = await self._query("SELECT pg_try_advisory_lock(%s)", (self.lock_key,))
        if rows and rows[0][0]:
            self.leader, self.terms = True, self.terms + 1
            self.log.info("this node ({node}) leads the cluster's once-only work", node=self.node)

    async def _connect(self) -> None:
        from synctv.bus_postgres import PGConnection

        self._close()
        conn = PGConnection(self.reactor, None, lambda c: self._lost(c))
        given = psycopg2.extensions.parse_dsn(self.dsn)
        kwargs = {k: v for k, v in CONNECT_KWARGS.items() if k not in given}
        kwargs.setdefault("application_name", f"synctv-leader-{self.node}"[:63])
        self._conn = conn
        try:
            await conn.connect(self.dsn, **kwargs).addTimeout(self.interval_s, self.reactor)
        except BaseException:
            self._close()
            raise

    async def _query(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        return await self._conn.runQuery(sql, params).addTimeout(self.interval_s, self.reactor)

    def _lost(self, conn: Any) -> None:
        if conn is self._conn:
            self._lose("its connection was lost")

    def _lose(self, why: str) -> None:
        if self.leader:
            self.log.warn("this node no longer leads ({why})", why=why)
        elif self.dsn is not None:
            self.log.info("leader election: {why}", why=why)
        self.leader = False
        self._close()

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.shut()

    def stopService(self) -> Deferred[None]:
        super().stopService()
        return Deferred.fromCoroutine(self._stop())

    async def _stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        if self._pass is not None and not self._pass.called:
            try:
                await self._pass
            except Exception:
                pass
        if self.leader and self._conn is not None and not self._conn.is_closed():
            try:
                await self._query("SELECT pg_advisory_unlock(%s)", (self.lock_key,))
            except Exception:
                pass  # closing the session releases it anyway
        self.leader = False
        self._close()
