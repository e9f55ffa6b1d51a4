// The drift controller: keeps a <video> on the room's timeline (DESIGN.md, "One sync model").
//
// The playback state says where the media should be: `position` was true at server time `at_ms`,
// so while playing the expected position at server time `now` is
//   position + (now - at_ms) / 1000 * rate
// and a state with `at_ms` in the future is a scheduled start. The controller
//
// - starts precisely: pause at the start position (seeked and decoded), sleep with setTimeout
//   until ~50 ms before the start, follow animation frames until about a frame before it, and
//   spin for the last few milliseconds; play() is called early by the play latency measured on
//   the previous starts (remembered in localStorage), so the media clock starts on time;
// - joins late (a screen that loads or reconnects mid-show) the same way: it pauses at the
//   position the show will have reached a little later (the seek time measured so far plus a
//   margin) and resumes exactly when the show gets there;
// - corrects drift on every presented frame (requestVideoFrameCallback; a timer stands in where
//   it is missing or the page is throttled): proportional playback-rate correction clamped to
//   +-maxRateDelta, started past `deadbandMs` and run until the drift is under `settleMs`; past
//   `seekThresholdMs` it re-joins (pause, seek ahead, scheduled resume) instead.
//
// The error signal is the media clock (`currentTime`) against the expected position at the same
// instant, read on each presented frame. The frame figure (a frame's `mediaTime` against the
// expected position at its `expectedDisplayTime`) is measured too (`frameDriftMs`), but which
// frame a refresh shows is the browser's choice: Chromium keeps a cadence (a 30 fps frame on two
// 60 Hz refreshes) while the shown frame stays within about a frame of the clock, so the frame
// figure carries an offset of up to a refresh or two, fixed for a show, that the clock cannot move
// without breaking the cadence; steering by it makes the rate hunt (`signal: "frame"` does it,
// for comparison; docs/benchmarks.md, "Displays"). Drifts of a few ms are corrected gently
// (<= 0.15 %), which keeps the cadence: screens that started together keep showing each frame
// on the same refresh. The idle image is lifted `revealLeadMs` before a start, not on it: a
// layout change on the start frame costs the video a refresh of latency for the whole show.
//
// Plain ES module; its pure rules are in drift-rules.js (re-exported here), the phase lock's in
// phase.js. Time comes from the injected
// `serverNow()` (ClockSync) and `perfNow()` (performance.now), so tests drive it.

import { decide, fold, median, positionAt, serverTimeOf } from "./drift-rules.js";
import { boundaryPhase, GridSampler, meanPhase, mod, phaseShift, refreshSide } from "./phase.js";

export { decide, fold, median, positionAt, rateCorrection, serverTimeOf } from "./drift-rules.js";

/**
 * @typedef {import("./realtime.js").PlaybackState} PlaybackState
 */

/**
 * @typedef {object} DriftOptions
 * @property {number} deadbandMs a drift above this starts a rate correction (0.7)
 * @property {number} settleMs a running correction stops below this (0.2)
 * @property {number} gainPerS rate = base * (1 - gainPerS * drift_s), clamped (2)
 * @property {number} maxRateDelta the rate stays within base * (1 +- this) (0.08)
 * @property {number} gentleMs up to this drift the rate moves at most gentleRateDelta (4)
 * @property {number} gentleRateDelta (0.0015): Chromium keeps a 30 fps video's 2-refresh cadence
 *   on a 60 Hz display while the rate is within about 0.2 % of it
 * @property {number} rateStep a rate change smaller than this is not applied (0.0005)
 * @property {number} seekThresholdMs a drift above this re-joins by seeking (150)
 * @property {number} startLeadMs setTimeout sleeps until this long before a start (50)
 * @property {number} revealLeadMs the `reveal` event comes this long before a start (150)
 * @property {number} spinMs the last milliseconds before play() are waited in a busy loop (10): a
 *   timer can fire late by a few ms on a busy machine, a spin cannot
 * @property {number} joinLeadMs margin of a join or hard seek beyond the expected seek time (200)
 * @property {number} maxJoinLeadMs a join that keeps missing its instant stops growing here (8000)
 * @property {number} playLatencyMs play() to media-clock start, before any was measured (0)
 * @property {number} seekLatencyMs a paused seek's time, before any was measured (80)
 * @property {number} maxPlayLatencyMs measured play latencies above this are not believed (40): a
 *   longer one is a stall (data not ready), not the latency of play()
 * @property {boolean} learnLatency measure the play latency and call play() that much early (true)
 * @property {boolean} correction correct drift while playing (true); false: start only
 * @property {"precise" | "timeout"} startMode "precise" (timeout, frames, spin) or one setTimeout
 * @property {"clock" | "frame"} signal the error signal (see the header)
 * @property {number} frameWindow frames in the median of the "frame" signal (9)
 * @property {number} fallbackMs the timer that steps when no frame callback came for this long (250)
 * @property {boolean} phaseLock run the media clock a constant offset from the timeline that puts
 *   frame boundaries mid-way between refreshes (phase.js; false: measured without a gain in
 *   frame agreement, docs/benchmarks.md "Displays")
 * @property {number} phaseMaxMs that offset stays within +- this (3): within the clock drift
 *   budget (5 ms at p95) with room for the clock's own jitter
 * @property {boolean} rejoin after a start, check once on which refresh the page shows its frames
 *   (phase.js `refreshSide`) and re-join when it is a refresh off (false; measured in
 *   docs/benchmarks.md "Displays": better without `phaseLock`, whose shift can differ by 6 ms
 *   between pages at its wrap point)
 * @property {number} rejoinAfterFrames presented frames after a start before the check (15)
 * @property {number} rejoinMarginMs the clock-sync error the check tolerates (2)
 * @property {number} rejoinMax re-joins per timeline at most (2): each is a short hold on screen
 *   (`rejoin_max` in a page's query)
 * @property {string | null} storageKey localStorage key of the learned play latency
 */

/** @type {Readonly<DriftOptions>} */
export const DEFAULT_OPTIONS = Object.freeze({
  deadbandMs: 0.7,
  settleMs: 0.2,
  gainPerS: 2,
  maxRateDelta: 0.08,
  gentleMs: 4,
  gentleRateDelta: 0.0015,
  rateStep: 0.0005,
  seekThresholdMs: 150,
  startLeadMs: 50,
  revealLeadMs: 150,
  spinMs: 10,
  joinLeadMs: 200,
  maxJoinLeadMs: 8000,
  playLatencyMs: 0,
  seekLatencyMs: 80,
  maxPlayLatencyMs: 40,
  learnLatency: true,
  correction: true,
  startMode: "precise",
  signal: "clock",
  frameWindow: 9,
  fallbackMs: 250,
  phaseLock: false,
  phaseMaxMs: 3,
  rejoin: false,
  rejoinAfterFrames: 15,
  rejoinMarginMs: 2,
  rejoinMax: 2,
  storageKey: "synctv.display.playLatencyMs",
});

/** Threshold presets the benchmark compares (docs/benchmarks.md, "Displays"). */
export const PRESETS = Object.freeze({
  synctv: {},
  syncplayer: { deadbandMs: 15, seekThresholdMs: 100, phaseLock: false },
  jellyfin: { deadbandMs: 60, seekThresholdMs: 400, phaseLock: false },
  plain: { correction: false, learnLatency: false, playLatencyMs: 0, startMode: "timeout", phaseLock: false },
});

const FRAME_MS = 1000 / 60;

/** @param {number} ms */
function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

/** An animation frame, or a frame's time if animation frames are throttled. */
function nextFrame() {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 2 * FRAME_MS);
    requestAnimationFrame(() => {
      clearTimeout(timer);
      resolve(undefined);
    });
  });
}

/**
 * Resolves true when `type` fires on `target`, false after `timeoutMs`.
 * @param {EventTarget} target
 * @param {string} type
 * @param {number} timeoutMs
 * @returns {Promise<boolean>}
 */
function eventOrTimeout(target, type, timeoutMs) {
  return new Promise((resolve) => {
    const done = (/** @type {boolean} */ fired) => {
      clearTimeout(timer);
      target.removeEventListener(type, onEvent);
      resolve(fired);
    };
    const onEvent = () => done(true);
    const timer = setTimeout(() => done(false), timeoutMs);
    target.addEventListener(type, onEvent);
  });
}

function defaultStorage() {
  try {
    return globalThis.localStorage ?? null;
  } catch {
    return null; // storage disabled (opaque origin, policy)
  }
}

/**
 * Keeps one video element on the timeline of the playback state given with setState().
 *
 * Modes: `stopped` (no state), `paused`, `ended`, `preparing` (seeking to a start position),
 * `armed` (paused there, waiting for the instant), `playing`. `revealed` says whether the video
 * should be visible: set (event `reveal`) `revealLeadMs` before a start, or at once for a join;
 * cleared on a stop.
 *
 * Events (CustomEvent): `mode` {mode}; `reveal` {}; `start` {position, serverMs, playLatencyMs, join} at the
 * play() call; `started` {playLatencyMs, measuredMs, startErrorMs} when the media clock is seen
 * running (startErrorMs: against the planned phase shift); `sample` {driftMs, frameDriftMs, rate,
 * correcting} on each correction step; `seek`
 * {driftMs} before a re-join; `playError` {name, message}.
 */
export class DriftController extends EventTarget {
  /**
   * @param {HTMLVideoElement} video
   * @param {() => number} serverNow server time now (ms), e.g. ClockSync.serverNow
   * @param {Partial<DriftOptions> & {perfNow?: () => number, storage?: Storage | null}} [options]
   */
  constructor(video, serverNow, options = {}) {
    super();
    const { perfNow, storage, ...rest } = options;
    /** @type {DriftOptions} */
    this.options = { ...DEFAULT_OPTIONS, ...rest };
    this.video = video;
    this.serverNow = serverNow;
    this.perfNow = perfNow ?? (() => performance.now());
    this.storage = storage === undefined ? defaultStorage() : storage;
    /** @type {PlaybackState | null} */
    this.state = null;
    /** @type {string} */
    this.mode = "stopped";
    /** whether the video should be seen: from a little before a start until a stop */
    this.revealed = false;
    this.correcting = false;
    /** @type {number | null} the media clock minus the expected position, ms (last step) */
    this.driftMs = null;
    /** @type {number | null} the last frame's mediaTime minus the expected position at its display */
    this.frameDriftMs = null;
    this.playLatencyMs = this._loadLatency() ?? this.options.playLatencyMs;
    /** @type {number | null} */
    this.seekLatencyMs = null;
    this.counters = { starts: 0, joins: 0, seeks: 0, rateChanges: 0, steps: 0, rejoins: 0 };
    /** re-joins made for the current timeline (the re-join check; reset by a new timeline) */
    this._rejoins = 0;
    /** @type {{frames: number, decided: boolean}} presented frames since the last play() */
    this._sideCheck = { frames: 0, decided: true };
    /** @type {{side: string, frameDriftMs: number, rejoins: number} | null} the re-join check's
     *  last decision: the side (phase.js refreshSide), the figure it judged, re-joins made before */
    this.lastSide = null;
    /** @type {Array<{serverMs: number, side: string, frameDriftMs: number, frames: number}>} the
     *  check's last re-joins (at most 8): when, why, and how many frames after the start */
    this.rejoinLog = [];
    /** @type {{position: number, serverMs: number, callPerf: number, join: boolean, lateMs: number,
     *   callMs: number, playLatencyMs: number} | null} the last play() call; lateMs: how late it
     *   came (read just before it), callMs: how long the call took (its instant lies in between) */
    this.lastStart = null;
    this._gen = 0;
    this._lastStepPerf = -Infinity;
    /** @type {number[]} */
    this._frameDrifts = [];
    /** @type {ReturnType<typeof setInterval> | null} */
    this._fallback = null;
    /** @type {{position: number, callPerf: number, measured: boolean} | null} */
    this._starting = null;
    /** the media clock's planned offset from the timeline (ms, positive: ahead); see phase.js */
    this.phaseShiftMs = 0;
    /** @type {{gridMs: number, refreshMs: number, shiftMs: number, framesMs: number | null} | null}
     *  at the last start: where refreshes fell after the frame boundaries on the timeline (gridMs,
     *  from animation frames; framesMs, as presented, from frame callbacks) and the shift planned
     *  from it; null: no lock */
    this.phase = null;
    this._sampler = new GridSampler();
    /** @type {number[]} */
    this._framePhases = [];
  }

  /** The video's duration in seconds, Infinity while unknown. */
  get duration() {
    const d = this.video.duration;
    return Number.isFinite(d) && d > 0 ? d : Infinity;
  }

  /**
   * The expected position now (seconds), or null without a state.
   * @param {number} [serverMs]
   */
  expected(serverMs = this.serverNow()) {
    return this.state ? positionAt(this.state, serverMs, this.duration) : null;
  }

  /**
   * Follow a new playback state (or null: stop). A state on the same timeline as the one playing
   * (only a new version) keeps playing without a stutter.
   * @param {PlaybackState | null} state
   */
  setState(state) {
    const previous = this.state;
    this.state = state;
    const gen = ++this._gen;
    if (!state || !state.playing || state.ended) {
      this._stopLoop();
      this._hold(state);
      return;
    }
    const now = this.serverNow();
    const sameTimeline = previous && previous.playing && previous.media_id === state.media_id
      && Math.abs(serverTimeOf(previous, 0) - serverTimeOf(state, 0)) < 1 && previous.rate === state.rate;
    if (!sameTimeline) this._rejoins = 0; // a new show or a change: the re-join check's budget is new
    if (state.at_ms > now) {
      this._armAt(state.position, state.at_ms, gen, false, 0);
      return;
    }
    if (this.mode === "playing" && !this.video.paused && sameTimeline) {
      this._startLoop(gen);
      return;
    }
    const expected = positionAt(state, now, this.duration);
    const drift = (this.video.currentTime - expected) * 1000;
    if (this.mode === "playing" && !this.video.paused && Math.abs(drift) <= this.options.seekThresholdMs) {
      this.phaseShiftMs = 0; // planned for the old timeline; the new one is absorbed unshifted
      this._startLoop(gen); // a new timeline close to this one: the rate correction absorbs it
      return;
    }
    this._join(gen, this.options.joinLeadMs);
  }

  /** Stop following: pause, forget the state, cancel timers. */
  stop() {
    this.setState(null);
  }

  // -- holding still -----------------------------------------------------------------------------

  /** @param {PlaybackState | null} state */
  _hold(state) {
    const video = this.video;
    if (!video.paused) video.pause();
    this.correcting = false;
    this._starting = null;
    this.revealed = false;
    this._sampler.stop();
    this.phaseShiftMs = 0;
    if (state) this._setRate(state.rate > 0 ? state.rate : 1);
    if (state && state.media_id && !state.ended) {
      const target = Math.min(state.position, this.duration);
      if (Math.abs(video.currentTime - target) > 0.001 && video.readyState >= 1) video.currentTime = target;
    }
    this._setMode(!state ? "stopped" : state.ended ? "ended" : "paused");
  }

  // -- starting ------------------------------------------------------------------------------------

  /**
   * Join a running show: prepare at the position it will have reached `leadMs` (plus the
   * expected seek time) from now, and resume exactly then.
   * @param {number} gen
   * @param {number} leadMs
   */
  _join(gen, leadMs) {
    const state = /** @type {PlaybackState} */ (this.state);
    const serverMs = this.serverNow() + leadMs + (this.seekLatencyMs ?? this.options.seekLatencyMs);
    const position = positionAt(state, serverMs, this.duration);
    if (position >= this.duration - 0.05) {
      this._stopLoop();
      this._hold({ ...state, playing: false, position: this.duration });
      return;
    }
    this.counters.joins += 1;
    this._armAt(position, serverTimeOf(state, position), gen, true, leadMs);
  }

  /**
   * Pause at `position`, then play so the media clock starts at server time `serverMs`.
   * @param {number} position
   * @param {number} serverMs
   * @param {number} gen
   * @param {boolean} join
   * @param {number} leadMs the lead of a join (doubled when the instant is missed)
   */
  async _armAt(position, serverMs, gen, join, leadMs) {
    const video = this.video;
    const o = this.options;
    this._stopLoop();
    this._starting = null;
    this.correcting = false;
    this._setMode("preparing");
    if (!video.paused) video.pause();
    this.phaseShiftMs = 0;
    this.phase = null;
    if (o.phaseLock) this._sampler.start();
    /** @type {number | null} the mediaTime of the frame the paused video shows, once presented */
    let shownMedia = null;
    if (o.phaseLock && typeof video.requestVideoFrameCallback === "function") {
      video.requestVideoFrameCallback((_now, meta) => {
        if (gen === this._gen && this.mode !== "playing") shownMedia = meta.mediaTime;
      });
    }
    const state = /** @type {PlaybackState} */ (this.state);
    this._setRate(state.rate);
    if (video.readyState < 1) await eventOrTimeout(video, "loadedmetadata", 30000);
    if (gen !== this._gen) return;
    if (Math.abs(video.currentTime - position) > 0.0005 || video.seeking) {
      const begin = this.perfNow();
      video.currentTime = position;
      const seeked = await eventOrTimeout(video, "seeked", 30000);
      if (gen !== this._gen) return;
      if (seeked) this.seekLatencyMs = fold(this.seekLatencyMs, this.perfNow() - begin);
    }
    if (video.readyState < 3) {
      const waitMs = Math.max(1000, serverMs - this.serverNow());
      await eventOrTimeout(video, "canplay", waitMs);
      if (gen !== this._gen) return;
    }
    const unshifted = serverMs - (o.learnLatency ? this.playLatencyMs : o.playLatencyMs);
    const lead = o.phaseLock ? o.phaseMaxMs : 0; // the phase shift may call play() this much earlier
    if (this.serverNow() > unshifted - lead - 1) {
      // too late for this instant (slow load or seek): aim further ahead
      this._join(gen, Math.min(o.maxJoinLeadMs, Math.max(o.joinLeadMs, leadMs * 2)));
      return;
    }
    this._setMode("armed");
    // show the paused frame a little before the start (see the header: not on the start frame)
    if (!join && unshifted - this.serverNow() > o.revealLeadMs) await sleep(unshifted - this.serverNow() - o.revealLeadMs);
    if (gen !== this._gen) return;
    this._reveal();
    if (o.phaseLock) {
      // the grid from a few animation frames (sampled since preparing began), if there is time
      while (this._sampler.stamps.length < 4 && unshifted - this.serverNow() > lead + 3 * FRAME_MS) {
        await nextFrame();
        if (gen !== this._gen) return;
      }
      this.phaseShiftMs = this._phaseShift(state, shownMedia ?? position);
      this._sampler.stop();
    }
    const callAt = unshifted - this.phaseShiftMs;
    if (o.startMode === "timeout") {
      await sleep(callAt - this.serverNow());
    } else {
      await this._waitUntil(callAt, gen);
    }
    if (gen !== this._gen) return;
    this._play(position, serverMs, gen, join, callAt);
  }

  /**
   * The phase shift (phase.js) for `state`, whose frame boundaries fall where its timeline reaches
   * `mediaTime` (plus whole frames), on the grid sampled so far; 0 without a grid.
   * @param {PlaybackState} state
   * @param {number} mediaTime
   */
  _phaseShift(state, mediaTime) {
    const grid = this._sampler.grid();
    this._framePhases = [];
    if (!grid) {
      this.phase = null;
      return 0;
    }
    const boundaryPerf = serverTimeOf(state, mediaTime) - (this.serverNow() - this.perfNow());
    const gridMs = boundaryPhase(grid, boundaryPerf);
    const shiftMs = phaseShift(gridMs, grid.refreshMs, this.options.phaseMaxMs);
    this.phase = { gridMs, refreshMs: grid.refreshMs, shiftMs, framesMs: null };
    return shiftMs;
  }

  /**
   * Resolves at server time `target`: setTimeout, then animation frames, then a short spin.
   * @param {number} target
   * @param {number} gen
   */
  async _waitUntil(target, gen) {
    const o = this.options;
    const remaining = () => target - this.serverNow();
    // a long sleep is re-checked: the clock estimate may move while we sleep
    while (remaining() > o.startLeadMs && gen === this._gen) {
      await sleep(Math.min(remaining() - o.startLeadMs, 1000));
    }
    while (remaining() > 1.5 * FRAME_MS && gen === this._gen) await nextFrame();
    if (gen !== this._gen) return;
    if (remaining() > o.spinMs) await sleep(remaining() - o.spinMs);
    while (remaining() > 0 && gen === this._gen) {
      // spin: at most spinMs (or one timer's lateness) once per start
    }
  }

  /**
   * @param {number} position
   * @param {number} serverMs
   * @param {number} gen
   * @param {boolean} join
   * @param {number} callAt the server time play() was meant for
   */
  _play(position, serverMs, gen, join, callAt) {
    const video = this.video;
    const callPerf = this.perfNow();
    const lateMs = this.serverNow() - callAt;
    const played = video.play(); // first: the bookkeeping and the mode's listeners come after
    // how long the call took: the media clock was started somewhere in it (a pause of this thread
    // -- the OS, a garbage collection -- between the clock read and the call lands here)
    const callMs = this.serverNow() - callAt - lateMs;
    this.lastStart = { position, serverMs, callPerf, join, lateMs, callMs, playLatencyMs: this.playLatencyMs };
    this._starting = { position, callPerf, measured: false };
    this._sideCheck = { frames: 0, decided: !this.options.rejoin };
    this._frameDrifts = [];
    this.counters.starts += 1;
    this._setMode("playing");
    this._emit("start", { position, serverMs, playLatencyMs: this.playLatencyMs, join });
    if (played && typeof played.catch === "function") {
      played.catch((/** @type {Error} */ error) => {
        if (gen !== this._gen) return;
        this._emit("playError", { name: error.name, message: error.message });
        if (error.name === "NotAllowedError" && !video.muted) {
          video.muted = true; // autoplay with sound refused: play muted rather than not at all
          const again = ++this._gen;
          this._join(again, this.options.joinLeadMs);
        }
      });
    }
    this._startLoop(gen);
  }

  _reveal() {
    if (this.revealed) return;
    this.revealed = true;
    this._emit("reveal", {});
  }

  // -- correcting ----------------------------------------------------------------------------------

  /** @param {number} gen */
  _startLoop(gen) {
    const video = this.video;
    if (typeof video.requestVideoFrameCallback === "function") {
      const onFrame = (/** @type {number} */ now, /** @type {VideoFrameCallbackMetadata} */ meta) => {
        if (gen !== this._gen || this.mode !== "playing") return;
        this._step(meta);
        video.requestVideoFrameCallback(onFrame);
      };
      video.requestVideoFrameCallback(onFrame);
    }
    if (this._fallback !== null) clearInterval(this._fallback);
    this._fallback = setInterval(() => {
      if (gen !== this._gen || this.mode !== "playing") return;
      if (this.perfNow() - this._lastStepPerf >= this.options.fallbackMs) this._step(null);
    }, this.options.fallbackMs);
  }

  _stopLoop() {
    if (this._fallback !== null) clearInterval(this._fallback);
    this._fallback = null;
  }

  /**
   * One correction step (a presented frame, or the fallback timer).
   * @param {VideoFrameCallbackMetadata | null} meta
   */
  _step(meta) {
    const video = this.video;
    const state = this.state;
    const o = this.options;
    if (!state || video.paused || video.seeking || video.ended) return;
    const perf = this.perfNow();
    const serverMs = this.serverNow();
    const current = video.currentTime;
    this._lastStepPerf = perf;
    this.counters.steps += 1;
    const duration = this.duration;
    const expected = positionAt(state, serverMs, duration);
    const drift = (current - expected) * 1000;
    this.driftMs = drift;
    if (meta) {
      const displayServerMs = serverMs + (meta.expectedDisplayTime - perf);
      this.frameDriftMs = (meta.mediaTime - positionAt(state, displayServerMs, duration)) * 1000;
      this._frameDrifts.push(this.frameDriftMs);
      if (this._frameDrifts.length > o.frameWindow) this._frameDrifts.shift();
      if (this.phase) {
        const boundaryPerf = serverTimeOf(state, meta.mediaTime) - (serverMs - perf);
        this._framePhases.push(mod(meta.expectedDisplayTime - boundaryPerf, this.phase.refreshMs));
        if (this._framePhases.length > 60) this._framePhases.shift();
        this.phase.framesMs = meanPhase(this._framePhases, this.phase.refreshMs);
      }
    }
    this._measureStart(current, perf, drift);
    if (meta && this._checkSide(drift)) return;
    const nearEnd = expected >= duration - 0.1;
    const starting = this._starting;
    const clockStarting = starting !== null && !starting.measured && perf - starting.callPerf < 300;
    if (o.correction && !nearEnd && !clockStarting) {
      // steered to the planned offset: the phase shift is part of the target, not an error
      const signal = (o.signal === "frame" && this._frameDrifts.length ? median(this._frameDrifts) : drift)
        - this.phaseShiftMs;
      const decision = decide(signal, state.rate, this.correcting, o);
      if (decision.action === "seek") {
        this.counters.seeks += 1;
        this._emit("seek", { driftMs: signal });
        const gen = ++this._gen;
        this._join(gen, o.joinLeadMs);
        return;
      }
      this.correcting = decision.correcting;
      this._setRate(decision.rate);
    }
    this._emit("sample", {
      driftMs: drift, frameDriftMs: this.frameDriftMs, rate: video.playbackRate, correcting: this.correcting,
    });
  }

  /**
   * The re-join check (option `rejoin`): once per start, when `rejoinAfterFrames` frames were
   * presented and the clock is settled, a page showing its frames a refresh off the rule of
   * phase.js `refreshSide` re-joins (at most `rejoinMax` times per timeline). True when it did.
   * @param {number} drift the clock drift of this step (ms)
   */
  _checkSide(drift) {
    const o = this.options;
    const check = this._sideCheck;
    if (check.decided) return false;
    check.frames += 1;
    const settled = Math.abs(drift - this.phaseShiftMs) <= o.rejoinMarginMs;
    if (check.frames < o.rejoinAfterFrames || !settled || this._frameDrifts.length < o.frameWindow) return false;
    check.decided = true;
    const refreshMs = this.phase?.refreshMs ?? FRAME_MS;
    const frameMs = median(this._frameDrifts) - this.phaseShiftMs;
    const side = refreshSide(frameMs, refreshMs, o.rejoinMarginMs);
    this.lastSide = { side, frameDriftMs: frameMs, rejoins: this._rejoins };
    if (side === "ok" || this._rejoins >= o.rejoinMax) return false;
    this._rejoins += 1;
    this.counters.rejoins += 1;
    this.rejoinLog.push({ serverMs: Math.round(this.serverNow()), side, frameDriftMs: frameMs, frames: check.frames });
    if (this.rejoinLog.length > 8) this.rejoinLog.shift();
    this._emit("rejoin", { side, frameDriftMs: frameMs });
    this._join(++this._gen, o.joinLeadMs);
    return true;
  }

  /**
   * The first step after a play(): when did the media clock start? `current` advanced from the
   * start position at the rate; the time from play() to then is the play latency.
   * @param {number} current
   * @param {number} perf
   * @param {number} drift
   */
  _measureStart(current, perf, drift) {
    const starting = this._starting;
    if (!starting || starting.measured || current <= starting.position + 0.001) return;
    starting.measured = true;
    const clockStart = perf - ((current - starting.position) / this.video.playbackRate) * 1000;
    const measured = clockStart - starting.callPerf;
    if (this.options.learnLatency && measured >= 0 && measured <= this.options.maxPlayLatencyMs) {
      this.playLatencyMs = fold(this.playLatencyMs, measured, 0.3);
      this._saveLatency(this.playLatencyMs);
    }
    this._emit("started", { playLatencyMs: this.playLatencyMs, measuredMs: measured, startErrorMs: drift - this.phaseShiftMs });
  }

  /** @param {number} rate */
  _setRate(rate) {
    const video = this.video;
    const base = this.state?.rate ?? 1;
    if (rate === video.playbackRate) return;
    if (rate !== base && Math.abs(rate - video.playbackRate) < this.options.rateStep) return;
    video.playbackRate = rate;
    this.counters.rateChanges += 1;
  }

  // -- bookkeeping ---------------------------------------------------------------------------------

  /** @param {string} mode */
  _setMode(mode) {
    if (mode === this.mode) return;
    this.mode = mode;
    this._emit("mode", { mode });
  }

  /** @returns {number | null} */
  _loadLatency() {
    const key = this.options.storageKey;
    if (!key || !this.storage || !this.options.learnLatency) return null;
    try {
      const value = Number.parseFloat(this.storage.getItem(key) ?? "");
      return Number.isFinite(value) && value >= 0 && value <= this.options.maxPlayLatencyMs ? value : null;
    } catch {
      return null;
    }
  }

  /** @param {number} value */
  _saveLatency(value) {
    const key = this.options.storageKey;
    if (!key || !this.storage) return;
    try {
      this.storage.setItem(key, value.toFixed(3));
    } catch {
      // quota or policy: the estimate still lives in memory
    }
  }

  /**
   * @param {string} type
   * @param {object} detail
   */
  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
