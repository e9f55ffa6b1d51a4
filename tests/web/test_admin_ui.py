"""The admin console (web/admin/) in Chromium against the real server (``twistd -n synctv``).

One journey sets up a show the way an operator does: sign in, create a display room and a screen,
upload an ffmpeg-made video (the progress bar reaches 100 %), define an event (a server-side
validation message shows on the form), trigger it (scheduled start, then the 429 cooldown answer,
then Force), refuse to delete a video in use, and watch the screen turn online when its page opens.
Another test revokes the session's token and sees the console return to sign-in.

With ``SYNCTV_SCREENSHOTS=DIR`` a slower test also plays a show on three screens and saves
screenshots of the Screens (drift chart), Events and Videos (an upload in progress) sections.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.processes import ServerProcess
from tests.web.conftest import _ok

pytestmark = [
    pytest.mark.integration,
    pytest.mark.tools("ffmpeg"),
]

VIEWPORT = {"width": 1440, "height": 900}


def _ffmpeg(path: Path, seconds: float, size: str, extra: tuple[str, ...] = ()) -> Path:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", f"testsrc2=duration={seconds}:size={size}:rate=30",
         "-c:v", "libx264", "-pix_fmt", "yuv420p", *extra, "-movflags", "+faststart", "-y", str(path)],
        check=True, timeout=120,
    )
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4 s H.264 MP4 (320x240) made by ffmpeg."""
    return _ffmpeg(tmp_path_factory.mktemp("media") / "clip.mp4", 4, "320x240")


@pytest.fixture(scope="module")
def server(launch_server: Callable[..., ServerProcess], tmp_path_factory: pytest.TempPathFactory) -> ServerProcess:
    """One real server for the module (a fresh database: no rooms yet)."""
    return launch_server(tmp_path_factory.mktemp("admin-data"))


def root_password(server: ServerProcess) -> str:
    return (server.data / "root-password").read_text().strip()


def api_token(server: ServerProcess, name: str, password: str) -> str:
    return _ok(server.request("POST", "/api/auth/login", {"name": name, "password": password}))["token"]


@pytest.fixture
def new_page(browser: Any) -> Iterator[Callable[..., Any]]:
    """``new_page(**context_options)`` -> a page (1440x900) in a fresh context; page errors are kept
    in ``page.page_errors``."""
    contexts: list[Any] = []

    def make(**options: Any) -> Any:
        context = browser.new_context(viewport=VIEWPORT, **options)
        contexts.append(context)
        page = context.new_page()
        page.page_errors = []
        page.on("pageerror", lambda exc: page.page_errors.append(str(exc)))
        return page

    yield make
    for context in contexts:
        context.close()


def sign_in(page: Any, server: ServerProcess, name: str, password: str) -> None:
    from playwright.sync_api import expect

    page.goto(server.url + "/admin/")
    form = page.locator("#signin-form")
    expect(form).to_be_visible()
    form.get_by_label("User name").fill(name)
    form.get_by_label("Password").fill(password)
    form.get_by_role("button", name="Sign in").click()
    expect(page.locator("#app")).to_be_visible()


def test_operator_sets_up_and_triggers_a_show(server: ServerProcess, new_page: Any, clip: Path) -> None:
    """The whole admin path of a show: sign in (a wrong password is refused on the form), create a
    display room and a screen, upload a video (progress reaches 100 %, the row appears), create an
    event (the server's validation message lands on the field it names), trigger it (the scheduled
    start, then 429 with Retry-After, then Force), refuse to delete the video in use (409 shown), and
    see the screen turn online, with telemetry, once its page opens."""
    from playwright.sync_api import expect

    expect.set_options(timeout=10_000)
    page = new_page()
    page.goto(server.url + "/admin/")
    form = page.locator("#signin-form")
    form.get_by_label("User name").fill("root")
    form.get_by_label("Password").fill("not the password")
    form.get_by_role("button", name="Sign in").click()
    expect(form.locator(".form-error")).to_have_text("That user name and password do not match.")
    sign_in(page, server, "root", root_password(server))

    # a display room, from the empty state
    main = page.locator("#main")
    expect(main.get_by_text("No display room yet")).to_be_visible()
    main.get_by_role("button", name="Create a display room").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Name").fill("lobby")
    dialog.get_by_role("button", name="Create room").click()
    expect(page.locator("#display-room option:checked")).to_have_text("lobby")
    expect(main.get_by_text("No screens in “lobby” yet")).to_be_visible()

    # a screen
    page.get_by_role("button", name="Add screen").first.click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Name").fill("left")
    dialog.get_by_role("button", name="Add screen").click()
    row = page.locator("#screens-table tbody tr", has_text="left")
    expect(row).to_have_attribute("data-online", "false")
    page_url = row.locator("a").get_attribute("href")
    assert page_url and re.search(r"/display/[\w-]{16,}$", page_url), page_url

    # a video upload: the bar reaches 100 %, the row appears
    page.get_by_role("link", name="Videos").click()
    page.set_input_files("#video-file", str(clip))
    upload = page.locator("#uploads .upload").first
    expect(upload).to_have_class(re.compile(r"\bdone\b"))
    assert upload.locator("progress").evaluate("p => [p.value, p.max]") == [100, 100]
    expect(upload).to_contain_text("100 % · added to the library")
    video_row = page.locator("#videos-table tbody tr", has_text="clip")
    expect(video_row).to_contain_text("0:04")
    expect(video_row).to_contain_text("mp4")

    # an event; the server's message for a port without a payload shows at the payload field
    port = _free_udp_port()
    page.get_by_role("link", name="Events").click()
    page.get_by_role("button", name="New event").first.click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Name").fill("show")
    dialog.get_by_label("Video").select_option(label="clip")
    dialog.get_by_label("Lead time (ms)").fill("3000")
    dialog.get_by_label("Cooldown (s)").fill("60")
    dialog.get_by_label("UDP port").fill(str(port))
    dialog.get_by_role("button", name="Create event").click()
    payload = dialog.get_by_label("Payload")
    expect(payload).to_have_attribute("aria-invalid", "true")
    expect(dialog.locator(".field-error:visible")).to_contain_text("udp_port and udp_payload together")
    payload.fill("GO")
    dialog.get_by_role("button", name="Create event").click()
    expect(dialog).to_be_hidden()
    event_row = page.locator("#events-table tbody tr", has_text="show")
    expect(event_row).to_contain_text("listening")
    expect(event_row).to_contain_text(f":{port}")
    expect(event_row).to_contain_text("clip")

    # trigger: the scheduled start; again: the cooldown (429, Retry-After); force: starts anyway
    event_row.get_by_role("button", name="Trigger", exact=True).click()
    result = page.locator("#trigger-result .banner")
    expect(result).to_have_attribute("data-kind", "ok")
    expect(result).to_contain_text("“show” scheduled")
    starts_in = int(re.search(r"\(in (\d+) ms\)", result.inner_text())[1])
    assert 0 < starts_in <= 3000
    expect(event_row).to_contain_text("s left")
    event_row.get_by_role("button", name="Trigger", exact=True).click()
    expect(result).to_have_attribute("data-kind", "warn")
    expect(result).to_contain_text("cooling down")
    assert re.search(r"Retry-After: (59|60) s", result.inner_text()), result.inner_text()
    event_row.get_by_role("button", name="Force", exact=True).click()
    expect(result).to_have_attribute("data-kind", "ok")

    # edit: a shorter lead time
    event_row.get_by_role("button", name="Edit show").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_label("Video")).to_have_value(re.compile(r"\w+"))
    dialog.get_by_label("Lead time (ms)").fill("1500")
    dialog.get_by_role("button", name="Save event").click()
    expect(event_row).to_contain_text("1500 ms")

    # the video is in use now: deleting it shows the 409 in the dialog, which stays open
    page.get_by_role("link", name="Videos").click()
    page.locator("#videos-table tbody tr", has_text="clip").get_by_role("button", name="Delete clip").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button", name="Delete video").click()
    expect(dialog.locator(".form-error")).to_contain_text("media items play this video")
    expect(dialog.locator(".form-error")).to_contain_text("Used in: lobby")
    dialog.get_by_role("button", name="Cancel").click()
    expect(page.locator("#videos-table tbody tr", has_text="clip")).to_be_visible()

    # the screen's page opens elsewhere: the row turns online and shows telemetry
    page.get_by_role("link", name="Screens").click()
    row = page.locator("#screens-table tbody tr", has_text="left")
    screen = new_page()
    screen.goto(page_url + "?muted=1&warm=0")
    expect(row).to_have_attribute("data-online", "true")
    expect(row).to_contain_text("Online")
    expect(row.locator("td").nth(4)).to_contain_text("ms")  # drift, from the screen's telemetry
    expect(page.locator("#now-title")).not_to_have_text("Connecting…")

    # a new page address: the link changes and the old address stops working
    row.get_by_role("button", name="New page address for left").click()
    page.get_by_role("dialog").get_by_role("button", name="Give a new address").click()
    expect(row.locator("a")).not_to_have_attribute("href", page_url)
    status, _ = server.request("GET", page_url[len(server.url):])
    assert status == 404
    assert page.page_errors == []


def test_a_revoked_session_returns_to_sign_in(server: ServerProcess, new_page: Any) -> None:
    """When the session's token stops working (here: every token of the user revoked), the next
    request answers 401 and the console goes back to the sign-in form with a message."""
    from playwright.sync_api import expect

    root = api_token(server, "root", root_password(server))
    status, _ = server.request("POST", "/api/users", {"name": "ops", "password": "ops-password", "role": "admin"},
                               token=root)
    assert status in (201, 409)
    page = new_page()
    sign_in(page, server, "ops", "ops-password")
    expect(page.locator("#user-name")).to_have_text("ops")
    _ok(server.request("POST", "/api/auth/revoke", {}, token=api_token(server, "ops", "ops-password")))
    expect(page.locator("#signin")).to_be_visible(timeout=10_000)
    expect(page.locator("#signin-message")).to_contain_text("expired or was revoked")
    assert page.evaluate("sessionStorage.getItem('synctv.admin.token')") is None
    assert page.page_errors == []


def test_rooms_idle_image_users_and_cache_sections(server: ServerProcess, new_page: Any, clip: Path,
                                                   tmp_path: Path) -> None:
    """The general admin sections work against the server: the idle image is replaced (PUT, a PNG)
    and its details change; a room's playback is driven live over the WebSocket (Load, Play, Pause)
    and the server's state follows; a user is created with a role; the proxy cache shows its
    figures and purges; the live streams card lists nothing without live items."""
    from playwright.sync_api import expect

    expect.set_options(timeout=10_000)
    root = api_token(server, "root", root_password(server))
    room = _ok(server.request("POST", "/api/rooms", {"name": "foyer", "kind": "display"}, token=root), 201)["room"]
    status, video = _upload(server, clip, root, "Foyer loop")
    assert status == 201, video
    _ok(server.request("POST", f"/api/rooms/{room['id']}/media",
                       {"url": f"upload:{video['video']['id']}", "provider": "upload", "title": "Foyer loop",
                        "duration": video["video"]["duration"]}, token=root), 201)
    page = new_page()
    sign_in(page, server, "root", root_password(server))

    # the idle image
    page.get_by_role("link", name="Idle image").click()
    expect(page.locator("#main dl")).to_contain_text("none uploaded")
    png = tmp_path / "idle.png"
    png.write_bytes(PNG_1x1)
    page.set_input_files("#idle-file", str(png))
    expect(page.locator("#main dl")).to_contain_text("image/png")
    assert page.locator("#idle-preview").evaluate("img => img.complete && img.naturalWidth") == 1

    # a room's playback, live
    page.get_by_role("link", name="Rooms").click()
    page.locator("#rooms-table tbody tr", has_text="foyer").get_by_role("button", name="Open").click()
    playback = page.locator("#room-playback")
    expect(playback).to_have_text("Nothing selected")
    page.get_by_role("button", name="Load").click()
    expect(playback).to_have_text("Paused: Foyer loop")
    page.get_by_role("button", name="Play").click()
    expect(playback).to_have_text("Playing: Foyer loop")
    assert _ok(server.request("GET", f"/api/rooms/{room['id']}/playback-state", token=root))["playing"] is True
    page.get_by_role("button", name="Pause").click()
    expect(playback).to_contain_text("Paused")
    assert _ok(server.request("GET", f"/api/rooms/{room['id']}/playback-state", token=root))["playing"] is False

    # a video renamed, then added to another room's playlist
    page.get_by_role("link", name="Videos").click()
    video_row = page.locator("#videos-table tbody tr", has_text="Foyer loop")
    video_row.get_by_role("button", name="Rename Foyer loop").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Title").fill("Foyer loop v2")
    dialog.get_by_role("button", name="Save").click()
    expect(page.locator("#videos-table tbody tr", has_text="Foyer loop v2")).to_be_visible()
    _ok(server.request("POST", "/api/rooms", {"name": "annex", "kind": "display"}, token=root), 201)
    page.reload()
    expect(page.locator("#app")).to_be_visible()
    page.locator("#videos-table tbody tr", has_text="Foyer loop v2").get_by_role("button", name="Add to room").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Room").select_option(label="annex (display)")
    dialog.get_by_role("button", name="Add to playlist").click()
    expect(dialog).to_be_hidden()
    annex = _ok(server.request("GET", "/api/rooms/annex/media", token=root))["media"]
    assert [(m["provider"], m["url"], m["duration"]) for m in annex] == [
        ("upload", f"upload:{video['video']['id']}", video["video"]["duration"])]

    # users
    page.get_by_role("link", name="Users").click()
    page.get_by_role("button", name="New user").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Name").fill("stagehand")
    dialog.get_by_label("Password").fill("curtain-call")
    dialog.get_by_label("Role").select_option("admin")
    dialog.get_by_role("button", name="Create user").click()
    expect(page.locator("#users-table tbody tr", has_text="stagehand")).to_contain_text("site admin")
    # a taken name: the server's 409 message stays on the form
    page.get_by_role("button", name="New user").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Name").fill("stagehand")
    dialog.get_by_label("Password").fill("x-password")
    dialog.get_by_role("button", name="Create user").click()
    expect(dialog.locator("[aria-invalid=true], .form-error:visible").first).to_be_visible()
    dialog.get_by_role("button", name="Cancel").click()

    # the proxy cache and live streams
    page.get_by_role("link", name="Cache & streams").click()
    expect(page.locator("#cache-stats")).to_contain_text("Hit rate")
    page.get_by_role("button", name="Purge").click()
    page.get_by_role("dialog").get_by_role("button", name="Purge").click()
    expect(page.locator(".toast", has_text="cache was purged")).to_be_visible()
    expect(page.get_by_text("No live items")).to_be_visible()
    assert page.page_errors == []


PNG_1x1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def _free_udp_port() -> int:
    """A free port inside [triggers] udp_ports' default range (5000-5999)."""
    from tests.displays.support import free_udp_port

    return free_udp_port()


# -- screenshots (only with SYNCTV_SCREENSHOTS=DIR) ------------------------------------------------

SCREENSHOTS = os.environ.get("SYNCTV_SCREENSHOTS")


@pytest.mark.skipif(not SCREENSHOTS, reason="set SYNCTV_SCREENSHOTS=DIR to take screenshots")
def test_screenshots(server: ServerProcess, new_page: Any, clip: Path, tmp_path: Path) -> None:
    """Saves screenshots of the Screens section with three screens playing (the drift chart fills
    in), the Events section after a trigger, and the Videos section with an upload in progress
    (upload bandwidth throttled through the DevTools protocol)."""
    from playwright.sync_api import expect

    out = Path(str(SCREENSHOTS))
    out.mkdir(parents=True, exist_ok=True)
    root = api_token(server, "root", root_password(server))
    room = _ok(server.request("POST", "/api/rooms", {"name": "main-hall", "kind": "display"}, token=root), 201)["room"]
    long_clip = _ffmpeg(tmp_path / "long.mp4", 90, "640x360")
    status, video = _upload(server, long_clip, root, "Opening titles")
    assert status == 201, video
    media = video["video"]["id"]
    for title, seconds in (("Intermission loop", 6), ("Sponsor reel", 3)):
        assert _upload(server, _ffmpeg(tmp_path / f"{seconds}.mp4", seconds, "320x180"), root, title)[0] == 201
    pages = []
    for name in ("left-wall", "center", "right-wall"):
        display = _ok(server.request("POST", "/api/displays", {"name": name, "room": room["id"]}, token=root), 201)
        pages.append(display["display"]["page"])
    _ok(server.request("POST", "/api/events", {
        "name": "doors-open", "room": room["id"], "media": media, "udp_port": _free_udp_port(),
        "udp_payload": "DOORS", "cooldown_s": 120, "lead_ms": 4000}, token=root), 201)
    _ok(server.request("POST", "/api/events", {
        "name": "finale", "room": room["id"], "media": media, "cooldown_s": 30, "lead_ms": 2500}, token=root), 201)

    admin = new_page()
    sign_in(admin, server, "root", root_password(server))
    admin.select_option("#display-room", label="main-hall")
    screens = [new_page() for _ in pages]
    for screen, path in zip(screens, pages, strict=True):
        screen.goto(server.url + path + "?muted=1")
    expect(admin.locator("#screens-table tbody tr[data-online=true]")).to_have_count(3, timeout=20_000)
    admin.get_by_role("link", name="Events").click()
    admin.locator("#events-table tbody tr", has_text="doors-open").get_by_role("button", name="Trigger", exact=True).click()
    expect(admin.locator("#trigger-result .banner")).to_be_visible()
    admin.screenshot(path=str(out / "admin-events.png"))
    admin.get_by_role("link", name="Screens").click()
    time.sleep(40)  # let the chart fill with 40 s of real telemetry
    admin.screenshot(path=str(out / "admin-displays.png"))
    admin.get_by_role("button", name="Fit", exact=True).click()
    admin.screenshot(path=str(out / "admin-displays-fit.png"))

    dark = new_page(color_scheme="dark")
    sign_in(dark, server, "root", root_password(server))
    dark.select_option("#display-room", label="main-hall")
    time.sleep(3)
    dark.screenshot(path=str(out / "admin-displays-dark.png"))

    big = _ffmpeg(tmp_path / "big.mp4", 20, "1280x720", ("-b:v", "4M"))
    admin.get_by_role("link", name="Videos").click()
    cdp = admin.context.new_cdp_session(admin)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0, "downloadThroughput": -1,
                                                  "uploadThroughput": 2 * 1024 * 1024})
    admin.set_input_files("#video-file", str(big))
    admin.wait_for_function("() => { const p = document.querySelector('#uploads progress');"
                            " return p && p.value >= 30 && p.value < 90; }", timeout=30_000)
    admin.screenshot(path=str(out / "admin-videos-upload.png"))
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0, "downloadThroughput": -1,
                                                  "uploadThroughput": -1})
    expect(admin.locator("#uploads .upload.done")).to_have_count(1, timeout=30_000)


def _upload(server: ServerProcess, path: Path, token: str, title: str) -> tuple[int, Any]:
    import json
    import urllib.error
    import urllib.parse
    import urllib.request

    url = f"{server.url}/api/videos?filename={path.name}&title={urllib.parse.quote(title)}"
    req = urllib.request.Request(url, data=path.read_bytes(), method="POST",
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "video/mp4"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
