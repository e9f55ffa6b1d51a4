"""Two real server processes on one PostgreSQL database, as behind a load balancer.

Each node has its own data directory; the token secret lives in the database, so a token from
one node is accepted by the other. Changes made on node A reach WebSocket clients of node B
through the PostgreSQL bus, and presence merges the connections of both nodes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred

from synctv.realtime.client import RealtimeClient, connect

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

BOUND_S = 30


def login(server: Any, name: str, password: str) -> str:
    status, body = server.request("POST", "/api/auth/login", {"name": name, "password": password})
    assert status == 200, body
    return body["token"]


def next_message(client: RealtimeClient, kind: str, where: Any) -> Deferred[dict[str, Any]]:
    """Fires with the first frame of type ``kind`` matching ``where`` from now on."""
    from twisted.internet import reactor

    d: Deferred[dict[str, Any]] = Deferred()

    def check(message: dict[str, Any]) -> None:
        if not d.called and message.get("type") == kind and where(message):
            remove()
            d.callback(message)

    remove = client.on_message(check)
    return d.addTimeout(BOUND_S, reactor)


def online_names(message: dict[str, Any]) -> set[str]:
    return {entry["user_name"] for entry in message["online"]}


@pytest.fixture
def two_nodes(start_server: Any, fresh_postgres_database: Any, tmp_path: Path) -> tuple[Any, Any]:
    """Node A, then node B, on one fresh PostgreSQL database, each with its own data directory."""
    db = fresh_postgres_database().dsn
    a = start_server(data=tmp_path / "node-a", db=db)
    b = start_server(data=tmp_path / "node-b", db=db)
    assert (a.data / "root-password").exists() and not (b.data / "root-password").exists()
    return a, b


@pytest_twisted.ensureDeferred
async def test_changes_and_presence_cross_nodes(two_nodes: tuple[Any, Any]):
    """A token from A works on B (HTTP and WebSocket); a PATCH on A reaches an observer on B;
    presence on each node lists the users connected to either node; chat crosses too."""
    a, b = two_nodes
    root = login(a, "root", (a.data / "root-password").read_text().strip())
    status, _ = a.request("POST", "/api/users", {"name": "alice", "password": "wonderland"}, token=root)
    assert status == 201
    status, created = b.request("POST", "/api/rooms", {"name": "shared"}, token=root)  # A's token, on B
    assert status == 201, created
    room = created["room"]["id"]
    alice = login(b, "alice", "wonderland")
    status, _ = a.request("POST", f"/api/rooms/{room}/join", {}, token=alice)  # B's token, on A
    assert status == 200
    status, media = a.request(
        "POST", f"/api/rooms/{room}/media", {"url": "http://media.example/a.mp4"}, token=root
    )
    assert status == 201

    on_b = await connect(b.url, room, root)
    on_a = await connect(a.url, room, alice)
    try:
        state = await on_b.observe("playbackState")
        both_on_b = next_message(on_b, "presence", lambda m: online_names(m) == {"root", "alice"})
        both_on_a = next_message(on_a, "presence", lambda m: online_names(m) == {"root", "alice"})
        await on_b.observe("presence")  # the reply is a presence frame too: the waiters see it
        await on_a.observe("presence")
        await both_on_b
        await both_on_a

        changed = next_message(on_b, "playbackState", lambda m: m["version"] == state["version"] + 1)
        status, patched = a.request(
            "PATCH",
            f"/api/rooms/{room}/playback-state",
            {"action": "media", "media_id": media["media"]["id"], "version": state["version"]},
            token=root,
        )
        assert status == 200, patched
        arrived = await changed
        assert {k: v for k, v in arrived.items() if k != "type"} == patched

        await on_b.observe("chat")
        said = next_message(on_b, "chat", lambda m: any(x["text"] == "hi from A" for x in m["messages"]))
        await on_a.chat("hi from A")
        message = (await said)["messages"][-1]
        assert message["from"]["user_name"] == "alice"
    finally:
        await on_a.close()
        await on_b.close()
