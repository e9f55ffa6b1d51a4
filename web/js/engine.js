// The sync engine shared by the room page and the display page: one RealtimeClient (clock sync,
// reconnects; realtime.js), one DriftController keeping the <video> on the room's timeline
// (drift.js), and the telemetry every page reports once a second.
//
//   const engine = new SyncEngine(video, optionsFromQuery(params));
//   engine.attach(client);              // server time from the client's clock sync
//   engine.follow(state);               // a PlaybackState whose media is in the element, or null
//   engine.startTelemetry();
//
// Where the media comes from (a display's videos, a room's PlaybackResult) is each page's
// business; the engine only needs the element to hold the state's media when follow() is called.
// Frame-level work (phase lock, frame agreement) belongs in drift.js, behind DriftController.
//
// Plain ES module, no dependencies beyond drift.js.

import { DriftController, PRESETS } from "./drift.js";

export const TELEMETRY_MS = 1000;

/**
 * Controller options from a page's query string: `preset=synctv|syncplayer|jellyfin|plain`,
 * `deadband_ms`, `settle_ms`, `seek_ms`, `max_rate`, `gain`, `join_ms`, `signal=clock|frame`,
 * `correction=0`, `phase=0|1` (phase lock off/on), `phase_max_ms`, `rejoin=0|1` (the re-join
 * check off/on), `rejoin_max` (its tries per timeline).
 * @param {URLSearchParams} params
 * @param {string} [storagePrefix] localStorage key prefix of the learned play latency
 * @returns {Partial<import("./drift.js").DriftOptions>}
 */
export function optionsFromQuery(params, storagePrefix = "synctv.display.playLatencyMs") {
  const preset = params.get("preset") ?? "synctv";
  /** @type {Record<string, any>} */
  const options = { ...(PRESETS[/** @type {keyof typeof PRESETS} */ (preset)] ?? {}) };
  /** @type {Array<[string, string]>} */
  const numbers = [
    ["deadband_ms", "deadbandMs"], ["settle_ms", "settleMs"], ["seek_ms", "seekThresholdMs"],
    ["max_rate", "maxRateDelta"], ["gain", "gainPerS"], ["join_ms", "joinLeadMs"], ["rejoin_max", "rejoinMax"],
  ];
  for (const [param, key] of numbers) {
    const value = Number.parseFloat(params.get(param) ?? "");
    if (Number.isFinite(value) && value >= 0) options[key] = value;
  }
  const signal = params.get("signal");
  if (signal === "clock" || signal === "frame") options.signal = signal;
  if (params.get("correction") === "0") options.correction = false;
  if (params.get("phase") === "0") options.phaseLock = false;
  if (params.get("phase") === "1") options.phaseLock = true;
  if (params.get("rejoin") === "0") options.rejoin = false;
  if (params.get("rejoin") === "1") options.rejoin = true;
  const phaseMax = Number.parseFloat(params.get("phase_max_ms") ?? "");
  if (Number.isFinite(phaseMax) && phaseMax >= 0) options.phaseMaxMs = phaseMax;
  if (preset !== "synctv" || params.has("deadband_ms") || params.has("seek_ms")) {
    options.storageKey = `${storagePrefix}.${preset}`; // variants learn apart
  } else if (storagePrefix !== "synctv.display.playLatencyMs") {
    options.storageKey = storagePrefix;
  }
  return options;
}

/** The shared engine; see the module header. */
export class SyncEngine extends EventTarget {
  /**
   * @param {HTMLVideoElement} video
   * @param {Partial<import("./drift.js").DriftOptions>} [options] DriftController options
   */
  constructor(video, options = {}) {
    super();
    this.video = video;
    /** @type {import("./realtime.js").RealtimeClient | null} */
    this.client = null;
    this.controller = new DriftController(video, () => this.serverNow(), options);
    this.telemetrySent = 0;
    /** @type {ReturnType<typeof setInterval> | null} */
    this._telemetry = null;
  }

  /** Server time (ms): the clock sync's once attached, the local clock before. */
  serverNow() {
    return this.client ? this.client.serverNow() : performance.timeOrigin + performance.now();
  }

  /** @param {import("./realtime.js").RealtimeClient | null} client */
  attach(client) {
    this.client = client;
  }

  /**
   * Keep the video on `state`'s timeline (or stop: null). The element must hold the state's media.
   * @param {import("./realtime.js").PlaybackState | null} state
   */
  follow(state) {
    this.controller.setState(state);
  }

  /** Report drift and rate every TELEMETRY_MS (the clock's offset and round trip are added by the client). */
  startTelemetry() {
    if (this._telemetry === null) this._telemetry = setInterval(() => this.sendTelemetry(), TELEMETRY_MS);
  }

  stopTelemetry() {
    if (this._telemetry !== null) clearInterval(this._telemetry);
    this._telemetry = null;
  }

  sendTelemetry() {
    const client = this.client;
    if (!client || !client.connected) return;
    const c = this.controller;
    const drift = c.mode === "playing" && c.driftMs !== null ? c.driftMs : 0;
    client.telemetry({ drift_ms: Math.round(drift * 1000) / 1000, rate: this.video.playbackRate })
      .then(() => { this.telemetrySent += 1; }, () => {});
  }

  /** The engine's part of a page's status(): controller, clock and telemetry figures. */
  status() {
    const c = this.controller;
    const clock = this.client?.clock;
    return {
      mode: c.mode, driftMs: c.driftMs, frameDriftMs: c.frameDriftMs, rate: this.video.playbackRate,
      offsetMs: clock?.offsetMs ?? null, rttMs: clock && Number.isFinite(clock.rttMs) ? clock.rttMs : null,
      synced: clock?.synced ?? false, playLatencyMs: c.playLatencyMs, seekLatencyMs: c.seekLatencyMs,
      counters: { ...c.counters }, lastStart: c.lastStart, telemetrySent: this.telemetrySent,
      phaseShiftMs: c.phaseShiftMs, phase: c.phase, lastSide: c.lastSide, rejoinLog: [...c.rejoinLog],
    };
  }
}
