"""The room page with provider items, in Chromium against a real server process and the local
stand-ins of Alist, Emby, Jellyfin and Bilibili (tests/providers/fakes/, in a process of
their own, serving media made by ffmpeg), as tests/cli/test_provider_commands.py runs them.

- The playlist panel's "From your accounts": link an account (a refused one shows the upstream's
  reason), browse it with a trail and thumbnails, add an item, import a season; a Bilibili video
  added by URL, one part or every part.
- Playing provider items: an Emby transcode (``hls``) through the proxy with hls.js; a Bilibili
  part with its danmaku in their colours and places (scrolling, top, bottom); a DASH-only Bilibili
  answer and an HEVC video say what to do instead of showing a black player.
- The panel with the account browser open at 360 px and 1920 px, light and dark (screenshots kept
  under ``SYNCTV_SCREENSHOTS=DIR``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from tests.integration.processes import ServerProcess
from tests.providers.fakes import DASH_ONLY, FakeUpstreams
from tests.tools import require_tools
from tests.web.conftest import _ok
from tests.web.test_room_page import ARGS, PASSWORD, screenshot, status, wait_status

pytestmark = [pytest.mark.integration, pytest.mark.tools("ffmpeg", "chromium")]


@attrs.frozen
class Shelf:
    """The module's server and upstreams: ``fakes`` is the upstreams' JSON line; alice's token."""

    server: ServerProcess
    fakes: dict[str, Any]
    upstreams: FakeUpstreams
    alice: str

    def api(self, method: str, path: str, body: Any = None, *statuses: int) -> Any:
        return _ok(self.server.request(method, path, body, token=self.alice), *(statuses or (200, 201)))

    def room(self, name: str) -> str:
        return str(self.api("POST", "/api/rooms", {"name": name})["room"]["id"])

    def link(self, kind: str) -> str:
        body = {"kind": kind, "server": self.fakes[kind], "username": "alice",
                "password": self.fakes["alist_password" if kind == "alist" else "mb_password"]}
        return str(self.api("POST", "/api/me/accounts", body)["account"]["id"])

    def add(self, room: str, body: dict[str, Any]) -> str:
        return str(self.api("POST", f"/api/rooms/{room}/media", body)["media"]["id"])

    def select(self, room: str, media: str, *, play: bool = False) -> dict[str, Any]:
        version = self.api("GET", f"/api/rooms/{room}/playback-state")["version"]
        state = self.api("PATCH", f"/api/rooms/{room}/playback-state",
                         {"action": "media", "media_id": media, "version": version})
        if play:
            state = self.api("PATCH", f"/api/rooms/{room}/playback-state", {"action": "play", "version": state["version"]})
        return dict(state)

    def play(self, room: str) -> dict[str, Any]:
        version = self.api("GET", f"/api/rooms/{room}/playback-state")["version"]
        return dict(self.api("PATCH", f"/api/rooms/{room}/playback-state", {"action": "play", "version": version}))


@pytest.fixture(scope="module")
def shelf(launch_server: Callable[..., ServerProcess], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shelf]:
    require_tools("ffmpeg")
    folder = tmp_path_factory.mktemp("shelf")
    upstreams = FakeUpstreams(folder / "upstreams")
    with upstreams as fakes:
        config = folder / "synctv.toml"
        config.write_text(f"""
[proxy]
allow_networks = ["127.0.0.0/8"]
[providers]
bilibili_api = "{fakes['bilibili']}"
bilibili_live_api = "{fakes['bilibili']}"
""")
        server = launch_server(folder / "data", extra=("--config", str(config)))
        password = (server.data / "root-password").read_text().strip()
        root = _ok(server.request("POST", "/api/auth/login", {"name": "root", "password": password}))["token"]
        _ok(server.request("POST", "/api/users", {"name": "alice", "password": PASSWORD}, token=root), 201)
        alice = _ok(server.request("POST", "/api/auth/login", {"name": "alice", "password": PASSWORD}))["token"]
        yield Shelf(server, fakes, upstreams, alice)


@pytest.fixture(scope="module")
def chromium(browser: Any, chromium_executable: str) -> Iterator[Any]:
    """A headless Chromium that allows autoplay."""
    launched = browser.browser_type.launch(executable_path=chromium_executable, headless=True, args=ARGS)
    try:
        yield launched
    finally:
        launched.close()


@pytest.fixture
def open_room(chromium: Any, shelf: Shelf) -> Iterator[Callable[..., Any]]:
    """``open_room(room, viewport=(1280, 900), scheme=None)``: alice's room page, signed in through
    its form and connected; ``page.requests`` lists every URL the page asked for."""
    contexts: list[Any] = []

    def open_(room: str, viewport: tuple[int, int] = (1280, 900), scheme: str | None = None) -> Any:
        context = chromium.new_context(viewport={"width": viewport[0], "height": viewport[1]}, color_scheme=scheme)
        contexts.append(context)
        page = context.new_page()
        page.page_errors = []
        page.requests = []
        page.on("pageerror", lambda exc: page.page_errors.append(str(exc)))
        page.on("request", lambda request: page.requests.append(request.url))
        page.goto(f"{shelf.server.url}/room/{room}")
        page.wait_for_selector("#signin-view:not([hidden])")
        page.fill("#signin-form input[name=name]", "alice")
        page.fill("#signin-form input[name=password]", PASSWORD)
        page.click("#signin-form button[type=submit]")
        wait_status(page, "s.connection === 'connected' && s.synced")
        return page

    yield open_
    for context in contexts:
        context.close()


def entries(page: Any) -> list[str]:
    return [str(t) for t in status(page)["accounts"]["entries"]]


def wait_entries(page: Any, *titles: str) -> dict[str, Any]:
    return wait_status(page, f"{json.dumps(list(titles))}.every(t => s.accounts.entries.includes(t))")


def row(page: Any, title: str) -> Any:
    return page.locator("#account-items li", has=page.locator(".name", has_text=title)).first


def playlist_titles(page: Any) -> list[str]:
    return [str(t) for t in page.locator("#playlist li .name").all_inner_texts()]


def wait_playlist(page: Any, *titles: str) -> None:
    page.wait_for_function("titles => titles.every(t => [...document.querySelectorAll('#playlist li .name')]"
                           ".some(n => n.textContent === t))", arg=list(titles), timeout=30000)


# -- the account browser ----------------------------------------------------------------------------


def test_link_browse_add_and_import_from_the_playlist_panel(shelf: Shelf, open_room: Any) -> None:
    """alice links her Alist account from the panel (a wrong password first: the upstream's reason
    is shown), opens a folder (its videos' thumbnails come through the account thumbnail route with
    the token in a header, never in a URL), adds a film, goes back up the trail; links Emby,
    walks Shows > A Show and adds Season 1 whole; adds a Bilibili part by URL, then every part of
    a video. The playlist ends with exactly those items, each with alice's account."""
    fakes = shelf.fakes
    room = shelf.room("shelf-panel")
    page = open_room(room)
    page.click("#tab-playlist")
    page.wait_for_selector("#from-account #link-form:not([hidden])", timeout=20000)  # no account yet: the form is open
    assert page.locator("#from-account h2").inner_text() == "From your accounts"

    page.select_option("#link-form select[name=kind]", "alist")
    assert page.locator("#link-form input[name=cookie]").is_hidden()
    page.fill("#link-form input[name=server]", fakes["alist"])
    page.fill("#link-form input[name=username]", "alice")
    page.fill("#link-form input[name=password]", "not the password")
    page.click("#link-form button[type=submit]")
    page.wait_for_selector("#link-error:not([hidden])")
    refused = page.inner_text("#link-error")
    assert "Alist server refused the sign-in" in refused and "password is incorrect" in refused, refused
    page.fill("#link-form input[name=password]", fakes["alist_password"])
    page.click("#link-form button[type=submit]")
    s = wait_entries(page, "movies", "clips")
    assert [a["kind"] for a in s["accounts"]["accounts"]] == ["alist"] and s["accounts"]["trail"] == ["Top"]
    assert page.locator("#link-form").is_hidden() and "Linked Alist" in page.inner_text("#account-note")

    row(page, "movies").locator("button:has-text('Open')").click()
    wait_status(page, "s.accounts.trail.join('/') === 'Top/movies' && s.accounts.entries.includes('film.mp4')")
    assert sorted(entries(page)) == ["extras", "film.mp4", "second.mp4"]
    assert page.locator("#account-crumbs").inner_text().replace("\n", " ") == "Top › movies"
    page.wait_for_function("() => [...document.querySelectorAll('#account-items .thumb img')]"
                           ".filter(i => i.complete && i.naturalWidth === 32).length === 2", timeout=20000)
    assert all(src.startswith("blob:") for src in
               page.locator("#account-items .thumb img").evaluate_all("imgs => imgs.map(i => i.src)"))
    thumbnail_requests = [u for u in page.requests if "/thumbnail" in u]
    assert len(thumbnail_requests) == 2 and not [u for u in page.requests if "token=" in u], page.requests
    assert row(page, "extras").locator("button:has-text('Add all')").is_visible()
    row(page, "film.mp4").locator("button:has-text('Add')").click()
    wait_playlist(page, "film.mp4")
    page.click("#account-crumbs button:has-text('Top')")
    wait_status(page, "s.accounts.trail.length === 1 && s.accounts.entries.includes('clips')")

    page.click("#link-account")
    page.select_option("#link-form select[name=kind]", "emby")
    page.fill("#link-form input[name=server]", fakes["emby"])
    page.fill("#link-form input[name=username]", "alice")
    page.fill("#link-form input[name=password]", fakes["mb_password"])
    page.click("#link-form button[type=submit]")
    s = wait_entries(page, "Movies", "Shows")
    emby = s["accounts"]["account"]
    assert {a["kind"] for a in s["accounts"]["accounts"]} == {"alist", "emby"}
    assert next(a for a in s["accounts"]["accounts"] if a["id"] == emby)["kind"] == "emby"
    row(page, "Movies").locator("button:has-text('Open')").click()
    wait_entries(page, "A Film")
    page.wait_for_function("() => document.querySelector('#account-items .thumb img')?.naturalWidth === 32",
                           timeout=20000)
    page.click("#account-crumbs button:has-text('Top')")
    row(page, "Shows").locator("button:has-text('Open')").click()
    wait_entries(page, "A Show")
    row(page, "A Show").locator("button:has-text('Open')").click()
    wait_entries(page, "Season 1", "Season 2")
    assert page.locator("#account-crumbs").inner_text().replace("\n", " ") == "Top › Shows › A Show"
    row(page, "Season 1").locator("button:has-text('Add all')").click()
    wait_playlist(page, "A Show S01E01 Pilot", "A Show S01E02 Second")
    assert "Added 2 items" in page.inner_text("#account-note")

    url = page.locator("#add-media input[name=url]")
    url.fill("https://www.bilibili.com/video/BV1xx411c7mD?p=2")
    assert page.locator("#all-parts").is_visible()
    page.click("#add-media button[type=submit]")
    wait_playlist(page, "Two Parts P2 Ending")
    url.fill("BV1xx411c7mD")
    page.check("#all-parts input")
    page.click("#add-media button[type=submit]")
    wait_playlist(page, "Two Parts P1 Opening")
    assert page.locator("#all-parts").is_hidden() and url.input_value() == ""
    url.fill("https://b23.tv/abc")
    page.click("#add-media button[type=submit]")
    page.wait_for_selector("#add-error:not([hidden])")
    assert "b23.tv links are not followed" in page.inner_text("#add-error")

    page.click("#link-account")  # a Bilibili account: a cookie; its videos are added with it
    page.select_option("#link-form select[name=kind]", "bilibili")
    assert page.locator("#link-form input[name=server]").is_hidden()
    page.fill("#link-form input[name=cookie]", fakes["bilibili_cookie"])
    page.click("#link-form button[type=submit]")
    s = wait_status(page, "s.accounts.accounts.length === 3")
    bilibili = next(a["id"] for a in s["accounts"]["accounts"] if a["kind"] == "bilibili")
    assert s["accounts"]["account"] == emby and page.locator("#account option").count() == 2  # not browsed
    url.fill("https://www.bilibili.com/video/BV1y7411Q7Eq")
    page.click("#add-media button[type=submit]")
    wait_playlist(page, "One Part")

    media = shelf.api("GET", f"/api/rooms/{room}/media")["media"]
    assert [(m["title"], m["provider"]) for m in media] == [
        ("film.mp4", "alist"), ("A Show S01E01 Pilot", "emby"), ("A Show S01E02 Second", "emby"),
        ("Two Parts P2 Ending", "bilibili"), ("Two Parts P1 Opening", "bilibili"), ("Two Parts P2 Ending", "bilibili"),
        ("One Part", "bilibili")]
    assert "account" not in media[3]["provider_data"] and media[6]["provider_data"]["account"] == bilibili
    alist = next(a["id"] for a in s["accounts"]["accounts"] if a["kind"] == "alist")
    assert media[0]["provider_data"]["account"] == alist
    assert {m["provider_data"]["account"] for m in media[1:3]} == {emby}
    assert playlist_titles(page) == [m["title"] for m in media]
    assert page.page_errors == []


# -- playing provider items -------------------------------------------------------------------------


def test_an_emby_transcode_plays_with_hls_js_through_the_proxy(shelf: Shelf, open_room: Any) -> None:
    """An Emby film whose direct stream is an MKV plays the server's HLS transcode with hls.js
    (the page prefers a sure HLS over an MKV it may not decode); its frames are decoded."""
    room = shelf.room("shelf-hls")
    film = shelf.add(room, {"provider": "emby", "provider_data": {"account": shelf.link("emby"),
                                                                 "item": shelf.fakes["emby_ids"]["film"]}})
    shelf.select(room, film)
    page = open_room(room)
    s = wait_status(page, f"s.loadedMedia === '{film}' && s.source && s.readyState >= 2")
    assert s["source"] == {"kind": "hls", "mode": "hls", "live": False} and s["problem"] == ""
    shelf.play(room)
    s = wait_status(page, "s.currentTime > 0.5 && s.videoWidth === 96")
    frames = page.evaluate("() => document.getElementById('video').getVideoPlaybackQuality().totalVideoFrames")
    assert frames > 5 and s["fallbacks"] == 0
    hls_requests = [u for u in page.requests if "/proxy/" in u]
    assert any("/proxy/variant/" in u for u in hls_requests) and any("/proxy/segment/" in u for u in hls_requests)
    assert page.evaluate("() => typeof window.Hls") == "function"
    assert page.page_errors == []


def test_bilibili_danmaku_show_in_their_colour_and_place(shelf: Shelf, open_room: Any, tmp_path: Path) -> None:
    """A Bilibili part plays (MP4 through the proxy); its danmaku arrive as the room plays and are
    drawn as Bilibili draws them: "first!" scrolls in white, "at 0.6" stays at the top in red,
    "late one" at the bottom in blue, "<b>& one</b>" scrolls in yellow, as text."""
    room = shelf.room("shelf-danmaku")
    part = shelf.add(room, {"provider": "bilibili", "url": "https://www.bilibili.com/video/BV1y7411Q7Eq"})
    shelf.select(room, part)
    page = open_room(room, viewport=(960, 700))
    wait_status(page, f"s.loadedMedia === '{part}' && s.source && s.source.kind === 'native' && s.readyState >= 2")
    shelf.play(room)
    page.wait_for_function("() => document.querySelectorAll('#danmaku-layer .danmaku').length >= 4", timeout=30000)
    shown = page.evaluate("""() => [...document.querySelectorAll('#danmaku-layer .danmaku')].map(d => {
        const layer = d.parentElement.getBoundingClientRect(), box = d.getBoundingClientRect();
        return { text: d.textContent, place: d.dataset.place, color: getComputedStyle(d).color,
                 html: d.innerHTML, top: box.top - layer.top, bottom: layer.bottom - box.bottom,
                 centre: Math.abs((box.left + box.right) / 2 - (layer.left + layer.right) / 2) };
    })""")
    by_text = {d["text"]: d for d in shown}
    assert by_text["first!"]["place"] == "scroll" and by_text["first!"]["color"] == "rgb(255, 255, 255)"
    top, bottom = by_text["at 0.6"], by_text["late one"]
    assert top["place"] == "top" and top["color"] == "rgb(255, 77, 79)" and top["top"] < 60 and top["centre"] < 2
    assert bottom["place"] == "bottom" and bottom["color"] == "rgb(51, 204, 255)" and bottom["bottom"] < 60
    assert bottom["centre"] < 2
    bold = by_text["<b>& one</b>"]
    assert bold["place"] == "scroll" and bold["color"] == "rgb(255, 212, 0)" and bold["html"] == "&lt;b&gt;&amp; one&lt;/b&gt;"
    assert "never" not in by_text
    page.locator("#player").scroll_into_view_if_needed()
    screenshot(page, tmp_path, "room-bilibili-danmaku.png")
    assert page.page_errors == []


def test_what_a_browser_cannot_play_says_what_to_do(shelf: Shelf, open_room: Any) -> None:
    """A Bilibili video answered only as DASH says so and names the command that gives its URL for
    mpv; an HEVC MP4 on Alist (Chromium decodes its sound, not its picture) says the picture's
    codec is not supported instead of playing sound over a black player; both count as ready."""
    room = shelf.room("shelf-unplayable")
    dash = shelf.add(room, {"provider": "bilibili", "url": DASH_ONLY})
    hevc = shelf.add(room, {"provider": "alist", "provider_data": {"account": shelf.link("alist"),
                                                                  "item": "/clips/hevc.mp4"}})
    shelf.select(room, dash)
    page = open_room(room)
    s = wait_status(page, f"s.loadedMedia === '{dash}' && s.problem !== ''")
    assert s["source"] is None and s["reportedReady"] is True
    assert "only available as DASH" in s["problem"], s["problem"]
    assert f"synctv media info shelf-unplayable {dash} --modes proxy" in s["problem"]
    message = page.locator("#stage-message")
    assert message.is_visible() and "mpv" in message.inner_text()

    shelf.select(room, hevc, play=True)
    s = wait_status(page, f"s.loadedMedia === '{hevc}' && s.problem !== ''", 40)
    assert "picture" in s["problem"] and "HEVC" in s["problem"], s["problem"]
    assert s["videoWidth"] == 0 and s["source"]["kind"] == "native"
    assert message.is_visible() and "HEVC" in message.inner_text()
    assert page.page_errors == []


# -- looks ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_account_browser_fits_a_phone_and_a_wide_screen(
    shelf: Shelf, open_room: Any, tmp_path: Path, scheme: str
) -> None:
    """The playlist panel with the account browser open in a folder, at 360 px and 1920 px: nothing
    is wider than the window or its panel, every row's title, thumbnail and buttons are inside it,
    the playlist's titles are whole, "Link account" sits beside its heading, and the theme applies
    (screenshots under SYNCTV_SCREENSHOTS)."""
    room = shelf.room(f"shelf-looks-{scheme}")
    account = shelf.link("alist")
    shelf.add(room, {"provider": "alist", "provider_data": {"account": account, "item": "/movies/film.mp4"}})
    shelf.add(room, {"provider": "emby", "provider_data": {"account": shelf.link("emby"),
                                                           "item": shelf.fakes["emby_ids"]["ep1"]}})
    for width, height in ((360, 740), (1920, 1080)):
        page = open_room(room, viewport=(width, height), scheme=scheme)
        page.click("#tab-playlist")
        page.select_option("#account", account)
        wait_entries(page, "movies")
        row(page, "movies").locator("button:has-text('Open')").click()
        wait_status(page, "s.accounts.entries.includes('film.mp4') && s.accounts.thumbnails === 2")
        one_line = ("() => Math.abs(document.querySelector('#from-account h2').getBoundingClientRect().top"
                    " - document.getElementById('link-account').getBoundingClientRect().top) < 12")
        assert page.evaluate(one_line)  # "Link account" beside the heading
        page.click("#link-account")  # the link form open too
        page.locator("#from-account").scroll_into_view_if_needed()
        screenshot(page, tmp_path, f"room-accounts-{scheme}-{width}.png")
        page.locator("aside.side").screenshot(path=str(tmp_path / f"panel-{scheme}-{width}.png"))
        layout = page.evaluate("""() => {
          const panel = document.getElementById('panel-playlist').getBoundingClientRect();
          const inside = (el) => { const r = el.getBoundingClientRect();
                                   return r.left >= panel.left - 0.5 && r.right <= panel.right + 0.5 && r.width > 0; };
          const rows = [...document.querySelectorAll('#account-items li')];
          return { scroll: document.documentElement.scrollWidth, inner: innerWidth, panel: panel.width,
                   titles: [...document.querySelectorAll('#playlist .name')].map(n => n.scrollWidth <= n.clientWidth),
                   rows: rows.map(li => ({ inside: [...li.querySelectorAll('.thumb, .name, button')].every(inside),
                                           name: li.querySelector('.name').getBoundingClientRect().width })),
                   form: [...document.querySelectorAll('#link-form input:not([hidden]), #link-form select')]
                           .filter(e => e.offsetParent).every(inside),
                   bg: getComputedStyle(document.querySelector('#account-items li')).backgroundColor };
        }""")
        assert layout["scroll"] <= layout["inner"], layout
        assert len(layout["rows"]) == 3 and all(r["inside"] and r["name"] > 80 for r in layout["rows"]), layout
        assert layout["form"] and page.evaluate(one_line), layout
        assert layout["titles"] == [True, True], layout  # "A Show S01E01 Pilot" whole, even on a phone
        rgb = [int(c) for c in layout["bg"].strip("rgba()").split(",")[:3]]
        assert (sum(rgb) < 150) if scheme == "dark" else (sum(rgb) > 700), layout["bg"]
        assert page.page_errors == []
