"""synctv.bus.InProcessBus: synchronous fan-out per channel. (Lives here until tests/ has a place
for top-level modules; it tests synctv/bus.py.)"""

from __future__ import annotations

from twisted.logger import globalLogPublisher

from synctv.bus import InProcessBus, room_channel


def test_messages_reach_only_their_channel_in_subscription_order():
    """Each subscriber of a channel gets each message once, in order; other channels get none."""
    bus = InProcessBus()
    got: list = []
    bus.subscribe("room:a", lambda m: got.append(("first", m)))
    bus.subscribe("room:a", lambda m: got.append(("second", m)))
    bus.subscribe("room:b", lambda m: got.append(("b", m)))
    bus.publish("room:a", {"type": "x"})
    assert got == [("first", {"type": "x"}), ("second", {"type": "x"})]
    bus.publish("room:none", {"type": "y"})  # nobody listens: nothing happens
    assert len(got) == 2


def test_a_failing_subscriber_is_logged_and_the_others_still_get_the_message():
    """A raising subscriber does not stop the fan-out; its failure is logged with the channel."""
    bus = InProcessBus()
    got: list = []
    events: list = []

    def broken(message):
        raise RuntimeError("subscriber bug")

    bus.subscribe("room:a", broken)
    bus.subscribe("room:a", got.append)
    globalLogPublisher.addObserver(events.append)
    try:
        bus.publish("room:a", {"type": "x"})
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert got == [{"type": "x"}]
    logged = [e for e in events if "log_failure" in e]
    assert logged and logged[0]["channel"] == "room:a" and logged[0]["log_failure"].check(RuntimeError)


def test_unsubscribe_is_idempotent_and_takes_effect_at_once():
    """After unsubscribe (called once or twice) the callback gets nothing; empty channels vanish."""
    bus = InProcessBus()
    got: list = []
    stop = bus.subscribe("room:a", got.append)
    stop()
    stop()
    bus.publish("room:a", {"type": "x"})
    assert got == [] and bus.subscriber_count("room:a") == 0


def test_subscribing_during_a_publish_applies_from_the_next_message():
    """A callback that subscribes another one does not make it see the current message."""
    bus = InProcessBus()
    got: list = []

    def first(message):
        got.append(("first", message["n"]))
        if message["n"] == 1:
            bus.subscribe("room:a", lambda m: got.append(("late", m["n"])))

    bus.subscribe("room:a", first)
    bus.publish("room:a", {"n": 1})
    bus.publish("room:a", {"n": 2})
    assert got == [("first", 1), ("first", 2), ("late", 2)]


def test_room_channel_name():
    """Room changes travel on room:{room_id}."""
    assert room_channel("abc") == "room:abc"
