"""Realtime fan-out: N WebSocket clients in one room, one member changes the playback state.

    python -m bench.realtime [--quick] [--mode single|two-node|both] [--clients N] [--workers K]
                             [--updates U] [--cross-clients N]

What it does (docs/benchmarks.md, "Realtime"):

- starts the real server (``twistd -n synctv``) as a child process: on SQLite for one node, and
  two of them on one fresh PostgreSQL database for the cross-node figure;
- opens N WebSocket connections from K worker processes (a lean asyncio client: handshake, a
  frame parser, pong; nothing per connection but a socket and a coroutine), each observing
  ``playbackState``;
- changes the state U times with ``PATCH .../playback-state`` (on node A in two-node mode, the
  clients being on node B), one change at a time; every client notes ``time.time()`` when the new
  version arrives; latency = arrival minus the moment just before the PATCH was sent (the same
  machine clock for everyone);
- reads the server's ``VmRSS`` before and after the clients connect: the difference over N is the
  memory per connection.

It prints one table row per scenario and the goals: 10,000 clients with p99 <= 100 ms, <= 6 us
of server CPU per connection per change and <= 40 KiB per connection; cross-node p99 <= 30 ms
with 1,000 clients. ``--baseline SRC`` runs the server from another source tree too (e.g. an
export of main), alternating with this one ``--rounds`` times, so both are measured under the
same load. ``--quick`` (CI) runs the
same code with few clients and finishes in seconds. Exit status 1 if a delivery was lost or a
scenario could not run, 0 otherwise (missing a goal is reported, not a failure).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from bench._profile import start_profile, stop_profile, summarize_profile
from bench._realtime_load import WAIT_S, LeanClient, open_client, raise_fd_limit, worker
from bench._realtime_measure import cpu_ms, cpu_split_ms, rss_kib, send_floor_us
from synctv.testing import ServerDidNotStart, wait_serving

SOURCE_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
GOALS = {"clients": 10_000, "p99_ms": 100.0, "cpu_us": 6.0, "rss_kib": 40.0, "cross_clients": 1_000,
         "cross_p99_ms": 30.0}


# -- the server --------------------------------------------------------------------------------


class Server:
    """One ``twistd -n synctv`` child on a free loopback port."""

    def __init__(self, data: Path, db: str | None, config: Path, label: str, src: Path | None = None) -> None:
        self.data = data
        self.label = label
        self.log = data.parent / f"{label}.log"
        args = [
            sys.executable,
            "-c",
            "from twisted.scripts.twistd import run; run()",
            "-n",
            "--pidfile",
            "",
            "synctv",
            "--config",
            str(config),
            "--data",
            str(data),
            "--http",
            "tcp:0:interface=127.0.0.1:backlog=1024",
            "--rtmp",
            "tcp:0:interface=127.0.0.1",
        ]
        if db:
            args += ["--db", db]
        env = dict(os.environ)
        # the synctv package beside this benchmark, or with --baseline the one in another tree
        env["PYTHONPATH"] = str(src if src is not None else SOURCE_ROOT)
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                args,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=data.parent,
                env=env,
                preexec_fn=raise_fd_limit,
            )
        self.url = self._wait_ready()
        self.host, port = self.url[len("http://") :].split(":")
        self.port = int(port)

    def _wait_ready(self, timeout: float = 60.0) -> str:
        try:
            return wait_serving(self.proc, self.log, timeout).http_url
        except ServerDidNotStart as e:
            raise RuntimeError(f"{self.label}: {e}") from None

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def rss_kib(self) -> int:
        return rss_kib(self.proc.pid)

    def request(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"{method} {path}: HTTP {e.code} {e.read()[:300]!r}") from None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def write_config(folder: Path, clients: int) -> Path:
    """A config that admits ``clients`` connections to one room by one user (the benchmark logs
    every client in as root)."""
    path = folder / "bench.toml"
    limit = clients + 100
    path.write_text(f"[realtime]\nmax_connections_per_room = {limit}\nmax_connections_per_user = {limit}\n")
    return path


def prepare_room(server: Server) -> tuple[str, str, int]:
    """Log in as root, create a room with one media item selected; (token, room id, version)."""
    password = (server.data / "root-password").read_text().strip()
    token = server.request("POST", "/api/auth/login", {"name": "root", "password": password})["token"]
    room = server.request("POST", "/api/rooms", {"name": f"bench-{secrets.token_hex(4)}"}, token)["room"][
        "id"
    ]
    media = server.request(
        "POST", f"/api/rooms/{room}/media", {"url": "http://media.example/bench.mp4", "title": "bench"}, token
    )["media"]["id"]
    state = server.request("GET", f"/api/rooms/{room}/playback-state", token=token)
    state = server.request(
        "PATCH",
        f"/api/rooms/{room}/playback-state",
        {"action": "media", "media_id": media, "version": state["version"]},
        token,
    )
    return token, room, state["version"]


# -- a scenario ----------------------------------------------------------------------------------


class Result(dict):
    """One table row."""


def _context() -> Any:
    try:
        return multiprocessing.get_context("fork")
    except ValueError:
        return multiprocessing.get_context("spawn")


def _recv(pipe: Any, timeout: float, what: str) -> Any:
    if not pipe.poll(timeout):
        raise RuntimeError(f"a worker did not answer ({what}) within {timeout:g}s")
    message = pipe.recv()
    if message[0] == "error":
        raise RuntimeError(f"a worker failed: {message[1]}")
    return message


def run_scenario(
    label: str,
    sender: Server,
    target: Server,
    token: str,
    room: str,
    version: int,
    clients: int,
    workers: int,
    updates: int,
    pause_s: float,
    profile: Path | None = None,
) -> Result:
    """Connect ``clients`` to ``target``, send ``updates`` changes to ``sender``; one table row.
    With ``profile``, py-spy samples ``target`` during the updates (collapsed stacks there)."""
    ctx = _context()
    rss_before = target.rss_kib()
    shares = [clients // workers + (1 if i < clients % workers else 0) for i in range(workers)]
    pipes, procs = [], []
    for share in shares:
        parent, child = ctx.Pipe()
        proc = ctx.Process(
            target=worker,
            args=(child, target.host, target.port, f"/ws/rooms/{room}", token, share),
            daemon=True,
        )
        proc.start()
        pipes.append(parent)
        procs.append(proc)
    try:
        connected, failures, connect_s = 0, [], 0.0
        for pipe in pipes:
            _, n, sample, failed, seconds = _recv(pipe, WAIT_S + 900, "connect")
            connected += n
            failures += sample
            connect_s = max(connect_s, seconds)
            if failed:
                failures.append(f"{failed} connection(s) failed")
        rss_after = target.rss_kib()
        sent: dict[int, float] = {}
        patch_ms: list[float] = []
        lost_updates = 0
        spy = start_profile(target.proc.pid, profile) if profile is not None else None
        idle_cpu_s = idle_cpu_rate(target)
        user_before, sys_before = cpu_split_ms(target.proc.pid)
        cpu_before = user_before + sys_before
        load_before = sum(cpu_ms(proc.pid) for proc in procs)
        updates_started = time.monotonic()
        path = f"/api/rooms/{room}/playback-state"
        for i in range(updates):
            time.sleep(pause_s)
            t_send = time.time()
            state = sender.request(
                "PATCH", path, {"action": "seek", "position": float(i + 1), "version": version}, token
            )
            patch_ms.append((time.time() - t_send) * 1000.0)
            version = state["version"]
            sent[version] = t_send
            for pipe in pipes:
                pipe.send(("expect", version))
            for pipe in pipes:
                if not pipe.poll(WAIT_S):
                    lost_updates += 1
                    continue
                _recv(pipe, 0, "expect")
        user_after, sys_after = cpu_split_ms(target.proc.pid)
        server_cpu_ms = (user_after + sys_after - cpu_before) / max(updates, 1)
        sys_share = (sys_after - sys_before) / max(user_after + sys_after - cpu_before, 1e-9)
        load_cpu_ms = (sum(cpu_ms(proc.pid) for proc in procs) - load_before) / max(updates, 1)
        busy_s = (time.monotonic() - updates_started) / max(updates, 1)
        if spy is not None:
            stop_profile(spy)
        for pipe in pipes:
            pipe.send(("finish",))
        latencies: list[float] = []
        firsts: dict[int, float] = {}
        delivered = 0
        for pipe in pipes:
            _, arrivals = _recv(pipe, 120, "results")
            for v, times in arrivals.items():
                if v in sent:
                    delivered += len(times)
                    latencies += [(t - sent[v]) * 1000.0 for t in times]
                    firsts[v] = min(firsts.get(v, float("inf")), (min(times) - sent[v]) * 1000.0)
    finally:
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
    latencies.sort()

    def pct(p: float) -> float:
        return (
            latencies[min(len(latencies) - 1, int(p / 100.0 * len(latencies)))] if latencies else float("nan")
        )

    return Result(
        label=label,
        clients=clients,
        connected=connected,
        updates=updates,
        delivered=delivered,
        expected=connected * updates,
        p50=pct(50),
        p99=pct(99),
        max=latencies[-1] if latencies else float("nan"),
        mean=statistics.fmean(latencies) if latencies else float("nan"),
        connect_s=connect_s,
        rss_per_conn=(rss_after - rss_before) / max(connected, 1),
        rss_before=rss_before,
        rss_after=rss_after,
        failures=failures,
        lost_updates=lost_updates,
        patch_ms=statistics.median(patch_ms) if patch_ms else float("nan"),
        first_ms=statistics.median(firsts.values()) if firsts else float("nan"),
        cpu_ms=server_cpu_ms,
        # the server's CPU per update less what it spends idle (pings, presence) in that time
        net_cpu_ms=max(0.0, server_cpu_ms - idle_cpu_s * busy_s * 1000.0),
        idle_cpu_pct=idle_cpu_s * 100.0,
        sys_pct=sys_share * 100.0,
        load_cpu_ms=load_cpu_ms,
        loadavg=os.getloadavg()[0],
    )


IDLE_WINDOW_S = 2.0


def idle_cpu_rate(target: Server) -> float:
    """The server's CPU seconds per second with its clients connected and nothing changing
    (pings, pongs, presence ticks), over ``IDLE_WINDOW_S``."""
    before = cpu_ms(target.proc.pid)
    time.sleep(IDLE_WINDOW_S)
    return (cpu_ms(target.proc.pid) - before) / 1000.0 / IDLE_WINDOW_S


def warm_up(server: Server, room: str, token: str) -> None:
    """One connection opened and closed, so imports and first-use caches are not counted per client."""

    async def once() -> None:
        got = asyncio.get_running_loop().create_future()

        def on_version(client: LeanClient, version: int) -> None:
            if not got.done():
                got.set_result(version)

        client = await open_client(server.host, server.port, f"/ws/rooms/{room}", token, on_version)
        await asyncio.wait_for(got, WAIT_S)
        client.close()
        await asyncio.sleep(0.1)

    asyncio.run(once())


# -- the two setups --------------------------------------------------------------------------------


def single_node(
    folder: Path, clients: int, workers: int, updates: int, pause_s: float, profile: Path | None = None,
    src: Path | None = None, label: str = "one node, SQLite",
) -> Result:
    config = write_config(folder, clients)
    shutil.rmtree(folder / "single", ignore_errors=True)
    server = Server(folder / "single", None, config, "single", src)
    try:
        token, room, version = prepare_room(server)
        warm_up(server, room, token)
        return run_scenario(
            label,
            server,
            server,
            token,
            room,
            version,
            clients,
            workers,
            updates,
            pause_s,
            profile,
        )
    finally:
        server.stop()


def two_nodes(
    folder: Path, clients: int, workers: int, updates: int, pause_s: float, profile: Path | None = None,
    src: Path | None = None, label: str = "two nodes, PostgreSQL (A -> B)",
) -> Result | str:
    try:
        import psycopg2
    except ImportError:
        return "skipped: psycopg2 is not installed"
    admin = os.environ.get("SYNCTV_TEST_POSTGRES", DEFAULT_POSTGRES)
    name = f"synctv_bench_{secrets.token_hex(4)}"
    try:
        conn = psycopg2.connect(admin, connect_timeout=5)
    except psycopg2.Error as e:
        return f"skipped: PostgreSQL at {admin} is unreachable ({str(e).strip().splitlines()[0]})"
    conn.autocommit = True
    conn.cursor().execute(f'CREATE DATABASE "{name}"')
    db = admin.rsplit("/", 1)[0] + "/" + name
    config = write_config(folder, clients)
    servers: list[Server] = []
    try:
        for node in ("node-a", "node-b"):
            shutil.rmtree(folder / node, ignore_errors=True)
            servers.append(Server(folder / node, db, config, node, src))
        a, b = servers
        token, room, version = prepare_room(a)
        warm_up(b, room, token)
        return run_scenario(
            label,
            a,
            b,
            token,
            room,
            version,
            clients,
            workers,
            updates,
            pause_s,
            profile,
        )
    finally:
        for server in servers:
            server.stop()
        conn.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


# -- report ------------------------------------------------------------------------------------------


def print_table(rows: list[Result | str], labels: list[str]) -> None:
    """One row per scenario. ``first`` is the median over updates of the first client's latency,
    ``PATCH`` the median round trip of the HTTP change (the fan-out is queued before it answers),
    ``CPU`` the receiving server's CPU time per update (user + system; independent of other load),
    ``sys %`` the kernel's share of it (mostly the ``send()`` per connection), ``net`` that less
    the server's idle CPU rate (pings, presence) over the same time, ``us/conn``
    net over clients, ``idle %`` that idle rate, ``load ms`` the load workers' CPU per update,
    ``loadavg`` the machine's 1-minute load average at the end of the scenario."""
    header = (
        f"{'scenario':<42} {'clients':>7} {'delivered':>13} {'first ms':>8} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'max ms':>7} {'PATCH ms':>8} {'CPU ms':>7} {'net ms':>7} {'us/conn':>7} "
        f"{'sys %':>5} {'idle %':>6} {'load ms':>7} {'loadavg':>7} {'connect s':>9} {'RSS/conn KiB':>12}"
    )
    print(header)
    print("-" * len(header))
    for label, row in zip(labels, rows, strict=True):
        if isinstance(row, str):
            print(f"{label:<42} {row}")
            continue
        delivered = f"{row['delivered']}/{row['expected']}"
        print(
            f"{row['label']:<42} {row['connected']:>7} {delivered:>13} "
            f"{row['first_ms']:>8.1f} {row['p50']:>7.1f} {row['p99']:>7.1f} {row['max']:>7.1f} "
            f"{row['patch_ms']:>8.1f} {row['cpu_ms']:>7.1f} {row['net_cpu_ms']:>7.1f} "
            f"{row['net_cpu_ms'] * 1000.0 / max(row['connected'], 1):>7.1f} {row['sys_pct']:>5.0f} "
            f"{row['idle_cpu_pct']:>6.1f} "
            f"{row['load_cpu_ms']:>7.1f} {row['loadavg']:>7.2f} {row['connect_s']:>9.1f} {row['rss_per_conn']:>12.1f}"
        )
        for failure in row["failures"][:5]:
            print(f"    ! {failure}")
        if row["lost_updates"]:
            print(f"    ! {row['lost_updates']} worker wait(s) for an update timed out")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.realtime", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few clients (CI)")
    parser.add_argument("--mode", choices=("single", "two-node", "both"), default="both")
    parser.add_argument("--clients", type=int, help="clients on one node (default 10000, quick 200)")
    parser.add_argument(
        "--cross-clients", type=int, help="clients in two-node mode (default 1000, quick 100)"
    )
    parser.add_argument("--workers", type=int, help="load-generating processes (default 4, quick 2)")
    parser.add_argument("--updates", type=int, help="state changes (default 10, quick 5)")
    parser.add_argument(
        "--baseline",
        metavar="SRC",
        type=Path,
        help="also run the server from the source tree SRC (its synctv package), alternating with this one",
    )
    parser.add_argument("--rounds", type=int, default=1, help="runs of each server, alternating (default 1)")
    parser.add_argument(
        "--profile",
        metavar="DIR",
        type=Path,
        help="sample the receiving server with py-spy during the updates; stacks and a summary in DIR",
    )
    args = parser.parse_args(argv if argv is not None else sys.argv[1:])
    quick = args.quick
    clients = args.clients or (200 if quick else GOALS["clients"])
    cross = args.cross_clients or (100 if quick else GOALS["cross_clients"])
    workers = max(1, args.workers or (2 if quick else 4))
    updates = max(1, args.updates or (5 if quick else 10))
    pause_s = 0.1 if quick else 0.5
    fds = raise_fd_limit()
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    print(
        f"realtime fan-out: {os.cpu_count()} CPUs, load average {load_before[0]:.2f}, "
        f"fd limit {fds}{' (quick)' if quick else ''}",
        flush=True,
    )
    if fds < clients + 64:
        print(f"  note: the fd limit {fds} is below {clients} clients; raise `ulimit -n`")
    floor = send_floor_us()
    print(
        f"  floor: one send() of a 200-byte frame on loopback TCP costs {floor:.1f} us of CPU here "
        "(a bare loop over 2,000 sockets; the us/conn column cannot go below it)",
        flush=True,
    )
    folder = Path(tempfile.mkdtemp(prefix="synctv-bench-"))
    rows: list[Result | str] = []
    labels: list[str] = []
    status = 0
    started = time.monotonic()
    servers: list[tuple[str, Path | None]] = [("", None)]
    if args.baseline is not None:
        servers = [(" [baseline]", args.baseline.resolve()), (" [this tree]", None)]
    try:
        for _ in range(max(1, args.rounds)):
            for suffix, src in servers:
                if args.mode in ("single", "both"):
                    label = "one node, SQLite" + suffix
                    labels.append(label)
                    try:
                        prof = args.profile / f"single{suffix.strip(' []').replace(' ', '-')}.txt" \
                            if args.profile else None
                        rows.append(single_node(folder, clients, min(workers, clients), updates, pause_s, prof,
                                                src, label))
                    except Exception as e:
                        rows.append(f"failed: {e}")
                if args.mode in ("two-node", "both"):
                    label = "two nodes, PostgreSQL (A -> B)" + suffix
                    labels.append(label)
                    try:
                        prof = args.profile / f"two-node{suffix.strip(' []').replace(' ', '-')}.txt" \
                            if args.profile else None
                        rows.append(two_nodes(folder, cross, min(workers, cross), updates, pause_s, prof,
                                              src, label))
                    except Exception as e:
                        rows.append(f"failed: {e}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print_table(rows, labels)
    for row in rows:
        if isinstance(row, str):
            status |= 0 if row.startswith("skipped") else 1
        elif row["delivered"] != row["expected"] or row["connected"] != row["clients"]:
            status = 1
    mine = [r for r in reversed(rows) if not isinstance(r, str) and "[baseline]" not in r["label"]]
    single = next((r for r in mine if r["label"].startswith("one")), None)
    double = next((r for r in mine if r["label"].startswith("two")), None)
    print(
        f"goals: {GOALS['clients']:,} clients on one node with p99 <= {GOALS['p99_ms']:g} ms, "
        f"<= {GOALS['cpu_us']:g} us of server CPU per connection per change (net of idle) and "
        f"<= {GOALS['rss_kib']:g} KiB RSS per connection; cross-node p99 <= {GOALS['cross_p99_ms']:g} ms "
        f"with {GOALS['cross_clients']:,} clients"
    )
    if single is not None:
        scale = (
            ""
            if single["connected"] >= GOALS["clients"]
            else f" (at {single['connected']} clients, not the goal's)"
        )
        print(
            f"  one node: p99 {single['p99']:.1f} ms {'meets' if single['p99'] <= GOALS['p99_ms'] else 'MISSES'}"
            f", {single['net_cpu_ms'] * 1000.0 / max(single['connected'], 1):.1f} us/conn "
            f"{'meets' if single['net_cpu_ms'] * 1000.0 / max(single['connected'], 1) <= GOALS['cpu_us'] else 'MISSES'}"
            f", {single['rss_per_conn']:.1f} KiB/conn "
            f"{'meets' if single['rss_per_conn'] <= GOALS['rss_kib'] else 'MISSES'}{scale}"
        )
    if double is not None:
        scale = (
            "" if double["connected"] >= GOALS["cross_clients"] else f" (at {double['connected']} clients)"
        )
        print(
            f"  cross-node: p99 {double['p99']:.1f} ms "
            f"{'meets' if double['p99'] <= GOALS['cross_p99_ms'] else 'MISSES'}{scale}"
        )
    if args.profile:
        for path in sorted(args.profile.glob("*.txt")):
            print(f"profile of the receiving server ({path.stem}), {path}:")
            print(summarize_profile(path))
    load_after = os.getloadavg()
    print(
        f"  took {time.monotonic() - started:.1f}s; load average {load_before[0]:.2f} -> {load_after[0]:.2f}",
        flush=True,
    )
    return status


if __name__ == "__main__":
    raise SystemExit(main())
