"""The room page (/room/{room}, web/room.html) and the home page in Chromium against the real server.

One server for the module (``twistd -n synctv``) with uploaded ffmpeg videos (H.264 MP4, 30 fps,
a clock and a frame counter in the picture) and users alice, bob, carol (members) and dave (a
guest: no control_playback). Each test makes its own room and opens one browser context per
user (its own storage, cache and clock: some are skewed like a device with a wrong wall clock),
signing in through the page's form. Sync is measured on the machine's true clock
(``window.__trueNow``, bench/displays.py's recorder), never the page's.

With ``SYNCTV_SCREENSHOTS=DIR`` the screenshots of the layout test are also saved there.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from bench import displays as bench
from tests.integration.processes import ServerProcess
from tests.tools import require_tools
from tests.web.conftest import _ok

pytestmark = [pytest.mark.integration]

PASSWORD = "password-1"
USERS = ("alice", "bob", "carol", "dave")
IN_SYNC_S = 0.1  # a loose bound under a loaded machine; bench/rooms.py reports the real figures
ARGS = [
    "--no-sandbox", "--disable-gpu", "--autoplay-policy=no-user-gesture-required",
    "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync",
    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
    "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
]


@attrs.frozen
class Cinema:
    """The module's server: the root token, the users' tokens, uploaded video ids by name."""

    server: ServerProcess
    root: str
    tokens: dict[str, str]
    videos: dict[str, str]
    folder: Path

    def api(self, method: str, path: str, body: Any = None, who: str = "alice", *statuses: int) -> Any:
        token = self.root if who == "root" else self.tokens[who]
        return _ok(self.server.request(method, path, body, token=token), *(statuses or (200, 201)))

    def room(self, name: str, *, password: str | None = None, videos: tuple[str, ...] = ("a",),
             guests: tuple[str, ...] = ("dave",), settings: dict[str, Any] | None = None) -> tuple[str, list[str]]:
        """A watch room of alice's that bob, carol and dave joined (``guests`` as guests), with
        the ``videos`` as media items; returns (room id, media ids)."""
        body: dict[str, Any] = {"name": name, "settings": settings or {}}
        if password:
            body["password"] = password
        room = self.api("POST", "/api/rooms", body)["room"]["id"]
        for who in ("bob", "carol", "dave"):
            self.api("POST", f"/api/rooms/{room}/join", {"password": password} if password else {}, who)
        for who in guests:
            self.api("PATCH", f"/api/rooms/{room}/members/{who}", {"role": "guest"})
        media = [
            self.api("POST", f"/api/rooms/{room}/media",
                     {"provider": "upload", "url": f"upload:{self.videos[v]}", "title": f"video {v}"})["media"]["id"]
            for v in videos
        ]
        return room, media

    def state(self, room: str) -> dict[str, Any]:
        return dict(self.api("GET", f"/api/rooms/{room}/playback-state"))

    def update(self, room: str, action: str, **fields: Any) -> dict[str, Any]:
        body = {"action": action, "version": self.state(room)["version"], **fields}
        return dict(self.api("PATCH", f"/api/rooms/{room}/playback-state", body))


@pytest.fixture(scope="module")
def cinema(launch_server: Callable[..., ServerProcess], tmp_path_factory: pytest.TempPathFactory) -> Cinema:
    require_tools("ffmpeg")
    folder = tmp_path_factory.mktemp("cinema")
    server = launch_server(folder / "data")
    root = _ok(server.request("POST", "/api/auth/login", {"name": "root",
                                                          "password": (server.data / "root-password").read_text().strip()}))["token"]
    tokens = {}
    for who in USERS:
        _ok(server.request("POST", "/api/users", {"name": who, "password": PASSWORD}, token=root), 201)
        tokens[who] = _ok(server.request("POST", "/api/auth/login", {"name": who, "password": PASSWORD}))["token"]
    videos = {}
    lengths = {"a": 60.0, "b": 40.0, "c": 40.0, "d": 40.0}
    for name, seconds in lengths.items():
        path = bench.make_video(folder / f"{name}.mp4", seconds, "320x180")
        videos[name] = bench_upload(server, root, path, f"video {name}")
    return Cinema(server, root, tokens, videos, folder)


def bench_upload(server: ServerProcess, token: str, path: Path, title: str) -> str:
    import urllib.parse
    import urllib.request

    query = urllib.parse.urlencode({"title": title, "filename": path.name})
    req = urllib.request.Request(f"{server.url}/api/videos?{query}", data=path.read_bytes(), method="POST")
    req.add_header("Content-Type", "video/mp4")
    req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=120) as resp:
        return str(json.loads(resp.read())["video"]["id"])


@pytest.fixture(scope="module")
def chromium(browser: Any, chromium_executable: str) -> Iterator[Any]:
    """A headless Chromium with autoplay allowed and a fake microphone (voice)."""
    launched = browser.browser_type.launch(executable_path=chromium_executable, headless=True, args=ARGS)
    try:
        yield launched
    finally:
        launched.close()


@pytest.fixture
def open_room(chromium: Any, cinema: Cinema) -> Iterator[Callable[..., Any]]:
    """``open_room(who, room, skew_ms=0, viewport=(800, 700), scheme=None, sign_in=True)``: the room
    page in a fresh context, signed in through its form, connected and clock-synced."""
    contexts: list[Any] = []

    def open_(who: str, room: str, skew_ms: float = 0.0, viewport: tuple[int, int] = (800, 700),
              scheme: str | None = None, sign_in: bool = True) -> Any:
        context = chromium.new_context(viewport={"width": viewport[0], "height": viewport[1]}, color_scheme=scheme)
        contexts.append(context)
        context.add_init_script(bench.RECORDER_JS % {"skew": float(skew_ms)})
        page = context.new_page()
        page.page_errors = []
        page.on("pageerror", lambda exc: page.page_errors.append(str(exc)))
        page.goto(f"{cinema.server.url}/room/{room}")
        if sign_in:
            page.wait_for_selector("#signin-view:not([hidden])")
            page.fill("#signin-form input[name=name]", who)
            page.fill("#signin-form input[name=password]", PASSWORD)
            page.click("#signin-form button[type=submit]")
            wait_status(page, "s.connection === 'connected' && s.synced")
        return page

    yield open_
    for context in contexts:
        context.close()


def status(page: Any) -> dict[str, Any]:
    return dict(page.evaluate("() => window.synctvRoom.status()"))


def wait_status(page: Any, predicate: str, timeout_s: float = 30.0) -> dict[str, Any]:
    """Wait until ``predicate`` (JS, of the page's status ``s``) holds; returns the status."""
    try:
        page.wait_for_function(
            f"() => window.synctvRoom && (s => {predicate})(window.synctvRoom.status())",
            timeout=timeout_s * 1000, polling=100,
        )
    except Exception:
        raise AssertionError(f"not {predicate}: status {json.dumps(status(page))[:2000]}") from None
    return status(page)


def wait_all(pages: list[Any], predicate: str, timeout_s: float = 30.0) -> list[dict[str, Any]]:
    return [wait_status(page, predicate, timeout_s) for page in pages]


def drift_s(page: Any) -> float:
    """The page's video against the room's timeline on the machine's true clock (median of 5)."""
    samples = []
    for _ in range(5):
        r = page.evaluate("""() => {
          const s = window.synctvRoom.status().state;
          const v = document.getElementById('video');
          return { t: window.__trueNow(), ct: v.currentTime, paused: v.paused, s };
        }""")
        s = r["s"]
        expected = s["position"]
        if s["playing"] and r["t"] > s["at_ms"]:
            expected += (r["t"] - s["at_ms"]) / 1000 * s["rate"]
        samples.append(r["ct"] - expected)
        page.wait_for_timeout(100)
    return statistics.median(samples)


def in_sync(pages: list[Any], version: int, playing: bool) -> None:
    """Every page follows state ``version`` (or newer) and its video sits on the timeline."""
    mode = "'playing' && s.counters.steps > 5" if playing else "'paused'"
    wait_all(pages, f"s.state && s.state.version >= {version} && s.mode === {mode} && s.loadedMedia === s.state.media_id")
    drifts = [drift_s(page) for page in pages]
    assert all(abs(d) < IN_SYNC_S for d in drifts), drifts


def click_play_now(page: Any, media_id: str) -> None:
    page.click("#tab-playlist")
    page.click(f"#playlist li[data-id='{media_id}'] button:has-text('Play now')")


# -- signing in, joining ----------------------------------------------------------------------------


def test_sign_in_and_the_room_password_say_what_went_wrong(cinema: Cinema, open_room: Any) -> None:
    """Signed out the page shows the sign-in form (inputs name and password); a wrong password says
    so; then the room password form (input room_password) refuses a wrong one with a clear line
    and admits the right one; an unknown room offers to create it."""
    room, _ = cinema.room("locked", password="sesame")
    user = "erin"
    cinema.api("POST", "/api/users", {"name": user, "password": PASSWORD}, "root")
    page = open_room(user, "locked", sign_in=False, viewport=(360, 740))
    page.wait_for_selector("#signin-view:not([hidden])")
    assert page.locator("#signin-form input[name=name]").is_visible()
    page.fill("#signin-form input[name=name]", user)
    page.fill("#signin-form input[name=password]", "not it")
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("#signin-error:not([hidden])")
    assert "Wrong name or password" in page.inner_text("#signin-error")
    page.fill("#signin-form input[name=password]", PASSWORD)
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("#password-view:not([hidden])")
    page.fill("#password-form input[name=room_password]", "wrong")
    page.click("#password-form button[type=submit]")
    page.wait_for_selector("#password-error:not([hidden])")
    assert "room password was wrong" in page.inner_text("#password-error")
    page.fill("#password-form input[name=room_password]", "sesame")
    page.click("#password-form button[type=submit]")
    s = wait_status(page, "s.connection === 'connected' && s.view === 'room'")
    assert s["room"]["id"] == room and s["may"]["control"] is True
    page.goto(f"{cinema.server.url}/room/nowhere-yet")
    page.wait_for_selector("#problem-view:not([hidden])")
    assert "no room “nowhere-yet”" in page.inner_text("#problem-text")
    assert page.locator("#create-room").is_visible()
    assert page.page_errors == []


def test_the_home_page_creates_a_room_lists_who_is_in_it_and_opens_a_pasted_link(
        cinema: Cinema, chromium: Any, open_room: Any) -> None:
    """Home ``/``: alice signs in through its form and creates a room, which opens it; bob's home
    lists that room with alice online; bob pastes the room's full link (any host) and lands in
    it, joined and connected; a link to nothing explains itself."""
    pages = []
    for who in ("alice", "bob"):
        context = chromium.new_context(viewport={"width": 1000, "height": 700})
        page = context.new_page()
        page.page_errors = []
        page.on("pageerror", lambda exc, page=page: page.page_errors.append(str(exc)))
        page.goto(f"{cinema.server.url}/")
        page.wait_for_selector("#signin-view:not([hidden])")
        page.fill("#signin-form input[name=name]", who)
        page.fill("#signin-form input[name=password]", PASSWORD)
        page.click("#signin-form button[type=submit]")
        page.wait_for_selector("#home-view:not([hidden])")
        pages.append(page)
        if who == "alice":
            page.fill("#create-form input[name=name]", "made-at-home")
            page.click("#create-form button[type=submit]")
            page.wait_for_url("**/room/made-at-home")
            s = wait_status(page, "s.connection === 'connected' && s.view === 'room'")
            assert s["room"]["name"] == "made-at-home" and s["may"]["control"] is True
    alice, bob = pages
    bob.wait_for_function("""() => [...document.querySelectorAll('#rooms .room-card')].some(
        (c) => c.textContent.includes('made-at-home') && c.textContent.includes('1 online: alice'))""",
                          timeout=15_000)
    card = bob.locator("#rooms .room-card", has_text="made-at-home")
    assert card.get_attribute("href") == "/room/made-at-home"
    bob.fill("#go-form input[name=link]", "https://tv.example.org/room/made-at-home")
    bob.click("#go-form button[type=submit]")
    bob.wait_for_url(f"{cinema.server.url}/room/made-at-home")
    s = wait_status(bob, "s.connection === 'connected' && s.view === 'room'")
    assert s["room"]["name"] == "made-at-home"
    members = cinema.api("GET", "/api/rooms/made-at-home/members", None, "alice")["members"]
    assert sorted(m["user_name"] for m in members) == ["alice", "bob"]
    assert alice.page_errors == [] and bob.page_errors == []
    for page in pages:
        page.context.close()


# -- following the room -----------------------------------------------------------------------------


def test_two_pages_converge_after_changes_from_a_page_and_from_the_api(cinema: Cinema, open_room: Any) -> None:
    """alice and bob (his wall clock 2.5 s fast) follow every change within a loose bound of the
    timeline on the true clock: play now from the playlist, pause with the space key, seek with an
    arrow key, a rate from the select, and a media change and play from the HTTP API."""
    room, (a, b) = cinema.room("converge", videos=("a", "b"))
    alice = open_room("alice", room)
    bob = open_room("bob", room, skew_ms=2500)
    click_play_now(alice, a)
    in_sync([alice, bob], 2, playing=True)

    alice.locator("#video").click()  # focus on the page, not an input
    alice.keyboard.press("Space")
    paused = wait_status(alice, "s.state.playing === false")["state"]
    in_sync([alice, bob], paused["version"], playing=False)
    assert abs(status(alice)["currentTime"] - status(bob)["currentTime"]) < 0.05

    bob.locator("#video").click()
    bob.keyboard.press("ArrowRight")  # +5 s, paused
    sought = wait_status(bob, f"s.state.version > {paused['version']}")["state"]
    assert sought["position"] == pytest.approx(paused["position"] + 5, abs=0.01)
    in_sync([alice, bob], sought["version"], playing=False)

    alice.keyboard.press("Space")
    alice.select_option("#rate", "1.5")
    fast = wait_status(alice, "s.state.rate === 1.5 && s.state.playing")["state"]
    in_sync([alice, bob], fast["version"], playing=True)
    assert status(bob)["state"]["rate"] == 1.5

    cinema.update(room, "media", media_id=b)
    played = cinema.update(room, "play")
    in_sync([alice, bob], played["version"], playing=True)
    assert {status(p)["loadedMedia"] for p in (alice, bob)} == {b}
    assert alice.page_errors == [] and bob.page_errors == []


def test_four_pages_share_chat_danmaku_a_countdown_start_and_permissions(cinema: Cinema, open_room: Any) -> None:
    """Four users: a chat line and a danmaku typed on one page appear on the others; dave (a guest)
    sees the controls disabled with the reason; a countdown start ("Start together", 3 s) counts
    down on every page and starts every page on the same at_ms."""
    room, (a,) = cinema.room("four")
    cinema.update(room, "media", media_id=a)
    skews = {"alice": 0.0, "bob": 1500.0, "carol": -2000.0, "dave": 700.0}
    pages = {who: open_room(who, room, skew_ms=skew) for who, skew in skews.items()}
    wait_all(list(pages.values()), "s.mode === 'paused' && s.loadedMedia !== null")

    carol = pages["carol"]
    carol.fill("#say", "popcorn ready?")
    carol.click("#send-chat")
    for who, page in pages.items():
        page.wait_for_function("() => [...document.querySelectorAll('#chat-log li')].some("
                               "li => li.textContent.includes('popcorn ready?'))", timeout=20000)
    bob = pages["bob"]
    bob.fill("#say", "here we go")
    bob.click("#send-danmaku")
    for page in pages.values():
        page.wait_for_function("() => [...document.querySelectorAll('.danmaku')].some("
                               "d => d.textContent === 'here we go')", timeout=20000)

    dave = pages["dave"]
    s = status(dave)
    assert s["may"]["control"] is False and s["may"]["chat"] is True
    assert dave.locator("#play").is_disabled() and dave.locator("#start-together").is_disabled()
    assert "control_playback" in dave.inner_text("#control-reason")

    alice = pages["alice"]
    alice.select_option("#lead", "3000")
    alice.click("#start-together")
    counting = wait_all(list(pages.values()), "s.overlay && s.overlay.kind === 'countdown'", 10)
    state = counting[0]["state"]
    assert state["playing"] and all(c["state"]["version"] == state["version"] for c in counting)
    started = wait_all(list(pages.values()), f"s.mode === 'playing' && s.lastStart && s.state.version === {state['version']}")
    for s in started:
        assert s["lastStart"]["serverMs"] == state["at_ms"] and s["lastStart"]["join"] is False, s["lastStart"]
    in_sync(list(pages.values()), state["version"], playing=True)
    assert all(page.page_errors == [] for page in pages.values())


# -- the room waits for its slowest viewer ----------------------------------------------------------


def throttle(page: Any, bytes_per_s: float) -> Any:
    """DevTools network conditions on ``page``: downloads at ``bytes_per_s`` (-1: unthrottled)."""
    session = page.context.new_cdp_session(page)
    session.send("Network.enable")
    session.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": bytes_per_s, "uploadThroughput": -1})
    return session


def test_chat_limits_are_explained_when_hit(cinema: Cinema, open_room: Any) -> None:
    """The input holds at most the room's 500 characters, and its counter warns past a danmaku's
    100; a danmaku over 100 is refused on the page with the limit and the length; 70 lines sent at once pass the room's message budget (a burst of 40,
    20 a second) and the page says so, with the rate; the connection stays up and the next line,
    a moment later, goes through and clears the message."""
    room, _ = cinema.room("chatty")
    page = open_room("alice", room)
    page.fill("#say", "x" * 501)  # the input holds the room's limit (welcome's limits), no more
    assert len(page.input_value("#say")) == 500 and page.inner_text("#say-count") == "500/500"
    assert "at most 100" in (page.get_attribute("#say-count", "title") or "")  # too long for a danmaku
    page.click("#send-danmaku")
    page.wait_for_selector("#say-error:not([hidden])")
    assert "A danmaku may be at most 100 characters (this one has 500)" in page.inner_text("#say-error")
    page.evaluate("""() => {
      const form = document.getElementById('say-form'), input = document.getElementById('say');
      for (let n = 0; n < 70; n++) { input.value = `burst ${n}`; form.requestSubmit(); }
    }""")
    page.wait_for_function("() => document.getElementById('say-error').textContent.includes("
                           "'faster than the room allows (20 messages a second)')", timeout=20000)
    sent = page.evaluate("() => [...document.querySelectorAll('#chat-log li')].filter("
                         "li => li.textContent.includes('burst ')).length")
    assert 20 <= sent < 70, sent  # the burst of 40 is shared with the page's clock sync and telemetry
    time.sleep(2.5)  # the bucket refills
    page.fill("#say", "calm again")
    page.click("#send-chat")
    page.wait_for_function("() => [...document.querySelectorAll('#chat-log li')].some("
                           "li => li.textContent.includes('calm again'))", timeout=20000)
    page.wait_for_selector("#say-error", state="hidden")
    assert status(page)["connection"] == "connected"
    assert page.page_errors == []


def test_the_room_waits_for_a_throttled_viewer_and_drops_one_stuck_past_the_bound(
    cinema: Cinema, open_room: Any, tmp_path: Path
) -> None:
    """bob's network is throttled (DevTools) before alice plays an item he never loaded: his stall
    makes the room wait (alice's page names him), and when his network comes back play resumes
    for both at one instant. Then with settings.wait_s = 3 a stall that outlasts it is dropped:
    alice plays on at the deadline, and bob catches up alone once his network is back."""
    room, (a, c, d) = cinema.room("patience", videos=("a", "c", "d"), settings={"wait_s": 60})
    alice = open_room("alice", room)
    bob = open_room("bob", room, skew_ms=-1200)
    click_play_now(alice, a)
    in_sync([alice, bob], 2, playing=True)
    wait_status(bob, "s.reportedReady === true")

    slow = throttle(bob, 2048)
    click_play_now(alice, c)
    waiting = wait_status(alice, "s.wait && s.wait.waiting_for.some(w => w.user_name === 'bob')", 30)
    assert waiting["overlay"]["kind"] == "wait" and "bob" in waiting["overlay"]["line"]
    alice.locator("#player").scroll_into_view_if_needed()
    screenshot(alice, tmp_path, "room-waiting.png")
    wait_version = waiting["wait"]["version"]
    assert waiting["state"]["version"] == wait_version and waiting["state"]["at_ms"] == waiting["wait"]["until_ms"]
    slow.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0, "downloadThroughput": -1,
                                                    "uploadThroughput": -1})
    resumed = wait_status(alice, f"s.state.version === {wait_version + 1} && s.wait === null", 60)
    assert resumed["state"]["at_ms"] < waiting["wait"]["until_ms"]  # resumed early, not at the deadline
    started = wait_all([alice, bob], f"s.mode === 'playing' && s.lastStart && s.state.version === {wait_version + 1}")
    assert started[0]["lastStart"]["serverMs"] == resumed["state"]["at_ms"]  # alice starts on the common instant
    # bob too, unless his page was too busy to be ready 500 ms ahead: then he joins the running timeline
    assert started[1]["lastStart"]["serverMs"] == resumed["state"]["at_ms"] or started[1]["lastStart"]["join"]
    in_sync([alice, bob], wait_version + 1, playing=True)

    cinema.api("PATCH", f"/api/rooms/{room}", {"settings": {"wait_s": 3}})
    slow.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0, "downloadThroughput": 1024,
                                                    "uploadThroughput": -1})
    click_play_now(alice, d)
    held = wait_status(alice, "s.wait && s.wait.waiting_for.some(w => w.user_name === 'bob')", 30)["wait"]
    assert held["until_ms"] - held["started_ms"] == 3000
    dropped = wait_status(alice, f"s.mode === 'playing' && s.wait === null && s.state.version === {held['version']}", 30)
    assert status(bob)["readyState"] < 3  # still stuck: alice plays without him
    bob_entry = next(v for v in dropped["viewers"] if v["user_name"] == "bob")
    assert bob_entry["ready"] is False
    slow.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0, "downloadThroughput": -1,
                                                    "uploadThroughput": -1})
    in_sync([alice, bob], held["version"], playing=True)  # bob caught up alone, the room never stopped
    assert cinema.state(room)["version"] == held["version"]
    assert alice.page_errors == [] and bob.page_errors == []


# -- voice ------------------------------------------------------------------------------------------


def test_two_pages_talk_over_voice(cinema: Cinema, open_room: Any, tmp_path: Path) -> None:
    """alice and bob join voice (Chromium's fake microphone); each receives the other's audio:
    WebRTC inbound-rtp bytes grow on both sides; leaving ends it."""
    room, _ = cinema.room("voice")
    pages = [open_room("alice", room), open_room("bob", room)]
    for page in pages:
        page.click("#tab-people")
        page.click("#voice-join")
    wait_all(pages, "Object.values(s.voice.peers).length === 1 && "
                    "Object.values(s.voice.peers).every(p => p.state === 'connected' && p.bytesReceived > 2000)", 30)
    before = [sum(p["bytesReceived"] for p in status(page)["voice"]["peers"].values()) for page in pages]
    wait_all(pages, "Object.values(s.voice.peers).every(p => p.bytesReceived > 2 * 2000)", 30)
    after = [sum(p["bytesReceived"] for p in status(page)["voice"]["peers"].values()) for page in pages]
    assert all(b > a for a, b in zip(before, after, strict=True))
    pages[0].wait_for_selector("#people li:has-text('bob') .figures:has-text('drift')")
    screenshot(pages[0], tmp_path, "room-people-voice.png")
    pages[0].click("#voice-leave")
    wait_status(pages[1], "Object.keys(s.voice.peers).length === 0", 20)
    assert all(page.page_errors == [] for page in pages)


# -- live -------------------------------------------------------------------------------------------


def test_a_live_rtmp_publish_plays_on_the_page_through_mpegts(cinema: Cinema, open_room: Any) -> None:
    """alice adds an RTMP live item from the playlist panel, sees the RTMP URL and stream key with
    copy buttons, ffmpeg publishes to them, and "Play now" plays it with mpegts.js (HTTP-FLV)."""
    room, _ = cinema.room("onair", videos=())
    alice = open_room("alice", room)
    alice.click("#tab-playlist")
    alice.fill("#add-media input[name=title]", "Concert")
    alice.click("#add-live")
    alice.wait_for_selector(".stream-key input")
    rtmp_url, key = [alice.locator(".stream-key input").nth(i).input_value() for i in range(2)]
    assert rtmp_url.startswith("rtmp://") and len(key) > 10
    assert alice.locator(".stream-key button:has-text('Copy')").count() == 2
    media = status(alice)["playlist"][0]
    ffmpeg = subprocess.Popen(
        ["ffmpeg", "-nostdin", "-v", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30",
         "-f", "lavfi", "-i", "sine=frequency=440", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "veryfast",
         "-tune", "zerolatency", "-g", "30", "-c:a", "aac", "-f", "flv", f"{rtmp_url}/{key}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while cinema.api("GET", f"/api/rooms/{room}/media/{media}/stream").get("state") != "live":
            assert time.monotonic() < deadline, "the publish never went live"
            assert ffmpeg.poll() is None, ffmpeg.stderr.read() if ffmpeg.stderr else ""
            time.sleep(0.2)
        click_play_now(alice, media)
        s = wait_status(alice, "s.source && s.source.kind === 'flv' && s.source.live && s.currentTime > 1 && !s.paused", 45)
        assert s["problem"] == ""
        t0 = s["currentTime"]
        moving = wait_status(alice, f"s.currentTime > {t0} + 1", 20)
        assert moving["source"]["mode"] == "flv"
    finally:
        if ffmpeg.poll() is None:
            ffmpeg.terminate()
            ffmpeg.wait(timeout=15)
    assert alice.page_errors == []


# -- layout -----------------------------------------------------------------------------------------


def screenshot(page: Any, path: Path, name: str) -> Path:
    target = path / name
    page.screenshot(path=str(target))
    keep = os.environ.get("SYNCTV_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(target, Path(keep) / name)
    return target


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_pages_fit_a_phone_and_a_wide_screen_in_both_themes(
    cinema: Cinema, open_room: Any, tmp_path: Path, scheme: str
) -> None:
    """At 360 px and at 1920 px, in the light and the dark theme, nothing is wider than the window,
    the player, its controls and the side panel are on screen, and the theme's colours apply."""
    room, (a,) = cinema.room(f"looks-{scheme}")
    cinema.update(room, "media", media_id=a)
    cinema.update(room, "play")
    for width, height in ((360, 740), (1920, 1080)):
        page = open_room("alice", room, viewport=(width, height), scheme=scheme)
        wait_status(page, "s.mode === 'playing'")
        page.fill("#say", "looking good")
        page.click("#send-danmaku")
        page.wait_for_selector(".danmaku")
        wait_status(page, "s.danmakuShown > 0 && s.synced")
        page.wait_for_timeout(1200)  # the danmaku flies into view
        screenshot(page, tmp_path, f"room-{scheme}-{width}.png")
        layout = page.evaluate("""() => {
          const box = (id) => { const r = document.getElementById(id).getBoundingClientRect();
                                return { left: r.left, right: r.right, width: r.width, top: r.top }; };
          return { scroll: document.documentElement.scrollWidth, inner: innerWidth,
                   player: box('player'), controls: box('controls'), side: box('panel-chat'),
                   bg: getComputedStyle(document.body).backgroundColor };
        }""")
        assert layout["scroll"] <= layout["inner"], layout
        for part in ("player", "controls", "side"):
            assert layout[part]["left"] >= 0 and layout[part]["right"] <= width + 0.5 and layout[part]["width"] > 200, layout
        if width == 1920:
            assert layout["side"]["left"] > layout["player"]["right"]  # beside the player
        else:
            assert layout["side"]["top"] > layout["player"]["top"]  # under it
        dark = [int(c) for c in layout["bg"].strip("rgb()").split(",")[:3]]
        assert (sum(dark) < 100) if scheme == "dark" else (sum(dark) > 600), layout["bg"]
        home = page.context.new_page()
        home.goto(cinema.server.url + "/")
        home.wait_for_selector("#rooms li")
        assert home.evaluate("document.documentElement.scrollWidth <= innerWidth")
        screenshot(home, tmp_path, f"home-{scheme}-{width}.png")
        assert page.page_errors == []
