"""Leader election (synctv.workers.leader) on a real PostgreSQL: one leader among nodes, handed
over when the leader stops or its session dies; SQLite's one process always leads."""

from __future__ import annotations

import time
from typing import Any

import psycopg2
import pytest
import pytest_twisted
from twisted.internet.defer import succeed
from twisted.internet.task import deferLater

from synctv.workers.leader import LOCK_KEY, Job, LeaderElection

BOUND_S = 30.0


async def until(condition: Any, what: str) -> None:
    from twisted.internet import reactor

    deadline = time.monotonic() + BOUND_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {BOUND_S}s: {what}")
        await deferLater(reactor, 0.05, lambda: None)


def node(dsn: str | None, name: str, runs: list[str], lock_key: int) -> LeaderElection:
    from twisted.internet import reactor

    def job() -> Any:
        runs.append(name)
        return succeed(None)

    return LeaderElection(dsn=dsn, jobs=[Job("count", job)], interval_s=0.2, reactor=reactor, node=name,
                          lock_key=lock_key)


@pytest.mark.postgres
@pytest_twisted.ensureDeferred
async def test_one_leader_handed_over_on_stop_and_on_a_dead_session(postgres_server_url):
    """A leads and alone runs the jobs; B takes over when A stops; when B's session is killed
    (as when its node dies or the database restarts), B stops leading, and whoever next takes
    the lock -- B after reconnecting, or C -- leads alone."""
    dsn = postgres_server_url.dsn
    key = LOCK_KEY - 1  # not the server's key: other tests' servers may share the database server
    runs: list[str] = []
    a, b = node(dsn, "a", runs, key), node(dsn, "b", runs, key)
    a.startService()
    await until(lambda: a.leader, "a leads")
    b.startService()
    try:
        await until(lambda: runs.count("a") >= 3, "a runs its jobs")
        assert not b.leader and "b" not in runs
        await a.stopService()
        await until(lambda: b.leader, "b takes over")
        c = node(dsn, "c", runs, key)
        c.startService()
        try:
            admin = psycopg2.connect(dsn)
            admin.autocommit = True
            with admin.cursor() as cur:
                cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                            ("synctv-leader-b",))
            admin.close()
            await until(lambda: b.terms >= 2 or c.leader, "a new leader after b's session died")
            from twisted.internet import reactor

            await deferLater(reactor, 0.6, lambda: None)  # three more rounds: still one leader
            assert [b.leader, c.leader].count(True) == 1
        finally:
            await c.stopService()
    finally:
        await b.stopService()
        if a.running:
            await a.stopService()


@pytest_twisted.ensureDeferred
async def test_on_sqlite_the_one_process_leads():
    runs: list[str] = []
    only = node(None, "only", runs, LOCK_KEY)
    only.startService()
    try:
        await until(lambda: runs.count("only") >= 2, "the jobs run")
        assert only.leader and only.terms == 1
    finally:
        await only.stopService()
