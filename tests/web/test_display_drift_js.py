"""web/js/drift.js, web/js/warm.js and the helpers of web/js/display.js in Chromium, without a server.

The pure rules (rate correction, seek decision, positions) are called directly. The controller
runs against ``FakeVideo``, a page-side stand-in for <video> whose media clock is
``performance.now()`` based and exact, so the tests can read where the controller put it;
timings are only checked against generous bounds (or for order: a start is never early).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.web.conftest import OFFLINE

FAKE_VIDEO = """() => {
window.makeFake = async (options = {}) => {
  const drift = await import("/js/drift.js");
  class FakeVideo extends EventTarget {
    constructor() {
      super();
      this.paused = true; this.seeking = false; this.ended = false; this.muted = false;
      this.readyState = 4; this.duration = options.duration ?? 60;
      this._pos = 0; this._t0 = 0; this._rate = 1; this.calls = []; this.frameCallbacks = [];
      this.seekMs = options.seekMs ?? 20; this.playLatencyMs = options.playLatencyMs ?? 0;
    }
    get currentTime() {
      if (this.paused || this.seeking) return this._pos;
      const elapsed = Math.max(0, performance.now() - this._t0);
      return this._pos + elapsed / 1000 * this._rate;
    }
    set currentTime(value) {
      this._pos = value; this.seeking = true;
      this.calls.push(["seek", value, performance.now()]);
      setTimeout(() => { this.seeking = false; this.dispatchEvent(new Event("seeked")); }, this.seekMs);
    }
    get playbackRate() { return this._rate; }
    set playbackRate(rate) {
      if (!this.paused && performance.now() > this._t0) { this._pos = this.currentTime; this._t0 = performance.now(); }
      this._rate = rate; this.calls.push(["rate", rate, performance.now()]);
    }
    play() {
      this.calls.push(["play", this._pos, performance.now()]);
      this._t0 = performance.now() + this.playLatencyMs; this.paused = false;
      return Promise.resolve();
    }
    pause() {
      if (!this.paused) this._pos = this.currentTime;
      this.paused = true; this.calls.push(["pause", this._pos, performance.now()]);
    }
    requestVideoFrameCallback(cb) { this.frameCallbacks.push(cb); return this.frameCallbacks.length; }
  }
  const video = new FakeVideo();
  const offset = options.offsetMs ?? 12345;  // the "server" clock is ahead of the page by this
  const serverNow = () => performance.timeOrigin + performance.now() + offset;
  const controller = new drift.DriftController(video, serverNow, { storage: null, ...options.controller });
  const events = [];
  for (const type of ["mode", "reveal", "start", "started", "seek", "sample"]) {
    controller.addEventListener(type, (e) => events.push({ type, at: serverNow(), detail: e.detail }));
  }
  const next = (type) => new Promise((r) => controller.addEventListener(type, (e) => r(e.detail), { once: true }));
  const state = (fields) => ({ media_id: "m", playing: true, ended: false, position: 0, rate: 1,
                               at_ms: serverNow(), version: 1, ...fields });
  // the media position the state expects now, and the fake's: their difference in ms
  const error = (s) => (video.currentTime - drift.positionAt(s, serverNow(), video.duration)) * 1000;
  // at the play() call (the start event is sent right after it): the fake's error, and how late
  // the call came by the page's own clock (lastStart.lateMs, read just before the call) and how
  // long the call took (lastStart.callMs: the fake's clock started somewhere in it)
  const atStart = () => new Promise((resolve) => controller.addEventListener("start", (e) => {
    resolve({ detail: e.detail, err: error(controller.state), lateMs: controller.lastStart.lateMs,
              callMs: controller.lastStart.callMs, shiftMs: controller.phaseShiftMs });
  }, { once: true }));
  // resolves with the elapsed ms once |error| < ms, or null after timeoutMs
  const converges = (s, ms, timeoutMs) => new Promise((resolve) => {
    const begin = performance.now();
    const check = () => {
      if (Math.abs(error(s)) < ms) return resolve(performance.now() - begin);
      if (performance.now() - begin > timeoutMs) return resolve(null);
      setTimeout(check, 10);
    };
    check();
  });
  return { drift, video, controller, serverNow, events, next, state, error, atStart, converges };
};
}
"""


@pytest.fixture
def page(open_page: Any) -> Any:
    page = open_page(OFFLINE, skew_ms=2500)
    page.evaluate(FAKE_VIDEO)
    return page


def test_rate_correction_deadband_hysteresis_and_limits(page: Any) -> None:
    """No correction inside the deadband; once started it runs until under settleMs; the rate is
    proportional to the drift (ahead -> slower), at most gentleRateDelta up to gentleMs of drift
    and at most maxRateDelta beyond."""
    r = page.evaluate("""async () => {
      const { rateCorrection, DEFAULT_OPTIONS: o } = await import("/js/drift.js");
      const f = (d, c) => rateCorrection(d, 1, c, o);
      const between = (o.settleMs + o.deadbandMs) / 2;
      return { o, inBand: f(o.deadbandMs * 0.9, false), starts: f(o.deadbandMs * 1.5, false),
               goesOn: f(between, true), stops: f(o.settleMs * 0.9, true),
               gentleAhead: f(o.gentleMs * 0.9, false), gentleBehind: f(-o.gentleMs * 0.9, false), strong: f(30, false),
               clamped: f(-1000, false), base: rateCorrection(30, 2, false, o) };
    }""")
    o = r["o"]
    assert r["inBand"] == {"rate": 1, "correcting": False}
    assert r["starts"]["correcting"] and r["starts"]["rate"] < 1
    assert r["goesOn"]["correcting"] and r["goesOn"]["rate"] < 1
    assert r["stops"] == {"rate": 1, "correcting": False}
    gentle = min(o["gentleRateDelta"], o["gainPerS"] * o["gentleMs"] * 0.9 / 1000)
    assert r["gentleAhead"]["rate"] == pytest.approx(1 - gentle)
    assert r["gentleBehind"]["rate"] == pytest.approx(1 + gentle)
    assert r["strong"]["rate"] == pytest.approx(1 - o["gainPerS"] * 0.030)
    assert r["clamped"]["rate"] == pytest.approx(1 + o["maxRateDelta"])
    assert r["base"]["rate"] == pytest.approx(2 * (1 - o["gainPerS"] * 0.030))


def test_decide_positions_and_presets(page: Any) -> None:
    """Past seekThresholdMs the decision is a seek; positionAt follows the DESIGN.md formula and
    stays within [0, duration]; serverTimeOf inverts it; the presets carry the anchors' thresholds."""
    r = page.evaluate("""async () => {
      const d = await import("/js/drift.js");
      const o = d.DEFAULT_OPTIONS;
      const s = { media_id: "m", playing: true, ended: false, position: 10, rate: 2, at_ms: 1000, version: 1 };
      return {
        seek: d.decide(o.seekThresholdMs + 1, 1, false, o).action,
        rate: d.decide(o.seekThresholdMs - 1, 1, false, o).action,
        before: d.positionAt(s, 500, 60), later: d.positionAt(s, 3000, 60), capped: d.positionAt(s, 1e9, 60),
        paused: d.positionAt({ ...s, playing: false }, 3000, 60), back: d.serverTimeOf(s, 14),
        presets: d.PRESETS, fold: [d.fold(null, 5), d.fold(4, 8, 0.25)], median: d.median([5, 1, 3, 9]),
      };
    }""")
    assert r["seek"] == "seek" and r["rate"] == "rate"
    assert r["before"] == 10 and r["later"] == 14 and r["capped"] == 60 and r["paused"] == 10
    assert r["back"] == 3000
    assert r["presets"]["syncplayer"] == {"deadbandMs": 15, "seekThresholdMs": 100, "phaseLock": False}
    assert r["presets"]["jellyfin"] == {"deadbandMs": 60, "seekThresholdMs": 400, "phaseLock": False}
    assert r["presets"]["plain"]["correction"] is False
    assert r["fold"] == [5, 5] and r["median"] == 4


def test_scheduled_start_preloads_reveals_and_is_never_early(page: Any) -> None:
    """A state with at_ms ahead: pause at the position, reveal, then play() -- not before at_ms
    (less the play latency, 0 here; the phase lock off: test_phase_js.py has it) -- after which the
    media clock follows the timeline: at the call its error is exactly how late the call came (a
    timer on a busy machine), as the page itself measured, and the correction then removes it."""
    r = page.evaluate("""async () => {
      const { video, controller, serverNow, events, state, atStart, converges } = await makeFake({
        controller: { phaseLock: false } });
      video._pos = 7;  // left somewhere by an earlier show
      const s = state({ at_ms: serverNow() + 400 });
      const starting = atStart();
      controller.setState(s);
      const modeAfterSet = controller.mode;
      const { detail: start, err, lateMs, callMs } = await starting;
      const playCall = video.calls.find((c) => c[0] === "play")[2];
      const playedAt = performance.timeOrigin + playCall + 12345;  // as server time
      const convergedMs = await converges(s, 2, 10000);
      return { modeAfterSet, start, early: s.at_ms - playedAt, err, lateMs, callMs, convergedMs, mode: controller.mode,
               order: events.filter((e) => ["reveal", "start"].includes(e.type)).map((e) => e.type),
               revealLead: events.find((e) => e.type === "start").at - events.find((e) => e.type === "reveal").at,
               calls: video.calls.map((c) => c[0]), seekTo: video.calls.find((c) => c[0] === "seek")[1],
               revealed: controller.revealed };
    }""")
    assert r["modeAfterSet"] == "preparing"
    assert r["seekTo"] == 0  # back to the start position, paused
    assert r["calls"].index("seek") < r["calls"].index("play")
    assert r["order"] == ["reveal", "start"] and r["revealLead"] > 0
    assert r["early"] <= 0.5, "play() came before its instant"
    assert r["start"]["position"] == 0 and r["start"]["join"] is False
    assert r["mode"] == "playing" and r["revealed"] is True
    assert r["lateMs"] >= -0.5  # the page's own view agrees: not early
    # late by what the page knows, no more: the call's own instant lies within callMs of lateMs
    # (a pause of the page's thread there, by the OS or a garbage collection, moves it; seen once: 7.3 ms)
    assert r["callMs"] >= 0
    assert -(r["lateMs"] + r["callMs"]) - 1.0 <= r["err"] <= -r["lateMs"] + 1.0
    assert r["convergedMs"] is not None, "the correction did not bring the clock within 2 ms in 10 s"


def test_late_join_seeks_ahead_and_resumes_on_the_timeline(page: Any) -> None:
    """A show that started 5 s ago: the controller pauses at a position the show reaches a little
    later (lead plus seek time), and plays when the show gets there -- with the phase lock on, the
    planned shift (at most phaseMaxMs) before it, never earlier."""
    r = page.evaluate("""async () => {
      const { controller, serverNow, state, atStart, converges } = await makeFake({ seekMs: 30, controller: { phaseLock: true } });
      const s = state({ at_ms: serverNow() - 5000 });
      const starting = atStart();
      controller.setState(s);
      const { detail: start, err, lateMs, callMs, shiftMs } = await starting;
      const convergedMs = await converges(s, Math.abs(shiftMs) + 2, 10000);
      return { start, err, lateMs, callMs, shiftMs, convergedMs, joins: controller.counters.joins,
               seekLatency: controller.seekLatencyMs, maxShift: controller.options.phaseMaxMs };
    }""")
    assert r["joins"] == 1 and r["start"]["join"] is True
    assert r["start"]["position"] > 5.1  # ahead of where the show was when it joined
    assert r["seekLatency"] >= 25  # measured from the fake's 30 ms seeks
    assert abs(r["shiftMs"]) <= r["maxShift"]
    assert r["lateMs"] >= -0.5  # never before the planned instant (the shift's lead included)
    assert r["shiftMs"] - (r["lateMs"] + r["callMs"]) - 1.0 <= r["err"] <= r["shiftMs"] - r["lateMs"] + 1.0
    assert r["convergedMs"] is not None


def test_drift_correction_rate_then_hard_seek(page: Any) -> None:
    """While playing: a small drift changes the rate the right way (gently), a large one the same
    way harder, and one past seekThresholdMs re-joins by seeking."""
    r = page.evaluate("""async () => {
      const { video, controller, serverNow, next, state } = await makeFake();
      const s = state({ at_ms: serverNow() + 250 });
      controller.setState(s);
      await next("start");
      await new Promise((r) => setTimeout(r, 100));
      const onTime = () => {  // the fake exactly where the controller means it: the timeline plus the phase shift
        video._pos = controller.expected() + controller.phaseShiftMs / 1000; video._t0 = performance.now();
      };
      const shift = (ms) => { onTime(); video._pos += ms / 1000; controller._step(null); return video.playbackRate; };
      const ahead3 = shift(3);  // within gentleMs
      const behind30 = shift(-30);
      const settled = shift(0);
      const seeks0 = controller.counters.seeks;
      shift(500);
      const joining = controller.mode;
      const start = await next("start");
      return { ahead3, behind30, settled, seeks0, seeks: controller.counters.seeks, joining, start,
               options: controller.options };
    }""")
    o = r["options"]
    assert 1 - o["gentleRateDelta"] - 1e-9 <= r["ahead3"] < 1
    assert r["behind30"] > 1 + o["gentleRateDelta"]
    assert r["settled"] == 1
    assert r["seeks0"] == 0 and r["seeks"] == 1
    assert r["joining"] == "preparing" and r["start"]["join"] is True


def test_pause_and_end_hold_the_picture(page: Any) -> None:
    """A paused state holds the video at its position (no play); an ended state and null stop it."""
    r = page.evaluate("""async () => {
      const { video, controller, state } = await makeFake();
      controller.setState(state({ playing: false, position: 12.5 }));
      const paused = { mode: controller.mode, pos: video.currentTime, isPaused: video.paused };
      controller.setState(state({ playing: false, ended: true, position: 60 }));
      const ended = controller.mode;
      controller.setState(null);
      return { paused, ended, stopped: controller.mode, plays: video.calls.filter((c) => c[0] === "play").length };
    }""")
    assert r["paused"] == {"mode": "paused", "pos": 12.5, "isPaused": True}
    assert r["ended"] == "ended" and r["stopped"] == "stopped" and r["plays"] == 0


def test_learned_play_latency_is_used_and_kept(page: Any) -> None:
    """The play latency measured on a start (media clock start minus the play() call) is folded
    into the estimate and stored; a controller created later reads it back and calls play() that
    much before the instant."""
    r = page.evaluate("""async () => {
      const store = new Map();
      const storage = { getItem: (k) => store.get(k) ?? null, setItem: (k, v) => store.set(k, String(v)) };
      const { video, controller, serverNow, next, state } = await makeFake({ playLatencyMs: 12,
        controller: { storage } });
      controller.setState(state({ at_ms: serverNow() + 200 }));
      const started = await new Promise((resolve) => {
        controller.addEventListener("started", (e) => resolve(e.detail), { once: true });
        const tick = () => { if (controller.mode === "playing") controller._step(null); setTimeout(tick, 5); };
        tick();
      });
      const { DriftController } = await import("/js/drift.js");
      const again = new DriftController(video, serverNow, { storage });
      return { started, stored: store.get("synctv.display.playLatencyMs"), reloaded: again.playLatencyMs };
    }""")
    assert 8 <= r["started"]["measuredMs"] <= 40
    assert r["started"]["playLatencyMs"] == pytest.approx(0.3 * r["started"]["measuredMs"], abs=0.01)
    assert float(r["stored"]) == pytest.approx(r["reloaded"], abs=0.001)


def test_query_options_and_playable_url(page: Any) -> None:
    """The display page's query parameters become controller options (a preset, then explicit
    values); pickUrl takes the first direct or proxy entry in a format the browser plays."""
    r = page.evaluate("""async () => {
      const d = await import("/js/display.js");
      const q = (s) => d.optionsFromQuery(new URLSearchParams(s));
      const infos = { infos: [{ mode: "hls", url: "/a.m3u8", format: "hls" },
                              { mode: "direct", url: "/b.mkv", format: "mkv" },
                              { mode: "proxy", url: "/c.mp4", format: "mp4" }] };
      return {
        none: q(""), jelly: q("preset=jellyfin"), custom: q("deadband_ms=3&seek_ms=250&signal=frame&correction=0"),
        bad: q("deadband_ms=-1&seek_ms=abc&preset=nope"),
        url: d.pickUrl(infos, (f) => f === "mp4"), nothing: d.pickUrl(null, () => true),
      };
    }""")
    assert r["none"] == {}
    assert r["jelly"]["deadbandMs"] == 60 and r["jelly"]["seekThresholdMs"] == 400
    assert r["jelly"]["storageKey"].endswith(".jellyfin")
    assert r["custom"]["deadbandMs"] == 3 and r["custom"]["seekThresholdMs"] == 250
    assert r["custom"]["signal"] == "frame" and r["custom"]["correction"] is False
    assert "deadbandMs" not in r["bad"] and "seekThresholdMs" not in r["bad"]
    assert r["url"] == "/c.mp4" and r["nothing"] is None


def test_cache_warmer_ranges_pause_and_resume(page: Any) -> None:
    """The warmer lists the videos with the token, fetches the first MiB of each with a Range
    request one at a time; pause() aborts the request in flight, resume() fetches it again and
    goes on to the end."""
    r = page.evaluate("""async () => {
      const { CacheWarmer, WARM_BYTES } = await import("/js/warm.js");
      const seen = [];
      let release = null;
      const fakeFetch = (url, init = {}) => {
        seen.push({ url, range: init.headers?.Range ?? null, auth: init.headers?.Authorization ?? null });
        if (url === "/api/videos") {
          return Promise.resolve(new Response(JSON.stringify({ videos: [
            { id: "v1", url: "/api/videos/v1/file" }, { id: "v2", url: "/api/videos/v2/file" }] }), { status: 200 }));
        }
        if (url.includes("v1") && !release) {  // the first fetch of v1 hangs until aborted
          return new Promise((resolve, reject) => {
            release = resolve;
            init.signal.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError")));
          });
        }
        return Promise.resolve(new Response(new Uint8Array(16), { status: 206 }));
      };
      const warmer = new CacheWarmer({ listUrl: "/api/videos", token: () => "dtok", fetch: fakeFetch });
      warmer.resume();
      while (!release) await new Promise((r) => setTimeout(r, 5));
      warmer.pause();
      await new Promise((r) => setTimeout(r, 20));
      const paused = warmer.status;
      warmer.resume();
      while (warmer.state !== "done") await new Promise((r) => setTimeout(r, 5));
      return { seen, paused, done: warmer.status, bytes: WARM_BYTES };
    }""")
    assert r["bytes"] == 1 << 20
    assert r["seen"][0] == {"url": "/api/videos", "range": None, "auth": "Bearer dtok"}
    ranges = [s for s in r["seen"] if s["range"]]
    assert [s["url"] for s in ranges] == ["/api/videos/v1/file", "/api/videos/v1/file", "/api/videos/v2/file"]
    assert all(s["range"] == "bytes=0-1048575" for s in ranges)
    assert r["paused"]["state"] == "paused" and r["paused"]["aborted"] == 1 and r["paused"]["warmed"] == []
    assert r["done"]["warmed"] == ["v1", "v2"] and r["done"]["pending"] == []
