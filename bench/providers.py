"""Providers: PlaybackResult latency, uncached and cached, and upstream calls per play.

    python -m bench.providers [--quick] [--items N]

What it does (docs/benchmarks.md, "Providers"):

- runs the fake Alist, Emby, Jellyfin and Bilibili of ``tests/providers/fakes/`` in a process
  of their own (real HTTP on loopback; run from a checkout) and the real server (``twistd -n
  synctv``, ``[proxy] allow_networks`` admitting loopback, ``[providers] bilibili_api`` on the fake);
- links one account of each kind as root and adds N items per provider (the same film each time:
  every item has its own cache entry, so the first play of each is uncached);
- plays each item twice with ``GET .../playback`` on one keep-alive connection, timing each
  answer, and reads each fake's call counter around each pass (``/_calls``).

It prints, per provider, the p50 and p95 latency of an uncached and a cached PlaybackResult, and
the upstream calls per play of each. Exit status 1 if a play failed or a cached play called the
upstream, 0 otherwise. ``--quick`` (CI) uses 5 items per provider.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from synctv.testing import wait_serving

ROOT = Path(__file__).resolve().parents[1]
PROVIDERS = ("alist", "emby", "jellyfin", "bilibili")


class Api:
    """One keep-alive connection to the server."""

    def __init__(self, base: str) -> None:
        parts = urlsplit(base)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        self.token: str | None = None

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any, float]:
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        started = time.perf_counter()
        self.conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        response = self.conn.getresponse()
        raw = response.read()
        elapsed = (time.perf_counter() - started) * 1000.0
        return response.status, json.loads(raw), elapsed

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, answer, _ = self.call(method, path, body)
        if status >= 300:
            raise RuntimeError(f"{method} {path}: {status} {answer}")
        return answer


def start_synctv(workdir: Path, bilibili: str) -> tuple[subprocess.Popen[bytes], str, Path]:
    data = workdir / "synctv-data"
    config = workdir / "synctv.toml"
    config.write_text(f'[proxy]\nallow_networks = ["127.0.0.0/8"]\n[providers]\nbilibili_api = "{bilibili}"\n'
                      f'bilibili_live_api = "{bilibili}"\n')
    log = workdir / "twistd.log"
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", "from twisted.scripts.twistd import run; run()", "-n", "--pidfile", "",
             "synctv", "--data", str(data), "--config", str(config), "--http", "tcp:0:interface=127.0.0.1",
             "--rtmp", "tcp:0:interface=127.0.0.1"], stdout=out, stderr=subprocess.STDOUT, cwd=workdir, env=env)
    return proc, wait_serving(proc, log).http_url, data


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def run(items: int) -> int:
    sys.path.insert(0, str(ROOT))
    from tests.providers.fakes import FakeUpstreams

    with tempfile.TemporaryDirectory(prefix="synctv-bench-providers-") as tmp:
        fakes = FakeUpstreams(Path(tmp) / "upstreams")
        with fakes as fakes_info:
            ok = _measure(fakes, fakes_info, Path(tmp), items)
    return 0 if ok else 1


def _measure(fakes: Any, fakes_info: dict[str, Any], tmp: Path, items: int) -> bool:
    ok = True
    proc, base, data = start_synctv(tmp, fakes_info["bilibili"])
    try:
        api = Api(base)
        password = (data / "root-password").read_text().strip()
        api.token = api.ok("POST", "/api/auth/login", {"name": "root", "password": password})["token"]
        room = api.ok("POST", "/api/rooms", {"name": "bench"})["room"]["id"]
        bodies: dict[str, dict[str, Any]] = {"bilibili": {"provider": "bilibili", "url": "BV1y7411Q7Eq"}}
        for kind in ("alist", "emby", "jellyfin"):
            creds = ({"username": fakes_info["alist_user"], "password": fakes_info["alist_password"]}
                     if kind == "alist" else
                     {"username": fakes_info["mb_user"], "password": fakes_info["mb_password"]})
            account = api.ok("POST", "/api/me/accounts", {"kind": kind, "server": fakes_info[kind], **creds})
            item = "/movies/film.mp4" if kind == "alist" else fakes_info[f"{kind}_ids"]["film"]
            bodies[kind] = {"provider": kind, "provider_data": {"account": account["account"]["id"], "item": item}}
        media = {kind: [api.ok("POST", f"/api/rooms/{room}/media", body)["media"]["id"] for _ in range(items)]
                 for kind, body in bodies.items()}
        print(f"providers: PlaybackResult latency over HTTP (keep-alive), {items} items per provider")
        print(f"{'provider':<10} {'uncached p50/p95 ms':>20} {'calls/play':>11} {'cached p50/p95 ms':>19} "
              f"{'calls/play':>11}")
        for kind in PROVIDERS:
            figures = []
            for _ in ("uncached", "cached"):
                before = sum(fakes.calls(kind).values())
                times = []
                for media_id in media[kind]:
                    status, answer, elapsed = api.call("GET", f"/api/rooms/{room}/media/{media_id}/playback")
                    if status != 200 or not answer.get("infos"):
                        print(f"{kind}: a play failed: {status} {answer}")
                        ok = False
                    times.append(elapsed)
                calls = (sum(fakes.calls(kind).values()) - before) / items
                figures.append((statistics.median(times), pct(times, 95), calls))
            (u50, u95, ucalls), (c50, c95, ccalls) = figures
            print(f"{kind:<10} {u50:>9.2f} / {u95:>7.2f} {ucalls:>11.2f} {c50:>8.2f} / {c95:>7.2f} {ccalls:>11.2f}")
            if ccalls != 0:
                print(f"{kind}: a cached play called the upstream")
                ok = False
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.providers", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 items per provider (CI)")
    parser.add_argument("--items", type=int, default=None, help="items per provider (default 50; quick 5)")
    args = parser.parse_args(argv)
    return run(args.items or (5 if args.quick else 50))


if __name__ == "__main__":
    from bench import run_main

    run_main(main, __doc__)
