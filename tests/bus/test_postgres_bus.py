"""synctv.bus_postgres.PostgresBus: LISTEN/NOTIFY between nodes on one real PostgreSQL database.

Every test starts real buses (two dedicated connections each) on the session's migrated database
and waits for events (messages arriving), never for time to pass.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg2
import pytest
import pytest_twisted
from twisted.internet.defer import Deferred
from twisted.logger import globalLogPublisher

from synctv.bus_postgres import GAP_TYPE, PG_CHANNEL, PostgresBus

pytestmark = pytest.mark.postgres

BOUND_S = 20  # generous: an expected event that has not happened by then is a failure


class Inbox:
    """A subscriber that records messages and fires Deferreds once enough have arrived."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self._waiters: list[tuple[Any, Deferred[list[dict[str, Any]]]]] = []

    def __call__(self, message: dict[str, Any]) -> None:
        self.messages.append(message)
        for entry in list(self._waiters):
            predicate, d = entry
            if predicate(self.messages):
                self._waiters.remove(entry)
                d.callback(list(self.messages))

    def until(self, predicate: Any) -> Deferred[list[dict[str, Any]]]:
        from twisted.internet import reactor

        d: Deferred[list[dict[str, Any]]] = Deferred()
        if predicate(self.messages):
            d.callback(list(self.messages))
            return d
        self._waiters.append((predicate, d))
        return d.addTimeout(BOUND_S, reactor)

    def count(self, n: int) -> Deferred[list[dict[str, Any]]]:
        return self.until(lambda got: len(got) >= n)

    def of_type(self, kind: str) -> Deferred[list[dict[str, Any]]]:
        return self.until(lambda got: any(m.get("type") == kind for m in got))


def sql(url: Any, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = psycopg2.connect(url.dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def kill(url: Any, bus: PostgresBus, role: str) -> int:
    """pg_terminate_backend the bus's ``role`` ("listener" or "publisher") connection."""
    rows = sql(
        url,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s",
        (f"synctv-bus-{role}-{bus.node_id}",),
    )
    return int(rows[0][0])


@pytest.fixture
def bus_url(postgres_server_url: Any) -> Any:
    sql(postgres_server_url, "DELETE FROM bus_spill")
    return postgres_server_url


@pytest.fixture
def buses(bus_url: Any) -> Iterator[Any]:
    """``await buses(n)`` -> n started PostgresBus on ``bus_url``; all stopped at teardown."""
    started: list[PostgresBus] = []

    async def make(n: int = 1, **kwargs: Any) -> list[PostgresBus]:
        made = [PostgresBus(bus_url.dsn, **kwargs) for _ in range(n)]
        for bus in made:
            await bus.start()
            started.append(bus)
        return made

    yield make
    for bus in started:
        pytest_twisted.blockon(bus.stop())


@pytest_twisted.ensureDeferred
async def test_two_nodes_deliver_to_each_other_and_themselves_in_one_order(buses):
    """Each node's subscriber gets both nodes' messages (its own included, through PostgreSQL),
    each node's in publish order, and both nodes see the same overall order."""
    a, b = await buses(2)
    got_a, got_b = Inbox(), Inbox()
    a.subscribe("room:r1", got_a)
    b.subscribe("room:r1", got_b)
    for i in range(40):
        a.publish("room:r1", {"type": "t", "from": "a", "i": i})
        b.publish("room:r1", {"type": "t", "from": "b", "i": i})
    assert got_a.messages == [] and got_b.messages == []  # nothing is delivered synchronously
    seen_a = await got_a.count(80)
    seen_b = await got_b.count(80)
    assert seen_a == seen_b
    for sender in ("a", "b"):
        assert [m["i"] for m in seen_a if m["from"] == sender] == list(range(40))


@pytest_twisted.ensureDeferred
async def test_messages_reach_only_their_channel(buses):
    """A subscriber of one channel never sees another channel's messages; unsubscribe stops delivery."""
    a, b = await buses(2)
    one, two = Inbox(), Inbox()
    stop_one = b.subscribe("room:one", one)
    b.subscribe("room:two", two)
    a.publish("room:one", {"type": "x", "n": 1})
    a.publish("room:two", {"type": "x", "n": 2})
    await two.count(1)
    await one.count(1)
    stop_one()
    a.publish("room:one", {"type": "x", "n": 3})
    a.publish("room:two", {"type": "x", "n": 4})
    await two.count(2)
    assert [m["n"] for m in one.messages] == [1]
    assert [m["n"] for m in two.messages] == [2, 4]


@pytest_twisted.ensureDeferred
async def test_big_messages_spill_and_arrive_intact_in_order(bus_url, buses):
    """A message over the NOTIFY limit goes through bus_spill and arrives equal to what was sent,
    between the small messages sent before and after it."""
    a, b = await buses(2)
    got = Inbox()
    b.subscribe("room:big", got)
    big = {"type": "chat", "text": "ß字🙂" * 5000, "nested": {"list": list(range(2000))}}
    assert len(json.dumps(big, ensure_ascii=False).encode()) > 8000
    a.publish("room:big", {"type": "before"})
    a.publish("room:big", big)
    a.publish("room:big", {"type": "after"})
    seen = await got.count(3)
    assert [m["type"] for m in seen] == ["before", "chat", "after"]
    assert seen[1] == big
    assert a.spilled == 1
    rows = sql(bus_url, "SELECT count(*) FROM bus_spill")
    assert rows[0][0] == 1


@pytest_twisted.ensureDeferred
async def test_old_spill_rows_are_purged(bus_url, buses):
    """purge_spill deletes rows older than a minute by the node's clock and keeps newer ones."""
    now = [1_700_000_000_000.0]
    (a,) = await buses(1, wall_ms=lambda: now[0])
    got = Inbox()
    a.subscribe("room:p", got)
    a.publish("room:p", {"type": "big", "blob": "x" * 9000})
    await got.count(1)
    now[0] += 30_000
    await a.purge_spill()
    assert sql(bus_url, "SELECT count(*) FROM bus_spill")[0][0] == 1
    now[0] += 31_000
    await a.purge_spill()
    assert sql(bus_url, "SELECT count(*) FROM bus_spill")[0][0] == 0


@pytest_twisted.ensureDeferred
async def test_killed_listener_reconnects_signals_a_gap_and_delivers_later_messages(bus_url, buses):
    """After pg_terminate_backend of B's LISTEN connection, B reconnects, every channel with
    subscribers gets busGap (room channels with their room_id) and on_gap observers are called;
    messages published afterwards arrive."""
    a, b = await buses(2)
    got, other = Inbox(), Inbox()
    b.subscribe("room:g", got)
    b.subscribe("lobby", other)
    reasons: list[str] = []
    b.on_gap(reasons.append)
    a.publish("room:g", {"type": "first"})
    await got.count(1)
    assert kill(bus_url, b, "listener") == 1
    await got.of_type(GAP_TYPE)
    gap = next(m for m in got.messages if m["type"] == GAP_TYPE)
    assert gap == {"type": GAP_TYPE, "channel": "room:g", "reason": "reconnected", "room_id": "g"}
    await other.of_type(GAP_TYPE)
    assert reasons == ["reconnected"]
    a.publish("room:g", {"type": "later"})
    seen = await got.until(lambda m: m[-1].get("type") == "later")
    assert [m["type"] for m in seen] == ["first", GAP_TYPE, "later"]


@pytest_twisted.ensureDeferred
async def test_killed_publisher_reconnects_and_sends_what_was_queued(bus_url, buses):
    """A publish whose connection was terminated is sent again once the publisher reconnects;
    receivers get each message exactly once, in order."""
    a, b = await buses(2)
    got = Inbox()
    b.subscribe("room:p", got)
    a.publish("room:p", {"type": "m", "i": 0})
    await got.count(1)
    assert kill(bus_url, a, "publisher") == 1
    for i in range(1, 6):
        a.publish("room:p", {"type": "m", "i": i})
    seen = await got.count(6)
    assert [m["i"] for m in seen] == list(range(6))


@pytest_twisted.ensureDeferred
async def test_a_failing_subscriber_does_not_stop_the_others(buses):
    """A subscriber that raises is logged with its channel; other subscribers, and later
    messages, still arrive."""
    (a,) = await buses(1)
    got = Inbox()
    events: list[dict[str, Any]] = []

    def broken(message: dict[str, Any]) -> None:
        raise RuntimeError("subscriber bug")

    a.subscribe("room:f", broken)
    a.subscribe("room:f", got)
    globalLogPublisher.addObserver(events.append)
    try:
        a.publish("room:f", {"type": "x", "n": 1})
        a.publish("room:f", {"type": "x", "n": 2})
        seen = await got.count(2)
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert [m["n"] for m in seen] == [1, 2]
    failures = [e for e in events if "log_failure" in e and e.get("channel") == "room:f"]
    assert len(failures) == 2 and failures[0]["log_failure"].check(RuntimeError)


@pytest_twisted.ensureDeferred
async def test_a_sequence_jump_is_signalled_as_a_gap(buses):
    """When a node's sequence skips numbers (messages it gave up on), receivers signal a gap
    before the next message."""
    a, b = await buses(2)
    got = Inbox()
    b.subscribe("room:s", got)
    a.publish("room:s", {"type": "one"})
    await got.count(1)
    a._seq += 3  # as if three publishes had been dropped
    a.publish("room:s", {"type": "two"})
    seen = await got.count(3)
    assert [m["type"] for m in seen] == ["one", GAP_TYPE, "two"]
    assert seen[1]["reason"] == "missed"


@pytest_twisted.ensureDeferred
async def test_foreign_and_malformed_notifications_are_ignored(bus_url, buses):
    """A NOTIFY on the bus channel that is not a bus envelope is dropped with a log line; the bus
    keeps delivering."""
    (a,) = await buses(1)
    got = Inbox()
    a.subscribe("room:m", got)
    sql(bus_url, "SELECT pg_notify(%s, %s)", (PG_CHANNEL, "not json"))
    sql(bus_url, "SELECT pg_notify(%s, %s)", (PG_CHANNEL, '{"c": 1}'))
    a.publish("room:m", {"type": "fine"})
    seen = await got.count(1)
    assert seen == [{"type": "fine"}]


@pytest_twisted.ensureDeferred
async def test_unserialisable_message_fails_at_publish_without_a_gap(buses):
    """publish raises TypeError (or ValueError) for a message that cannot be encoded, and takes no
    sequence number (so receivers see no gap)."""
    (a,) = await buses(1)
    got = Inbox()
    a.subscribe("room:u", got)
    a.publish("room:u", {"type": "first"})
    await got.count(1)
    with pytest.raises(TypeError):
        a.publish("room:u", {"type": "bad", "value": object()})
    with pytest.raises(ValueError):  # a lone surrogate cannot be sent as UTF-8
        a.publish("room:u", {"type": "bad", "text": "\ud800"})
    a.publish("room:u", {"type": "good"})
    seen = await got.count(2)
    assert seen == [{"type": "first"}, {"type": "good"}]


@pytest_twisted.ensureDeferred
async def test_stop_sends_what_is_queued(buses, bus_url):
    """Messages published just before stop() still reach the other node."""
    a, b = await buses(2)
    got = Inbox()
    b.subscribe("room:z", got)
    for i in range(10):
        a.publish("room:z", {"type": "m", "i": i})
    await a.stop()
    seen = await got.count(10)
    assert [m["i"] for m in seen] == list(range(10))


@pytest_twisted.ensureDeferred
async def test_start_fails_clearly_when_the_database_is_unreachable():
    """start() errs (no hang, no retry loop) when the server refuses connections."""
    bus = PostgresBus("postgresql://postgres@127.0.0.1:1/nothing?connect_timeout=3")
    with pytest.raises(psycopg2.OperationalError):
        await bus.start()
