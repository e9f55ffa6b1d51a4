"""web/js/realtime.js in Chromium against a scripted WebSocket (no server): the client's rules.

``window.fakeServer()`` builds a RealtimeClient whose WebSocket is a page-side fake that answers
like the server (welcome, time, observe, update with versions, acks) and can be told to close,
go silent or push frames. Behaviour against the real server is in test_realtime_server.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.web.conftest import OFFLINE

FAKE = """
window.fakeServer = async (clientOptions = {}) => {
  const rt = await import("/js/realtime.js");
  const server = {
    state: { media_id: "m1", playing: false, ended: false, position: 0, rate: 1, at_ms: 1000, version: 3 },
    sockets: [], silent: new Set(), connections: 0, roomId: "r1",
    limits: { max_frame_bytes: 65536, messages_per_s: 1000, chat_max_chars: 500, danmaku_max_chars: 100 },
  };
  const push = (sock, frame) => sock.readyState === 1 && sock.onmessage?.({ data: JSON.stringify(frame) });
  class FakeSocket {
    constructor(url, protocols) {
      this.url = url; this.protocols = protocols; this.readyState = 0; this.sent = [];
      server.sockets.push(this);
      setTimeout(() => {
        if (this.readyState !== 0) return;
        this.readyState = 1;
        this.onopen?.({});
        server.connections += 1;
        push(this, { type: "welcome", connection_id: "c" + server.connections, server_time_ms: Date.now(),
                     user: { id: "u", name: "alice", role: "user" }, room: { id: server.roomId, name: "r" },
                     member: null, limits: server.limits });
      }, 0);
    }
    send(data) { const m = JSON.parse(data); this.sent.push(m); setTimeout(() => this.answer(m), 0); }
    close(code = 1000) { this.readyState = 3; this.closedWith = code; }
    drop(code, reason = "") { this.readyState = 3; this.onclose?.({ code, reason }); }
    answer(m) {
      if (server.silent.has(m.type)) return;
      if (m.type === "time") {
        const t = Math.floor(window.__trueNow() + 5000);
        push(this, { type: "time", id: m.id, t0: m.t0, t1: t, t2: t });
      } else if (m.type === "observe" && m.resource === "playbackState") {
        push(this, { type: "playbackState", id: m.id, ...server.state });
      } else if (m.type === "observe") {
        push(this, { type: m.resource, id: m.id, messages: [], online: [], result: null });
      } else if (m.type === "update") {
        if (m.version !== server.state.version) {
          push(this, { type: "error", id: m.id, code: "stale_version", message: "stale", detail: server.state });
        } else {
          server.state = { ...server.state, playing: m.action === "play", version: server.state.version + 1 };
          push(this, { type: "playbackState", id: m.id, ...server.state });
        }
      } else {
        push(this, { type: "ack", id: m.id });
      }
    }
  }
  const client = new rt.RealtimeClient({ WebSocket: FakeSocket, backoffInitialMs: 5, backoffMaxMs: 40,
                                         clock: { burstSpacingMs: 1 }, ...clientOptions });
  const events = [];
  for (const type of ["welcome", "playbackState", "close", "reconnecting", "error", "chat"]) {
    client.addEventListener(type, (e) => events.push({ type, detail: e.detail }));
  }
  const next = (type) => new Promise((r) => client.addEventListener(type, (e) => r(e.detail), { once: true }));
  return { rt, client, server, events, next, push: (frame) => push(server.sockets.at(-1), frame) };
};
"""


@pytest.fixture
def fake_page(open_page: Any) -> Any:
    page = open_page(OFFLINE, skew_ms=-2000)
    page.evaluate(FAKE)
    return page


def test_connect_sends_subprotocols_and_observes(fake_page: Any) -> None:
    """connect() offers ['synctv.v1', 'bearer.TOKEN'] on a ws: URL resolved against the page,
    resolves with the welcome, observes playbackState and starts the clock burst, spaced to the
    welcome's messages_per_s."""
    result = fake_page.evaluate("""async () => {
      const { client, server } = await fakeServer();
      server.limits.messages_per_s = 100;
      const welcome = await client.connect("/ws/rooms/r1", { token: "tok" });
      const state = await client.observe("chat");
      await client.clock.whenSynced();
      const sock = server.sockets[0];
      return { url: sock.url, protocols: sock.protocols, welcome: welcome.connection_id,
               types: sock.sent.map((m) => m.type + (m.resource ? ":" + m.resource : "")),
               state: client.playbackState, offset: client.clock.offsetMs, skew: window.__skewMs,
               spacing: client.clock.burstSpacingMs };
    }""")
    assert result["url"] == "ws://synctv.test/ws/rooms/r1"
    assert result["protocols"] == ["synctv.v1", "bearer.tok"]
    assert result["welcome"] == "c1"
    assert result["types"][:2] == ["observe:playbackState", "time"]
    assert "observe:chat" in result["types"]
    assert result["types"].count("time") == 8
    assert result["spacing"] == 10  # the burst keeps to the server's 100 messages per second
    assert result["state"]["version"] == 3
    assert abs(result["offset"] - (5000 - result["skew"])) < 1.0


def test_older_versions_are_never_emitted(fake_page: Any) -> None:
    """A playbackState older than (or equal to) the newest seen is dropped: listeners and the
    playbackState getter never go from version N+1 back to N."""
    result = fake_page.evaluate("""async () => {
      const { client, events, push, server } = await fakeServer();
      await client.connect("/ws/rooms/r1");
      await client.clock.whenSynced();
      const s = server.state;
      push({ type: "playbackState", ...s, version: 5, position: 5 });
      push({ type: "playbackState", ...s, version: 4, position: 4 });
      push({ type: "playbackState", ...s, version: 5, position: 55 });
      push({ type: "playbackState", ...s, version: 6, position: 6 });
      const seen = events.filter((e) => e.type === "playbackState").map((e) => [e.detail.version, !!e.detail.fresh]);
      return { seen, now: client.playbackState };
    }""")
    assert result["seen"] == [[3, True], [5, False], [6, False]]
    assert result["now"]["version"] == 6 and result["now"]["position"] == 6


def test_update_fills_version_and_stale_rejects(fake_page: Any) -> None:
    """update() sends the current version and resolves with the new state; a stale version
    rejects with code stale_version and the current state from its detail is applied."""
    result = fake_page.evaluate("""async () => {
      const { client, server } = await fakeServer();
      await client.connect("/ws/rooms/r1");
      await client.clock.whenSynced();
      const played = await client.update("play");
      const sentVersion = server.sockets[0].sent.find((m) => m.type === "update").version;
      server.state = { ...server.state, version: 9, playing: false };  // changed elsewhere, unseen
      let error = null;
      try { await client.update("play"); } catch (e) { error = { code: e.code, name: e.name, detail: e.detail }; }
      return { played, sentVersion, error, after: client.playbackState };
    }""")
    assert result["sentVersion"] == 3
    assert result["played"]["version"] == 4 and result["played"]["playing"] is True
    assert "type" not in result["played"] and "id" not in result["played"]
    assert result["error"]["code"] == "stale_version" and result["error"]["name"] == "RealtimeError"
    assert result["error"]["detail"]["version"] == 9
    assert result["after"]["version"] == 9 and result["after"]["playing"] is False


def test_reconnect_reobserves_resyncs_and_emits_fresh_state(fake_page: Any) -> None:
    """After the socket drops, the client reconnects with backoff, re-observes every observed
    resource, runs a new clock burst and emits the state again, marked fresh."""
    result = fake_page.evaluate("""async () => {
      const { client, server, events, next } = await fakeServer();
      await client.connect("/ws/rooms/r1", { token: "t" });
      await client.observe("presence");
      await client.clock.whenSynced();
      let pendingCode = null;
      server.silent.add("chat");
      const pending = client.chat("lost in the drop").catch((e) => { pendingCode = e.code; });
      const welcomed = next("welcome");
      server.sockets[0].drop(1006);
      const welcome = await welcomed;
      await pending;
      await client.clock.whenSynced();
      const fresh = events.filter((e) => e.type === "playbackState").at(-1).detail;
      const second = server.sockets[1].sent.map((m) => m.type + (m.resource ? ":" + m.resource : ""));
      return { welcome: welcome.connection_id, pendingCode, fresh, second,
               close: events.find((e) => e.type === "close").detail,
               reconnecting: events.find((e) => e.type === "reconnecting").detail,
               synced: client.clock.synced, connected: client.connected };
    }""")
    assert result["welcome"] == "c2"
    assert result["pendingCode"] == "disconnected"
    assert result["close"] == {"code": 1006, "reason": "", "reconnecting": True}
    assert result["reconnecting"]["attempt"] == 1 and result["reconnecting"]["delayMs"] <= 40
    assert "observe:playbackState" in result["second"] and "observe:presence" in result["second"]
    assert result["second"].count("time") == 8
    assert result["fresh"]["version"] == 3 and result["fresh"]["fresh"] is True
    assert result["synced"] and result["connected"]


def test_set_token_is_used_by_the_next_reconnect(fake_page: Any) -> None:
    """setToken leaves the open socket alone and offers the new bearer token on the next
    reconnect (a display page refreshes its session token this way)."""
    result = fake_page.evaluate("""async () => {
      const { client, server, next } = await fakeServer();
      await client.connect("/ws/rooms/r1", { token: "old" });
      client.setToken("new");
      const stillOpen = server.sockets[0].readyState;
      const welcomed = next("welcome");
      server.sockets[0].drop(1006);
      await welcomed;
      return { first: server.sockets[0].protocols, second: server.sockets[1].protocols, stillOpen };
    }""")
    assert result["stillOpen"] == 1
    assert result["first"] == ["synctv.v1", "bearer.old"]
    assert result["second"] == ["synctv.v1", "bearer.new"]


def test_backoff_grows_with_jitter_and_caps(fake_page: Any) -> None:
    """Reconnect delays double per failed attempt up to the cap, with the jitter share random,
    and a successful welcome resets them."""
    result = fake_page.evaluate("""async () => {
      const { backoffDelay } = await import("/js/realtime.js");
      const low = [0, 1, 2, 3, 4, 5, 10, 60].map((a) => backoffDelay(a, 250, 10000, 0.5, () => 0));
      const high = [0, 1, 2, 3, 4, 5, 10, 60].map((a) => backoffDelay(a, 250, 10000, 0.5, () => 1));
      // a server that refuses three times, then accepts
      const { client, server, events } = await fakeServer({ backoffInitialMs: 1, backoffMaxMs: 8 });
      let refusals = 3;
      const RealSocket = client._WebSocket;
      client._WebSocket = class extends RealSocket {
        constructor(url, protocols) {
          super(url, protocols);
          if (refusals > 0) { refusals -= 1; this.readyState = 3; setTimeout(() => this.onclose?.({ code: 1006, reason: "" }), 0); }
        }
      };
      await client.connect("/ws/rooms/r1");
      const attempts = events.filter((e) => e.type === "reconnecting").map((e) => e.detail.attempt);
      const attemptAfterWelcome = client._attempt;
      return { low, high, attempts, attemptAfterWelcome };
    }""")
    assert result["low"] == [125, 250, 500, 1000, 2000, 4000, 5000, 5000]
    assert result["high"] == [250, 500, 1000, 2000, 4000, 8000, 10000, 10000]
    assert result["attempts"] == [1, 2, 3]
    assert result["attemptAfterWelcome"] == 0


def test_final_close_codes_and_close_stop_reconnecting(fake_page: Any) -> None:
    """Close code 4001 (removed, token revoked) is final; close() is final too and rejects what is
    pending with code 'closed'."""
    result = fake_page.evaluate("""async () => {
      const a = await fakeServer();
      await a.client.connect("/ws/rooms/r1");
      const closed = a.next("close");
      a.server.sockets[0].drop(4001, "removed");
      const detail = await closed;
      await new Promise((r) => setTimeout(r, 60));
      const b = await fakeServer();
      await b.client.connect("/ws/rooms/r1");
      b.server.silent.add("chat");
      const pending = b.client.chat("never answered").catch((e) => e.code);
      b.client.close();
      let notConnected = null;
      try { await b.client.update("pause"); } catch (e) { notConnected = e.code; }
      await new Promise((r) => setTimeout(r, 60));
      return { detail, socketsA: a.server.sockets.length, pending: await pending, notConnected,
               socketsB: b.server.sockets.length, closedWith: b.server.sockets[0].closedWith };
    }""")
    assert result["detail"] == {"code": 4001, "reason": "removed", "reconnecting": False}
    assert result["socketsA"] == 1
    assert result["pending"] == "closed" and result["notConnected"] == "not_connected"
    assert result["socketsB"] == 1 and result["closedWith"] == 1000


def test_request_timeout_and_silent_server_watchdog(fake_page: Any) -> None:
    """A request with no reply rejects with code 'timeout'; a server that sends nothing for
    deadAfterMs is dropped and reconnected."""
    result = fake_page.evaluate("""async () => {
      const { client, server, next } = await fakeServer({ requestTimeoutMs: 30, deadAfterMs: 1000,
                                                         clock: { burstSpacingMs: 1, resyncIntervalMs: 60000 } });
      await client.connect("/ws/rooms/r1");
      await client.clock.whenSynced();
      server.silent.add("chat");
      let code = null;
      try { await client.chat("hello?"); } catch (e) { code = e.code; }
      for (const t of ["time", "observe", "telemetry"]) server.silent.add(t);
      const reconnecting = next("reconnecting");
      const detail = await reconnecting;
      return { code, reconnecting: detail.attempt, first: server.sockets[0].closedWith };
    }""")
    assert result["code"] == "timeout"
    assert result["reconnecting"] == 1 and result["first"] == 4100


def test_expected_position_formula(fake_page: Any) -> None:
    """expectedPosition follows DESIGN.md: position + (now - at_ms)/1000 * rate while playing and
    past at_ms; the position itself when paused or before a scheduled start."""
    result = fake_page.evaluate("""async () => {
      const { expectedPosition, roomSocketUrl } = await import("/js/realtime.js");
      const s = { media_id: "m", playing: true, ended: false, position: 10, rate: 1.5, at_ms: 1000, version: 1 };
      return [
        expectedPosition(s, 3000), expectedPosition({ ...s, playing: false }, 3000),
        expectedPosition({ ...s, position: 0 }, 500), roomSocketUrl("movie night", "https://x.example/a/b"),
      ];
    }""")
    assert result == [13.0, 10, 0, "wss://x.example/ws/rooms/movie%20night"]
