"""Password-guess throttling (synctv.core.throttle): the sliding window, the two bounds, memory."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synctv.core.errors import RateLimited
from synctv.core.throttle import FailureThrottle, PasswordThrottle, ThrottleConfig, source_key

WINDOW = 300_000


def test_a_key_is_refused_after_limit_failures_until_the_oldest_leaves_the_window():
    """Five failures at t=0..4 s: refused until t=300 s (the first leaves), then one more may try."""
    throttle = FailureThrottle(5, WINDOW)
    for t in range(5):
        assert throttle.retry_after_ms("alice", t * 1000) == 0
        throttle.failed("alice", t * 1000)
    assert throttle.retry_after_ms("alice", 5000) == WINDOW - 5000
    assert throttle.retry_after_ms("bob", 5000) == 0  # other keys are untouched
    assert throttle.retry_after_ms("alice", WINDOW - 1) == 1
    assert throttle.retry_after_ms("alice", WINDOW) == 0
    throttle.failed("alice", WINDOW)
    assert throttle.retry_after_ms("alice", WINDOW) == 1000  # the second failure (t=1 s) leaves next


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 2_000), st.booleans()), max_size=60),
       st.integers(1, 4), st.integers(1, 3_000))
def test_failure_throttle_agrees_with_a_plain_count_of_the_window(events, limit, window):
    """Against a naive model (every failure kept, counted over the window) the throttle answers
    the same 'may try' and the same wait, however failures and clears interleave."""
    throttle = FailureThrottle(limit, window)
    model: dict[str, list[int]] = {}
    now = 0
    for key, step, clear in events:
        now += step
        recent = [t for t in model.get(key, []) if t > now - window]
        expected = 0 if len(recent) < limit else recent[-limit] + window - now
        assert throttle.retry_after_ms(key, now) == max(expected, 0 if expected == 0 else 1)
        if clear:
            throttle.clear(key)
            model[key] = []
        elif expected == 0:
            throttle.failed(key, now)
            model[key] = [*recent, now]


def test_memory_is_bounded_by_keys_and_by_failures_per_key():
    throttle = FailureThrottle(3, WINDOW, max_keys=100)
    for i in range(10_000):
        throttle.failed(f"name-{i}", i)
        throttle.failed("hot", i)
    assert len(throttle) == 100
    assert len(throttle._failures["hot"]) == 3


def test_password_throttle_counts_the_target_and_the_source_apart():
    """Five failures lock the name (a success would clear it); fifty from one address lock the
    address for every name; another name's attempt from that address works below that bound."""
    throttle = PasswordThrottle(ThrottleConfig(max_failures=5, max_failures_per_address=50))
    for _ in range(5):
        throttle.check("user\nalice", "10.0.0.1", 0, "login")
        throttle.failed("user\nalice", "10.0.0.1", 0)
    with pytest.raises(RateLimited) as caught:
        throttle.check("user\nalice", "10.0.0.2", 1000, "login")
    assert caught.value.detail == {"retry_after": 299} and "login" in caught.value.message
    throttle.check("user\nbob", "10.0.0.1", 1000, "login")  # same address, other name: fine
    for i in range(45):
        throttle.failed(f"user\nspray-{i}", "10.0.0.1", 1000)
    with pytest.raises(RateLimited) as caught:
        throttle.check("user\nbob", "10.0.0.1", 2000, "login")
    assert "from your address" in caught.value.message
    throttle.check("user\nbob", "10.0.0.9", 2000, "login")  # another address: fine
    throttle.succeeded("user\nalice")
    throttle.check("user\nalice", "10.0.0.2", 2000, "login")  # a success clears the name only


@pytest.mark.parametrize(("host", "key"), [
    ("192.0.2.7", "192.0.2.7"),
    ("::ffff:192.0.2.7", "192.0.2.7"),
    ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
    ("/tmp/synctv.sock", "/tmp/synctv.sock"),
])
def test_source_key_groups_an_ipv6_64_and_unwraps_mapped_addresses(host, key):
    assert source_key(host) == key
