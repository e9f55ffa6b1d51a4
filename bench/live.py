"""Live fan-out: synctv HTTP-FLV beside nginx-rtmp, HLS start time, FLV time to first frame.

``python -m bench live [--quick] [--viewers N] [--rounds R] [--measure S] [--flush-ms MS] [--no-peer]
[--no-pin] [--baseline DIR] [--read-every-ms MS]``
(or ``main(argv)``; ``--baseline DIR``: also run a synctv from the source tree DIR, e.g.
``git archive <commit> | tar -x -C DIR``, as the side ``synctv-before``, in the same rounds):

1. synctv (the real ``twistd -n synctv`` process) and nginx-rtmp (Debian's libnginx-mod-rtmp,
   one worker) each get one ffmpeg publisher (x264 veryfast, CBR 2 Mbit/s, 640x360 testsrc, AAC)
   and N viewers (N=500; quick: 20) in a separate load process: HTTP-FLV for synctv, RTMP for
   nginx-rtmp. The load process reads every socket once per 50 ms (``--read-every-ms``; 0: as
   data comes), as a player reading from its buffer does (bench/_live_clients.py says why). The
   two sides run alternately, the order swapped every round, until R rounds (default 3; quick 1)
   were healthy on both sides (at most R + 2 rounds; ``bench/_trials.py``).
2. Each run reports the server's CPU seconds per viewer-minute over the measured window (the
   server's own processes from /proc: the load client's and the publisher's CPU are never in
   it), and its health: viewer gaps (a video timestamp jump > 500 ms or > 1 s without a frame),
   failed or ended viewers, the publisher falling behind real time (> 0.5 s), the load process
   at its CPU bound (> 90% of a core), the server's main thread waiting for a CPU more than half
   the window (schedstat: the machine's other load set the pace). Besides CPU seconds per
   viewer-minute, the server's CPU seconds per GB delivered (which dropped frames do not flatter). With two or more CPUs the servers run on the first and
   the publisher and load client on the others (``--no-pin``: not pinned); every process of
   the benchmark (servers, publisher, load client) runs at nice -10 (when allowed), so the
   machine's other load does not set the pace.
3. Printed: every run with its load average, then per side the median (min-max) over healthy
   runs and the median ratio synctv/nginx-rtmp over healthy rounds -- or the refusal, with why.
4. Then, once: the time from a publisher's start to the first HLS segment, and a new FLV
   viewer's time to first frame (the cached GOP's keyframe).

Figures are printed as lines ``live: name: value``; the exit status is 0 unless something failed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import option
from bench._live_clients import READ_EVERY_S
from bench._trials import (
    Pinning,
    Run,
    Starvation,
    alternate,
    compare,
    cpu_seconds,
    format_comparison,
    format_run,
    loadavg,
)
from bench._trials import process_tree as children

NGINX_MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


LOAD_NICE = -10  # the publisher and the load client, so the machine's other load cannot make them late
SERVER_NICE = -10  # both servers alike, for the same reason


def load_preexec(pinning: Pinning | None) -> Any:
    """A ``preexec_fn`` for the publisher and the load client: the load CPUs, nice ``LOAD_NICE``."""
    return (pinning or Pinning(None, None)).load_preexec(LOAD_NICE)


#: A publisher runs until it is stopped (SIGINT); this caps a stray one.
PUBLISHER_CAP_S = 3600.0


class Publisher:
    """ffmpeg pushing 2 Mbit/s CBR H.264 + AAC in real time to ``url`` for at most ``seconds``.

    Its progress lines are read as they come by a thread (``out_us``, the media time pushed so
    far): left in the pipe, they would fill it after a minute or two and stall ffmpeg itself.
    :meth:`stop` ends it and says how far it fell behind; it is idempotent, so a ``finally`` may
    call it again, and a benchmark that fails midway never leaves a publisher running."""

    def __init__(self, url: str, seconds: float = PUBLISHER_CAP_S, pinning: Pinning | None = None) -> None:
        self.started = time.monotonic()
        self.out_us = 0
        self._behind: float | None = None
        self.proc = subprocess.Popen([
            "ffmpeg", "-nostdin", "-v", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=30",
            "-f", "lavfi", "-i", "sine=frequency=440", "-t", str(seconds), "-c:v", "libx264", "-pix_fmt", "yuv420p",
            "-preset", "veryfast", "-tune", "zerolatency", "-g", "30", "-b:v", "2M", "-maxrate", "2M", "-minrate",
            "2M", "-bufsize", "1M", "-x264-params", "nal-hrd=cbr", "-c:a", "aac", "-b:a", "128k", "-progress",
            "pipe:1", "-f", "flv", url], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            preexec_fn=load_preexec(pinning))
        self.pid = self.proc.pid
        self._reader = threading.Thread(target=self._read_progress, daemon=True)
        self._reader.start()

    def _read_progress(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("out_time_us=") and line.strip()[12:].isdigit():
                self.out_us = int(line.strip()[12:])

    def stop(self, started: float | None = None) -> float:
        """Stop it (SIGINT) if it runs; how far its media time had fallen behind the wall clock
        since ``started`` (default: its own start) when first stopped, 0 when it kept up. One
        that ended before (its cap) counts as behind."""
        if self._behind is None:
            stopped = time.monotonic()
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self._reader.join(timeout=5)
            since = self.started if started is None else started
            self._behind = max(0.0, (stopped - since) - self.out_us / 1e6 - 1.0)  # 1 s: the process's start
        return self._behind


def viewers(kind: str, url: str, count: int, seconds: float, pinning: Pinning | None = None,
            read_every_s: float = READ_EVERY_S) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "bench._live_clients", kind, url, str(count), str(seconds),
                             str(read_every_s)],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT,
                            preexec_fn=load_preexec(pinning))


def read_event(proc: subprocess.Popen[str]) -> dict[str, Any]:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError("the load process died")
    return json.loads(line)


def http_json(url: str, body: Any = None, token: str | None = None, method: str | None = None) -> Any:
    req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(), method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def server_preexec(pinning: Pinning) -> Any:
    """A ``preexec_fn`` for a server: the server CPU, nice ``SERVER_NICE``."""
    return pinning.server_preexec(SERVER_NICE)


class Synctv:
    def __init__(self, workdir: Path, pinning: Pinning, name: str = "synctv", source: str | None = None,
                 flush_ms: int | None = None) -> None:
        """``source``: a source tree to run the server from (PYTHONPATH), e.g. the code before a change;
        ``flush_ms``: ``[live] flush_ms`` (None: the default)."""
        self.http, self.rtmp = free_port(), free_port()
        workdir = workdir / name
        workdir.mkdir()
        data = workdir / "data"
        config = workdir / "synctv.toml"
        config.write_text("" if flush_ms is None else f"[live]\nflush_ms = {flush_ms}\n")
        self.log = open(workdir / "synctv.log", "wb")
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        if source is not None:
            env["PYTHONPATH"] = str(Path(source).resolve())
        self.proc = subprocess.Popen([sys.executable, "-c", "from twisted.scripts.twistd import run; run()", "-n",
                                      "--pidfile", "", "synctv", "--data", str(data), "--config", str(config),
                                      "--http", f"tcp:{self.http}:interface=127.0.0.1:backlog=1024",
                                      "--rtmp", f"tcp:{self.rtmp}:interface=127.0.0.1"],
                                     stdout=self.log, stderr=subprocess.STDOUT, cwd=workdir, env=env,
                                     preexec_fn=server_preexec(pinning))
        self.base = f"http://127.0.0.1:{self.http}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                http_json(self.base + "/healthz")
                break
            except OSError:
                time.sleep(0.1)
        password = (data / "root-password").read_text().strip()
        self.token = http_json(self.base + "/api/auth/login", {"name": "root", "password": password})["token"]
        room = http_json(self.base + "/api/rooms", {"name": "bench"}, self.token)["room"]["id"]
        media = http_json(f"{self.base}/api/rooms/{room}/media", {"provider": "rtmp", "title": "bench"},
                          self.token)["media"]["id"]
        self.item = f"{self.base}/api/rooms/{room}/media/{media}"
        self.publish_url = http_json(self.item + "/stream-key", {}, self.token)["publish_url"]
        infos = http_json(self.item + "/playback", token=self.token)["infos"]
        self.urls = {info["mode"]: self.base + info["url"] for info in infos}

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        self.log.close()


class Nginx:
    def __init__(self, workdir: Path, pinning: Pinning) -> None:
        self.port = free_port()
        conf = workdir / "nginx.conf"
        conf.write_text(
            f"load_module {NGINX_MODULE};\nworker_processes 1;\ndaemon off;\nuser root;\n"
            f"pid {workdir}/nginx.pid;\nerror_log {workdir}/nginx-error.log warn;\n"
            "events { worker_connections 4096; }\n"
            f"rtmp {{ server {{ listen 127.0.0.1:{self.port}; chunk_size 4096;\n"
            "  application live { live on; } } }\n")
        self.proc = subprocess.Popen(["nginx", "-p", str(workdir), "-c", str(conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     preexec_fn=server_preexec(pinning))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    break
            time.sleep(0.05)
        self.publish_url = f"rtmp://127.0.0.1:{self.port}/live/bench"

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGQUIT)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


PUBLISHER_SLACK_S = 0.5  # a publisher further behind real time stalled
LOAD_BOUND = 0.9  # a load process at 90% of a core may be what drops frames
WAIT_BOUND = 0.5  # a server whose main thread waited for a CPU half the window measured other load


@dataclass
class Window:
    """What :func:`watch` measured: CPU seconds of each watched group of processes over the
    window, its length, the viewers' first and last reports (``connected``, ``done``), how far the
    publisher fell behind, the load client's and the publisher's cores, how long the first group's
    main threads waited for a CPU (a share of the window), and what ``at_end`` returned."""

    cpu: dict[str, float]
    seconds: float
    connected: dict[str, Any]
    done: dict[str, Any]
    behind_s: float
    load_cores: float
    publisher_cores: float
    waited: float
    at_end: Any = None

    def per_viewer_minute(self, group: str) -> float:
        minutes = self.connected["viewers"] * self.seconds / 60
        return self.cpu[group] / minutes if minutes else float("nan")


def watch(publish_url: str, kind: str, view_url: str, count: int, warmup: float, measure: float,
          groups: dict[str, list[int]], pinning: Pinning | None = None, read_every_s: float = READ_EVERY_S,
          settle_s: float = 2.0, at_end: Any = None) -> Window:
    """Publish to ``publish_url`` (until stopped: connecting may take a while), after ``settle_s``
    connect ``count`` viewers of ``kind`` to ``view_url`` in a load process, and after ``warmup``
    measure the CPU of each group of processes over ``measure`` seconds; ``at_end()``, if given, is
    called at the end of the window. The publisher and the viewers are stopped whatever happens."""
    started = time.monotonic()
    ffmpeg = Publisher(publish_url, pinning=pinning)
    load = None
    try:
        time.sleep(settle_s)
        load = viewers(kind, view_url, count, warmup + measure, pinning, read_every_s)
        connected = read_event(load)
        time.sleep(warmup)
        starving = Starvation(next(iter(groups.values())))
        cpu0 = {name: cpu_seconds(pids) for name, pids in groups.items()}
        t0, load0, pub0 = time.monotonic(), cpu_seconds([load.pid]), cpu_seconds([ffmpeg.pid])
        time.sleep(measure)
        cpu1 = {name: cpu_seconds(pids) for name, pids in groups.items()}
        t1, load1, pub1 = time.monotonic(), cpu_seconds([load.pid]), cpu_seconds([ffmpeg.pid])
        extra = at_end() if at_end is not None else None
        done = read_event(load)
        load.wait()
        behind = ffmpeg.stop(started)
    finally:
        ffmpeg.stop(started)
        if load is not None and load.poll() is None:
            load.kill()
            load.wait()
    return Window({name: cpu1[name] - cpu0[name] for name in groups}, t1 - t0, connected, done, behind,
                  (load1 - load0) / (t1 - t0), (pub1 - pub0) / (t1 - t0), starving.share(t1 - t0), extra)


def viewer_health(run: Run, count: int, window: Window) -> None:
    """The problems of a run that make it unhealthy: viewers missing, failed, ended or with gaps,
    a publisher behind real time, a load client at its bound."""
    connected, done = window.connected, window.done
    if connected["viewers"] < count or done["failed"]:
        run.problems.append(f"{connected['viewers']} of {count} viewers connected, {done['failed']} failed")
    if done["gaps"]:
        run.problems.append(f"{done['gaps']} viewer gaps")
    if done["ended_early"]:
        run.problems.append(f"{done['ended_early']} viewers ended early")
    if window.behind_s > PUBLISHER_SLACK_S:
        run.problems.append(f"the publisher fell {window.behind_s:.2f} s behind real time")
    if window.load_cores > LOAD_BOUND:
        run.problems.append(f"the load client used {window.load_cores:.0%} of a core")


def fan_out(server_pids: list[int], publish_url: str, kind: str, view_url: str, count: int,
            warmup: float, measure: float, pinning: Pinning | None = None,
            read_every_s: float = READ_EVERY_S) -> dict[str, Any]:
    """Publish, connect ``count`` viewers, measure the server's CPU over ``measure`` seconds."""
    w = watch(publish_url, kind, view_url, count, warmup, measure, {"server": server_pids}, pinning, read_every_s)
    done = w.done
    return {"cpu_s": w.cpu["server"], "viewer_minutes": w.connected["viewers"] * w.seconds / 60,
            "cpu_per_viewer_minute": w.per_viewer_minute("server"),
            "viewers": w.connected["viewers"], "gaps": done["gaps"], "failed": done["failed"],
            "ended_early": done["ended_early"], "frames": done["frames"], "publisher_behind_s": w.behind_s,
            "mbit_s_out": done["bytes"] * 8 / 1e6 / (warmup + measure), "load_cpu_share": w.load_cores,
            "publisher_cpu_share": w.publisher_cores, "server_wait_share": w.waited,
            "bytes_measured": done["bytes"] * w.seconds / (warmup + measure), "window": w}


def fan_out_run(side: str, server_pids: list[int], publish_url: str, kind: str, view_url: str, count: int,
                warmup: float, measure: float, pinning: Pinning, read_every_s: float = READ_EVERY_S) -> Run:
    """One run of :func:`fan_out` as a trial: its figures and what makes it unhealthy."""
    load = loadavg()
    got = fan_out(server_pids, publish_url, kind, view_url, count, warmup, measure, pinning, read_every_s)
    run = Run(side, 0, load=(max(load[0], loadavg()[0]), load[1], load[2]))
    gb_out = got["bytes_measured"] / 1e9
    run.figures = {"cpu s per viewer-minute": got["cpu_per_viewer_minute"], "server cpu s": got["cpu_s"],
                   "server cpu s per GB out": got["cpu_s"] / gb_out if gb_out else float("nan"),
                   "Mbit/s out": got["mbit_s_out"], "frames per viewer": got["frames"] / max(1, got["viewers"])}
    run.notes = {"load client cores": got["load_cpu_share"], "publisher cores": got["publisher_cpu_share"],
                 "publisher behind s": got["publisher_behind_s"], "server waited for a CPU": got["server_wait_share"]}
    viewer_health(run, count, got["window"])
    if got["server_wait_share"] > WAIT_BOUND:
        run.problems.append(f"the server waited for a CPU {got['server_wait_share']:.0%} of the window "
                            "(the machine's other load set the pace)")
    if pinning.load is not None:
        load_side = (got["load_cpu_share"] + got["publisher_cpu_share"]) / len(pinning.load)
        if load_side > LOAD_BOUND:  # the viewers and the publisher share the load CPUs
            run.problems.append(f"the load client and the publisher used {load_side:.0%} of the load CPUs "
                                "(viewers may have fallen behind there, not at the server; --no-pin spreads them)")
    return run


def first_hls_segment(server: Synctv) -> float:
    """Seconds from the publisher's start to a playlist that names a segment."""
    started = time.monotonic()
    ffmpeg = Publisher(server.publish_url, 30)
    try:
        while time.monotonic() - started < 30:
            try:
                with urllib.request.urlopen(server.urls["hls"], timeout=30) as resp:
                    if b"#EXTINF" in resp.read():
                        return time.monotonic() - started
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("no HLS segment within 30 s")
    finally:
        ffmpeg.stop(started)


def first_frame_ms(url: str, samples: int) -> list[float]:
    """Milliseconds from connecting to holding the first whole video keyframe tag, per new viewer."""
    parts = urllib.parse.urlsplit(url)
    out = []
    for _ in range(samples):
        t0 = time.monotonic()
        with socket.create_connection((parts.hostname, parts.port), timeout=10) as s:
            s.sendall(f"GET {parts.path}?{parts.query} HTTP/1.0\r\nHost: b\r\n\r\n".encode())
            buf = bytearray()
            while b"\r\n\r\n" not in buf:
                buf += s.recv(65536)
            buf = buf[buf.index(b"\r\n\r\n") + 4:]
            pos = 13
            while True:
                while len(buf) < pos + 11:
                    buf += s.recv(65536)
                size = int.from_bytes(buf[pos + 1:pos + 4], "big")
                while len(buf) < pos + 11 + size:
                    buf += s.recv(65536)
                if buf[pos] == 9 and buf[pos + 11] >> 4 == 1 and buf[pos + 12] == 1:
                    break
                pos += 11 + size + 4
        out.append((time.monotonic() - t0) * 1000)
        time.sleep(0.1)
    return out


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    count = option(argv, "--viewers", 20 if quick else 500, int, 1)
    rounds = option(argv, "--rounds", 1 if quick else 3, int, 1)
    warmup, measure = (3.0, 6.0) if quick else (8.0, option(argv, "--measure", 30.0, float, 1))
    flush = option(argv, "--flush-ms", None, int, 1)
    read_every_s = option(argv, "--read-every-ms", READ_EVERY_S * 1000, float, 0) / 1000
    baseline = option(argv, "--baseline", None)
    pinning = Pinning.split(enabled="--no-pin" not in argv)
    peer = "--no-peer" not in argv and shutil.which("nginx") is not None and Path(NGINX_MODULE).exists()
    if not shutil.which("ffmpeg"):
        print("live: skipped (no ffmpeg)")
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="synctv-bench-live-"))
    status = 0
    server = Synctv(workdir, pinning, flush_ms=flush)
    before = Synctv(workdir, pinning, "synctv-before", baseline) if baseline else None
    nginx = Nginx(workdir, pinning) if peer else None
    reads = f"viewers read every {read_every_s * 1000:g} ms" if read_every_s > 0 else "viewers read as data comes"
    print(f"live: {count} viewers per run, measured {measure:g} s after {warmup:g} s; {pinning.describe()}; "
          f"{reads}; {rounds} healthy rounds wanted, sides alternate", flush=True)
    keys = ["cpu s per viewer-minute", "server cpu s per GB out", "server cpu s", "Mbit/s out", "frames per viewer"]
    try:
        hls_s = first_hls_segment(server)  # on a fresh server: no stream has made segments yet
        time.sleep(1.0)
        sides = {"synctv": lambda r: fan_out_run("synctv", children(server.proc.pid), server.publish_url, "flv",
                                                 server.urls["flv"], count, warmup, measure, pinning,
                                                 read_every_s)}
        if before is not None:
            sides["synctv-before"] = lambda r: fan_out_run(
                "synctv-before", children(before.proc.pid), before.publish_url, "flv", before.urls["flv"], count,
                warmup, measure, pinning, read_every_s)
        if nginx is not None:
            sides["nginx-rtmp"] = lambda r: fan_out_run("nginx-rtmp", children(nginx.proc.pid), nginx.publish_url,
                                                        "rtmp", nginx.publish_url, count, warmup, measure, pinning,
                                                        read_every_s)
        results = alternate(sides, rounds=rounds, max_rounds=rounds + 2,
                            report=lambda run: print("live: " + format_run(run, keys, 4), flush=True))
        ffmpeg = Publisher(server.publish_url, 60)
        try:
            time.sleep(4.0)
            frames = first_frame_ms(server.urls["flv"], 5 if quick else 20)
        finally:
            ffmpeg.stop()
    finally:
        server.stop()
        if before is not None:
            before.stop()
        if nginx is not None:
            nginx.stop()
    ours = [r["synctv"] for r in results if r["synctv"].healthy]
    if ours:
        cpu = statistics.median(r.figures["cpu s per viewer-minute"] for r in ours)
        print(f"live: synctv cpu per viewer-minute: {cpu:.4f} s (median of {len(ours)} healthy runs)")
    unhealthy = [r["synctv"] for r in results if not r["synctv"].healthy]
    for run in unhealthy:
        print(f"live: synctv round {run.round + 1} unhealthy: {'; '.join(run.problems)}")
    print(f"live: synctv healthy runs: {len(ours)} of {len(results)}")
    print(f"live: publish start to first HLS segment: {hls_s:.2f} s")
    print(f"live: new FLV viewer time to first frame: median {statistics.median(frames):.1f} ms, "
          f"max {max(frames):.1f} ms")
    if not ours:
        status = 1
    pairs = [(a, "nginx-rtmp") for a in ("synctv", "synctv-before") if nginx is not None and a in results[0]]
    if before is not None:
        pairs.append(("synctv", "synctv-before"))
    for a, b in pairs:
        for key in ("cpu s per viewer-minute", "server cpu s per GB out", "Mbit/s out"):
            for line in format_comparison(compare(results, key, a, b, need=rounds), a, b,
                                          4 if "cpu" in key else 0, "live: "):
                print(line)
    if nginx is None:
        print("live: nginx-rtmp: skipped (nginx or ngx_rtmp_module.so missing, or --no-peer)")
    shutil.rmtree(workdir, ignore_errors=True)
    return status


if __name__ == "__main__":
    from bench import run_main

    run_main(main, __doc__)
