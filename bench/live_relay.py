"""Live on any node: what relaying costs, synctv beside an nginx-rtmp origin and edge.

``python -m bench live_relay [--quick]`` (or ``main(argv)``):

1. synctv: two real ``twistd -n synctv`` nodes on one fresh PostgreSQL database
   (``SYNCTV_TEST_POSTGRES``, default ``postgresql://postgres@127.0.0.1:5432/postgres``). One
   ffmpeg publisher (the live benchmark's 2 Mbit/s H.264 + AAC) to node A, N HTTP-FLV viewers
   (N=200; quick: 10) on node B, which relays from A. Reported: CPU seconds per viewer-minute
   of B (the relaying node), the CPU of A over the same window (it serves one viewer: B's
   relay, however large N is), viewer gaps, the same N viewers on A directly as the control,
   and a new viewer's time to first frame on B while
   the relay runs ("warm") and when it has to start it ("cold": the first viewer of the stream
   on B), beside the same on A.
2. nginx-rtmp (Debian's libnginx-mod-rtmp): an origin and an edge whose ``live`` application
   ``pull``s from the origin on demand (nginx-rtmp's way of serving a stream on another node); N
   RTMP viewers on the edge. CPU per viewer-minute of the edge, the origin's CPU, and the ratio
   synctv relay node / nginx-rtmp edge.

Figures are printed as lines ``live_relay: name: value``; the exit status is 0 unless viewers failed.
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

from bench.live import (
    NGINX_MODULE,
    Publisher,
    children,
    cpu_seconds,
    first_frame_ms,
    free_port,
    http_json,
    read_event,
    viewers,
)

POSTGRES = os.environ.get("SYNCTV_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


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


def synctv_relay(workdir: Path, count: int, warmup: float, measure: float) -> dict[str, Any]:
    name = f"synctv_bench_{secrets.token_hex(4)}"
    conn = _admin()
    conn.cursor().execute(f'CREATE DATABASE "{name}"')
    conn.close()
    db = POSTGRES.rsplit("/", 1)[0] + "/" + name
    a = b = None
    ffmpeg: Publisher | None = None
    try:
        a = Node(workdir, "node-a", db)
        b = Node(workdir, "node-b", db)
        password = (a.data / "root-password").read_text().strip()
        token = http_json(a.base + "/api/auth/login", {"name": "root", "password": password})["token"]
        room = http_json(a.base + "/api/rooms", {"name": "relay"}, token)["room"]["id"]
        media = http_json(f"{a.base}/api/rooms/{room}/media", {"provider": "rtmp", "title": "relay"}, token)["media"]["id"]
        item = f"/api/rooms/{room}/media/{media}"
        publish_url = http_json(a.base + item + "/stream-key", {}, token)["publish_url"]
        on_a, on_b = _urls(a, item, token), _urls(b, item, token)

        started = time.monotonic()
        ffmpeg = Publisher(publish_url)
        time.sleep(4.0)
        cold = first_frame_ms(on_b["flv"], 1)  # starts B's relay
        _wait_offline(b, item, token)  # B releases it (pull_idle_s + idle_s)
        cold += first_frame_ms(on_b["flv"], 1)
        warm_b = first_frame_ms(on_b["flv"], 5)
        direct_a = first_frame_ms(on_a["flv"], 5)

        pids_a, pids_b = children(a.proc.pid), children(b.proc.pid)
        load = viewers("flv", on_b["flv"], count, warmup + measure)
        connected = read_event(load)
        time.sleep(warmup)
        a0, b0, t0, l0 = cpu_seconds(pids_a), cpu_seconds(pids_b), time.monotonic(), cpu_seconds([load.pid])
        time.sleep(measure)
        a1, b1, t1, l1 = cpu_seconds(pids_a), cpu_seconds(pids_b), time.monotonic(), cpu_seconds([load.pid])
        a_viewers = http_json(f"{a.base}{item}/stream", token=token)["viewers"]["flv"]
        done = read_event(load)
        load.wait()
        # the control: the same viewers on A itself, in the same run
        direct = viewers("flv", on_a["flv"], count, warmup + measure)
        direct_connected = read_event(direct)
        time.sleep(warmup)
        d0, dt0 = cpu_seconds(pids_a), time.monotonic()
        time.sleep(measure)
        d1, dt1 = cpu_seconds(pids_a), time.monotonic()
        direct_done = read_event(direct)
        direct.wait()
        behind = ffmpeg.stop(started)
        minutes = connected["viewers"] * (t1 - t0) / 60
        direct_minutes = direct_connected["viewers"] * (dt1 - dt0) / 60
        return {"direct_cpu_per_viewer_minute": (d1 - d0) / direct_minutes if direct_minutes else float("nan"),
                "direct_gaps": direct_done["gaps"], "direct_failed": direct_done["failed"],
                "direct_frames": direct_done["frames"], "direct_viewers": direct_connected["viewers"],
                "viewers": connected["viewers"], "b_cpu_s": b1 - b0, "a_cpu_s": a1 - a0, "seconds": t1 - t0,
                "b_cpu_per_viewer_minute": (b1 - b0) / minutes if minutes else float("nan"),
                "a_flv_viewers": a_viewers, "gaps": done["gaps"], "failed": done["failed"],
                "frames": done["frames"], "cold_ms": cold, "warm_ms": warm_b, "direct_ms": direct_a,
                "publisher_behind_s": behind, "load_cpu_share": (l1 - l0) / (t1 - t0)}
    finally:
        if ffmpeg is not None:
            ffmpeg.stop()
        for node in (b, a):
            if node is not None:
                node.stop()
        conn = _admin()
        conn.cursor().execute(f'DROP DATABASE IF EXISTS "{name}"')
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


def nginx_edge(workdir: Path, count: int, warmup: float, measure: float) -> dict[str, Any]:
    origin, origin_port = _nginx(workdir, "origin", "live on;")
    edge, edge_port = _nginx(workdir, "edge", f"live on; pull rtmp://127.0.0.1:{origin_port}/live;")
    ffmpeg: Publisher | None = None
    try:
        started = time.monotonic()
        ffmpeg = Publisher(f"rtmp://127.0.0.1:{origin_port}/live/bench")
        time.sleep(3.0)
        pids_o, pids_e = children(origin.pid), children(edge.pid)
        load = viewers("rtmp", f"rtmp://127.0.0.1:{edge_port}/live/bench", count, warmup + measure)
        connected = read_event(load)
        time.sleep(warmup)
        o0, e0, t0 = cpu_seconds(pids_o), cpu_seconds(pids_e), time.monotonic()
        time.sleep(measure)
        o1, e1, t1 = cpu_seconds(pids_o), cpu_seconds(pids_e), time.monotonic()
        done = read_event(load)
        load.wait()
        behind = ffmpeg.stop(started)
        minutes = connected["viewers"] * (t1 - t0) / 60
        return {"viewers": connected["viewers"], "edge_cpu_s": e1 - e0, "origin_cpu_s": o1 - o0,
                "edge_cpu_per_viewer_minute": (e1 - e0) / minutes if minutes else float("nan"),
                "gaps": done["gaps"], "failed": done["failed"], "frames": done["frames"],
                "publisher_behind_s": behind}
    finally:
        if ffmpeg is not None:
            ffmpeg.stop()
        for proc in (edge, origin):
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
    status = 0
    ours = synctv_relay(workdir, count, warmup, measure)
    print(f"live_relay: viewers on node B: {ours['viewers']} (HTTP-FLV, relayed from A; measured "
          f"{measure:g} s after {warmup:g} s)")
    print(f"live_relay: synctv relay node cpu per viewer-minute: {ours['b_cpu_per_viewer_minute']:.4f} s "
          f"({ours['b_cpu_s']:.2f} cpu s)")
    print(f"live_relay: synctv publishing node: {ours['a_flv_viewers']} FLV viewer(s), "
          f"{ours['a_cpu_s'] / ours['seconds']:.1%} of a core")
    print(f"live_relay: synctv viewer gaps: {ours['gaps']}, failed: {ours['failed']}, "
          f"frames per viewer: {ours['frames'] / max(1, ours['viewers']):.0f}, "
          f"publisher behind: {ours['publisher_behind_s']:.2f} s (load generator used {ours['load_cpu_share']:.0%} of a core)")
    print(f"live_relay: control, the same viewers on A directly: cpu per viewer-minute "
          f"{ours['direct_cpu_per_viewer_minute']:.4f} s, gaps: {ours['direct_gaps']}, failed: {ours['direct_failed']}, "
          f"frames per viewer: {ours['direct_frames'] / max(1, ours['direct_viewers']):.0f}")
    print(f"live_relay: time to first frame on B, relay starting (cold): {_ms(ours['cold_ms'])}")
    print(f"live_relay: time to first frame on B, relay running (warm): {_ms(ours['warm_ms'])}")
    print(f"live_relay: time to first frame on A (the publishing node): {_ms(ours['direct_ms'])}")
    if ours["failed"] or ours["viewers"] < count or ours["a_flv_viewers"] != 1:
        status = 1
    if shutil.which("nginx") and Path(NGINX_MODULE).exists():
        theirs = nginx_edge(workdir, count, warmup, measure)
        print(f"live_relay: nginx-rtmp edge cpu per viewer-minute: {theirs['edge_cpu_per_viewer_minute']:.4f} s "
              f"({theirs['edge_cpu_s']:.2f} cpu s, RTMP viewers, pull from the origin); origin "
              f"{theirs['origin_cpu_s'] / measure:.1%} of a core")
        print(f"live_relay: nginx-rtmp viewer gaps: {theirs['gaps']}, failed: {theirs['failed']}, "
              f"frames per viewer: {theirs['frames'] / max(1, theirs['viewers']):.0f}")
        if theirs["edge_cpu_s"]:
            ratio = ours["b_cpu_per_viewer_minute"] / theirs["edge_cpu_per_viewer_minute"]
            print(f"live_relay: cpu ratio synctv relay node/nginx-rtmp edge: {ratio:.2f}")
    else:
        print("live_relay: nginx-rtmp: skipped (nginx or ngx_rtmp_module.so missing)")
    shutil.rmtree(workdir, ignore_errors=True)
    return status


if __name__ == "__main__":
    from bench import run_main

    run_main(main, __doc__)
