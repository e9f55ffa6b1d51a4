"""Live fan-out: synctv HTTP-FLV beside nginx-rtmp, HLS start time, FLV time to first frame.

``python -m bench live [--quick]`` (or ``main(argv)``):

1. synctv (the real ``twistd -n synctv`` process): one ffmpeg publisher (x264 veryfast, CBR
   2 Mbit/s, 640x360 testsrc, AAC) and N HTTP-FLV viewers (N=500; quick: 20) in a separate load
   process. Reported: the server's CPU seconds per viewer-minute over the measured window,
   viewer gaps (a video timestamp jump > 500 ms or > 1 s without a frame), publisher stall
   (ffmpeg falling behind real time), the time from the publisher's start to the first HLS
   segment, and a new FLV viewer's time to first frame (the cached GOP's keyframe).
2. nginx-rtmp (Debian's libnginx-mod-rtmp): the same publish, the same number of RTMP viewers;
   CPU seconds per viewer-minute of its master and worker; then the ratio synctv/nginx.

Figures are printed as lines ``name: value``; the exit status is 0 unless something failed.
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
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

NGINX_MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"
ROOT = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / TICK


def children(pid: int) -> list[int]:
    out = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                pass
    return out


def publisher(url: str, seconds: float) -> subprocess.Popen[str]:
    """ffmpeg pushing 2 Mbit/s CBR H.264 + AAC in real time; progress lines on stdout."""
    return subprocess.Popen([
        "ffmpeg", "-nostdin", "-v", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=30",
        "-f", "lavfi", "-i", "sine=frequency=440", "-t", str(seconds), "-c:v", "libx264", "-pix_fmt", "yuv420p",
        "-preset", "veryfast", "-tune", "zerolatency", "-g", "30", "-b:v", "2M", "-maxrate", "2M", "-minrate", "2M",
        "-bufsize", "1M", "-x264-params", "nal-hrd=cbr", "-c:a", "aac", "-b:a", "128k", "-progress", "pipe:1",
        "-f", "flv", url], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def stall_s(proc: subprocess.Popen[str], started: float) -> float:
    """How far the publisher's media time fell behind the wall clock (0 when it kept up)."""
    out_us = 0
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("out_time_us=") and line.strip()[12:].isdigit():
            out_us = int(line.strip()[12:])
    proc.wait()
    return max(0.0, (time.monotonic() - started) - out_us / 1e6 - 1.0)  # 1 s: process start


def viewers(kind: str, url: str, count: int, seconds: float) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "bench._live_clients", kind, url, str(count), str(seconds)],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)


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


class Synctv:
    def __init__(self, workdir: Path) -> None:
        self.http, self.rtmp = free_port(), free_port()
        data = workdir / "data"
        self.log = open(workdir / "synctv.log", "wb")
        self.proc = subprocess.Popen([sys.executable, "-c", "from twisted.scripts.twistd import run; run()", "-n",
                                      "--pidfile", "", "synctv", "--data", str(data),
                                      "--http", f"tcp:{self.http}:interface=127.0.0.1",
                                      "--rtmp", f"tcp:{self.rtmp}:interface=127.0.0.1"],
                                     stdout=self.log, stderr=subprocess.STDOUT, cwd=workdir)
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
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        conf = workdir / "nginx.conf"
        conf.write_text(
            f"load_module {NGINX_MODULE};\nworker_processes 1;\ndaemon off;\nuser root;\n"
            f"pid {workdir}/nginx.pid;\nerror_log {workdir}/nginx-error.log warn;\n"
            "events { worker_connections 4096; }\n"
            f"rtmp {{ server {{ listen 127.0.0.1:{self.port}; chunk_size 4096;\n"
            "  application live { live on; } } }\n")
        self.proc = subprocess.Popen(["nginx", "-p", str(workdir), "-c", str(conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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


def fan_out(server_pids: list[int], publish_url: str, kind: str, view_url: str, count: int,
            warmup: float, measure: float) -> dict[str, Any]:
    """Publish, connect ``count`` viewers, measure the server's CPU over ``measure`` seconds."""
    started = time.monotonic()
    ffmpeg = publisher(publish_url, warmup + measure + 8)
    time.sleep(2.0)
    load = viewers(kind, view_url, count, warmup + measure)
    connected = read_event(load)
    time.sleep(warmup)
    cpu0, t0, load0 = cpu_seconds(server_pids), time.monotonic(), cpu_seconds([load.pid])
    time.sleep(measure)
    cpu1, t1, load1 = cpu_seconds(server_pids), time.monotonic(), cpu_seconds([load.pid])
    done = read_event(load)
    load.wait()
    ffmpeg.send_signal(signal.SIGINT)
    behind = stall_s(ffmpeg, started)
    viewer_minutes = connected["viewers"] * (t1 - t0) / 60
    return {"cpu_s": cpu1 - cpu0, "viewer_minutes": viewer_minutes,
            "cpu_per_viewer_minute": (cpu1 - cpu0) / viewer_minutes if viewer_minutes else float("nan"),
            "viewers": connected["viewers"], "gaps": done["gaps"], "failed": done["failed"],
            "ended_early": done["ended_early"], "frames": done["frames"], "publisher_behind_s": behind,
            "mbit_s_out": done["bytes"] * 8 / 1e6 / (warmup + measure), "load_cpu_share": (load1 - load0) / (t1 - t0)}


def first_hls_segment(server: Synctv) -> float:
    """Seconds from the publisher's start to a playlist that names a segment."""
    started = time.monotonic()
    ffmpeg = publisher(server.publish_url, 30)
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
        ffmpeg.send_signal(signal.SIGINT)
        stall_s(ffmpeg, started)


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
    count = 20 if quick else 500
    warmup, measure = (3.0, 6.0) if quick else (8.0, 30.0)
    if not shutil.which("ffmpeg"):
        print("live: skipped (no ffmpeg)")
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="synctv-bench-live-"))
    status = 0
    server = Synctv(workdir)
    try:
        hls_s = first_hls_segment(server)
        time.sleep(1.0)
        ours = fan_out(children(server.proc.pid), server.publish_url, "flv", server.urls["flv"], count,
                       warmup, measure)
        ffmpeg = publisher(server.publish_url, 20)
        time.sleep(4.0)
        frames = first_frame_ms(server.urls["flv"], 5 if quick else 20)
        ffmpeg.send_signal(signal.SIGINT)
        ffmpeg.wait()
    finally:
        server.stop()
    print(f"live: viewers: {ours['viewers']} (HTTP-FLV; measured {measure:g} s after {warmup:g} s)")
    print(f"live: synctv cpu per viewer-minute: {ours['cpu_per_viewer_minute']:.4f} s "
          f"({ours['cpu_s']:.2f} cpu s, {ours['mbit_s_out']:.0f} Mbit/s out)")
    print(f"live: synctv viewer gaps: {ours['gaps']}, failed: {ours['failed']}, ended early: {ours['ended_early']}, "
          f"frames per viewer: {ours['frames'] / max(1, ours['viewers']):.0f}")
    print(f"live: synctv publisher behind real time: {ours['publisher_behind_s']:.2f} s "
          f"(load generator used {ours['load_cpu_share']:.0%} of a core)")
    print(f"live: publish start to first HLS segment: {hls_s:.2f} s")
    print(f"live: new FLV viewer time to first frame: median {statistics.median(frames):.1f} ms, "
          f"max {max(frames):.1f} ms")
    if ours["failed"] or ours["viewers"] < count:
        status = 1
    if shutil.which("nginx") and Path(NGINX_MODULE).exists():
        nginx = Nginx(workdir)
        try:
            theirs = fan_out(children(nginx.proc.pid), nginx.publish_url, "rtmp", nginx.publish_url, count,
                             warmup, measure)
        finally:
            nginx.stop()
        print(f"live: nginx-rtmp cpu per viewer-minute: {theirs['cpu_per_viewer_minute']:.4f} s "
              f"({theirs['cpu_s']:.2f} cpu s, {theirs['mbit_s_out']:.0f} Mbit/s out, RTMP viewers)")
        print(f"live: nginx-rtmp viewer gaps: {theirs['gaps']}, failed: {theirs['failed']}, "
              f"frames per viewer: {theirs['frames'] / max(1, theirs['viewers']):.0f}, publisher behind: {theirs['publisher_behind_s']:.2f} s "
              f"(load generator used {theirs['load_cpu_share']:.0%} of a core)")
        ratio = ours["cpu_per_viewer_minute"] / theirs["cpu_per_viewer_minute"] if theirs["cpu_s"] else float("nan")
        print(f"live: cpu ratio synctv/nginx-rtmp: {ratio:.2f}")
    else:
        print("live: nginx-rtmp: skipped (nginx or ngx_rtmp_module.so missing)")
    shutil.rmtree(workdir, ignore_errors=True)
    return status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
