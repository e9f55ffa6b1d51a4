"""Plain rendering: numbers, the playback line in each state, empty lists."""

from __future__ import annotations

import io
import json

from synctv.cli import output
from tests.cli.stub import state


def test_number_keeps_one_to_three_decimals() -> None:
    """12.3 -> '12.3', 12 -> '12.0', 1.25 -> '1.25', 0.1234 -> '0.123'; non-numbers -> '-'."""
    assert [output.number(v) for v in (12.3, 12, 1.25, 0.1234, None, True)] == \
        ["12.3", "12.0", "1.25", "0.123", "-", "-"]


def test_playback_line_states() -> None:
    """paused / ended / no media / an event's scheduled start are each told apart."""
    assert output.playback_line(state(3)).startswith("paused  0.0s at ")
    assert output.playback_line(state(3, ended=True, playing=True)).startswith("ended  ")
    assert output.playback_line(state(3, media_id=None)) == "no media  v3"
    assert output.playback_line(state(3, playing=True, event_id="e1")).endswith("media m1  v3  event e1")


def test_format_ms_clock_has_milliseconds() -> None:
    """`at` times carry milliseconds; a non-number prints '-'."""
    assert output.format_ms(1_763_712_000_123, clock=True).endswith(".123")
    assert output.format_ms(None) == "-"


def test_emit_json_is_one_line_and_plain_can_be_empty() -> None:
    """--json writes one JSON line (unicode kept); an empty list renders its 'no ...' line."""
    out = io.StringIO()
    output.emit({"rooms": [{"name": "kino ü"}]}, output.render_rooms, json_mode=True, out=out)
    assert out.getvalue().count("\n") == 1 and json.loads(out.getvalue())["rooms"][0]["name"] == "kino ü"
    out = io.StringIO()
    output.emit({"rooms": []}, output.render_rooms, json_mode=False, out=out)
    assert out.getvalue() == "no rooms\n"
