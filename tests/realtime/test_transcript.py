"""docs/realtime.md's example transcript stays true: replayed against a live server, every answer
has the documented fields in the documented order and the documented values where the example
gives real ones (not ``...`` placeholders)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest_twisted

from tests.realtime.conftest import RT

DOC = Path(__file__).resolve().parents[2] / "docs" / "realtime.md"
STABLE = {"type", "id", "code", "message", "field", "playing", "ended", "position", "rate", "version", "t0",
          "user_name", "connections", "text", "resource", "action"}


def transcript() -> list[tuple[str, Any]]:
    text = DOC.read_text()
    block = text.split("## Example transcript", 1)[1].split("```", 2)[1]
    steps = []
    for line in block.strip().splitlines():
        direction, _, body = line.partition(" ")
        body = body.strip()
        if not body.startswith("{"):
            continue  # the upgrade lines
        body = re.sub(r"\{\.\.\.[^{}]*\}", "{}", body)  # {...} and {...version 4...}
        steps.append((direction, json.loads(body)))
    return steps


def same_shape(doc: Any, actual: Any, where: str) -> None:
    if isinstance(doc, dict) and doc:
        assert isinstance(actual, dict), where
        assert list(actual)[: len(doc)] == list(doc) and set(actual) == set(doc), (where, list(doc), list(actual))
        for key, value in doc.items():
            if key in STABLE and not (isinstance(value, str) and value.endswith("...")):
                if not isinstance(value, (dict, list)):
                    assert json.dumps(actual[key]) == json.dumps(value), (where, key, value, actual[key])
            same_shape(value, actual[key], f"{where}.{key}")
    elif isinstance(doc, list) and doc:
        assert isinstance(actual, list) and len(actual) == len(doc), where
        for n, (d, a) in enumerate(zip(doc, actual, strict=True)):
            same_shape(d, a, f"{where}[{n}]")


@pytest_twisted.ensureDeferred
async def test_the_documented_transcript_matches_the_server(rt: RT) -> None:
    """Each ``<-`` line of the example is what the server answers to the ``->`` lines before it."""
    steps = transcript()
    assert len(steps) >= 10
    room = await rt.world.room("alice", "movie-night")
    media = await rt.world.media(room)
    version = 0
    for step in ({"action": "media", "media_id": media["id"]}, {"action": "play"}, {"action": "pause"}):
        r = await rt.world.client.patch(f"/api/rooms/{room['id']}/playback-state", {**step, "version": version},
                                        token=rt.world.tokens["alice"])
        version = r.json["version"]
    assert version == 3  # as in the example
    client = await rt.connect("movie-night", token=rt.world.tokens["alice"], how="protocol")
    for n, (direction, frame) in enumerate(steps):
        if direction == "->":
            client.send_json(frame)
        else:
            same_shape(frame, await client.next(), f"line {n}")
