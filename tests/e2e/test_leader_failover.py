"""Cluster-once work moves to another node when its leader dies (issue 11, part 4), with real
processes on PostgreSQL: exactly one node says it leads; after that node is killed (SIGKILL:
no clean unlock), the other takes the lock -- PostgreSQL ends the dead node's session, and with
it the advisory lock."""

from __future__ import annotations

import signal

import pytest
import pytest_twisted

from tests.e2e.harness import until

pytestmark = [pytest.mark.integration, pytest.mark.postgres]
LEADS = "leads the cluster's once-only work"


@pytest_twisted.ensureDeferred
async def test_the_leader_is_killed_and_the_other_node_takes_over(start_node, fresh_postgres_database):
    db = fresh_postgres_database().dsn
    a, b = start_node("a", db), start_node("b", db)

    def leaders() -> list[str]:
        return [node.log.name for node in (a, b) if LEADS in node.log.read_text(errors="replace")]

    first = await until(lambda: leaders(), "one node leads")
    assert len(first) == 1
    leader, other = (a, b) if first == [a.log.name] else (b, a)
    leader.kill(signal.SIGKILL)
    await until(lambda: LEADS in other.log.read_text(errors="replace"), "the other node takes over")
