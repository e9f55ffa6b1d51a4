"""LAN synchronized displays: how closely display pages play one video together.

    python -m bench.displays [--quick] [--pages N] [--seconds S] [--variants synctv,plain,...]
                             [--lead-ms MS] [--size WxH] [--repeat N] [--dump] [--save DIR]

What it does (docs/benchmarks.md, "Displays"):

- makes a test video with ffmpeg (testsrc2: a clock and a frame counter in the picture; H.264
  baseline in MP4, 30 fps; 60 s, or 12 s with ``--quick``);
- starts the real server (``twistd -n synctv``) on SQLite, uploads the video, makes a display
  room with N screens and an event with a UDP trigger on a free port;
- opens the N display pages (``/display/{public_id}``) in one headless Chromium (Debian's, through
  Playwright), each in its own context; all but the first get a wrong wall clock (+3 s, -2 s,
  +0.7 s, ...) injected before any script runs: ``Date.now`` and ``performance.timeOrigin`` move,
  ``performance.now()`` and requestVideoFrameCallback stay true (DESIGN.md, "Measuring sync");
- sends the UDP payload ``SHOW_START`` and records, in every page, on the machine's true clock
  (the original ``timeOrigin`` saved by the injected script, never the page's):
  every animation frame, ``video.currentTime`` against the expected position of the state;
  every presented frame (requestVideoFrameCallback), ``mediaTime`` against the expected position
  at its ``expectedDisplayTime``;
- after the first second of the show, reports per page and overall the three figures of
  "Measuring sync": clock drift and frame drift (p50/p95/p99 of the absolute value, and the
  mean), and frame agreement (of the frames every page showed, the share shown on the same
  refresh by all of them).

Variants run one after the other with the same pages, by the page's query parameters:
``synctv`` (this controller), ``syncplayer`` and ``jellyfin`` (the same controller with those
players' thresholds: correct past 15 ms / seek past 100 ms, correct past 60 ms / seek past
400 ms), ``plain`` (one scheduled play() by setTimeout, no correction), ``frame`` (this controller
steering by the frame figure instead of the clock), ``lock`` and ``nolock`` (this controller with
and without the phase lock, ``phase=1`` / ``phase=0``; the lock is off by default), ``rejoin``
(the re-join check without the lock, ``phase=0&rejoin=1``) and ``lockrejoin`` (the lock and
the check, ``phase=1&rejoin=1``). Default: synctv, syncplayer, jellyfin, plain and frame; ``--quick``:
synctv and plain. Goals: clock drift p95 <= 5 ms, frame drift p99 <= 17 ms, agreement >= 95 %.

``--repeat N`` runs it all N times, each with a new server and browser (the variants' order
reversed every other run), and prints one line per run and variant (load average, agreement,
clock p95, frame p99, the split between pages in refreshes, pass) and the share of runs meeting
all three goals. ``--dump`` prints per page the signed frame drift (its p5/p50/p95 and its median
in each 5 s of the show), the grid phase (where refreshes fall after frame boundaries on the
timeline) and the page's own phase-lock figures; ``--save DIR`` writes each show's raw records.
Exit status 1 if a variant could not run (a page never started, the server failed), 0 otherwise:
missing a goal is reported, not a failure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs

from bench._displays_report import print_dump, print_figures, print_runs, print_summary
from bench._sync_figures import FPS, Figures, analyse
from synctv.testing import wait_serving

SKEWS_MS = (0.0, 3000.0, -2000.0, 700.0, 1500.0, -500.0, 2500.0, -1200.0)
PAYLOAD = "SHOW_START"
VARIANTS = {
    "synctv": "",
    "syncplayer": "preset=syncplayer",
    "jellyfin": "preset=jellyfin",
    "plain": "preset=plain",
    "frame": "signal=frame",
    "lock": "phase=1",
    "nolock": "phase=0",
    "rejoin": "phase=0&rejoin=1",
    "lockrejoin": "phase=1&rejoin=1",
}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
]

# Injected before the page's scripts: a wrong wall clock for the page, the true one for us, and a
# recorder of the #video element on the true clock.
RECORDER_JS = """
(() => {
  const skew = %(skew)r;
  const origin = performance.timeOrigin;
  const perfNow = performance.now.bind(performance);
  const dateNow = Date.now.bind(Date);
  const trueNow = () => origin + perfNow();
  Object.defineProperty(window, "__trueNow", { value: trueNow });
  Object.defineProperty(window, "__skewMs", { value: skew });
  Object.defineProperty(performance, "timeOrigin", { get: () => origin + skew, configurable: true });
  Date.now = () => dateNow() + skew;
  const rec = { raf: [], frames: [], on: false };
  Object.defineProperty(window, "__rec", { value: rec });
  Object.defineProperty(window, "__recStart", { value: () => {
    rec.raf.length = 0; rec.frames.length = 0; rec.on = true;
    const video = document.getElementById("video");
    const tick = (ts) => {
      if (!rec.on) return;
      const t = trueNow();
      rec.raf.push(t, video.currentTime, video.paused ? 1 : 0, video.playbackRate, origin + ts);
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
    const onFrame = (now, meta) => {
      if (!rec.on) return;
      rec.frames.push(origin + meta.expectedDisplayTime, meta.mediaTime, meta.presentedFrames, origin + now);
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  } });
  Object.defineProperty(window, "__recStop", { value: () => { rec.on = false; return rec; } });
})();
"""


# -- the video and the server --------------------------------------------------------------------


def make_video(path: Path, seconds: float, size: str = "640x360", fps: int = FPS) -> Path:
    """An H.264 (baseline, yuv420p) MP4 of testsrc2 -- a running clock and frame counter -- with
    a key frame every second and the index up front (faststart)."""
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=size={size}:rate={fps}:duration={seconds}",
            "-c:v",
            "libx264",
            "-profile:v",
            "baseline",
            "-preset",
            "veryfast",
            "-pix_fmt",
            "yuv420p",
            "-g",
            str(fps),
            "-movflags",
            "+faststart",
            str(path),
        ],
        check=True,
        timeout=600,
    )
    return path


def free_udp_port(low: int = 5000, high: int = 5999) -> int:
    """A UDP port nobody holds, inside [triggers] udp_ports' default range (events may use no other)."""
    start = random.randrange(low, high + 1)
    for offset in range(high - low + 1):
        port = low + (start - low + offset) % (high - low + 1)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("0.0.0.0", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free UDP port in {low}-{high}")


def send_udp(port: int, payload: str = PAYLOAD, host: str = "127.0.0.1") -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(payload.encode(), (host, port))


class Server:
    """One ``twistd -n synctv`` child on a free loopback port, with a SQLite data folder."""

    def __init__(self, data: Path) -> None:
        self.data = data
        data.mkdir(parents=True, exist_ok=True)
        self.log = data.parent / "twistd.log"
        args = [
            sys.executable,
            "-c",
            "from twisted.scripts.twistd import run; run()",
            "-n",
            "--pidfile",
            "",
            "synctv",
            "--data",
            str(data),
            "--http",
            "tcp:0:interface=127.0.0.1",
            "--rtmp",
            "tcp:0:interface=127.0.0.1",
        ]
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=data.parent, env=env)
        self.url = self._wait_ready()
        self.token = self.login()

    def _wait_ready(self, timeout: float = 60.0) -> str:
        return wait_serving(self.proc, self.log, timeout).http_url

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        content_type: str = "application/json",
        token: str | None = None,
    ) -> Any:
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Content-Type", content_type)
        token = token if token is not None else getattr(self, "token", None)
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"{method} {path}: HTTP {e.code} {e.read()[:300]!r}") from None

    def login(self) -> str:
        password = (self.data / "root-password").read_text().strip()
        return str(
            self.request("POST", "/api/auth/login", {"name": "root", "password": password}, token="")["token"]
        )

    def upload(self, path: Path, title: str) -> dict[str, Any]:
        query = urllib.parse.urlencode({"title": title, "filename": path.name})
        return dict(
            self.request("POST", f"/api/videos?{query}", raw=path.read_bytes(), content_type="video/mp4")[
                "video"
            ]
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@attrs.frozen
class Show:
    """A display room with screens and one UDP-triggered event playing ``video``."""

    room_id: str
    public_ids: list[str]
    event_id: str
    event_name: str
    udp_port: int
    video: dict[str, Any]


def prepare_show(server: Server, video: Path, screens: int, lead_ms: int, name: str = "show") -> Show:
    """Upload ``video``; a display room ``name`` with ``screens`` displays and an event ``name``
    triggered by ``SHOW_START`` on a free UDP port, ``lead_ms`` ahead."""
    uploaded = server.upload(video, f"{name} video")
    room = server.request("POST", "/api/rooms", {"name": f"{name}-room", "kind": "display"})["room"]["id"]
    public_ids = [
        server.request("POST", "/api/displays", {"name": f"{name}-screen-{i}", "room": room})["display"][
            "public_id"
        ]
        for i in range(screens)
    ]
    port = free_udp_port()
    event = server.request(
        "POST",
        "/api/events",
        {
            "name": name,
            "room": room,
            "media": uploaded["id"],
            "udp_port": port,
            "udp_payload": PAYLOAD,
            "lead_ms": lead_ms,
            "cooldown_s": 0,
        },
    )["event"]
    status = event.get("status", {}).get("udp")
    if status not in (None, "bound", "listening", "ok", "unknown"):
        raise RuntimeError(f"the event's UDP port {port} is not bound: {event.get('status')}")
    return Show(room, public_ids, event["id"], name, port, uploaded)


def playback_state(server: Server, room: str) -> dict[str, Any]:
    body = server.request("GET", f"/api/rooms/{room}/playback-state")
    return dict(body.get("state", body))


# -- pages ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """Debian's Chromium, headless, through Playwright (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    if executable is None:
        raise RuntimeError("chromium is not installed (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def open_display(browser: Any, url: str, skew_ms: float, viewport: tuple[int, int] = (640, 360)) -> Any:
    """A display page in its own context with its wall clock moved by ``skew_ms``."""
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    context.add_init_script(RECORDER_JS % {"skew": float(skew_ms)})
    page = context.new_page()
    page.page_errors = []
    page.on("pageerror", lambda exc: page.page_errors.append(str(exc)))
    page.goto(url)
    return page


def wait_for(pages: Sequence[Any], predicate_js: str, timeout_s: float, what: str) -> None:
    """Wait until ``predicate_js`` (a function of ``window.synctvDisplay.status()``) holds in every page."""
    for page in pages:
        try:
            page.wait_for_function(
                f"() => window.synctvDisplay && ({predicate_js})(window.synctvDisplay.status())",
                timeout=timeout_s * 1000,
                polling=100,
            )
        except Exception as e:
            status = page.evaluate("() => window.synctvDisplay && window.synctvDisplay.status()")
            raise RuntimeError(
                f"{what}: {e.__class__.__name__}; page status {json.dumps(status)[:800]}; "
                f"errors {page.page_errors[:3]}"
            ) from None


def run_variant(
    server: Server,
    show: Show,
    browser_pages: list[Any],
    variant: str,
    duration_s: float,
    skews: Sequence[float],
    timeout_s: float = 60.0,
    save: Path | None = None,
) -> Figures:
    """Load the pages with the variant's query, trigger by UDP, record the show, compute figures."""
    query = VARIANTS[variant]
    for page, public_id in zip(browser_pages, show.public_ids, strict=True):
        page.goto(f"{server.url}/display/{public_id}" + (f"?{query}" if query else ""))
    wait_for(
        browser_pages,
        "s => s.connection === 'connected' && s.synced && s.view === 'idle'",
        timeout_s,
        "pages connected and synced",
    )
    wait_for(
        browser_pages,
        "s => !s.warming || ['done', 'failed'].includes(s.warming.state)",
        timeout_s,
        "cache warming done",
    )
    time.sleep(1.0)  # let the clock syncs take a few more samples
    for page in browser_pages:
        page.evaluate("() => window.__recStart()")
    send_udp(show.udp_port)
    deadline = time.monotonic() + 10
    state: dict[str, Any] = {}
    while time.monotonic() < deadline:
        state = playback_state(server, show.room_id)
        if state.get("event_id") == show.event_id and state.get("playing"):
            break
        time.sleep(0.05)
    else:
        raise RuntimeError(f"the UDP trigger did not start the show: state {state}")
    wait_for(browser_pages, "s => s.mode === 'playing'", timeout_s, "pages playing")
    remaining_s = (state["at_ms"] - time.time() * 1000) / 1000 + duration_s
    wait_for(
        browser_pages,
        "s => s.state && s.state.ended && s.view === 'idle'",
        remaining_s + timeout_s,
        "pages back to the idle image",
    )
    records = [
        page.evaluate("() => { const r = window.__recStop(); return {raf: r.raf, frames: r.frames}; }")
        for page in browser_pages
    ]
    statuses = [page.evaluate("() => window.synctvDisplay.status()") for page in browser_pages]
    if save is not None:
        save.mkdir(parents=True, exist_ok=True)
        name = f"{variant}-{time.strftime('%H%M%S')}.json"
        (save / name).write_text(json.dumps({"state": state, "records": records, "statuses": statuses}))
    return analyse(variant, state, duration_s, records, skews, statuses)


def repeat(args: argparse.Namespace) -> int:
    """``args.repeat`` runs in a row, each with its own server and browser (as separate commands
    would be), the variants' order reversed every other run; one line per run and variant, then
    the share of runs meeting all three goals."""
    rows: list[tuple[int, float, float, Figures | None, str]] = []
    status = 0
    for index in range(args.repeat):
        load_before = os.getloadavg()[0]
        print(f"\n== run {index + 1} of {args.repeat} (load average {load_before:.1f})", flush=True)
        # variants alternate their order from run to run: a page's second show starts warmer
        order = args.variants if index % 2 == 0 else args.variants[::-1]
        run_status, results = run(argparse.Namespace(**{**vars(args), "variants": order}))
        status |= run_status
        load_after = os.getloadavg()[0]
        ran = {r.variant for r in results}
        rows += [(index + 1, load_before, load_after, r, r.variant) for r in results]
        rows += [(index + 1, load_before, load_after, None, v) for v in args.variants if v not in ran]
    print_runs(rows, args.variants)
    return status


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.displays", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 12 s video, variants synctv and plain (CI)")
    parser.add_argument("--pages", type=int, default=4, help="display pages (the first has a true clock)")
    parser.add_argument("--seconds", type=float, default=None, help="video length (60; 12 with --quick)")
    parser.add_argument("--variants", default=None, help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--lead-ms", type=int, default=3000, help="the event's lead (ms)")
    parser.add_argument("--size", default="640x360", help="video size")
    parser.add_argument(
        "--repeat", type=int, default=1, help="run N times, each with a new server and browser, and summarise"
    )
    parser.add_argument(
        "--dump", action="store_true", help="print each page's signed frame drift and refresh-grid phase"
    )
    parser.add_argument("--save", type=Path, default=None, help="write each show's raw records (JSON) here")
    args = parser.parse_args(list(argv))
    args.seconds = args.seconds or (12.0 if args.quick else 60.0)
    names = args.variants or ("synctv,plain" if args.quick else "synctv,syncplayer,jellyfin,plain,frame")
    args.variants = [v.strip() for v in names.split(",") if v.strip()]
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant {unknown[0]!r}; known: {', '.join(VARIANTS)}")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if not 1 <= args.pages <= len(SKEWS_MS):
        parser.error(f"--pages must be within 1..{len(SKEWS_MS)}")
    return args


def run(args: argparse.Namespace, browser: Any = None) -> tuple[int, list[Figures]]:
    """Every variant of ``args`` (from ``parse_args``) in one server and one browser -- ``browser``
    if given (a Playwright Browser), else Debian's Chromium; returns (status, figures)."""
    skews = list(SKEWS_MS[: args.pages])
    results: list[Figures] = []
    status = 0
    with tempfile.TemporaryDirectory(prefix="synctv-bench-displays-") as tmp:
        folder = Path(tmp)
        started = time.monotonic()
        video = make_video(folder / "show.mp4", args.seconds, args.size)
        server = Server(folder / "data")
        try:
            show = prepare_show(server, video, args.pages, args.lead_ms)
            print(
                f"displays: {args.pages} pages in one headless Chromium, clock skews "
                f"{', '.join(f'{s:+g} ms' for s in skews)}; a {args.seconds:g} s {FPS} fps H.264 video "
                f"({args.size}, {video.stat().st_size / 1e6:.1f} MB); UDP trigger, lead {args.lead_ms} ms; "
                f"setup {time.monotonic() - started:.1f} s; load average {os.getloadavg()[0]:.1f}",
                flush=True,
            )
            with contextlib.ExitStack() as stack:
                if browser is None:
                    browser = stack.enter_context(chromium())
                pages = [open_display(browser, "about:blank", skew) for skew in skews]
                stack.callback(lambda: [page.context.close() for page in pages])
                for variant in args.variants:
                    began = time.monotonic()
                    try:
                        figures = run_variant(
                            server, show, pages, variant, args.seconds, skews, save=getattr(args, "save", None)
                        )
                    except RuntimeError as e:
                        print(f"\n-- variant {variant}: could not run: {e}", flush=True)
                        status = 1
                        continue
                    results.append(figures)
                    print_figures(figures)
                    if getattr(args, "dump", False):
                        print_dump(figures)
                    print(
                        f"({time.monotonic() - began:.0f} s, load average {os.getloadavg()[0]:.1f})",
                        flush=True,
                    )
        except RuntimeError as e:
            print(f"displays: {e}\n{server.tail()}")
            status = 1
        finally:
            server.stop()
    return status, results


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if shutil.which("ffmpeg") is None:
        print("displays: ffmpeg is not installed; skipped")
        return 1
    if args.repeat > 1:
        return repeat(args)
    status, results = run(args)
    if results:
        print_summary(results)
        print(
            "anchors: SyncPlayer corrects past 15 ms and seeks past 100 ms; Jellyfin SyncPlay corrects past "
            "60 ms and seeks past 400 ms (run here as the syncplayer / jellyfin variants of one controller); "
            "plain is one setTimeout play() with no correction."
        )
    return status


if __name__ == "__main__":
    raise SystemExit(main())
