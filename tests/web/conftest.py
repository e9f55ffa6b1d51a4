"""Browser tests: Debian's Chromium driven by Playwright's sync API.

- ``browser``: one headless Chromium for the session (``/usr/bin/chromium``, never a downloaded
  one). Missing Chromium skips the browser tests, or fails them under ``SYNCTV_REQUIRE_TOOLS=1``
  (tests/tools.py).
- ``open_page(base_url, skew_ms=0)``: a page in a fresh context, loaded at ``base_url``, whose
  wall clock is skewed like a device with a wrong clock: ``Date.now`` and
  ``performance.timeOrigin`` are moved by ``skew_ms`` before any script runs, while
  ``performance.now()`` stays true (DESIGN.md, "Measuring sync"). ``window.__trueNow()`` is the
  unskewed ``timeOrigin + performance.now()``, the reference the tests measure against.
  ``base_url=OFFLINE`` serves ``web/`` through Playwright's router, with no server.
- ``launch_server(data, port=0, extra=())``: the real ``twistd -n synctv`` on loopback (killed at
  teardown); ``extra``: more twistd options, e.g. ``("--config", path)``.
- ``web_room``: one server for the module with a room, its media, and tokens for root and alice
  (a plain member).

Playwright's sync API runs its own event loop in a greenlet; these tests never touch the Twisted
reactor, so the two never meet.
"""

from __future__ import annotations

import mimetypes
import os
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from synctv.testing import ServerDidNotStart, wait_serving
from tests.integration.processes import ServerProcess, child_env, twistd_args
from tests.tools import require_tools

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
OFFLINE = "http://synctv.test"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--no-first-run", "--disable-sync",
]

SKEW_SCRIPT = """
(() => {
  const skew = %s;
  const origin = performance.timeOrigin;
  const perfNow = performance.now.bind(performance);
  const dateNow = Date.now.bind(Date);
  Object.defineProperty(window, "__trueNow", { value: () => origin + perfNow() });
  Object.defineProperty(window, "__skewMs", { value: skew });
  Object.defineProperty(performance, "timeOrigin", { get: () => origin + skew, configurable: true });
  Date.now = () => dateNow() + skew;
})();
"""


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    """The system Chromium, or a skip (a failure under SYNCTV_REQUIRE_TOOLS=1)."""
    require_tools("chromium")
    return str(shutil.which("chromium"))


@pytest.fixture(scope="session")
def browser(chromium_executable: str) -> Iterator[Any]:
    """One headless Chromium for the session."""
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        launched = playwright.chromium.launch(
            executable_path=chromium_executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()
    finally:
        playwright.stop()


def _serve_web(route: Any) -> None:
    path = route.request.url[len(OFFLINE):].split("?", 1)[0].lstrip("/") or "index.html"
    file = (WEB_DIR / path).resolve()
    if WEB_DIR not in file.parents or not file.is_file():
        route.fulfill(status=404, body="not found")
        return
    ctype = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    route.fulfill(status=200, body=file.read_bytes(), headers={"Content-Type": ctype})


@pytest.fixture
def open_page(browser: Any) -> Iterator[Callable[..., Any]]:
    """``open_page(base_url, skew_ms=0)`` -> a loaded page with a skewed wall clock."""
    contexts: list[Any] = []

    def open_(base_url: str, skew_ms: float = 0) -> Any:
        context = browser.new_context()
        contexts.append(context)
        context.add_init_script(SKEW_SCRIPT % repr(float(skew_ms)))
        if base_url == OFFLINE:
            context.route(OFFLINE + "/**", _serve_web)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.page_errors = errors
        page.goto(base_url + "/")
        return page

    yield open_
    for context in contexts:
        context.close()


@pytest.fixture(scope="module")
def launch_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., ServerProcess]]:
    """``launch_server(data, port=0, extra=())`` starts ``twistd -n synctv``; every one is stopped at the end."""
    started: list[ServerProcess] = []
    logs = tmp_path_factory.mktemp("twistd")

    def launch(data: Path, port: int = 0, timeout: float = 60.0, extra: tuple[str, ...] = ()) -> ServerProcess:
        log = logs / f"twistd-{len(started)}.log"
        args = twistd_args(data, None, *extra)
        args[args.index("--http") + 1] = f"tcp:{port}:interface=127.0.0.1"
        with open(log, "wb") as out:
            proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=logs, env=child_env())
        try:
            serving = wait_serving(proc, log, timeout)
        except ServerDidNotStart as e:
            pytest.fail(str(e))
        server = ServerProcess(proc, data, log, serving.http_url)
        started.append(server)
        return server

    yield launch
    for server in started:
        if server.proc.poll() is None:
            server.kill(signal.SIGTERM)


@attrs.frozen
class WebRoom:
    """A running server with one room: ``room`` (id), ``media`` (ids), tokens of root and alice."""

    server: ServerProcess
    room: str
    media: list[str]
    root_token: str
    alice_token: str

    @property
    def url(self) -> str:
        return self.server.url


def _ok(answer: tuple[int, Any], *statuses: int) -> Any:
    status, body = answer
    assert status in (statuses or (200,)), (status, body)
    return body


def make_room(server: ServerProcess, name: str = "web-room") -> WebRoom:
    """Creates alice (a plain user), a room she joined and two media items; returns the tokens."""
    password = (server.data / "root-password").read_text().strip()
    root = _ok(server.request("POST", "/api/auth/login", {"name": "root", "password": password}))["token"]
    _ok(server.request("POST", "/api/users", {"name": "alice", "password": "wonderland"}, token=root), 201)
    alice = _ok(server.request("POST", "/api/auth/login", {"name": "alice", "password": "wonderland"}))["token"]
    room = _ok(server.request("POST", "/api/rooms", {"name": name}, token=root), 201)["room"]["id"]
    _ok(server.request("POST", f"/api/rooms/{room}/join", {}, token=alice))
    media = [
        _ok(server.request("POST", f"/api/rooms/{room}/media",
                           {"url": f"http://media.example/{i}.mp4", "title": f"m{i}"}, token=root), 201)["media"]["id"]
        for i in range(2)
    ]
    return WebRoom(server, room, media, root, alice)


@pytest.fixture(scope="module")
def web_room(launch_server: Callable[..., ServerProcess], tmp_path_factory: pytest.TempPathFactory) -> WebRoom:
    """One server for the module, with a room (see ``make_room``)."""
    server = launch_server(tmp_path_factory.mktemp("data"))
    return make_room(server)
