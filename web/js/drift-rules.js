// The drift controller's pure rules (DESIGN.md, "One sync model"): where the timeline puts the
// media, and what to do about a measured drift. drift.js re-exports them; tests call them
// directly.
//
// Plain ES module, no dependencies beyond realtime.js's formula.

import { expectedPosition } from "./realtime.js";

/**
 * @typedef {import("./realtime.js").PlaybackState} PlaybackState
 * @typedef {import("./drift.js").DriftOptions} DriftOptions
 */

/**
 * The expected position (seconds) of `state` at server time `serverMs`, within [0, duration].
 * @param {PlaybackState} state
 * @param {number} serverMs
 * @param {number} [duration] seconds; NaN or Infinity: unknown
 * @returns {number}
 */
export function positionAt(state, serverMs, duration = Infinity) {
  const p = Math.max(0, expectedPosition(state, serverMs));
  return Number.isFinite(duration) ? Math.min(p, duration) : p;
}

/**
 * The server time (ms) at which `state` reaches `position` (seconds); at_ms for a paused state.
 * @param {PlaybackState} state
 * @param {number} position
 * @returns {number}
 */
export function serverTimeOf(state, position) {
  if (!state.playing || state.rate <= 0) return state.at_ms;
  return state.at_ms + ((position - state.position) / state.rate) * 1000;
}

/**
 * One rate decision: proportional to the drift, with hysteresis. A correction starts when |drift|
 * passes `deadbandMs` and runs until it falls under `settleMs`; outside a correction the rate is
 * exactly `baseRate`. Up to `gentleMs` of drift the rate moves at most `gentleRateDelta`: so
 * little that the browser keeps its frame cadence (each frame shown for the same number of
 * refreshes), so every screen keeps showing each frame on the same refresh; beyond it, up to
 * `maxRateDelta`.
 * @param {number} driftMs media ahead of the timeline (positive) or behind (negative)
 * @param {number} baseRate the state's rate
 * @param {boolean} correcting whether a correction is running
 * @param {Pick<DriftOptions, "deadbandMs" | "settleMs" | "gainPerS" | "maxRateDelta" | "gentleMs"
 *   | "gentleRateDelta">} o
 * @returns {{rate: number, correcting: boolean}}
 */
export function rateCorrection(driftMs, baseRate, correcting, o) {
  const size = Math.abs(driftMs);
  if (!correcting && size <= o.deadbandMs) return { rate: baseRate, correcting: false };
  if (correcting && size < o.settleMs) return { rate: baseRate, correcting: false };
  const limit = size <= o.gentleMs ? Math.min(o.gentleRateDelta, o.maxRateDelta) : o.maxRateDelta;
  const delta = Math.max(-limit, Math.min(limit, (-o.gainPerS * driftMs) / 1000));
  return { rate: baseRate * (1 + delta), correcting: true };
}

/**
 * What to do about a measured drift: nothing, a rate, or a hard seek (re-join).
 * @param {number} driftMs
 * @param {number} baseRate
 * @param {boolean} correcting
 * @param {DriftOptions} o
 * @returns {{action: "rate" | "seek", rate: number, correcting: boolean}}
 */
export function decide(driftMs, baseRate, correcting, o) {
  if (Math.abs(driftMs) > o.seekThresholdMs) return { action: "seek", rate: baseRate, correcting: false };
  return { action: "rate", ...rateCorrection(driftMs, baseRate, correcting, o) };
}

/**
 * An estimate folded with a new measurement (exponential average); the first one is taken as is.
 * @param {number | null} estimate
 * @param {number} measured
 * @param {number} [weight] of the new measurement
 */
export function fold(estimate, measured, weight = 0.5) {
  return estimate === null ? measured : estimate + weight * (measured - estimate);
}

/** @param {number[]} values */
export function median(values) {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
