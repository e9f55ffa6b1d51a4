"""Password guessing against a real server process (issue 9, part 9): a name locked after five
failures, other users unaffected; a flood of logins is bounded by the hashing pool's queue (503
at once) while every other request keeps being answered, and nothing is changed by the attack."""

from __future__ import annotations

import concurrent.futures
import secrets
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration


def _root(server: Any) -> str:
    password = (server.data / "root-password").read_text().strip()
    status, body = server.request("POST", "/api/auth/login", {"name": "root", "password": password})
    assert status == 200, body
    return body["token"]


def test_a_locked_name_leaves_other_users_alone(start_server: Any) -> None:
    server = start_server()
    root = _root(server)
    for name in ("alice", "bob"):
        assert server.request("POST", "/api/users", {"name": name, "password": f"{name}-password"}, token=root)[0] == 201
    for _ in range(5):
        assert server.request("POST", "/api/auth/login", {"name": "alice", "password": "guess"})[0] == 401
    status, body = server.request("POST", "/api/auth/login", {"name": "alice", "password": "alice-password"})
    assert status == 429 and body["error"]["code"] == "rate_limited" and body["error"]["detail"]["retry_after"] > 0
    assert server.request("POST", "/api/auth/login", {"name": "bob", "password": "bob-password"})[0] == 200
    log = server.log.read_text()
    assert "guess" not in log and "alice-password" not in log  # no password reaches the log


def test_a_login_flood_is_bounded_and_everyone_else_is_served(start_server: Any, tmp_path: Path) -> None:
    """64 clients send 400 logins with fresh names (the per-address bound lifted, so every one
    would cost a hash): the hashing queue (2 threads + 4 waiting) refuses the excess with 503 at
    once, while health checks and a member's API calls all answer 200, and afterwards the users
    and rooms are as they were and a real login works."""
    config = tmp_path / "synctv.toml"
    config.write_text("[auth]\nmax_failures_per_address = 100000\nhash_threads = 2\nhash_queue = 4\n")
    server = start_server(extra=("--config", str(config)))
    root = _root(server)
    assert server.request("POST", "/api/rooms", {"name": "lounge"}, token=root)[0] == 201
    before = server.request("GET", "/api/users", token=root)[1], server.request("GET", "/api/rooms", token=root)[1]

    def guess(_: int) -> int:
        return server.request("POST", "/api/auth/login", {"name": secrets.token_hex(6), "password": "x"})[0]

    def served(_: int) -> tuple[int, int]:
        return server.request("GET", "/healthz")[0], server.request("GET", "/api/rooms/lounge", token=root)[0]

    with concurrent.futures.ThreadPoolExecutor(max_workers=64) as pool:
        flood = [pool.submit(guess, i) for i in range(400)]
        others = [pool.submit(served, i) for i in range(40)]
        flood_statuses = [f.result(timeout=120) for f in flood]
        other_statuses = [f.result(timeout=120) for f in others]
    assert set(flood_statuses) <= {401, 503} and flood_statuses.count(503) > 0, flood_statuses
    assert all(pair == (200, 200) for pair in other_statuses), other_statuses
    after = server.request("GET", "/api/users", token=root)[1], server.request("GET", "/api/rooms", token=root)[1]
    assert after == before
    password = (server.data / "root-password").read_text().strip()
    assert server.request("POST", "/api/auth/login", {"name": "root", "password": password})[0] == 200
