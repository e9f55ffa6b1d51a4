"""Password guesses over HTTP (issue 9, part 9): login and room passwords are throttled per name
(or room) and per source address with 429 ``rate_limited`` and ``Retry-After``, before any
hashing; the hashing pool is bounded. The Site listens on 127.0.0.1, so every request here comes
from one address."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet.defer import gatherResults

from synctv.core.errors import Unavailable
from synctv.passwords import PasswordHasher
from tests.api.api_support import PASSWORD


async def _login(world, name: str, password: str):
    return await world.client.post("/api/auth/login", {"name": name, "password": password})


@pytest_twisted.ensureDeferred
async def test_five_failed_logins_lock_the_name_not_the_other_users(world):
    """After 5 wrong passwords for alice, even her right one gets 429 with Retry-After (and no
    hashing is spent on it); bob, from the same address, logs in; 5 minutes later alice does."""
    for _ in range(5):
        r = await _login(world, "alice", "wrong")
        assert r.status == 401 and r.error()["code"] == "unauthorized"
    runs = world.actions.hasher.runs
    r = await _login(world, "alice", PASSWORD)
    assert r.status == 429 and r.error()["code"] == "rate_limited"
    assert r.header("Retry-After") == "300" and r.error()["detail"] == {"retry_after": 300}
    assert world.actions.hasher.runs == runs  # refused before any scrypt work
    assert (await _login(world, "bob", PASSWORD)).status == 200
    world.clock.advance(300_000)
    assert (await _login(world, "alice", PASSWORD)).status == 200


@pytest_twisted.ensureDeferred
async def test_unknown_names_count_too_and_a_spray_across_names_locks_the_address(world):
    """Failures on names that do not exist count like the others (nothing tells them apart);
    50 failures from one address, spread over names, refuse that address for every name."""
    for i in range(5):
        assert (await _login(world, "nobody", f"guess-{i}")).status == 401
    assert (await _login(world, "nobody", "x")).status == 429
    for i in range(44):
        assert (await _login(world, f"spray-{i}", "x")).status == 401
    assert (await _login(world, "carol", PASSWORD)).status == 200  # 49 failures: still below the bound
    assert (await _login(world, "spray-x", "x")).status == 401  # the 50th
    r = await _login(world, "carol", PASSWORD)
    assert r.status == 429 and "from your address" in r.error()["message"]


@pytest_twisted.ensureDeferred
async def test_room_passwords_are_throttled_per_room(world):
    """Five wrong room passwords lock that room's password for 5 minutes (429), other rooms not."""
    room = await world.room("alice", name="vault", password="open sesame")
    other = await world.room("alice", name="den", password="knock")
    for _ in range(5):
        r = await world.client.post(f"/api/rooms/{room['id']}/join", {"password": "nope"}, token=world.tokens["bob"])
        assert r.status == 403 and r.error()["field"] == "password"
    r = await world.client.post(f"/api/rooms/{room['id']}/join", {"password": "open sesame"},
                                token=world.tokens["carol"])
    assert r.status == 429 and r.header("Retry-After") is not None
    r = await world.client.post(f"/api/rooms/{other['id']}/join", {"password": "knock"}, token=world.tokens["carol"])
    assert r.status == 200
    world.clock.advance(300_000)
    r = await world.client.post(f"/api/rooms/{room['id']}/join", {"password": "open sesame"},
                                token=world.tokens["carol"])
    assert r.status == 200


@pytest_twisted.ensureDeferred
async def test_the_hashing_pool_refuses_work_past_its_queue_at_once():
    """With 1 thread and a queue of 2, a fourth concurrent hash fails at once with 503-style
    Unavailable; the three admitted ones finish and the pool takes work again."""
    hasher = PasswordHasher(threads=1, queue=2, scrypt_n=2**10)
    try:
        admitted = [hasher.hash(f"pw{i}") for i in range(3)]
        refused = hasher.hash("one too many")
        failures: list[Exception] = []
        refused.addErrback(lambda f: failures.append(f.value))
        assert len(failures) == 1 and isinstance(failures[0], Unavailable)
        hashes = await gatherResults(admitted)
        assert len(set(hashes)) == 3 and hasher.pending == 0
        assert await hasher.verify("pw0", hashes[0]) is True
        assert await hasher.verify("pw1", hashes[0]) is False
    finally:
        hasher.stop()


@pytest.mark.parametrize("body", [{"name": "alice"}, {"password": "x"}, {"name": 1, "password": "x"}])
@pytest_twisted.ensureDeferred
async def test_malformed_login_bodies_are_400_and_are_not_counted(world, body):
    for _ in range(6):
        r = await world.client.post("/api/auth/login", body)
        assert r.status == 400
    assert (await _login(world, "alice", PASSWORD)).status == 200
