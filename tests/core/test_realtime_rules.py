"""synctv.core.realtime: the token-bucket rate limiter, the version-ordering decision and presence
merging, all with time passed in."""

from __future__ import annotations

from synctv.core.realtime import (
    PresenceBoard,
    PresenceEntry,
    RateLimiter,
    RateVerdict,
    Relay,
    local_presence,
    relay_decision,
)


def test_the_bucket_allows_a_burst_then_refuses_then_refills() -> None:
    """``burst`` messages pass at once, the next is refused; after 1/rate seconds one more passes."""
    limiter = RateLimiter(rate=2.0, burst=3, strikes_to_close=100)
    assert [limiter.check(10.0) for _ in range(3)] == [RateVerdict.accept] * 3
    assert limiter.check(10.0) is RateVerdict.refuse
    assert limiter.check(10.5) is RateVerdict.accept
    assert limiter.check(10.5) is RateVerdict.refuse


def test_a_sender_that_keeps_going_is_told_to_close() -> None:
    """Refusals are strikes; past ``strikes_to_close`` (strikes leak one per second) the verdict is close."""
    limiter = RateLimiter(rate=1.0, burst=1, strikes_to_close=3)
    assert limiter.check(0.0) is RateVerdict.accept
    verdicts = [limiter.check(0.0) for _ in range(4)]
    assert verdicts == [RateVerdict.refuse] * 3 + [RateVerdict.close]


def test_slightly_over_the_rate_is_refused_but_never_closed() -> None:
    """One message a second over the rate is refused each second and the strikes leak away."""
    limiter = RateLimiter(rate=10.0, burst=10, strikes_to_close=5)
    verdicts = []
    for second in range(60):
        for n in range(11):
            verdicts.append(limiter.check(second + n / 11))
    assert RateVerdict.close not in verdicts and RateVerdict.refuse in verdicts


def test_time_going_backwards_does_not_refill() -> None:
    """An earlier time than the last one never adds tokens."""
    limiter = RateLimiter(rate=1.0, burst=1, strikes_to_close=100)
    assert limiter.check(100.0) is RateVerdict.accept
    assert limiter.check(50.0) is RateVerdict.refuse


def test_relay_decision_sends_the_next_drops_the_old_and_rereads_on_gaps() -> None:
    """N+1 is sent, <= N dropped, N+2 and beyond (or nothing sent yet) is a gap."""
    assert relay_decision(4, 5) is Relay.send
    assert relay_decision(4, 4) is Relay.drop and relay_decision(4, 2) is Relay.drop
    assert relay_decision(4, 6) is Relay.gap and relay_decision(None, 0) is Relay.gap


def test_local_presence_groups_connections_by_user() -> None:
    """Entries are one per user, connection ids sorted."""
    entries = local_presence([("c2", "u1", "ann"), ("c1", "u1", "ann"), ("c3", "u2", "bo")])
    assert entries == (PresenceEntry("u1", "ann", ("c1", "c2")), PresenceEntry("u2", "bo", ("c3",)))


def test_the_board_merges_nodes_and_expires_silent_ones() -> None:
    """The merged list sums a user's connections over nodes; a node silent past expire_ms is dropped,
    the local node never; each change bumps the revision."""
    board = PresenceBoard("local", expire_ms=30_000)
    assert board.put("local", (PresenceEntry("u1", "ann", ("a",)),), 0) is True
    assert board.put("far", (PresenceEntry("u1", "ann", ("b",)), PresenceEntry("u2", "bo", ("c",))), 1_000)
    online = board.online()
    assert [(u["user_name"], u["connections"], u["connection_ids"]) for u in online] == [
        ("ann", 2, ["a", "b"]), ("bo", 1, ["c"])]
    assert board.has_connection("c") and not board.has_connection("z")
    revision = board.revision
    assert board.put("far", (PresenceEntry("u1", "ann", ("b",)), PresenceEntry("u2", "bo", ("c",))), 2_000) is False
    assert board.revision == revision
    assert board.expire(31_000) is False  # heard from at 2_000: still fresh
    assert board.expire(32_001) is True
    assert [u["user_name"] for u in board.online()] == ["ann"] and board.revision == revision + 1
    assert board.expire(10**9) is False  # the local node stays


def test_a_node_announcing_nobody_is_forgotten_at_once() -> None:
    """An empty announcement (the node's last connection left) removes that node immediately."""
    board = PresenceBoard("local", expire_ms=30_000)
    board.put("far", (PresenceEntry("u2", "bo", ("c",)),), 0)
    assert board.knows("far")
    assert board.put("far", (), 1) is True
    assert not board.knows("far") and board.online() == []
