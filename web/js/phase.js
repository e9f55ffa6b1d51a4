// Phase lock with the refresh grid (docs/displays.md, "Frame phase"): pure rules, and one
// animation-frame sampler.
//
// A screen refreshes on a grid (every R ms, 16.67 at 60 Hz); a video's frames change at their
// boundaries on the room's timeline (every F ms, 33.3 at 30 fps). Which refresh first shows a
// frame is the browser's choice, made from the media clock. When a frame boundary falls close to
// a refresh, a millisecond of clock difference (or of jitter at the start) moves the frame to the
// neighbouring refresh -- on one screen and not on another: the screens then show every frame a
// refresh apart for the whole show. When the boundaries fall mid-way between refreshes, a
// frame's refresh should be the same for every clock within R/2 of the timeline -- the
// hypothesis; measured, it was not enough: pages still started on different refreshes
// whatever the phase (docs/benchmarks.md, "Frame agreement in every run").
//
// So the controller can run (option `phaseLock`, off by default: on a loaded machine it did not
// raise frame agreement, docs/benchmarks.md "Displays") the media clock a small constant offset
// (the phase shift) ahead of or
// behind the timeline, chosen once per start from where the grid falls against the frame
// boundaries: shift = R/2 - phase, wrapped into [-R/2, R/2) and clamped to +-maxMs (the clock
// drift budget). Every screen sharing a grid (one machine, or screens genlocked) computes the
// same shift from the same timeline, so the screens stay on the timeline together. It is a
// constant, not a control loop on mediaTime: the frame figure is quantized by the refresh, and
// steering by it hunts (docs/benchmarks.md, "Displays").
//
// The grid is read before a start from requestAnimationFrame timestamps (the vsync grid, on
// which requestVideoFrameCallback's expectedDisplayTime also falls); a frame boundary is where
// the timeline reaches a frame's mediaTime (the frame the paused video shows, or the start
// position). The boundaries of a video whose frame duration is a whole number of refreshes
// (30 fps at 60 Hz, 25 at 50, 60 at 60) all share one phase; with others (24 fps at 60 Hz) the
// shift places the start frame's boundary only.
//
// Plain ES module, no dependencies; times are performance.now() milliseconds.

export const DEFAULT_REFRESH_MS = 1000 / 60;

/**
 * @typedef {object} Grid
 * @property {number} refreshMs the refresh interval (ms)
 * @property {number} anchorMs a refresh instant (performance.now() ms)
 */

/**
 * `value` modulo `period`, in [0, period).
 * @param {number} value
 * @param {number} period
 */
export function mod(value, period) {
  const r = value % period;
  return r < 0 ? r + period : r;
}

/**
 * `value` wrapped into [-period / 2, period / 2).
 * @param {number} value
 * @param {number} period
 */
export function wrap(value, period) {
  return mod(value + period / 2, period) - period / 2;
}

/**
 * The refresh grid from animation-frame timestamps (ms, increasing; frames may be missing): the
 * interval from the shortest ones, refined by a least-squares fit of the times against their
 * refresh counts, and the fitted instant of the first. Null with fewer than two stamps or
 * intervals outside 4..50 ms (a throttled page).
 * @param {number[]} stamps
 * @returns {Grid | null}
 */
export function fitGrid(stamps) {
  const diffs = [];
  for (let i = 1; i < stamps.length; i++) diffs.push(stamps[i] - stamps[i - 1]);
  const plausible = diffs.filter((d) => d >= 4 && d <= 50);
  if (plausible.length === 0) return null;
  const shortest = Math.min(...plausible);
  const single = plausible.filter((d) => d < 1.5 * shortest).sort((a, b) => a - b);
  let refresh = single[single.length >> 1];
  const first = stamps[0];
  const n = stamps.map((t) => Math.round((t - first) / refresh));
  const t = stamps.map((s) => s - first);
  const meanN = n.reduce((a, b) => a + b, 0) / n.length;
  const meanT = t.reduce((a, b) => a + b, 0) / t.length;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n.length; i++) {
    num += (n[i] - meanN) * (t[i] - meanT);
    den += (n[i] - meanN) ** 2;
  }
  if (den > 0) refresh = num / den;
  return { refreshMs: refresh, anchorMs: first + meanT - refresh * meanN };
}

/**
 * Where the grid falls after a frame boundary: (refresh instant - boundary) mod R, in [0, R).
 * @param {Grid} grid
 * @param {number} boundaryMs when the timeline reaches a frame's start (performance.now() ms)
 */
export function boundaryPhase(grid, boundaryMs) {
  return mod(grid.anchorMs - boundaryMs, grid.refreshMs);
}

/**
 * The media clock's offset from the timeline (ms; positive: ahead) that puts frame boundaries
 * mid-way between refreshes: R/2 - phase, wrapped into [-R/2, R/2), clamped to +-maxMs. A clock
 * `shift` ahead reaches each boundary `shift` earlier, so the phase becomes phase + shift.
 * @param {number} phaseMs from boundaryPhase
 * @param {number} refreshMs
 * @param {number} maxMs
 */
export function phaseShift(phaseMs, refreshMs, maxMs) {
  const shift = wrap(refreshMs / 2 - phaseMs, refreshMs);
  return Math.max(-maxMs, Math.min(maxMs, shift));
}

/**
 * The circular mean of phases (ms, modulo `period`), in [0, period); NaN for none.
 * @param {number[]} phases
 * @param {number} period
 */
export function meanPhase(phases, period) {
  let s = 0;
  let c = 0;
  for (const p of phases) {
    const a = (mod(p, period) / period) * 2 * Math.PI;
    s += Math.sin(a);
    c += Math.cos(a);
  }
  if (phases.length === 0 || (s === 0 && c === 0)) return NaN;
  return mod((Math.atan2(s, c) / (2 * Math.PI)) * period, period);
}

/**
 * Collects requestAnimationFrame timestamps (at most `keep`, the newest) while running.
 */
export class GridSampler {
  /** @param {number} [keep] */
  constructor(keep = 30) {
    this.keep = keep;
    /** @type {number[]} */
    this.stamps = [];
    this._on = false;
  }

  /** Start afresh (stamps from an earlier run are dropped: a gap would spoil the fit). */
  start() {
    if (this._on || typeof requestAnimationFrame !== "function") return;
    this._on = true;
    this.stamps = [];
    const tick = (/** @type {number} */ ts) => {
      if (!this._on) return;
      this.stamps.push(ts);
      if (this.stamps.length > this.keep) this.stamps.shift();
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  }

  stop() {
    this._on = false;
  }

  /** @returns {Grid | null} */
  grid() {
    return fitGrid(this.stamps);
  }
}

/**
 * Which refresh a page shows its frames on, from its own frame figures (the re-join check,
 * docs/displays.md "Frame phase"). The rule every page can check alone: a frame is shown on the
 * first refresh at or after its boundary on the page's own (shifted) timeline, that is with a
 * signed frame drift (mediaTime minus the position at expectedDisplayTime, + = early) in
 * (-refreshMs, 0]. Chromium picks a page's cadence at the start and keeps it; pages that picked
 * a refresh apart (one at +4, another at -12) tear for the whole show. `marginMs` tolerates the
 * clock-sync error between pages.
 * @param {number} frameDriftMs the median signed frame drift of recent frames, less the phase shift
 * @param {number} refreshMs
 * @param {number} marginMs
 * @returns {"ok" | "early" | "late"}
 */
export function refreshSide(frameDriftMs, refreshMs, marginMs) {
  if (frameDriftMs > marginMs) return "early";
  if (frameDriftMs < -refreshMs - marginMs) return "late";
  return "ok";
}
