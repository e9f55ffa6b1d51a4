"""Watch rooms: how closely room pages play together, how fast a seek reaches everyone, and what
a wait for a stalled viewer costs.

    python -m bench.rooms [--quick] [--seconds S] [--seeks N] [--variants synctv,syncplay]

What it does (docs/benchmarks.md, "Rooms"):

- makes two test videos with ffmpeg (testsrc2: a clock and a frame counter in the picture; H.264
  in MP4, 30 fps), starts the real server (``twistd -n synctv``, SQLite), uploads them, makes a
  watch room with both as media items and 4 users who joined it;
- opens the 4 room pages (``/room/{room}``) in one headless Chromium (Debian's, through
  Playwright), each in its own context and signed in as its user; pages 3 and 4 get a wrong wall
  clock (+3 s, -2 s: ``Date.now`` and ``performance.timeOrigin`` moved before any script runs);
- for each variant (the room page's query parameters): a countdown start (``play`` with
  ``lead_ms``) from the HTTP API, then records in every page, on the machine's true clock, every
  animation frame (``currentTime``) and every presented frame (requestVideoFrameCallback), and
  reports the three figures of DESIGN.md "Measuring sync" (bench/_sync_figures.py): clock drift
  p50/p95/p99, frame drift, frame agreement;
- then N seeks, each sent from page 1 through its WebSocket while the room plays: the time from
  the send to each page presenting a frame of the new position (rVFC ``expectedDisplayTime``),
  and to every page showing it ("seen everywhere");
- once (synctv variant): the wait. Page 4's network is throttled with the DevTools protocol, the
  room switches to the second video (page 4 never loaded it) and plays: the room waits for page
  4; its network comes back after ``--stall-s``; reported are how long the room was held, and
  how long play resumed after page 4 was ready (what the wait adds on top of the stall itself).

Variants: **synctv** (the room page as it is) and **syncplay** (the same engine with
SyncPlay-style thresholds: rate correction past 60 ms, seek past 400 ms -- Jellyfin SyncPlay's,
the ``jellyfin`` preset of web/js/drift.js). Goals: clock drift p95 <= 5 ms, frame agreement >= 95
%, a seek seen everywhere within 300 ms. Exit status 1 if something could not run; a missed
goal is reported, not a failure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench._sync_figures import FPS, SETTLE_S, Figures, analyse, percentile
from bench.displays import RECORDER_JS, Server, chromium, make_video, print_figures

SKEWS_MS = (0.0, 0.0, 3000.0, -2000.0)
VARIANTS = {"synctv": "", "syncplay": "preset=jellyfin"}
GOALS = {"clock_p95_ms": 5.0, "agreement": 0.95, "seek_ms": 300.0}
PASSWORD = "bench-password"
TOKEN_JS = """
(() => {
  try { localStorage.setItem("synctv.token", JSON.stringify(%s)); } catch (e) {}
})();
"""
# in a page: resolves with the true time a frame within 2 s after `position` is presented
SEEN_JS = """
([position, after, timeoutMs]) => new Promise((resolve) => {
  const video = document.getElementById('video');
  const origin = window.__trueNow() - performance.now();
  const done = setTimeout(() => resolve(null), timeoutMs);
  const onFrame = (now, meta) => {
    const shown = origin + meta.expectedDisplayTime;
    if (meta.mediaTime >= position - 0.05 && meta.mediaTime < position + 2 && shown >= after) {
      clearTimeout(done);
      resolve(shown);
      return;
    }
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
})
"""


def _ms(value: float | None, digits: int = 1) -> str:
    return "-" if value is None or value != value else f"{value:.{digits}f}"


class Room:
    """The benchmark's watch room on ``server``: users v0..v3 joined, two uploaded videos."""

    def __init__(self, server: Server, videos: Sequence[Path], pages: int) -> None:
        self.server = server
        uploaded = [server.upload(path, f"rooms video {i}") for i, path in enumerate(videos)]
        self.id = server.request("POST", "/api/rooms", {"name": "bench-room", "settings": {"wait_s": 30}})["room"]["id"]
        self.media = [
            server.request("POST", f"/api/rooms/{self.id}/media", {
                "provider": "upload", "url": f"upload:{v['id']}", "title": f"video {i}", "duration": v.get("duration"),
            })["media"]["id"]
            for i, v in enumerate(uploaded)
        ]
        self.logins = []
        for i in range(pages):
            name = f"v{i}"
            server.request("POST", "/api/users", {"name": name, "password": PASSWORD})
            login = server.request("POST", "/api/auth/login", {"name": name, "password": PASSWORD}, token="")
            server.request("POST", f"/api/rooms/{self.id}/join", {}, token=login["token"])
            self.logins.append({"token": login["token"], "expiresAt": login["expires_at"], "name": name})

    def state(self) -> dict[str, Any]:
        return dict(self.server.request("GET", f"/api/rooms/{self.id}/playback-state"))

    def update(self, action: str, **fields: Any) -> dict[str, Any]:
        body = {"action": action, "version": self.state()["version"], **fields}
        return dict(self.server.request("PATCH", f"/api/rooms/{self.id}/playback-state", body))


def open_page(browser: Any, room: Room, i: int, skew_ms: float) -> Any:
    context = browser.new_context(viewport={"width": 640, "height": 480})
    context.add_init_script(RECORDER_JS % {"skew": float(skew_ms)})
    context.add_init_script(TOKEN_JS % json.dumps(room.logins[i]))
    page = context.new_page()
    page.page_errors = []
    page.on("pageerror", lambda exc: page.page_errors.append(str(exc)))
    return page


def wait_for(pages: Sequence[Any], predicate: str, timeout_s: float, what: str) -> None:
    for page in pages:
        try:
            page.wait_for_function(
                f"() => window.synctvRoom && ({predicate})(window.synctvRoom.status())",
                timeout=timeout_s * 1000, polling=50)
        except Exception as e:
            status = page.evaluate("() => window.synctvRoom && window.synctvRoom.status()")
            raise RuntimeError(f"{what}: {e.__class__.__name__}; page status {json.dumps(status)[:800]}; "
                               f"errors {page.page_errors[:3]}") from None


def measure_sync(room: Room, pages: Sequence[Any], play_s: float, skews: Sequence[float], variant: str) -> Figures:
    """A countdown start from position 0; ``play_s`` seconds recorded; the three figures."""
    for page in pages:
        page.evaluate("() => window.__recStart()")
    room.update("seek", position=0.0)
    state = room.update("play", lead_ms=2000)
    wait_for(pages, "s => s.mode === 'playing'", 30, "pages playing")
    time.sleep(max(0.0, (state["at_ms"] - time.time() * 1000) / 1000) + play_s)
    records = [page.evaluate("() => { const r = window.__recStop(); return {raf: r.raf, frames: r.frames}; }")
               for page in pages]
    statuses = [page.evaluate("() => window.synctvRoom.status()") for page in pages]
    return analyse(variant, state, play_s, records, skews, statuses)


def seek_targets(count: int, duration_s: float, start: float) -> list[float]:
    """Positions to seek to, each more than 4 s from the one before (so no frame of the old
    position can pass for the new one), within the video."""
    targets, here = [], start
    for n in range(count):
        target = duration_s * (0.15 + 0.6 * ((n * 0.618) % 1))
        if abs(target - here) < 4:
            target = here + 4 if here + 4 < duration_s - 3 else here - 4
        target = round(max(0.0, target), 1)
        targets.append(target)
        here = target
    return targets


def measure_seeks(room: Room, pages: Sequence[Any], count: int, duration_s: float) -> list[list[float]]:
    """``count`` seeks sent by page 0 while playing; per seek, each page's latency (ms) from the
    send to presenting a frame of the new position."""
    latencies = []
    here = float(pages[0].evaluate("() => document.getElementById('video').currentTime"))
    for position in seek_targets(count, duration_s, here):
        for page in pages:
            page.evaluate(f"() => {{ window.__seen = ({SEEN_JS})([{position}, window.__trueNow(), 5000]); }}")
        sent = pages[0].evaluate(f"""async () => {{
          const t = window.__trueNow();
          window.synctvRoom.client.update('seek', {{ position: {position} }}).catch(() => {{}});
          return t;
        }}""")
        seen = [page.evaluate("() => window.__seen") for page in pages]
        latencies.append([(s - sent) if s is not None else float("nan") for s in seen])
        time.sleep(2.0)
    return latencies


def measure_wait(room: Room, pages: Sequence[Any], stall_s: float) -> dict[str, float]:
    """Page -1 throttled, the room switches to the second video and plays; after ``stall_s`` the
    network comes back. Returns the hold, and the resume delay after the stalled page was ready."""
    slow = pages[-1]
    session = slow.context.new_cdp_session(slow)
    session.send("Network.enable")
    session.send("Network.emulateNetworkConditions",
                 {"offline": False, "latency": 0, "downloadThroughput": 2048, "uploadThroughput": -1})
    media = room.media[1]
    slow.evaluate(f"""() => {{
      window.__readyAt = null;
      const tick = () => {{
        const p = window.synctvRoom.player;
        if (p.loadedMedia === '{media}' && p.ready()) {{ window.__readyAt = window.__trueNow(); return; }}
        setTimeout(tick, 2);
      }};
      tick();
    }}""")
    room.update("media", media_id=media)
    played = room.update("play")
    wait_for(pages[:1], f"s => s.wait && s.wait.version > {played['version']}", 30, "the room waits")
    held = pages[0].evaluate("() => window.synctvRoom.status().wait")
    time.sleep(stall_s)
    session.send("Network.emulateNetworkConditions",
                 {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
    wait_for(pages[:1], f"s => s.state.version > {held['version']}", 60, "the wait resumed")
    wait_for(pages, "s => s.mode === 'playing'", 30, "pages playing after the wait")
    resumed = room.state()
    ready_at = slow.evaluate("() => window.__readyAt")
    return {
        "held_ms": resumed["at_ms"] - held["started_ms"],
        "deadline_ms": held["until_ms"] - held["started_ms"],
        "after_ready_ms": resumed["at_ms"] - ready_at if ready_at is not None else float("nan"),
        "stall_ms": stall_s * 1000,
    }


def run(args: argparse.Namespace, browser: Any = None) -> tuple[int, dict[str, Any]]:
    skews = list(SKEWS_MS)
    results: dict[str, Any] = {"figures": [], "seeks": {}, "wait": None}
    status = 0
    with tempfile.TemporaryDirectory(prefix="synctv-bench-rooms-") as tmp:
        folder = Path(tmp)
        started = time.monotonic()
        videos = [make_video(folder / f"room{i}.mp4", args.seconds, args.size) for i in range(2)]
        server = Server(folder / "data")
        try:
            room = Room(server, videos, len(skews))
            print(f"rooms: {len(skews)} room pages in one headless Chromium, clock skews "
                  f"{', '.join(f'{s:+g} ms' for s in skews)}; {args.seconds:g} s {FPS} fps H.264 videos ({args.size}); "
                  f"setup {time.monotonic() - started:.1f} s; load average {os.getloadavg()[0]:.1f}", flush=True)
            with contextlib.ExitStack() as stack:
                if browser is None:
                    browser = stack.enter_context(chromium())
                pages = [open_page(browser, room, i, skew) for i, skew in enumerate(skews)]
                stack.callback(lambda: [page.context.close() for page in pages])
                room.update("media", media_id=room.media[0])
                for variant in args.variants:
                    began = time.monotonic()
                    query = VARIANTS[variant]
                    try:
                        room.update("pause")
                        for page in pages:
                            page.goto(f"{server.url}/room/{room.id}" + (f"?{query}" if query else ""))
                        wait_for(pages, "s => s.connection === 'connected' && s.synced && s.loadedMedia && "
                                        "s.mode === 'paused' && s.readyState >= 3", 60, "pages ready")
                        time.sleep(1.0)  # a few more clock samples
                        figures = measure_sync(room, pages, args.play_s, skews, variant)
                        results["figures"].append(figures)
                        print_figures(figures)
                        seeks = measure_seeks(room, pages, args.seeks, args.seconds)
                        results["seeks"][variant] = seeks
                        print_seeks(variant, seeks)
                        if variant == args.variants[0]:
                            results["wait"] = measure_wait(room, pages, args.stall_s)
                            print_wait(results["wait"])
                            room.update("media", media_id=room.media[0])
                    except RuntimeError as e:
                        print(f"\n-- variant {variant}: could not run: {e}", flush=True)
                        status = 1
                        continue
                    print(f"({time.monotonic() - began:.0f} s, load average {os.getloadavg()[0]:.1f})", flush=True)
        except RuntimeError as e:
            print(f"rooms: {e}\n{server.tail()}")
            status = 1
        finally:
            server.stop()
    return status, results


def seen_everywhere(seeks: list[list[float]]) -> list[float]:
    return [max(per_page) for per_page in seeks]


def print_seeks(variant: str, seeks: list[list[float]]) -> None:
    everywhere = seen_everywhere(seeks)
    each = [v for per_page in seeks for v in per_page]
    print(f"seeks ({variant}, {len(seeks)}, sent by page 0 while playing): a page shows the new position "
          f"after p50 {_ms(percentile(each, 0.5), 0)} ms, max {_ms(max(each) if each else None, 0)} ms; "
          f"seen everywhere after p50 {_ms(percentile(everywhere, 0.5), 0)} ms, "
          f"max {_ms(max(everywhere) if everywhere else None, 0)} ms")


def print_wait(wait: dict[str, float]) -> None:
    print(f"wait: page 4 throttled for {wait['stall_ms'] / 1000:g} s on a video it never loaded; the room held "
          f"{wait['held_ms']:.0f} ms (deadline {wait['deadline_ms']:.0f} ms) and resumed "
          f"{_ms(wait['after_ready_ms'], 0)} ms after page 4 was ready (500 ms of it is the common start lead)")


def print_summary(results: dict[str, Any]) -> None:
    print("\n-- summary (goals: clock drift p95 <= 5 ms, frame agreement >= 95%, seek seen everywhere <= 300 ms)")
    print(f"{'variant':<10} {'clock p50':>9} {'p95':>6} {'p99':>6} {'frame p99':>9} {'agreement':>9} "
          f"{'seek p50':>8} {'seek max':>8}  goals")
    for figures in results["figures"]:
        everywhere = seen_everywhere(results["seeks"].get(figures.variant, []))
        seek50 = percentile(everywhere, 0.5) if everywhere else float("nan")
        seek_max = max(everywhere) if everywhere else float("nan")
        met = (figures.clock.p95 <= GOALS["clock_p95_ms"], figures.agreement >= GOALS["agreement"],
               seek_max <= GOALS["seek_ms"])
        print(f"{figures.variant:<10} {_ms(figures.clock.p50, 2):>9} {_ms(figures.clock.p95, 2):>6} "
              f"{_ms(figures.clock.p99, 2):>6} {_ms(figures.frame.p99):>9} {figures.agreement * 100:>8.1f}% "
              f"{_ms(seek50, 0):>8} {_ms(seek_max, 0):>8}  {' '.join('ok' if m else 'MISS' for m in met)}")
    if results["wait"]:
        print_wait(results["wait"])
    print("anchors: syncplay is this engine with SyncPlay-style thresholds (Jellyfin SyncPlay: correct past 60 ms, "
          "seek past 400 ms); synctv corrects past 0.7 ms and re-joins past 150 ms.")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.rooms", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short videos, 2 seeks (CI)")
    parser.add_argument("--seconds", type=float, default=None, help="video length (60; 20 with --quick)")
    parser.add_argument("--play-s", type=float, default=None, help="seconds of play recorded (30; 8 with --quick)")
    parser.add_argument("--seeks", type=int, default=None, help="seeks per variant (5; 2 with --quick)")
    parser.add_argument("--stall-s", type=float, default=2.0, help="how long the throttled page stays throttled")
    parser.add_argument("--variants", default=None, help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--size", default="640x360", help="video size")
    args = parser.parse_args(list(argv))
    args.seconds = args.seconds or (20.0 if args.quick else 60.0)
    args.play_s = args.play_s or (8.0 if args.quick else 30.0)
    args.seeks = args.seeks if args.seeks is not None else (2 if args.quick else 5)
    args.variants = [v.strip() for v in (args.variants or ",".join(VARIANTS)).split(",") if v.strip()]
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant {unknown[0]!r}; known: {', '.join(VARIANTS)}")
    if args.play_s + SETTLE_S + 2 > args.seconds:
        parser.error("--play-s must leave a few seconds of the video (--seconds)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if shutil.which("ffmpeg") is None:
        print("rooms: ffmpeg is not installed; skipped")
        return 1
    status, results = run(args)
    if results["figures"]:
        print_summary(results)
    return status


if __name__ == "__main__":
    raise SystemExit(main())

