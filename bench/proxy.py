"""Media proxy: synctv's slice-caching Range proxy side by side with nginx's (proxy_cache + slice).

    python -m bench.proxy [--quick] [--size-mib N] [--seconds S] [--seeks N] [--cold-reads N]
                          [--rounds R] [--cache memory,file] [--no-pin] [--max-wait SHARE]
                          [--baseline DIR] [--profile DIR]

What it does (docs/benchmarks.md, "Proxy"):

- generates a file (256 MiB; 32 MiB with ``--quick``) and serves it with nginx from apt (the
  upstream, 2 workers, sendfile);
- runs a second nginx as a caching proxy of that upstream with the slice module
  (``slice 1m; proxy_cache_key $uri$slice_range; proxy_set_header Range $slice_range;``), one
  worker (synctv is one process, one reactor thread);
- runs the real server (``twistd -n synctv``) once per cache (``--cache``: the memory cache, the
  file cache, or both) with ``[proxy] slice_size = 1 MiB``, big enough for the file and
  ``allow_networks = ["127.0.0.0/8"]``, and ``[server] access_log = "off"`` as the peer's
  ``access_log off`` (a ``--baseline`` tree older than that key logs its lines); adds the file as
  a media item and takes the proxy URL from its PlaybackInfo;
- with ``--baseline DIR`` also runs synctv from the source tree DIR (e.g. ``git archive <commit>
  | tar -x -C DIR``) as the sides ``synctv-memory-before``/``synctv-file-before``, in the same
  rounds, so a change is measured before and after beside nginx in one run;
- runs every process at nice -10 (when allowed), so the machine's other load does not set the
  pace; with two or more CPUs pins the servers (both caching proxies) to the first and the upstream and
  the load clients to the others, so the clients' CPU is never the servers' (``--no-pin``: not);
- warms every cache with one full read, then runs *rounds* (``bench/_trials.py``): each round
  measures every side once, in an order swapped each round, until R rounds (default 3; quick 1)
  were healthy on all sides (at most R + 2). One run of a side measures, with a load client that
  is not the bottleneck (worker processes on raw sockets, ``recv_into`` a reused buffer,
  keep-alive):
  - cache-hit throughput, 1 and 16 concurrent clients, each reading random 16 MiB ranges (MB/s),
    and the same bytes per CPU second of the server's processes (MB per server CPU s);
  - random-seek time to first byte on a hit (a 64 KiB range at a random offset, from sending the
    request to the first body byte, on a warm keep-alive connection);
  - cold reads: 4 MiB at random offsets of a copy of the file nobody read before (one per side
    and round): time to first byte and time to the last byte (median).
- with ``--profile DIR``, py-spy samples each synctv side during its 16-client hit phase of the
  first round (collapsed stacks in DIR, summarized at the end; ``pip install py-spy``). The
  sampling costs the server CPU, so that round's figures are not comparable with the others'.
- A run is unhealthy (and its round gives no ratio) when a byte was wrong, a load client used
  over 90% of a core (or all load clients over 90% of their CPUs), or the server waited for a
  CPU, while runnable, more than ``--max-wait`` (0.5) of a throughput phase (from schedstat:
  the machine's other load, not the server, set the pace).

It prints every run (figures, client CPU, the server's wait for a CPU, the load average, health),
then per figure each side's median (min-max) over healthy runs and the median of the rounds'
ratios synctv/nginx, or the refusal with its reasons, and the goals (hit throughput >= 0.9x
nginx's with 1 and 16 clients, a cold read no slower than nginx's, seek TTFB on a hit <= 2 ms
p50). Exit status 1 if a run served wrong bytes or setup failed, 0 otherwise (a missed goal is
reported, not a failure). ``--quick`` (CI) finishes in well under a minute.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench._profile import start_profile, stop_profile, summarize_profile
from bench._trials import (
    Pinning,
    Run,
    Starvation,
    alternate,
    bound,
    compare,
    cpu_seconds,
    format_comparison,
    format_run,
    loadavg,
    process_tree,
)
from synctv.testing import wait_serving

MIB = 1 << 20
NICE = -10  # every process of the benchmark (when allowed), so other load on the machine does not set the pace
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

def start_nginx(workdir: Path, root: Path, upstream_port: int, cache_port: int,
                pinning: Pinning) -> list[subprocess.Popen[bytes]]:
    """The upstream (2 workers, on the load CPUs) and the caching proxy (1 worker, on the server
    CPU), as two nginx masters."""
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
                                stderr=subprocess.DEVNULL,
                                preexec_fn=pinning.load_preexec(NICE) if name == "upstream" else pinning.server_preexec(NICE))
        procs.append(proc)
        wait_port(upstream_port if name == "upstream" else cache_port, proc, f"nginx {name}")
    return procs


def start_synctv(workdir: Path, size: int, cache: str, pinning: Pinning, name: str,
                 source: str | None = None) -> tuple[subprocess.Popen[bytes], str, Path]:
    """``source``: a source tree to run the server from (PYTHONPATH), e.g. the code before a change."""
    data = workdir / f"{name}-data"
    config = workdir / f"{name}.toml"
    # no access log, as the peer (nginx: access_log off); code from before [server] access_log has no key for it
    tree = Path(source) if source is not None else Path(__file__).resolve().parent.parent
    quiet = '[server]\naccess_log = "off"\n' if "access_log" in (tree / "synctv" / "config.py").read_text() else ""
    config.write_text(f'{quiet}[proxy]\nslice_size = {MIB}\ncache = "{cache}"\ncache_bytes = {3 * size + 64 * MIB}\n'
                      'allow_networks = ["127.0.0.0/8"]\n')
    log = workdir / f"{name}.log"
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if source is not None:
        env["PYTHONPATH"] = str(Path(source).resolve())
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", "from twisted.scripts.twistd import run; run()", "-n", "--pidfile", "",
             "synctv", "--data", str(data), "--config", str(config), "--http", "tcp:0:interface=127.0.0.1",
             "--rtmp", "tcp:0:interface=127.0.0.1"], stdout=out, stderr=subprocess.STDOUT, cwd=workdir, env=env,
            preexec_fn=pinning.server_preexec(NICE))
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


def _throughput_worker(args: tuple[int, str, int, float, int]) -> tuple[int, float, float]:
    """(bytes read, CPU seconds this client used, wall seconds)."""
    port, path, size, seconds, seed = args
    rng = random.Random(seed)
    conn = Conn(port)
    span = 16 * MIB
    total = 0
    cpu0, t0 = time.process_time(), time.monotonic()
    end = t0 + seconds
    while time.monotonic() < end:
        first = rng.randrange(0, max(1, size - span))
        total += conn.get(path, first, first + span - 1)[2]
    return total, time.process_time() - cpu0, time.monotonic() - t0


def throughput(port: int, path: str, size: int, clients: int, seconds: float,
               pinning: Pinning | None = None) -> tuple[float, float, float]:
    """(MB/s over all clients, the busiest client's share of a core, all clients' CPU in cores)."""
    started = time.monotonic()
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(clients, initializer=_pin_load, initargs=(pinning,)) as pool:
        results = pool.map(_throughput_worker, [(port, path, size, seconds, i) for i in range(clients)])
    wall = time.monotonic() - started
    busiest = max(cpu / max(w, 1e-9) for _, cpu, w in results)
    return sum(r[0] for r in results) / wall / 1e6, busiest, sum(r[1] for r in results) / wall


def _pin_load(pinning: Pinning | None) -> None:
    # a worker forked from a process with its own SIGTERM handler (a Twisted reactor under
    # pytest) must still die when the pool terminates it
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    run = (pinning or Pinning(None, None)).load_preexec(NICE)
    if run is not None:
        run()


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

CLIENT_BOUND = 0.9  # a load client at 90% of a core may be what limits the figure


class Side:
    """One proxy under test: its port, the warm path, the cold paths (one per round), its process."""

    def __init__(self, name: str, port: int, film: str, colds: list[str], pid: int) -> None:
        self.name, self.port, self.film, self.colds, self.pid = name, port, film, colds, pid


def measure(side: Side, r: int, args: argparse.Namespace, size: int, source: Path, pinning: Pinning) -> Run:
    run = Run(side.name, r, load=loadavg())
    if not check_bytes(side.port, side.film, source, size, random.Random(r)):
        run.problems.append("wrong bytes on a hit")
    for clients in (1, 16):
        pids = process_tree(side.pid)
        spy = None
        if args.profile is not None and clients == 16 and r == 0 and side.name != "nginx":
            spy = start_profile(side.pid, args.profile / f"{side.name}.txt", gil=False)
        starving, cpu0, t0 = Starvation(pids), cpu_seconds(pids), time.monotonic()
        mbs, busiest, cores = throughput(side.port, side.film, size, clients, args.seconds, pinning)
        if spy is not None:
            stop_profile(spy)
        wall, cpu = time.monotonic() - t0, cpu_seconds(pids) - cpu0
        plural = "s" if clients > 1 else ""
        run.figures[f"hit MB/s, {clients} client{plural}"] = mbs
        run.figures[f"hit MB per server CPU s, {clients} client{plural}"] = mbs * wall / max(cpu, 0.01)
        run.notes[f"client CPU ({clients})"] = cores
        run.notes[f"server waited for a CPU ({clients})"] = starving.share(wall)
        bound(run.problems, starving.share(wall), args.max_wait, f"the server ({clients} clients) waited for a CPU")
        bound(run.problems, busiest, CLIENT_BOUND, f"a load client ({clients} clients) used", " of a core")
        if pinning.load is not None:
            bound(run.problems, cores / len(pinning.load), CLIENT_BOUND,
                  f"the load clients ({clients}) used", " of their CPUs")
    slices = size // MIB
    offsets = random.Random(2).sample(range(slices), min(args.seeks, slices - 4))
    hit_offsets = [i * MIB + random.Random(i).randrange(MIB // 2) for i in offsets]
    run.figures["hit TTFB p50 ms"] = pct(seeks(side.port, side.film, hit_offsets, 64 * 1024)[0], 50)
    cold_offsets = [i * MIB + random.Random(i + 99 + r).randrange(MIB // 2)
                    for i in offsets[: args.cold_reads]]
    cold_ttfb, cold_total = seeks(side.port, side.colds[r], cold_offsets, 4 * MIB)
    run.figures["cold TTFB p50 ms"] = pct(cold_ttfb, 50)
    run.figures["cold 4 MiB read ms"] = statistics.median(cold_total)
    after = loadavg()
    run.load = (max(run.load[0], after[0]), after[1], after[2])
    return run


def run(args: argparse.Namespace) -> int:
    size = args.size_mib * MIB
    workdir = Path(tempfile.mkdtemp(prefix="bench-proxy-"))
    procs: list[subprocess.Popen[bytes]] = []
    pinning = Pinning.split(enabled=not args.no_pin)
    caches = [c for c in args.cache.split(",") if c]
    max_rounds = args.rounds + 2
    try:
        root = workdir / "root"
        root.mkdir()
        make_file(root / "film.bin", size)
        builds = [("", None)] + ([("-before", args.baseline)] if args.baseline else [])
        names = ["nginx", *(f"synctv-{c}{tag}" for tag, _ in builds for c in caches)]
        for name in names:
            for r in range(max_rounds):  # same bytes, resources of their own (cold), per round
                os.link(root / "film.bin", root / f"cold-{name}-{r}.bin")
        up, cache_port = free_port(), free_port()
        procs += start_nginx(workdir, root, up, cache_port, pinning)
        sides = [Side("nginx", cache_port, "/film.bin", [f"/cold-nginx-{r}.bin" for r in range(max_rounds)],
                      procs[1].pid)]
        for tag, source in builds:
            for cache in caches:
                name = f"synctv-{cache}{tag}"
                proc, base, data = start_synctv(workdir, size, cache, pinning, name, source)
                procs.append(proc)
                paths = proxy_paths(base, data, [f"http://127.0.0.1:{up}/film.bin"] + [
                    f"http://127.0.0.1:{up}/cold-{name}-{r}.bin" for r in range(max_rounds)])
                sides.append(Side(name, int(base.rsplit(":", 1)[1]), paths[0], paths[1:], proc.pid))
        print(f"file {args.size_mib} MiB, slice 1 MiB; nginx cache: 1 worker; {pinning.describe()}; "
              f"{args.rounds} healthy rounds wanted (at most {max_rounds}), sides alternate", flush=True)
        for side in sides:  # warm each cache with one whole read
            Conn(side.port).get(side.film, 0, size - 1)
        if "file" in caches:
            time.sleep(1.0)  # let the file cache finish its writes
        head = Conn(sides[-1].port).get(sides[-1].film, 0, 0, keep=True)[3]
        if b"X-Cache: HIT" not in head:
            raise RuntimeError("a warm read of synctv was not marked X-Cache: HIT")
        keys = ["hit MB/s, 1 client", "hit MB/s, 16 clients", "hit MB per server CPU s, 1 client",
                "hit MB per server CPU s, 16 clients", "hit TTFB p50 ms", "cold TTFB p50 ms", "cold 4 MiB read ms"]
        rounds = alternate(
            {side.name: (lambda r, side=side: measure(side, r, args, size, root / "film.bin", pinning))
             for side in [*sides[1:], sides[0]]},
            rounds=args.rounds, max_rounds=max_rounds,
            report=lambda result: print(format_run(result, keys, 2), flush=True))
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

    status = 0
    goals = []
    for side in sides[1:]:
        if side.name.endswith("-before"):
            continue
        print(f"-- {side.name} against nginx (median (min-max) over healthy runs; ratio: median of the "
              "rounds' ratios)")
        got = {}
        for key in keys:
            c = compare(rounds, key, side.name, "nginx", need=args.rounds)
            got[key] = c
            for line in format_comparison(c, side.name, "nginx", 0 if "MB" in key else 2, "  "):
                print(line)
        for key in ("hit MB/s, 1 client", "hit MB/s, 16 clients"):
            ratio = got[key].ratio
            goals.append((f"{side.name} {key.replace('MB/s', 'throughput')} >= 0.9x nginx",
                          None if ratio is None else ratio.median >= 0.9))
        ratio = got["cold 4 MiB read ms"].ratio
        goals.append((f"{side.name} cold read no slower than nginx's", None if ratio is None else ratio.median <= 1.0))
        ttfb = got["hit TTFB p50 ms"].a
        goals.append((f"{side.name} seek TTFB on a hit <= 2 ms p50", None if ttfb is None else ttfb.median <= 2.0))
        if any("wrong bytes" in p for r in rounds for p in r[side.name].problems):
            status = 1
    for side in sides[1:]:
        if side.name.endswith("-before"):
            print(f"-- {side.name[:-7]} against {side.name} (the code of --baseline), and {side.name} against nginx")
            for key in keys:
                for a, b in ((side.name[:-7], side.name), (side.name, "nginx")):
                    c = compare(rounds, key, a, b, need=args.rounds)
                    for line in format_comparison(c, a, b, 0 if "MB" in key else 2, "  "):
                        print(line)
    if args.profile is not None:
        for path in sorted(args.profile.glob("*.txt")):
            print(f"profile of {path.stem} during 16-client hits (round 1), {path}:")
            print(summarize_profile(path, top=25))
    for name, met in goals:
        print(f"goal {name}: {'not measured (unhealthy rounds)' if met is None else 'met' if met else 'MISSED'}")
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.proxy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small file, short phases, one round (CI)")
    parser.add_argument("--size-mib", type=int, default=None, help="file size (default 256; quick 32)")
    parser.add_argument("--seconds", type=float, default=None, help="per throughput phase (default 5; quick 1)")
    parser.add_argument("--seeks", type=int, default=None, help="random hit seeks per run (default 100; quick 20)")
    parser.add_argument("--cold-reads", type=int, default=None, help="cold 4 MiB reads per run (default 20; quick 5)")
    parser.add_argument("--rounds", type=int, default=None, help="healthy rounds wanted (default 3; quick 1)")
    parser.add_argument("--cache", default="memory,file", help="synctv caches to run: memory, file or memory,file")
    parser.add_argument("--no-pin", action="store_true", help="do not pin servers and load clients apart")
    parser.add_argument("--baseline", default=None, metavar="DIR",
                        help="also run synctv from the source tree DIR (the code before a change) in the same rounds")
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR",
                        help="py-spy each synctv side during its first 16-client hit phase into DIR")
    parser.add_argument("--max-wait", type=float, default=0.5,
                        help="a run whose server waited for a CPU longer than this share of a phase is unhealthy")
    args = parser.parse_args(argv)
    args.size_mib = args.size_mib or (32 if args.quick else 256)
    args.seconds = args.seconds or (1.0 if args.quick else 5.0)
    args.seeks = args.seeks or (20 if args.quick else 100)
    args.cold_reads = args.cold_reads or (5 if args.quick else 20)
    args.rounds = args.rounds or (1 if args.quick else 3)
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    if not set(args.cache.split(",")) <= {"memory", "file"}:
        parser.error("--cache: memory, file or memory,file")
    if not os.path.exists(NGINX):
        print("bench/proxy: nginx is not installed (apt-get install nginx); skipped")
        return 0
    return run(args)


if __name__ == "__main__":
    from bench import run_main

    run_main(main, __doc__)
