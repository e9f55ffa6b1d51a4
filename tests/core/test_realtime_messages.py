"""synctv.core.realtime: parsing and validating every client message type, naming the bad field."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synctv.core.errors import BadRequest, DomainError, PayloadTooLarge
from synctv.core.realtime import (
    ChatSend,
    DanmakuSend,
    Observe,
    ProfileSpec,
    RealtimeLimits,
    Telemetry,
    TimeRequest,
    Unobserve,
    UpdateRequest,
    WebRTCSignal,
    decode_frame,
    encode_message,
    message_id,
    parse_message,
)

LIMITS = RealtimeLimits()


def parse(obj: dict) -> object:
    return parse_message(obj, LIMITS)


def refused(obj: dict) -> DomainError:
    with pytest.raises(DomainError) as info:
        parse(obj)
    return info.value


def test_each_type_parses_into_its_value() -> None:
    """Every documented client message becomes its typed value, ids kept."""
    assert parse({"type": "time", "id": 1, "t0": 5}) == TimeRequest(1, 5)
    assert isinstance(parse({"type": "time", "t0": 5}).t0, int)  # echoed as sent
    assert parse({"type": "observe", "resource": "chat"}) == Observe(None, "chat")
    assert parse({"type": "observe", "id": "p", "resource": "playback", "profile": {"modes": "direct,proxy",
                  "formats": ["MP4"], "headers": False}}) == Observe(
        "p", "playback", ProfileSpec(("direct", "proxy"), ("mp4",), False))
    assert parse({"type": "unobserve", "resource": "presence"}) == Unobserve(None, "presence")
    update = parse({"type": "update", "id": 3, "action": "seek", "position": 4, "version": 2})
    assert isinstance(update, UpdateRequest) and update.update.position == 4.0 and update.update.version == 2
    assert parse({"type": "chat", "text": "hi"}) == ChatSend(None, "hi")
    assert parse({"type": "danmaku", "text": "wow", "at": 3}) == DanmakuSend(None, "wow", 3.0)
    assert parse({"type": "telemetry", "drift_ms": 1, "rtt_ms": 2.5}) == Telemetry(None, 1.0, None, None, 2.5)
    assert parse({"type": "webrtc", "to": "c1", "signal": {"sdp": "x"}}) == WebRTCSignal(None, "c1", {"sdp": "x"})


@pytest.mark.parametrize(("obj", "field"), [
    ({"type": "time"}, "t0"),
    ({"type": "time", "t0": "now"}, "t0"),
    ({"type": "time", "t0": True}, "t0"),
    ({"type": "observe", "resource": "everything"}, "resource"),
    ({"type": "observe", "resource": "playback", "profile": []}, "profile"),
    ({"type": "observe", "resource": "playback", "profile": {"headers": "yes"}}, "profile.headers"),
    ({"type": "observe", "resource": "playback", "profile": {"modes": [1]}}, "profile.modes"),
    ({"type": "update", "action": "jump", "version": 0}, "action"),
    ({"type": "update", "action": "play"}, "version"),
    ({"type": "update", "action": "rate", "rate": 9, "version": 0}, "rate"),
    ({"type": "chat", "text": 5}, "text"),
    ({"type": "chat", "text": "x" * 501}, "text"),
    ({"type": "danmaku", "text": "x" * 101, "at": 0}, "text"),
    ({"type": "danmaku", "text": "x", "at": -1}, "at"),
    ({"type": "telemetry", "rate": "1x"}, "rate"),
    ({"type": "webrtc", "signal": {}}, "to"),
    ({"type": "webrtc", "to": "c", "signal": None}, "signal"),
    ({"type": "webrtc", "to": "c" * 65, "signal": 1}, "to"),
    ({"type": "dance"}, "type"),
    ({"type": 7}, "type"),
    ({"type": "time", "t0": 1, "id": 1.5}, "id"),
    ({"type": "time", "t0": 1, "id": "i" * 65}, "id"),
    ({"type": "time", "t0": 1, "id": True}, "id"),
])
def test_bad_fields_are_named(obj: dict, field: str) -> None:
    """Each bad field is refused with bad_request naming it."""
    error = refused(obj)
    assert isinstance(error, BadRequest) and error.field == field, (error.message, error.field)


def test_a_webrtc_signal_over_the_limit_is_payload_too_large() -> None:
    """Signals are measured as compact JSON: 6 KiB is the bound."""
    assert parse({"type": "webrtc", "to": "c", "signal": "s" * (6 * 1024 - 2)})
    error = refused({"type": "webrtc", "to": "c", "signal": "s" * (6 * 1024)})
    assert isinstance(error, PayloadTooLarge) and error.field == "signal"


@pytest.mark.parametrize("payload", [b"{bad", b"[1]", b"1", b"\xff\xfe", b"NaN", b'{"a": Infinity}', b"[" * 5000])
def test_frames_that_are_not_json_objects_are_bad_requests(payload: bytes) -> None:
    """Invalid JSON, non-objects, NaN/Infinity and absurd nesting are BadRequest, never another error."""
    with pytest.raises(BadRequest):
        decode_frame(payload)


def test_message_ids_are_short_strings_or_safe_integers() -> None:
    """An id is echoed only when it is a string of at most 64 characters or an integer within 2**53."""
    assert message_id({"id": "abc"}) == "abc" and message_id({"id": -3}) == -3 and message_id({}) is None
    with pytest.raises(BadRequest):
        message_id({"id": 2**60})


def test_encoding_is_compact_utf8_and_refuses_nan() -> None:
    """Frames are compact UTF-8 JSON; NaN cannot be sent."""
    assert encode_message({"t": "é", "n": [1, 2]}) == '{"t":"é","n":[1,2]}'.encode()
    with pytest.raises(ValueError):
        encode_message({"x": float("nan")})


@settings(max_examples=300, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
                    max_leaves=15))
def test_any_json_value_parses_or_is_a_domain_error(value: object) -> None:
    """Whatever a client sends, parsing yields a message or a DomainError, never another exception."""
    try:
        payload = json.dumps(value).encode()
    except ValueError:
        return
    try:
        obj = decode_frame(payload)
        message_id(obj)
        parse(obj)
    except DomainError:
        pass
