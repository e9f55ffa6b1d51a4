"""Live on any node: what relaying costs, synctv beside an nginx-rtmp origin and edge.

``python -m bench live_relay [--quick] [--rounds R]`` (or ``main(argv)``):

1. synctv: two real ``twistd -n synctv`` nodes on one fresh PostgreSQL database
   (``SYNCTV_TEST_POSTGRES``, default ``postgresql://postgres@127.0.0.1:5432/postgres``), a live
   item on A. First, once: a new viewer's time to first frame on B when its relay has to start
   ("cold": the first viewer of the stream on B), while it runs ("warm"), and on A.
2. Then runs of three sides, alternately (``bench/_trials.py``: the order swapped every round,
   until R rounds (default 3; quick 1) were healthy on every side, at most R + 2): each run
   starts the live benchmark's publisher (2 Mbit/s H.264 + AAC) and N viewers (N=200; quick: 10)
   in a load process, and measures CPU seconds per viewer-minute of the node they watch:
   ``synctv relay node`` -- HTTP-FLV viewers on B, which relays from A (A must then have exactly
   one FLV viewer, B's relay); ``synctv direct`` -- the same viewers on A itself, the control;
   ``nginx-rtmp edge`` -- RTMP viewers on an nginx-rtmp edge whose ``live`` application
   ``pull``s from an origin (Debian's libnginx-mod-rtmp). A run with viewer gaps, failed or ended
   viewers, a publisher behind real time or a load client at its CPU bound is unhealthy (the
   live benchmark's checks), and its round gives no ratio.
3. Printed: every run, the first frames, and the ratios relay/direct and relay/nginx-rtmp edge
   over healthy rounds -- or their refusal, saying why.

Figures are printed as lines ``live_relay: ...``; the exit status is 0 unless no relay run was healthy.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import option
from bench._trials import Run, alternate, compare, format_comparison, format_run, loadavg
from bench.live import (
    NGINX_MODULE,
    Publisher,
    children,
    first_frame_ms,
    free_port,
    http_json,
    viewer_health,
    watch,
)

POSTGRES = os.environ.get("SYNCTV_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
RELAY, DIRECT, EDGE = "synctv relay node", "synctv direct", "nginx-rtmp edge"
CPU = "cpu s per viewer-minute"


def _admin() -> Any:
    import psycopg2

    conn = psycopg2.connect(POSTGRES, connect_timeout=5)
    conn.autocommit = True
    return conn


class Node:
    def __init__(self, workdir: Path, name: str, db: str) -> None:
        self.http, self.rtmp = free_port(), free_port()
        self.data = workdir / name
        config = workdir / "node.toml"
        config.write_text("[live]\nidle_s = 3\npull_idle_s = 2\n")
        self.log = open(workdir / f"{name}.log", "wb")
        self.proc = subprocess.Popen([sys.executable, "-c", "from twisted.scripts.twistd import run; run()", "-n",
                                      "--pidfile", "", "synctv", "--config", str(config), "--data", str(self.data),
                                      "--db", db, "--http", f"tcp:{self.http}:interface=127.0.0.1",
                                      "--rtmp", f"tcp:{self.rtmp}:interface=127.0.0.1"],
                                     stdout=self.log, stderr=subprocess.STDOUT, cwd=workdir)
        self.base = f"http://127.0.0.1:{self.http}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                http_json(self.base + "/healthz")
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"node {name} did not start")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        self.log.close()


def _urls(node: Node, item: str, token: str) -> dict[str, str]:
    infos = http_json(f"{node.base}{item}/playback", token=token)["infos"]
    return {info["mode"]: node.base + info["url"] for info in infos}


def _wait_offline(node: Node, item: str, token: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if http_json(f"{node.base}{item}/stream", token=token)["state"] == "offline":
            return
        time.sleep(0.2)
    raise RuntimeError("the relay was not released")


class SynctvPair:
    """Two synctv nodes on one fresh PostgreSQL database, a live item created on A, its URLs on
    both; :meth:`close` stops both and drops the database."""

    def __init__(self, workdir: Path) -> None:
        self.db_name = f"synctv_bench_{secrets.token_hex(4)}"
        conn = _admin()
        conn.cursor().execute(f'CREATE DATABASE "{self.db_name}"')
        conn.close()
        db = POSTGRES.rsplit("/", 1)[0] + "/" + self.db_name
        self.a: Node | None = None
        self.b: Node | None = None
        try:
            self.a = a = Node(workdir, "node-a", db)
            self.b = b = Node(workdir, "node-b", db)
            password = (a.data / "root-password").read_text().strip()
            self.token = http_json(a.base + "/api/auth/login", {"name": "root", "password": password})["token"]
            room = http_json(a.base + "/api/rooms", {"name": "relay"}, self.token)["room"]["id"]
            media = http_json(f"{a.base}/api/rooms/{room}/media", {"provider": "rtmp", "title": "relay"},
                              self.token)["media"]["id"]
            self.item = f"/api/rooms/{room}/media/{media}"
            self.publish_url = http_json(a.base + self.item + "/stream-key", {}, self.token)["publish_url"]
            self.on_a, self.on_b = _urls(a, self.item, self.token), _urls(b, self.item, self.token)
        except BaseException:
            self.close()
            raise

    def first_frames(self) -> dict[str, list[float]]:
        """A new viewer's time to first frame on B when its relay starts (twice: it is released in
        between), while it runs, and on A."""
        assert self.b is not None
        started = time.monotonic()
        ffmpeg = Publisher(self.publish_url)
        try:
            time.sleep(4.0)
            cold = first_frame_ms(self.on_b["flv"], 1)  # starts B's relay
            _wait_offline(self.b, self.item, self.token)  # B releases it (pull_idle_s + idle_s)
            cold += first_frame_ms(self.on_b["flv"], 1)
            warm = first_frame_ms(self.on_b["flv"], 5)
            direct = first_frame_ms(self.on_a["flv"], 5)
        finally:
            ffmpeg.stop(started)
        return {"cold": cold, "warm": warm, "direct": direct}

    def run(self, side: str, count: int, warmup: float, measure: float) -> Run:
        """One measured run: the publisher into A, ``count`` HTTP-FLV viewers on B (``relay``) or
        on A (``direct``); the CPU of the node they watch, and of A."""
        assert self.a is not None and self.b is not None
        relay = side == RELAY
        load = loadavg()
        pids_a, pids_b = children(self.a.proc.pid), children(self.b.proc.pid)
        w = watch(self.publish_url, "flv", (self.on_b if relay else self.on_a)["flv"], count, warmup, measure,
                  {"watched": pids_b if relay else pids_a, "a": pids_a}, settle_s=3.0,
                  at_end=lambda: http_json(f"{self.a.base}{self.item}/stream", token=self.token)["viewers"]["flv"])
        if relay:
            _wait_offline(self.b, self.item, self.token)  # the next run starts B's relay afresh
        run = Run(side, 0, load=(max(load[0], loadavg()[0]), load[1], load[2]))
        run.figures = {CPU: w.per_viewer_minute("watched"),
                       "frames per viewer": w.done["frames"] / max(1, w.connected["viewers"])}
        run.notes = {"publishing node cores": w.cpu["a"] / w.seconds, "load client cores": w.load_cores}
        viewer_health(run, count, w)
        if relay and w.at_end != 1:
            run.problems.append(f"the publishing node had {w.at_end} FLV viewers, not 1 (the relay)")
        return run

    def close(self) -> None:
        for node in (self.b, self.a):
            if node is not None:
                node.stop()
        conn = _admin()
        conn.cursor().execute(f'DROP DATABASE IF EXISTS "{self.db_name}"')
        conn.close()


def _nginx(workdir: Path, name: str, application: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    folder = workdir / name
    folder.mkdir()
    conf = folder / "nginx.conf"
    conf.write_text(
        f"load_module {NGINX_MODULE};\nworker_processes 1;\ndaemon off;\nuser root;\n"
        f"pid {folder}/nginx.pid;\nerror_log {folder}/error.log warn;\nevents {{ worker_connections 4096; }}\n"
        f"rtmp {{ server {{ listen 127.0.0.1:{port}; chunk_size 4096;\n  application live {{ {application} }} }} }}\n")
    proc = subprocess.Popen(["nginx", "-p", str(folder), "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    import socket

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    return proc, port


class NginxPair:
    """An nginx-rtmp origin and an edge whose ``live`` application ``pull``s from it on demand."""

    def __init__(self, workdir: Path) -> None:
        self.origin, self.origin_port = _nginx(workdir, "origin", "live on;")
        self.edge, self.edge_port = _nginx(workdir, "edge", f"live on; pull rtmp://127.0.0.1:{self.origin_port}/live;")

    def run(self, count: int, warmup: float, measure: float) -> Run:
        """One measured run: the publisher into the origin, ``count`` RTMP viewers on the edge."""
        load = loadavg()
        w = watch(f"rtmp://127.0.0.1:{self.origin_port}/live/bench", "rtmp",
                  f"rtmp://127.0.0.1:{self.edge_port}/live/bench", count, warmup, measure,
                  {"edge": children(self.edge.pid), "origin": children(self.origin.pid)}, settle_s=3.0)
        time.sleep(2.0)  # the edge lets go of its pull
        run = Run(EDGE, 0, load=(max(load[0], loadavg()[0]), load[1], load[2]))
        run.figures = {CPU: w.per_viewer_minute("edge"),
                       "frames per viewer": w.done["frames"] / max(1, w.connected["viewers"])}
        run.notes = {"origin cores": w.cpu["origin"] / w.seconds, "load client cores": w.load_cores}
        viewer_health(run, count, w)
        return run

    def close(self) -> None:
        for proc in (self.edge, self.origin):
            proc.send_signal(signal.SIGQUIT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _ms(values: list[float]) -> str:
    return f"median {statistics.median(values):.0f} ms, max {max(values):.0f} ms"


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    count = 10 if quick else 200
    rounds = option(argv, "--rounds", 1 if quick else 3, int, 1)
    warmup, measure = (2.0, 4.0) if quick else (5.0, 20.0)
    if not shutil.which("ffmpeg"):
        print("live_relay: skipped (no ffmpeg)")
        return 0
    try:
        _admin().close()
    except Exception as e:  # psycopg2 errors, or psycopg2 missing
        print(f"live_relay: skipped (PostgreSQL at {POSTGRES} unreachable: {type(e).__name__})")
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="synctv-bench-relay-"))
    peer = shutil.which("nginx") is not None and Path(NGINX_MODULE).exists()
    print(f"live_relay: {count} viewers per run, measured {measure:g} s after {warmup:g} s; {rounds} healthy "
          "rounds wanted, sides alternate", flush=True)
    ours = theirs = None
    try:
        ours = SynctvPair(workdir)
        frames = ours.first_frames()
        sides = {RELAY: lambda r: ours.run(RELAY, count, warmup, measure),
                 DIRECT: lambda r: ours.run(DIRECT, count, warmup, measure)}
        if peer:
            theirs = NginxPair(workdir)
            sides[EDGE] = lambda r: theirs.run(count, warmup, measure)
        results = alternate(sides, rounds=rounds, max_rounds=rounds + 2,
                            report=lambda run: print("live_relay: " + format_run(run, [CPU, "frames per viewer"], 4),
                                                     flush=True))
    finally:
        if ours is not None:
            ours.close()
        if theirs is not None:
            theirs.close()
    print(f"live_relay: time to first frame on B, relay starting (cold): {_ms(frames['cold'])}")
    print(f"live_relay: time to first frame on B, relay running (warm): {_ms(frames['warm'])}")
    print(f"live_relay: time to first frame on A (the publishing node): {_ms(frames['direct'])}")
    relayed = [r[RELAY] for r in results]
    healthy = [run for run in relayed if run.healthy]
    print(f"live_relay: synctv relay healthy runs: {len(healthy)} of {len(relayed)}")
    for run in relayed:
        if not run.healthy:
            print(f"live_relay: synctv relay round {run.round + 1} unhealthy: {'; '.join(run.problems)}")
    pairs = [(RELAY, DIRECT)] + ([(RELAY, EDGE)] if peer else [])
    for a, b in pairs:
        for line in format_comparison(compare(results, CPU, a, b, need=rounds), a, b, 4, "live_relay: "):
            print(line)
    if not peer:
        print("live_relay: nginx-rtmp: skipped (nginx or ngx_rtmp_module.so missing)")
    shutil.rmtree(workdir, ignore_errors=True)
    return 0 if healthy else 1


if __name__ == "__main__":
    from bench import run_main

    run_main(main, __doc__)
