"""synctv.realtime.client, the parts without a connection: clock-sync arithmetic and URLs."""

from __future__ import annotations

import pytest

from synctv.realtime.client import ClockSample, best_sample, clock_sample, websocket_url


def test_clock_sample_follows_the_documented_formulas():
    """offset = ((t1 - t0) + (t2 - t3)) / 2 and round trip = (t3 - t0) - (t2 - t1)."""
    # the server clock is 500 ms ahead; 10 ms each way; the server holds the request 2 ms
    t0 = 1000.0
    t1 = t0 + 10 + 500
    t2 = t1 + 2
    t3 = t0 + 22
    sample = clock_sample(t0, t1, t2, t3)
    assert sample == ClockSample(offset_ms=500.0, rtt_ms=20.0)


def test_asymmetric_delay_shows_up_as_half_the_difference():
    """With 30 ms out and 10 ms back, the offset errs by (30 - 10) / 2 = 10 ms."""
    sample = clock_sample(0.0, 30.0, 30.0, 40.0)
    assert sample.offset_ms == 10.0 and sample.rtt_ms == 40.0


def test_integer_server_times_count_from_the_middle_of_their_millisecond():
    """Server times are truncated whole milliseconds, so integers get half a millisecond added."""
    sample = clock_sample(0.0, 10, 10, 20.0)
    assert sample == ClockSample(offset_ms=0.5, rtt_ms=20.0)


def test_a_round_trip_below_zero_from_truncated_server_times_counts_as_zero():
    """t2 - t1 can exceed the true round trip by a truncated millisecond; the rtt is clamped at 0."""
    sample = clock_sample(100.0, 50, 51, 100.4)
    assert sample.rtt_ms == 0.0


def test_the_sample_with_the_smallest_round_trip_wins():
    """best_sample keeps the minimum round trip, not the mean or the latest."""
    samples = [ClockSample(12.0, 9.0), ClockSample(3.0, 1.5), ClockSample(-40.0, 80.0)]
    assert best_sample(samples) == ClockSample(3.0, 1.5)


@pytest.mark.parametrize(
    ("server", "room", "url"),
    [
        ("http://127.0.0.1:8080", "movie-night", "ws://127.0.0.1:8080/ws/rooms/movie-night"),
        ("https://watch.example.com/prefix/", "a b/c", "wss://watch.example.com/prefix/ws/rooms/a%20b%2Fc"),
        ("ws://h:1/ws/rooms/given", "ignored", "ws://h:1/ws/rooms/given"),
    ],
)
def test_websocket_url_from_a_server_url(server, room, url):
    """http(s) becomes ws(s), the room is one percent-encoded segment, a full ws URL is kept."""
    assert websocket_url(server, room) == url


def test_websocket_url_refuses_other_schemes():
    """A URL that is not http(s) or ws(s) is a ValueError naming it."""
    with pytest.raises(ValueError, match="ftp://x"):
        websocket_url("ftp://x", "r")
