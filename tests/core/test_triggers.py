"""UDP trigger matching, source rules and rate-limited logging (pure, synctv.core.triggers)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synctv.core.displays import DisplayEvent, check_payload, parse_networks, video_id_of
from synctv.core.errors import BadRequest
from synctv.core.triggers import LogLimiter, decide, host_in, match, normalize_payload, source_allowed


def event(name: str, payload: str | None, sources: tuple[str, ...] = (), port: int = 7777) -> DisplayEvent:
    return DisplayEvent(id=name, name=name, room_id="r", media_id="m", udp_port=port, udp_payload=payload,
                        allowed_sources=sources)


@pytest.mark.parametrize(("raw", "normalized"), [
    (b"SHOW_START", b"SHOW_START"),
    (b"SHOW_START\n", b"SHOW_START"),
    (b"SHOW_START\r\n", b"SHOW_START"),
    (b"SHOW_START\r\n\r\n", b"SHOW_START"),
    (b"SHOW_START \n", b"SHOW_START "),  # only CR and LF go
    (b"\nSHOW_START", b"\nSHOW_START"),  # only trailing ones
    (b"", b""),
])
def test_trailing_cr_lf_is_stripped(raw, normalized):
    """Show controllers often end packets with CR/LF; only those trailing bytes are removed."""
    assert normalize_payload(raw) == normalized


def test_matching_is_exact_after_stripping():
    """Case, spaces, prefixes and suffixes all matter; several events may share a payload."""
    start, stop, twin = event("start", "SHOW_START"), event("stop", "SHOW_STOP"), event("twin", "SHOW_START")
    events = [start, stop, twin]
    assert match(b"SHOW_START\r\n", events) == [start, twin]
    assert match(b"SHOW_STOP", events) == [stop]
    for wrong in (b"show_start", b"SHOW_START ", b" SHOW_START", b"SHOW_STARTX", b"SHOW", b"", b"\x00"):
        assert match(wrong, events) == [], wrong


def test_non_ascii_payloads_match_as_utf8():
    """A payload is matched as its UTF-8 bytes."""
    cue = event("cue", "Szene 3 \u00e9 Start")
    assert match("Szene 3 \u00e9 Start\n".encode(), [cue]) == [cue]
    assert match("Szene 3 \u00e9 Start".encode("latin-1", "replace"), [cue]) == []


def test_events_without_a_payload_never_match():
    """An event with no UDP payload is HTTP-only."""
    assert match(b"", [event("http-only", None)]) == []


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_match_only_their_own_payload(data):
    """Whatever arrives, matching answers without raising, and only an equal payload matches."""
    target = event("t", "SHOW_START")
    assert (match(data, [target]) == [target]) == (data.rstrip(b"\r\n") == b"SHOW_START")
    decide(data, "10.0.0.1", [target])


def test_decide_splits_by_source():
    """A matching packet fires events that allow its source and is refused by the others."""
    open_ev = event("open", "GO")
    lan_ev = event("lan", "GO", ("192.168.1.0/24",))
    decision = decide(b"GO\n", "10.0.0.9", [open_ev, lan_ev])
    assert decision.fire == (open_ev,) and decision.refused == (lan_ev,) and not decision.unknown
    decision = decide(b"GO", "192.168.1.20", [open_ev, lan_ev])
    assert decision.fire == (open_ev, lan_ev) and decision.refused == ()
    assert decide(b"NOPE", "192.168.1.20", [open_ev, lan_ev]).unknown


@pytest.mark.parametrize(("host", "inside"), [
    ("192.168.1.7", True),
    ("192.168.2.7", False),
    ("::ffff:192.168.1.7", True),  # IPv4-mapped, as dual-stack sockets report it
    ("fd00::1", True),
    ("fe80::1%eth0", False),
    ("not-an-ip", False),
    ("", False),
])
def test_host_in_networks(host, inside):
    """Addresses as sockets report them are compared with the configured networks."""
    assert host_in(host, parse_networks(["192.168.1.0/24", "fd00::/8"])) is inside


def test_no_networks_allows_every_source_but_never_grants_lan():
    """An event without allowed_sources takes any source; an empty lan_networks holds nobody."""
    assert source_allowed("203.0.113.5", ())
    assert not host_in("127.0.0.1", ())


@pytest.mark.parametrize("bad", ["300.1.1.1/24", "lan", "192.168.1.0/33", ""])
def test_bad_networks_are_bad_requests(bad):
    """A malformed CIDR names the field."""
    with pytest.raises(BadRequest) as info:
        parse_networks([bad])
    assert info.value.field == "allowed_sources"


@pytest.mark.parametrize("bad", ["", "x" * 1025, "A\x00B", "SHOW\n", "SHOW\r"])
def test_unusable_payloads_are_refused(bad):
    """Empty, too long, NUL, or ending in a line break (it could never match)."""
    with pytest.raises(BadRequest):
        check_payload(bad)
    assert check_payload("SHOW START\tnow") == "SHOW START\tnow"


def test_upload_urls_name_a_video():
    """upload:<id> names a video; anything else does not."""
    assert video_id_of("upload:abc123") == "abc123"
    assert video_id_of("upload:") is None and video_id_of("upload:../x") is None
    assert video_id_of("https://h/upload:abc") is None


def test_log_limiter_allows_one_line_per_interval_and_counts_the_rest():
    """The first line passes; repeats within the interval are counted and reported with the next."""
    limiter = LogLimiter(interval_ms=1000)
    assert limiter.allow("k", 0) == 0
    assert limiter.allow("k", 10) is None
    assert limiter.allow("k", 999) is None
    assert limiter.allow("other", 999) == 0
    assert limiter.allow("k", 1000) == 2
    assert limiter.allow("k", 1500) is None


def test_log_limiter_memory_is_bounded():
    """A flood of distinct sources cannot grow the limiter without bound."""
    limiter = LogLimiter(interval_ms=1000, max_keys=10)
    for i in range(100):
        limiter.allow(f"host{i}", 0)
    assert len(limiter._last) <= 10
