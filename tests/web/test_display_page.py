"""The display page (/display/{public_id}, web/display.html) in Chromium against the real server.

One server for the module (``twistd -n synctv``) with a display room, three screens, two uploaded
ffmpeg videos (H.264 in MP4, 30 fps, a clock and frame counter drawn in) and two events: ``show``
(triggered by the UDP payload SHOW_START on a free port) and ``other`` (HTTP only). Pages get a
wrong wall clock where said (Date.now and performance.timeOrigin moved before any script runs);
the benchmark's recorder (bench/displays.py) measures on the machine's true clock.

With ``SYNCTV_SCREENSHOTS=DIR`` the screenshots (idle image with the overlay on, the video
playing with it) are also saved there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from bench import displays as bench
from tests.integration.processes import ServerProcess
from tests.web.conftest import _ok
from tests.tools import require_tools

pytestmark = [pytest.mark.integration]

VIDEO_S = 4.0
LEAD_MS = 1500
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@attrs.frozen
class DisplayRig:
    """The module's server and show: screens' public ids, the events, the UDP port."""

    server: ServerProcess
    token: str
    room: str
    screens: list[str]
    videos: list[str]
    udp_port: int

    def url(self, screen: int, query: str = "") -> str:
        return f"{self.server.url}/display/{self.screens[screen]}" + (f"?{query}" if query else "")

    def state(self) -> dict[str, Any]:
        body = _ok(self.server.request("GET", f"/api/rooms/{self.room}/playback-state", token=self.token))
        return dict(body.get("state", body))


def send_file(server: ServerProcess, token: str, method: str, path: str, body: bytes, ctype: str) -> Any:
    req = urllib.request.Request(f"{server.url}{path}", data=body, method=method)
    req.add_header("Content-Type", ctype)
    req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.loads(resp.read())


def upload(server: ServerProcess, token: str, path: Path, title: str) -> str:
    query = urllib.parse.urlencode({"title": title, "filename": path.name})
    return str(
        send_file(server, token, "POST", f"/api/videos?{query}", path.read_bytes(), "video/mp4")["video"][
            "id"
        ]
    )


def make_idle_image(path: Path) -> Path:
    """A 640x360 PNG of SMPTE colour bars: an idle image one can tell from black."""
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "smptebars=size=640x360",
            "-frames:v",
            "1",
            str(path),
        ],
        check=True,
        timeout=60,
    )
    return path


@pytest.fixture(scope="module")
def rig(launch_server: Callable[..., ServerProcess], tmp_path_factory: pytest.TempPathFactory) -> DisplayRig:
    require_tools("ffmpeg")
    folder = tmp_path_factory.mktemp("display")
    server = launch_server(folder / "data")
    password = (server.data / "root-password").read_text().strip()
    token = _ok(server.request("POST", "/api/auth/login", {"name": "root", "password": password}))["token"]
    videos = [
        upload(server, token, bench.make_video(folder / f"v{i}.mp4", VIDEO_S, "320x180"), f"video {i}")
        for i in range(2)
    ]
    room = _ok(server.request("POST", "/api/rooms", {"name": "lobby", "kind": "display"}, token=token), 201)[
        "room"
    ]["id"]
    screens = [
        _ok(server.request("POST", "/api/displays", {"name": f"screen-{i}", "room": room}, token=token), 201)[
            "display"
        ]["public_id"]
        for i in range(3)
    ]
    idle = make_idle_image(folder / "idle.png").read_bytes()
    send_file(server, token, "PUT", "/admin/idle-image", idle, "image/png")
    port = bench.free_udp_port()
    _ok(
        server.request(
            "POST",
            "/api/events",
            {
                "name": "show",
                "room": room,
                "media": videos[0],
                "udp_port": port,
                "udp_payload": "SHOW_START",
                "lead_ms": LEAD_MS,
                "cooldown_s": 0,
            },
            token=token,
        ),
        201,
    )
    _ok(
        server.request(
            "POST",
            "/api/events",
            {"name": "other", "room": room, "media": videos[1], "lead_ms": LEAD_MS, "cooldown_s": 0},
            token=token,
        ),
        201,
    )
    return DisplayRig(server, token, room, screens, videos, port)


@pytest.fixture(scope="module")
def chromium(browser: Any, chromium_executable: str) -> Iterator[Any]:
    """A second headless Chromium, from the session's Playwright, with the flags of a display
    kiosk (autoplay with sound allowed)."""
    kiosk = browser.browser_type.launch(executable_path=chromium_executable, headless=True, args=ARGS)
    try:
        yield kiosk
    finally:
        kiosk.close()


@pytest.fixture
def open_display(chromium: Any) -> Iterator[Callable[..., Any]]:
    """``open_display(url, skew_ms=0)``: a page in its own context, wrong wall clock, recorder."""
    contexts: list[Any] = []

    def open_(url: str, skew_ms: float = 0.0, before: Callable[[Any], None] | None = None) -> Any:
        context = chromium.new_context(viewport={"width": 640, "height": 360})
        contexts.append(context)
        context.add_init_script(bench.RECORDER_JS % {"skew": float(skew_ms)})
        page = context.new_page()
        page.page_errors = []
        page.on("pageerror", lambda exc: page.page_errors.append(str(exc)))
        if before is not None:
            before(page)
        page.goto(url)
        return page

    yield open_
    for context in contexts:
        context.close()


def status(page: Any) -> dict[str, Any]:
    return dict(page.evaluate("() => window.synctvDisplay.status()"))


def wait_status(page: Any, predicate: str, timeout_s: float = 20.0) -> dict[str, Any]:
    """Wait until ``predicate`` (JS, of the status object ``s``) holds; returns the status."""
    try:
        page.wait_for_function(
            f"() => window.synctvDisplay && (s => {predicate})(window.synctvDisplay.status())",
            timeout=timeout_s * 1000,
            polling=50,
        )
    except Exception:
        raise AssertionError(f"not {predicate}: status {json.dumps(status(page))[:1500]}") from None
    return status(page)


def ready(page: Any) -> dict[str, Any]:
    return wait_status(page, "s.connection === 'connected' && s.synced && s.view === 'idle'")


def screenshot(page: Any, path: Path, name: str) -> Path:
    target = path / name
    page.screenshot(path=str(target))
    keep = os.environ.get("SYNCTV_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(target, Path(keep) / name)
    return target


def pump(page: Any, condition: Callable[[], Any], what: str, timeout_s: float = 10.0) -> None:
    """Let Playwright deliver events (route and request callbacks run while it waits) until
    ``condition()`` holds."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        page.wait_for_timeout(20)


def wait_idle_room(rig: DisplayRig, timeout_s: float = 20.0) -> None:
    """Until no show plays (the end-of-video worker has marked the last one ended)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = rig.state()
        if not state.get("playing") or state.get("ended"):
            return
        time.sleep(0.1)
    raise AssertionError(f"the room still plays: {rig.state()}")


def test_idle_image_and_overlay_toggles(rig: DisplayRig, open_display: Any, tmp_path: Path) -> None:
    """Before any event the page shows the idle image (loaded from /admin/idle-image); the debug
    overlay toggles with F2, with Ctrl+Shift+D and with a double-click, and shows the connection,
    the clock offset and round trip, the event, the drift and the playbackRate."""
    page = open_display(rig.url(0), skew_ms=3000)
    first = ready(page)
    assert first["mode"] == "stopped" and first["overlay"] is False
    image = page.evaluate(
        "() => { const i = document.getElementById('idle'); "
        "return { src: i.src, complete: i.complete, width: i.naturalWidth, "
        "visible: getComputedStyle(i).visibility }; }"
    )
    assert "/admin/idle-image" in image["src"] and image["complete"]
    assert image["width"] == 640  # the uploaded one, not the default black SVG
    assert image["visible"] == "visible"
    assert abs(first["offsetMs"] + 3000) < 50  # the clock sync undid the page's wrong clock

    page.keyboard.press("F2")
    shown = wait_status(page, "s.overlay")
    assert page.locator("#overlay").is_visible()
    text = page.locator("#overlay").inner_text()
    for label in ("connection", "clock", "offset", "rtt", "event", "drift", "playbackRate"):
        assert label in text, text
    assert "connected" in text
    screenshot(page, tmp_path, "display-idle-overlay.png")
    assert shown["view"] == "idle"

    page.keyboard.press("Control+Shift+D")
    wait_status(page, "!s.overlay")
    assert not page.locator("#overlay").is_visible()
    page.mouse.dblclick(320, 180)
    wait_status(page, "s.overlay")
    page.keyboard.press("F2")
    wait_status(page, "!s.overlay")
    assert page.page_errors == []


def test_udp_trigger_starts_every_page_at_the_same_instant(
    rig: DisplayRig, open_display: Any, tmp_path: Path
) -> None:
    """A UDP packet to the event's port schedules the show; every page (one with a true clock,
    one 3 s fast, one 2 s slow) preloads, then starts from the same at_ms, shows the video, reports
    telemetry, and returns to the idle image when the state becomes ended. Clock drift (currentTime
    against the expected position on the true clock, after the first second) stays within a loose
    bound: p95 <= 50 ms (the benchmark reports the real figures)."""
    wait_idle_room(rig)
    skews = [0.0, 3000.0, -2000.0]
    telemetry: list[dict[str, Any]] = []

    def watch_frames(page: Any) -> None:
        def on_socket(ws: Any) -> None:
            def sent(payload: Any) -> None:
                message = json.loads(payload) if isinstance(payload, str) else {}
                if message.get("type") == "telemetry":
                    telemetry.append(message)

            ws.on("framesent", sent)

        page.on("websocket", on_socket)

    pages = [
        open_display(rig.url(i, "debug=1"), skew, before=watch_frames if i == 0 else None)
        for i, skew in enumerate(skews)
    ]
    for page in pages:
        ready(page)
        wait_status(page, "!s.warming || ['done', 'failed'].includes(s.warming.state)")
        page.evaluate("() => window.__recStart()")
    bench.send_udp(rig.udp_port)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        state = rig.state()
        if state.get("playing") and state.get("event_id") and not state.get("ended"):
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"the UDP packet did not start the show: {rig.state()}")

    playing = [wait_status(page, "s.mode === 'playing' && s.view === 'video'") for page in pages]
    wait_status(pages[0], "s.counters.steps > 20")  # a second in: drift figures in the overlay
    screenshot(pages[0], tmp_path, "display-playing-overlay.png")
    for s in playing:
        assert s["lastStart"]["serverMs"] == state["at_ms"] and s["lastStart"]["join"] is False
        assert s["state"]["event_id"] == state["event_id"]
        assert s["warming"]["state"] in ("done", "paused")
    ended = [
        wait_status(page, "s.state && s.state.ended && s.view === 'idle'", VIDEO_S + 15) for page in pages
    ]
    assert all(s["mode"] == "ended" for s in ended)

    records = [
        page.evaluate("() => { const r = window.__recStop(); return {raf: r.raf, frames: r.frames}; }")
        for page in pages
    ]
    figures = bench.analyse("synctv", state, VIDEO_S, records, skews, ended)
    assert figures.clock.n > 30 and figures.frame.n > 15
    assert figures.clock.p95 <= 50.0, figures
    assert telemetry, "no telemetry frame was sent"
    assert {"drift_ms", "rate", "offset_ms", "rtt_ms"} <= set(telemetry[-1])
    assert all(
        isinstance(telemetry[-1][k], (int, float)) for k in ("drift_ms", "rate", "offset_ms", "rtt_ms")
    )
    assert all(page.page_errors == [] for page in pages)


def test_benchmark_quick_mode_runs_within_loose_bounds(
    chromium: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """bench/displays.py end to end (its own server, 4 pages with wrong clocks, a UDP trigger), as
    its quick mode but with one short show: it completes and its clock drift stays within the
    loose CI bound (p95 <= 50 ms); the benchmark itself prints the real figures."""
    args = bench.parse_args(["--quick", "--variants", "synctv", "--seconds", "5", "--lead-ms", "2000"])
    status, results = bench.run(args, browser=chromium)
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert [r.variant for r in results] == ["synctv"]
    figures = results[0]
    assert len(figures.pages) == 4 and figures.clock.n > 100
    assert figures.clock.p95 <= 50.0, printed
    assert "frame agreement" in printed


def test_late_page_joins_mid_show_at_the_right_offset(rig: DisplayRig, open_display: Any) -> None:
    """A page opened while the show runs does not start from 0: it joins at the show's position
    (seek ahead, resume on the instant) and then plays within the loose bound of the timeline.
    On a loaded machine the page may load so late that little of the 4 s show is left: the drift
    is read from the correction steps it made while playing, however many (at least one); a page
    that loaded only after the show's end tries again with a new show (at most three)."""
    for _attempt in range(3):
        wait_idle_room(rig)
        answer = _ok(rig.server.request("GET", "/trigger_by_name/show"))
        at_ms = answer["at_ms"]
        time.sleep(max(0.0, (at_ms - time.time() * 1000) / 1000) + 1.2)
        page = open_display(rig.url(1), skew_ms=-1500)
        page.evaluate("""() => new Promise((resolve) => {
          const wait = () => {
            if (!window.synctvDisplay) return setTimeout(wait, 5);
            window.__drifts = [];
            window.synctvDisplay.controller.addEventListener("sample", (e) => window.__drifts.push(e.detail.driftMs));
            resolve();
          };
          wait();
        })""")
        joined = wait_status(
            page, "(s.mode === 'playing' && s.view === 'video' && s.driftMs !== null) || (s.state && s.state.ended)",
            VIDEO_S + 15)
        if joined["lastStart"] is not None:
            break
        page.context.close()  # it loaded after the show: too late to join it
    else:
        pytest.fail("the page loaded only after the show's end, three times")
    assert joined["lastStart"]["join"] is True
    assert joined["lastStart"]["position"] > 1.0
    assert joined["counters"]["joins"] >= 1
    wait_status(page, "s.counters.steps > 10 || (s.state && s.state.ended)", VIDEO_S + 15)
    drifts = page.evaluate("() => window.__drifts")
    assert drifts and max(abs(d) for d in drifts) < 50, drifts
    wait_status(page, "s.state && s.state.ended && s.view === 'idle'", VIDEO_S + 15)


def test_autoplay_policy_without_sound_plays_muted(rig: DisplayRig, browser: Any) -> None:
    """In a browser that refuses autoplay with sound (the session's Chromium has no autoplay flag),
    the page notices at load, mutes the video and still starts the show on time."""
    wait_idle_room(rig)
    context = browser.new_context(viewport={"width": 320, "height": 180})
    try:
        page = context.new_page()
        page.goto(rig.url(1))
        first = ready(page)
        assert first["muted"] is True
        answer = _ok(rig.server.request("GET", "/trigger_by_name/show"))
        playing = wait_status(page, "s.mode === 'playing' && s.view === 'video'")
        assert playing["lastStart"]["serverMs"] == answer["at_ms"] and playing["lastStart"]["join"] is False
        wait_status(page, "s.state && s.state.ended && s.view === 'idle'", VIDEO_S + 15)
    finally:
        context.close()


def test_cache_warming_uses_ranges_and_stops_when_an_event_starts(rig: DisplayRig, open_display: Any) -> None:
    """On load the page fetches the first MiB of each video of its room with a Range request; when
    an event starts the request in flight is aborted and warming waits; after the show it goes on
    and finishes."""
    wait_idle_room(rig)
    warm: list[dict[str, Any]] = []
    held: list[Any] = []
    failed: list[str] = []

    def intercept(page: Any) -> None:
        def on_route(route: Any) -> None:
            request = route.request
            if request.resource_type == "fetch":
                warm.append({"url": request.url, "range": request.headers.get("range")})
                if not held:  # hold the first one: it is in flight when the event starts
                    held.append(route)
                    return
            route.continue_()

        page.route("**/api/videos/*/file", on_route)
        page.on("requestfailed", lambda request: failed.append(request.url))

    page = open_display(rig.url(2), before=intercept)
    ready(page)
    wait_status(page, "s.warming && s.warming.state === 'running'")
    pump(page, lambda: held, "the first warming request")
    assert len(warm) == 1 and warm[0]["range"] == "bytes=0-1048575"
    _ok(rig.server.request("GET", "/trigger_by_name/other"))
    paused = wait_status(page, "s.warming.state === 'paused' && s.warming.aborted === 1")
    assert paused["warming"]["warmed"] == []
    pump(page, lambda: any("/api/videos/" in url for url in failed), "the held request's abort")
    try:
        held[0].continue_()
    except Exception:
        pass  # already cancelled by the page
    wait_status(page, "s.mode === 'playing'")
    assert len(warm) == 1, "warming went on during the show"
    done = wait_status(page, "s.state && s.state.ended && s.warming.state === 'done'", VIDEO_S + 15)
    assert sorted(done["warming"]["warmed"]) == sorted(rig.videos)
    assert [w["range"] for w in warm[1:]] == ["bytes=0-1048575"] * (len(warm) - 1)
    assert len(warm) == 1 + len(rig.videos)  # the aborted one again, then the rest


def test_page_reconnects_after_a_server_restart(
    launch_server: Callable[..., ServerProcess],
    open_display: Any,
    tmp_path: Path,
) -> None:
    """The server goes away and comes back on the same port: the page reconnects by itself, syncs
    its clock again and plays the next trigger."""
    server = launch_server(tmp_path / "data")
    password = (server.data / "root-password").read_text().strip()
    token = _ok(server.request("POST", "/api/auth/login", {"name": "root", "password": password}))["token"]
    video = upload(server, token, bench.make_video(tmp_path / "r.mp4", 2.0, "160x90"), "restart")
    room = _ok(server.request("POST", "/api/rooms", {"name": "again", "kind": "display"}, token=token), 201)[
        "room"
    ]["id"]
    public_id = _ok(server.request("POST", "/api/displays", {"name": "s", "room": room}, token=token), 201)[
        "display"
    ]["public_id"]
    _ok(
        server.request(
            "POST",
            "/api/events",
            {"name": "again", "room": room, "media": video, "lead_ms": 800},
            token=token,
        ),
        201,
    )
    page = open_display(f"{server.url}/display/{public_id}")
    ready(page)
    port = int(server.url.rsplit(":", 1)[1])
    server.kill()
    wait_status(page, "s.connection === 'reconnecting'")
    restarted = launch_server(tmp_path / "data", port=port)
    wait_status(page, "s.connection === 'connected' && s.synced", 30)
    _ok(restarted.request("GET", "/trigger_by_name/again"))
    wait_status(page, "s.mode === 'playing' && s.view === 'video'")
    wait_status(page, "s.state && s.state.ended && s.view === 'idle'", 15)
