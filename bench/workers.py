"""Background workers: how soon every client sees the next item, and what the scheduler costs.

    python -m bench workers [--quick]

What it measures (docs/benchmarks.md, "Workers"):

- **end -> next item everywhere**: real ``twistd -n synctv`` processes (one node on SQLite; two
  nodes on one fresh PostgreSQL database), a room looping a playlist of two short items whose
  durations are known (``settings.playlist = "loop"``), WebSocket clients in the room (split
  over the nodes). For each advance: the latest moment any client received the next item's
  ``playbackState``, on the client's synced server clock, minus the instant the previous item
  ended (its ``at_ms`` plus its duration). p50/p99 over the advances, and the part of it spent
  deciding (the new state's ``at_ms`` is the moment the advancing node computed it). It also checks that each
  advance was one version step seen once by every client (two nodes plan the same end).
- **scheduler CPU per active room per tick**: in this process, one ``WorkerScheduler`` with the
  probe and advance steps over a real SQLite store (and PostgreSQL when reachable) whose N active
  rooms all play (nothing due, nothing to probe: the steady cost). CPU is the process's
  (``time.process_time``: the reactor and the database thread) over K ticks, divided by N x K.

No peer server has these workers (nginx has no playlists), so there is no side-by-side figure.
``--quick`` (CI, tests/bench/test_workers_bench.py) runs the same code with fewer advances and
rooms. Exit status 1 if an advance was lost or doubled or a scenario could not run.
"""

from __future__ import annotations

import os
import secrets
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.realtime import DEFAULT_POSTGRES, Server

ITEM_S = 0.8
CONFIG = "[workers]\ntick_s = 1.0\n"


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


# -- end -> next item, real processes ----------------------------------------------------------


async def measure_advances(servers: list[Server], clients_per_node: int, advances: int) -> dict[str, Any]:
    from twisted.internet import reactor
    from twisted.internet.task import deferLater

    from synctv.realtime.client import connect

    a = servers[0]
    password = (a.data / "root-password").read_text().strip()
    token = a.request("POST", "/api/auth/login", {"name": "root", "password": password})["token"]
    room = a.request("POST", "/api/rooms", {"name": f"bench-{secrets.token_hex(4)}",
                                            "settings": {"playlist": "loop"}}, token)["room"]["id"]
    items = [a.request("POST", f"/api/rooms/{room}/media", {"url": f"http://media.invalid/{n}.mp4",
                                                           "duration": ITEM_S}, token)["media"]["id"]
             for n in range(2)]
    clients, seen = [], []
    for server in servers:
        for _ in range(clients_per_node):
            client = await connect(server.url, room, token)
            log: list[tuple[float, dict[str, Any]]] = []

            def on_message(message: dict[str, Any], log=log, client=client) -> None:
                if message.get("type") == "playbackState" and "id" not in message:
                    log.append((client.server_now(), message))

            client.on_message(on_message)
            await client.observe("playbackState")
            clients.append(client)
            seen.append(log)
    state = a.request("GET", f"/api/rooms/{room}/playback-state", token=token)
    state = a.request("PATCH", f"/api/rooms/{room}/playback-state",
                      {"action": "media", "media_id": items[0], "version": state["version"]}, token)
    first = a.request("PATCH", f"/api/rooms/{room}/playback-state", {"action": "play", "version": state["version"]},
                      token)
    last_version = first["version"] + advances
    deadline = time.monotonic() + advances * ITEM_S * 3 + 30
    while not all(any(m["version"] >= last_version for _, m in log) for log in seen):
        if time.monotonic() > deadline:
            break
        await deferLater(reactor, 0.05, lambda: None)
    for client in clients:
        await client.close()
    # per advance: the previous state (version v - 1) ended at its at_ms + duration
    by_version: dict[int, dict[str, Any]] = {first["version"]: first}
    for log in seen:
        for _, message in log:
            by_version.setdefault(message["version"], message)
    latencies, written, problems = [], [], []
    for version in range(first["version"] + 1, last_version + 1):
        before = by_version.get(version - 1)
        arrivals = [[t for t, m in log if m["version"] == version] for log in seen]
        if before is None or any(len(times) != 1 for times in arrivals):
            problems.append(f"version {version}: seen {[len(t) for t in arrivals]} times per client")
            continue
        end = before["at_ms"] + ITEM_S * 1000 / before["rate"]
        latencies.append(max(times[0] for times in arrivals) - end)
        written.append(by_version[version]["at_ms"] - end)  # at_ms = when the advance was decided (or the end)
    return {"latencies": latencies, "written": written, "problems": problems, "clients": len(clients)}


def start_nodes(label: str, folder: Path, db: str | None, nodes: int) -> list[Server]:
    config = folder / "workers.toml"
    config.write_text(CONFIG)
    servers: list[Server] = []
    try:
        for n in range(nodes):
            servers.append(Server(folder / f"node-{n}", db, config, f"{label}-node-{n}"))
        return servers
    except Exception:
        for server in servers:
            server.stop()
        raise


# -- scheduler CPU, in process ------------------------------------------------------------------


async def scheduler_cost(url: Any, rooms: int, ticks: int) -> float:
    """CPU microseconds per active room per tick (steady state: all playing, nothing due)."""
    from twisted.internet import reactor

    from synctv.bus import InProcessBus
    from synctv.core.clock import ServerClock
    from synctv.core.models import MediaItem, Member, PlaybackState, Room, User
    from synctv.core.permissions import DEFAULT_PERMISSIONS
    from synctv.store import open_store
    from synctv.workers.advance import AdvanceStep
    from synctv.workers.probe import MediaReader, ProbeStep
    from synctv.workers.scheduler import WorkerScheduler

    class BenchActions:  # what the steps use of Actions
        def __init__(self, store: Any, clock: Any) -> None:
            self.store, self.clock, self.bus = store, clock, InProcessBus()

    store = await open_store(url)
    clock = ServerClock()
    try:
        user = await store.create_user(User(id=secrets.token_hex(8), name=f"u{secrets.token_hex(4)}", role="user",
                                            password_hash="x"))
        ids = []
        for _ in range(rooms):
            room = Room(id=secrets.token_hex(8), name=f"r{secrets.token_hex(6)}", kind="watch", creator_id=user.id)
            await store.create_room(room, Member(room.id, user.id, "creator", DEFAULT_PERMISSIONS["creator"]),
                                    PlaybackState())
            item = await store.add_media(MediaItem(id=secrets.token_hex(8), room_id=room.id, sort=0, title="x",
                                                   url="http://media.invalid/x.mp4", duration=3600.0))
            await store.set_playback(room.id, PlaybackState(media_id=item.id, playing=True, at_ms=clock(),
                                                            version=1), 0)
            ids.append(room.id)
        actions = BenchActions(store, clock)
        probe = ProbeStep(actions=actions, reader=MediaReader(None, reactor, ffprobe=None), node="bench",
                          reactor=reactor)
        advance = AdvanceStep(actions=actions, reactor=reactor, horizon_s=1.55)
        scheduler = WorkerScheduler(active_rooms=lambda: ids, steps=[probe, advance], interval_s=1.0, clock=reactor)
        await scheduler.tick()  # warm
        started = time.process_time()
        for _ in range(ticks):
            await scheduler.tick()
        spent = time.process_time() - started
        return spent / (rooms * ticks) * 1e6
    finally:
        await store.close()


# -- main ------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    from twisted.internet import defer, task

    argv = list(argv or [])
    quick = "--quick" in argv
    advances = 4 if quick else 40
    clients_per_node = 2 if quick else 8
    room_counts = (10, 100) if quick else (10, 100, 1000)
    ticks = 3 if quick else 20
    status = 0

    async def run(reactor: Any) -> None:
        nonlocal status
        import psycopg2

        from synctv.store import parse_database_url
        from synctv.store.migrate import migrate

        folder = Path(tempfile.mkdtemp(prefix="synctv-bench-workers-"))
        admin = os.environ.get("SYNCTV_TEST_POSTGRES", DEFAULT_POSTGRES)
        databases: list[str] = []
        conn = None
        try:
            try:
                conn = psycopg2.connect(admin, connect_timeout=5)
                conn.autocommit = True
            except psycopg2.Error as e:
                print(f"PostgreSQL at {admin} unreachable ({str(e).strip().splitlines()[0]}): its rows are skipped")

            def new_db() -> str:
                name = f"synctv_bench_{secrets.token_hex(4)}"
                conn.cursor().execute(f'CREATE DATABASE "{name}"')
                databases.append(name)
                return admin.rsplit("/", 1)[0] + "/" + name

            print(f"-- end of an item -> every client sees the next ({advances} advances, items of {ITEM_S}s, "
                  f"tick_s 1.0)")
            scenarios = [("one node, SQLite", None, 1)]
            if conn is not None:
                scenarios.append(("two nodes, PostgreSQL", new_db(), 2))
            for label, db, nodes in scenarios:
                sub = folder / label.replace(" ", "_").replace(",", "")
                sub.mkdir()
                servers = start_nodes(label, sub, db, nodes)
                try:
                    result = await defer.Deferred.fromCoroutine(measure_advances(servers, clients_per_node, advances))
                finally:
                    for server in servers:
                        server.stop()
                lat = result["latencies"]
                if result["problems"] or len(lat) < advances:
                    status = 1
                    print(f"{label}: PROBLEM {result['problems'][:3]} ({len(lat)}/{advances} advances measured)")
                if lat:
                    print(f"{label:<24} {result['clients']:>3} clients  p50 {pct(lat, 50):7.1f} ms  "
                          f"p99 {pct(lat, 99):7.1f} ms  max {max(lat):7.1f} ms  mean {statistics.mean(lat):7.1f} ms  "
                          f"(n={len(lat)}, one version step each, seen once by every client)")
                    dec = result["written"]
                    print(f"{'':<24} of which deciding (end -> the new state's at_ms): p50 {pct(dec, 50):6.1f} ms  "
                          f"p99 {pct(dec, 99):6.1f} ms")
            print(f"-- scheduler CPU per active room per tick (steady: all playing, nothing due; {ticks} ticks)")
            backends = [("SQLite", lambda: parse_database_url(f"sqlite:///{folder / f'cost-{secrets.token_hex(3)}.db'}"))]
            if conn is not None:
                backends.append(("PostgreSQL", lambda: parse_database_url(new_db())))
            for name, make_url in backends:
                for rooms in room_counts:
                    url = make_url()
                    migrate(url)
                    cost = await defer.Deferred.fromCoroutine(scheduler_cost(url, rooms, ticks))
                    print(f"{name:<11} {rooms:>5} active rooms: {cost:8.1f} us CPU per room per tick")
        except Exception as e:
            status = 1
            print(f"workers benchmark failed: {type(e).__name__}: {e}")
            raise
        finally:
            if conn is not None:
                for name in databases:
                    conn.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                conn.close()
            shutil.rmtree(folder, ignore_errors=True)

    try:
        task.react(lambda reactor: defer.ensureDeferred(run(reactor)), [])
    except SystemExit as e:
        if e.code:
            status = 1
    return status


if __name__ == "__main__":
    from bench import run_main

    run_main(main, __doc__)
