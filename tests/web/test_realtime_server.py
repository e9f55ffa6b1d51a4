"""web/js/clock.js and web/js/realtime.js in Chromium against the real server (``twistd -n synctv``).

The pages' wall clocks are skewed by seconds (``Date.now`` and ``performance.timeOrigin``); the
server's clock and the page's unskewed ``timeOrigin + performance.now()`` both follow this
machine's clock, so ``serverNow() - __trueNow()`` is the sync error itself.
"""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.integration.processes import ServerProcess
from tests.web.conftest import WebRoom, make_room

pytestmark = pytest.mark.integration

CONNECT = """
window.connectRoom = async (room, token, options = {}) => {
  const { RealtimeClient } = await import("/js/realtime.js");
  const client = new RealtimeClient(options);
  window.client = client;
  window.seen = [];
  window.welcomes = [];
  client.addEventListener("playbackState", (e) => seen.push(e.detail));
  client.addEventListener("welcome", (e) => welcomes.push(e.detail.connection_id));
  // resolves with the state once its version is at least v
  window.untilVersion = (v) => new Promise((resolve) => {
    const done = () => client.playbackState && client.playbackState.version >= v;
    if (done()) return resolve(client.playbackState);
    const listener = () => {
      if (done()) { client.removeEventListener("playbackState", listener); resolve(client.playbackState); }
    };
    client.addEventListener("playbackState", listener);
  });
  const welcome = await client.connect(`/ws/rooms/${room}`, { token });
  await client.clock.whenSynced();
  return welcome;
};
// the sync error against the page's true clock, n times, ms apart
window.syncErrors = async (n = 20) => {
  const errors = [];
  for (let i = 0; i < n; i++) {
    errors.push(client.serverNow() - window.__trueNow());
    await new Promise((r) => setTimeout(r, 5));
  }
  return errors;
};
"""


def _page(open_page: Callable[..., Any], room: WebRoom, token: str, skew_ms: float = 0,
          options: str = "{}") -> Any:
    page = open_page(room.url, skew_ms=skew_ms)
    page.evaluate(CONNECT)
    page.evaluate(f"([room, token]) => connectRoom(room, token, {options})", [room.room, token])
    return page


@pytest.mark.parametrize("skew_ms", [3000, -2000])
def test_offset_error_under_2ms_with_skewed_clock(open_page: Any, web_room: WebRoom, skew_ms: int) -> None:
    """With the page's wall clock seconds off, the burst at connect puts serverNow() within 2 ms
    of the server's true clock on loopback; the offset absorbs the skew."""
    page = _page(open_page, web_room, web_room.alice_token, skew_ms)
    errors = page.evaluate("syncErrors(20)")
    offset, rtt = page.evaluate("[client.clock.offsetMs, client.clock.rttMs]")
    assert max(abs(e) for e in errors) < 2.0, errors
    assert abs(offset + skew_ms) < 2.0, offset
    assert 0 <= rtt < 50
    # the reference itself against this process's clock, within the evaluate round trip
    before = time.time() * 1000
    server_now = page.evaluate("client.serverNow()")
    after = time.time() * 1000
    assert before - 50 < server_now < after + 50
    assert page.page_errors == []


def test_updates_converge_across_pages(open_page: Any, web_room: WebRoom) -> None:
    """Updates sent from two pages (different users, different skews) reach both pages as the same
    states in version order; both compute the same expected position at one server time."""
    root = _page(open_page, web_room, web_room.root_token, 3000)
    alice = _page(open_page, web_room, web_room.alice_token, -2000)
    start = root.evaluate("client.playbackState.version")
    assert alice.evaluate("client.playbackState.version") == start
    state = root.evaluate("(m) => client.update('media', { media_id: m })", web_room.media[1])
    assert state["version"] == start + 1 and state["media_id"] == web_room.media[1]
    alice.evaluate("(v) => untilVersion(v)", start + 1)
    state = alice.evaluate("() => client.update('seek', { position: 42.5 })")
    state = alice.evaluate("() => client.update('rate', { rate: 1.5 })")
    root.evaluate("(v) => untilVersion(v)", state["version"])
    state = root.evaluate("() => client.update('play')")
    final = alice.evaluate("(v) => untilVersion(v)", state["version"])
    assert final == root.evaluate("client.playbackState")
    assert final["playing"] is True and final["rate"] == 1.5 and final["version"] == start + 4
    for page in (root, alice):
        versions = page.evaluate("seen.map((s) => s.version)")
        assert versions == sorted(versions) and versions[-1] == start + 4
    at = final["at_ms"] + 1234
    assert root.evaluate("(t) => client.expectedPosition(t)", at) == pytest.approx(
        alice.evaluate("(t) => client.expectedPosition(t)", at))
    assert root.evaluate("(t) => client.expectedPosition(t)", at) == pytest.approx(
        final["position"] + 1.234 * 1.5)


def test_stale_update_rejects_with_current_state(open_page: Any, web_room: WebRoom) -> None:
    """An update naming an old version rejects with code stale_version; the client takes the
    current state from the error's detail."""
    page = _page(open_page, web_room, web_room.alice_token)
    current = page.evaluate("client.playbackState.version")
    error = page.evaluate("""async (v) => {
      try { await client.update("pause", { version: v }); return null; }
      catch (e) { return { code: e.code, detail: e.detail, name: e.name }; }
    }""", current - 1)
    assert error is not None and error["code"] == "stale_version", error
    assert error["detail"]["version"] == current
    assert page.evaluate("client.playbackState.version") == current


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_reconnects_after_server_restart(open_page: Any, launch_server: Callable[..., ServerProcess],
                                         tmp_path: Any) -> None:
    """When the server stops and a new process comes up on the same port, the client reconnects
    on its own: a new welcome, the state again (same version, marked fresh), a fresh clock burst
    within 2 ms, and updates work on the new connection."""
    port = _free_port()
    server = launch_server(tmp_path / "data", port=port)
    room = make_room(server, "restart-room")
    page = _page(open_page, room, room.alice_token, 3000, "{ backoffInitialMs: 100, backoffMaxMs: 1000 }")
    version = page.evaluate("(m) => client.update('media', { media_id: m })", room.media[0])["version"]
    page.evaluate("""() => {
      window.reconnected = new Promise((resolve) => client.addEventListener("welcome", async () => {
        await client.clock.whenSynced();
        resolve();
      }, { once: true }));
      window.closes = [];
      client.addEventListener("close", (e) => closes.push(e.detail));
    }""")
    assert server.kill(signal.SIGTERM) == -signal.SIGTERM
    launch_server(tmp_path / "data", port=port)
    page.evaluate("reconnected")
    welcomes = page.evaluate("welcomes")
    assert len(welcomes) == 2 and welcomes[0] != welcomes[1]
    assert page.evaluate("closes[0].reconnecting") is True
    fresh = page.evaluate("seen.at(-1)")
    assert fresh["version"] == version and fresh["fresh"] is True
    errors = page.evaluate("syncErrors(10)")
    assert max(abs(e) for e in errors) < 2.0, errors
    state = page.evaluate("() => client.update('play')")
    assert state["version"] == version + 1 and state["playing"] is True
