"""Media proxy: synctv's slice-caching Range proxy side by side with nginx's (proxy_cache + slice).

    python -m bench.proxy [--quick] [--size-mib N] [--seconds S] [--seeks N] [--cache memory|file]

What it does (docs/benchmarks.md, "Proxy"):

- generates a file (512 MiB; 64 MiB with ``--quick``) and serves it with nginx from apt (the
  upstream, 2 workers, sendfile);
- runs a second nginx as a caching proxy of that upstream with the slice module
  (``slice 1m; proxy_cache_key $uri$slice_range; proxy_set_header Range $slice_range;``), one
  worker (synctv is one process, one reactor thread);
- runs the real server (``twistd -n synctv``) with ``[proxy] slice_size = 1 MiB``, the memory cache
  (or ``--cache file``) big enough for the file and ``allow_networks = ["127.0.0.0/8"]``, adds the
  file as a media item and takes the proxy URL from its PlaybackInfo;
- warms both caches with one full read, then measures with a load client that is not the
  bottleneck (worker processes on raw sockets, ``recv_into`` a reused buffer, keep-alive):
  - cache-hit throughput, 1 and 16 concurrent clients, each reading random 16 MiB ranges (MB/s);
  - random-seek time to first byte (a 64 KiB range at a random offset; from sending the request to
    the first body byte, on a warm keep-alive connection): on hits, and on misses (a fresh copy of
    the file per proxy, each seek on a slice not fetched before), with nginx and with the upstream
    itself for reference;
  - the miss overhead: reading a cold 4 MiB range at a random offset through the proxy, divided by
    reading the same range from the upstream directly (mean over the seeks).

It prints the figures, the ratios and the goals (hit throughput >= 0.5x nginx's, seek TTFB on a
hit <= 2 ms p50, miss overhead <= 1.2x). Exit status 1 if a run failed or bytes were wrong, 0
otherwise (a missed goal is reported, not a failure). ``--quick`` (CI) finishes in well under a
minute.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from synctv.testing import wait_serving

MIB = 1 << 20
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"{what} did not listen on {port}")


def make_file(path: Path, size: int) -> None:
    """Random-looking bytes, each MiB tagged with its index (so a misplaced slice shows)."""
    block = bytearray(random.Random(7).randbytes(MIB))
    with open(path, "wb") as f:
        for i in range(size // MIB):
            block[:8] = i.to_bytes(8, "big")
            f.write(block)
        f.write(bytes(size % MIB))


# -- servers ----------------------------------------------------------------------------------

def start_nginx(workdir: Path, root: Path, upstream_port: int, cache_port: int) -> list[subprocess.Popen[bytes]]:
    """The upstream (2 workers) and the caching proxy (1 worker), as two nginx masters."""
    user = "user root;" if os.geteuid() == 0 else ""
    procs = []
    for name, workers, server in (
        ("upstream", 2, f"listen 127.0.0.1:{upstream_port}; root {root}; location / {{ }}"),
        ("cache", 1, f"""listen 127.0.0.1:{cache_port};
            location / {{
                slice 1m;
                proxy_cache media;
                proxy_cache_key $uri$slice_range;
                proxy_set_header Range $slice_range;
                proxy_cache_valid 200 206 1h;
                proxy_http_version 1.1;
                proxy_set_header Connection "";
                proxy_pass http://up;
                add_header X-Cache $upstream_cache_status;
            }}"""),
    ):
        d = workdir / f"nginx-{name}"
        (d / "temp").mkdir(parents=True, exist_ok=True)
        conf = d / "nginx.conf"
        conf.write_text(f"""{user}
worker_processes {workers};
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    default_type application/octet-stream;
    client_body_temp_path {d}/temp/body; proxy_temp_path {d}/temp/proxy; fastcgi_temp_path {d}/temp/fcgi;
    uwsgi_temp_path {d}/temp/uwsgi; scgi_temp_path {d}/temp/scgi;
    proxy_cache_path {d}/cache levels=1:2 keys_zone=media:32m max_size=4g inactive=1h use_temp_path=off;
    upstream up {{ server 127.0.0.1:{upstream_port}; keepalive 32; }}
    server {{ {server} }}
}}
""")
        proc = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(d)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        procs.append(proc)
        wait_port(upstream_port if name == "upstream" else cache_port, proc, f"nginx {name}")
    return procs


def start_synctv(workdir: Path, size: int, cache: str) -> tuple[subprocess.Popen[bytes], str, Path]:
    data = workdir / "synctv-data"
    config = workdir / "synctv.toml"
    config.write_text(f'[proxy]\nslice_size = {MIB}\ncache = "{cache}"\ncache_bytes = {3 * size + 64 * MIB}\n'
                      'allow_networks = ["127.0.0.0/8"]\n')
    log = workdir / "twistd.log"
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", "from twisted.scripts.twistd import run; run()", "-n", "--pidfile", "",
             "synctv", "--data", str(data), "--config", str(config), "--http", "tcp:0:interface=127.0.0.1",
             "--rtmp", "tcp:0:interface=127.0.0.1"], stdout=out, stderr=subprocess.STDOUT, cwd=workdir, env=env)
    return proc, wait_serving(proc, log).http_url, data


def api(base: str, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
    req = urllib.request.Request(base + path, data=None if body is None else json.dumps(body).encode(),
                                 method=method, headers={"Content-Type": "application/json"})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def proxy_paths(base: str, data: Path, urls: list[str]) -> list[str]:
    """Media items for ``urls`` in a new room; their proxy paths from PlaybackInfo."""
    password = (data / "root-password").read_text().strip()
    token = api(base, "POST", "/api/auth/login", {"name": "root", "password": password})["token"]
    room = api(base, "POST", "/api/rooms", {"name": "bench"}, token)["room"]["id"]
    paths = []
    for url in urls:
        media = api(base, "POST", f"/api/rooms/{room}/media", {"url": url}, token)["media"]["id"]
        infos = api(base, "GET", f"/api/rooms/{room}/media/{media}/playback?modes=proxy", None, token)["infos"]
        paths.append(infos[0]["url"])
    return paths


# -- the load client --------------------------------------------------------------------------

class Conn:
    """One keep-alive HTTP/1.1 connection reading bodies into a reused buffer."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None
        self.buf = bytearray(4 * MIB)
        self.view = memoryview(self.buf)

    def _connect(self) -> socket.socket:
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port))
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self.sock

    def get(self, path: str, first: int, last: int, keep: bool = False) -> tuple[float, float, int, bytes]:
        """(seconds to the first body byte, seconds to the end, body length, head + first bytes if keep)."""
        sock = self._connect()
        start = time.perf_counter()
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: bench\r\nRange: bytes={first}-{last}\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed before the headers")
            head += chunk
        ttfb = time.perf_counter() - start
        header, _, rest = head.partition(b"\r\n\r\n")
        status = int(header.split(b" ", 2)[1])
        length = int(re.search(rb"(?i)\r\ncontent-length: *(\d+)", header)[1])
        if status not in (200, 206):
            raise RuntimeError(f"status {status}: {header[:200]!r}")
        got = len(rest)
        kept = rest[:64] if keep else b""
        if got == 0:
            n = sock.recv_into(self.view)
            if n == 0:
                raise ConnectionError("closed in the body")
            ttfb = time.perf_counter() - start
            kept = bytes(self.view[:64]) if keep else b""
            got = n
        while got < length:
            n = sock.recv_into(self.view[: min(len(self.buf), length - got)])
            if n == 0:
                raise ConnectionError("closed in the body")
            got += n
        return ttfb, time.perf_counter() - start, length, header + b"\r\n\r\n" + kept


def _throughput_worker(args: tuple[int, str, int, float, int]) -> int:
    port, path, size, seconds, seed = args
    rng = random.Random(seed)
    conn = Conn(port)
    span = 16 * MIB
    total = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        first = rng.randrange(0, max(1, size - span))
        total += conn.get(path, first, first + span - 1)[2]
    return total


def throughput(port: int, path: str, size: int, clients: int, seconds: float) -> float:
    started = time.monotonic()
    with multiprocessing.get_context("fork").Pool(clients) as pool:
        totals = pool.map(_throughput_worker, [(port, path, size, seconds, i) for i in range(clients)])
    return sum(totals) / (time.monotonic() - started) / 1e6


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def seeks(port: int, path: str, offsets: list[int], length: int) -> tuple[list[float], list[float]]:
    conn = Conn(port)
    conn.get(path, 0, 0)  # open the connection (and warm the route)
    ttfbs, totals = [], []
    for first in offsets:
        ttfb, total, _, _ = conn.get(path, first, first + length - 1)
        ttfbs.append(ttfb * 1000)
        totals.append(total * 1000)
    return ttfbs, totals


def check_bytes(port: int, path: str, source: Path, size: int, rng: random.Random) -> bool:
    conn = Conn(port)
    with open(source, "rb") as f:
        for _ in range(8):
            first = rng.randrange(0, size - 100)
            _, _, _, head = conn.get(path, first, first + 63, keep=True)
            f.seek(first)
            if head.partition(b"\r\n\r\n")[2][:64] != f.read(64):
                return False
    return True


# -- main -------------------------------------------------------------------------------------

def run(args: argparse.Namespace) -> int:
    size = args.size_mib * MIB
    workdir = Path(tempfile.mkdtemp(prefix="bench-proxy-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        root = workdir / "root"
        root.mkdir()
        make_file(root / "film.bin", size)
        for name in ("cold-synctv.bin", "cold-nginx.bin"):
            os.link(root / "film.bin", root / name)  # same bytes, resources of their own (cold)
        up, cache_port = free_port(), free_port()
        procs += start_nginx(workdir, root, up, cache_port)
        proc, base, data = start_synctv(workdir, size, args.cache)
        procs.append(proc)
        synctv_port = int(base.rsplit(":", 1)[1])
        film, cold = proxy_paths(base, data, [f"http://127.0.0.1:{up}/film.bin",
                                              f"http://127.0.0.1:{up}/cold-synctv.bin"])
        print(f"file {args.size_mib} MiB, slice 1 MiB, synctv cache {args.cache}; nginx cache: 1 worker", flush=True)

        # warm both caches with one whole read
        for port, path in ((synctv_port, film), (cache_port, "/film.bin")):
            Conn(port).get(path, 0, size - 1)
        if args.cache == "file":
            time.sleep(1.0)  # let the file cache finish its writes
        rng = random.Random(1)
        ok = all(check_bytes(port, path, root / "film.bin", size, rng)
                 for port, path in ((synctv_port, film), (cache_port, "/film.bin"), (synctv_port, cold)))
        head = Conn(synctv_port).get(film, 0, 0, keep=True)[3]
        hit_marked = b"X-Cache: HIT" in head

        results: dict[str, Any] = {}
        for clients in (1, 16):
            s = throughput(synctv_port, film, size, clients, args.seconds)
            n = throughput(cache_port, "/film.bin", size, clients, args.seconds)
            results[f"hit_mbs_{clients}"] = (s, n)

        slices = size // MIB
        offsets = random.Random(2).sample(range(slices), min(args.seeks, slices - 4))
        hit_offsets = [i * MIB + random.Random(i).randrange(MIB // 2) for i in offsets]
        results["hit_ttfb"] = (seeks(synctv_port, film, hit_offsets, 64 * 1024)[0],
                               seeks(cache_port, "/film.bin", hit_offsets, 64 * 1024)[0])
        # misses: each seek on a slice nobody fetched yet; 4 MiB reads for the overhead
        miss_offsets = [i * MIB + random.Random(i + 99).randrange(MIB // 2) for i in offsets]
        s_ttfb, s_total = seeks(synctv_port, cold, miss_offsets, 4 * MIB)
        n_ttfb, n_total = seeks(cache_port, "/cold-nginx.bin", miss_offsets, 4 * MIB)
        d_ttfb, d_total = seeks(up, "/film.bin", miss_offsets, 4 * MIB)
        results["miss"] = (s_ttfb, s_total, n_ttfb, n_total, d_ttfb, d_total)
    except Exception as e:  # one line, not a traceback
        print(f"bench/proxy: FAILED: {type(e).__name__}: {e}", flush=True)
        return 1
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"bytes correct: {ok}; warm read marked X-Cache HIT: {hit_marked}")
    print(f"{'':34}{'synctv':>10}{'nginx':>10}{'ratio':>8}")
    for clients in (1, 16):
        s, n = results[f"hit_mbs_{clients}"]
        print(f"{f'hit throughput, {clients} client(s), MB/s':34}{s:10.0f}{n:10.0f}{s / n:8.2f}")
    s, n = results["hit_ttfb"]
    print(f"{'seek TTFB on a hit, ms p50 / p99':34}{pct(s, 50):5.2f}/{pct(s, 99):4.1f}{pct(n, 50):5.2f}/{pct(n, 99):4.1f}")
    s_ttfb, s_total, n_ttfb, n_total, d_ttfb, d_total = results["miss"]
    print(f"{'seek TTFB on a miss, ms p50 / p99':34}{pct(s_ttfb, 50):5.2f}/{pct(s_ttfb, 99):4.1f}"
          f"{pct(n_ttfb, 50):5.2f}/{pct(n_ttfb, 99):4.1f}   (upstream direct {pct(d_ttfb, 50):.2f}/{pct(d_ttfb, 99):.1f})")
    s_over = statistics.mean(s_total) / statistics.mean(d_total)
    n_over = statistics.mean(n_total) / statistics.mean(d_total)
    print(f"{'cold 4 MiB read vs upstream direct':34}{s_over:9.2f}x{n_over:9.2f}x   "
          f"(direct {statistics.mean(d_total):.2f} ms)")
    goals = [
        ("hit throughput >= 0.5x nginx (1 client)", results["hit_mbs_1"][0] >= 0.5 * results["hit_mbs_1"][1]),
        ("hit throughput >= 0.5x nginx (16 clients)", results["hit_mbs_16"][0] >= 0.5 * results["hit_mbs_16"][1]),
        ("seek TTFB on a hit <= 2 ms p50", pct(results["hit_ttfb"][0], 50) <= 2.0),
        ("miss overhead <= 1.2x", s_over <= 1.2),
    ]
    for name, met in goals:
        print(f"goal {name}: {'met' if met else 'MISSED'}")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.proxy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small file and short phases (CI)")
    parser.add_argument("--size-mib", type=int, default=None, help="file size (default 512; quick 64)")
    parser.add_argument("--seconds", type=float, default=None, help="per throughput phase (default 8; quick 1.5)")
    parser.add_argument("--seeks", type=int, default=None, help="random seeks per kind (default 200; quick 30)")
    parser.add_argument("--cache", choices=("memory", "file"), default="memory")
    args = parser.parse_args(argv)
    args.size_mib = args.size_mib or (64 if args.quick else 512)
    args.seconds = args.seconds or (1.5 if args.quick else 8.0)
    args.seeks = args.seeks or (30 if args.quick else 200)
    if not os.path.exists(NGINX):
        print("bench/proxy: nginx is not installed (apt-get install nginx); skipped")
        return 0
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
