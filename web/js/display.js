// The display page (/display/{public_id}, web/display.html): one screen of a display room.
//
// It opens a session (POST /api/displays/{public_id}/session: a display token and the room),
// connects to the room's WebSocket with that token (realtime.js: clock sync, reconnects) and
// follows the room's playback state with the shared sync engine (engine.js: the drift controller
// of drift.js and telemetry; the room page uses the same engine). No event: the idle
// image. A trigger schedules the event's video at `at_ms`: the screen preloads it, pauses at 0 and
// starts on the instant; a screen that loads or reconnects mid-show joins at the right offset; at
// the end (state `ended`) the idle image comes back. Every second it reports telemetry (drift,
// rate, clock offset, round trip). While no event plays it warms the browser cache with the
// first MiB of each video of its room (GET /api/videos), paused as soon as an event starts.
//
// The debug overlay (F2, Ctrl+Shift+D or a double-click) shows the connection, the clock, the
// event, the drift and the rate. Query parameters (docs/displays.md, "Display page"):
// `debug=1` (overlay shown), `muted=1`, `warm=0`, `preset=synctv|syncplayer|jellyfin|plain`,
// `deadband_ms`, `settle_ms`, `seek_ms`, `max_rate`, `gain`, `join_ms`, `signal=clock|frame`,
// `correction=0`.

import { SyncEngine, optionsFromQuery } from "./engine.js";
import { NATIVE_MODES, canPlayFormat, pickUrl, soundMayAutoplay } from "./media.js";
import { RealtimeClient } from "./realtime.js";
import { CacheWarmer } from "./warm.js";

// the shared engine's helpers, as this module exported them before they moved
export { optionsFromQuery, pickUrl };

const OVERLAY_MS = 250;
const SESSION_RETRY_MS = [1000, 2000, 5000, 10000, 30000];
const REFRESH_BEFORE_EXPIRY_MS = 24 * 3600 * 1000;
const REFRESH_AFTER_FAILED_ATTEMPTS = 4;

/** @param {number} ms */
function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * @param {number | null | undefined} value
 * @param {number} [digits]
 * @param {string} [unit]
 */
function fmt(value, digits = 1, unit = " ms") {
  if (value === null || value === undefined || !Number.isFinite(value)) return "—";
  return `${value >= 0 ? "+" : ""}${value.toFixed(digits)}${unit}`;
}

/** The page: wires the session, the client, the controller, the idle image and the overlay. */
export class DisplayPage {
  /**
   * @param {{root: HTMLElement, video: HTMLVideoElement, idle: HTMLImageElement, overlay: HTMLElement,
   *   location: Location}} elements
   */
  constructor(elements) {
    this.root = elements.root;
    this.video = elements.video;
    this.idle = elements.idle;
    this.overlay = elements.overlay;
    this.params = new URLSearchParams(elements.location.search);
    const parts = elements.location.pathname.split("/").filter(Boolean);
    this.publicId = decodeURIComponent(parts[parts.length - 1] ?? "");
    /** @type {any} */
    this.session = null;
    /** @type {string} */
    this.connection = "starting";
    this.lastError = "";
    this.reconnectAttempt = 0;
    /** @type {Map<string, string>} media id -> URL to play */
    this.mediaUrls = new Map();
    /** @type {string | null} the media id whose URL is in the video element */
    this.loadedMedia = null;
    /** @type {string | null} the URL in the video element */
    this.loadedUrl = null;
    this.mutedByPolicy = false;
    /** @type {ReturnType<typeof setTimeout> | null} */
    this._refreshTimer = null;
    this._refreshing = false;
    /** @type {RealtimeClient | null} */
    this.client = null;
    this.engine = new SyncEngine(this.video, optionsFromQuery(this.params));
    this.controller = this.engine.controller;
    /** @type {CacheWarmer | null} */
    this.warmer = null;
    /** @type {any} the newest playback state */
    this.state = null;
    this.view = "";
    this.setView("idle");
  }

  /** Server time (ms): the clock sync's once connected, the local clock before. */
  serverNow() {
    return this.engine.serverNow();
  }

  get telemetrySent() {
    return this.engine.telemetrySent;
  }

  async start() {
    this._bindInput();
    if (this.params.get("debug") === "1") this.toggleOverlay(true);
    if (this.params.get("muted") === "1") {
      this.video.muted = true;
    } else if (!(await soundMayAutoplay())) {
      this.video.muted = true;
      this.mutedByPolicy = true;
    }
    this.video.addEventListener("ended", () => this.render());
    this.controller.addEventListener("mode", () => this.render());
    this.controller.addEventListener("start", () => this.render());
    this.controller.addEventListener("reveal", () => this.render());
    this.video.addEventListener("error", () => {
      this.lastError = `video: ${this.video.error?.message || this.video.error?.code || "error"}`;
    });
    this.engine.startTelemetry();
    setInterval(() => this.renderOverlay(), OVERLAY_MS);
    this._keepAwake();
    await this.openSession();
  }

  // -- session and connection ----------------------------------------------------------------------

  /** POST the session until it works (the server may be down, the display may come back). */
  async openSession() {
    for (let attempt = 0; ; attempt++) {
      try {
        const answer = await fetch(`/api/displays/${encodeURIComponent(this.publicId)}/session`, { method: "POST" });
        const body = await answer.json().catch(() => ({}));
        if (!answer.ok) throw new Error(body?.error?.message ?? `HTTP ${answer.status}`);
        this.useSession(body);
        return;
      } catch (error) {
        this.connection = "no session";
        this.lastError = String(/** @type {Error} */ (error).message ?? error);
        await sleep(SESSION_RETRY_MS[Math.min(attempt, SESSION_RETRY_MS.length - 1)]);
      }
    }
  }

  /**
   * @param {any} session
   * @param {boolean} [reconnect] open a new connection even if the room stayed
   */
  useSession(session, reconnect = false) {
    const previous = this.session;
    this.session = session;
    this.idle.src = session.idle_image_url || "/admin/idle-image";
    this._scheduleRefresh();
    const sameRoom = previous !== null && previous.room_id === session.room_id;
    if (this.client && sameRoom && !reconnect) {
      this.client.setToken(session.token); // used by the next (re)connect
      return;
    }
    if (this.client) this.client.close();
    this.connect();
    if (!sameRoom && this.warmer) {
      this.warmer.pause(); // another room: other videos
      this.warmer = null;
    }
    this.startWarming();
  }

  connect() {
    const client = new RealtimeClient();
    this.client = client;
    this.engine.attach(client);
    client.addEventListener("playbackState", (e) => {
      if (client === this.client) this.applyState(/** @type {CustomEvent} */ (e).detail);
    });
    client.addEventListener("playback", (e) => {
      if (client === this.client) this.onPlayback(/** @type {CustomEvent} */ (e).detail.result);
    });
    client.addEventListener("welcome", () => {
      this.connection = "connected";
      this.reconnectAttempt = 0;
    });
    client.addEventListener("reconnecting", (e) => {
      const detail = /** @type {CustomEvent} */ (e).detail;
      this.connection = "reconnecting";
      this.reconnectAttempt = detail.attempt;
      if (detail.attempt >= REFRESH_AFTER_FAILED_ATTEMPTS && detail.attempt % REFRESH_AFTER_FAILED_ATTEMPTS === 0) {
        this.refreshSession(); // the token may have been refused (expired, display moved)
      }
    });
    client.addEventListener("close", (e) => {
      const detail = /** @type {CustomEvent} */ (e).detail;
      if (client !== this.client) return;
      this.connection = detail.reconnecting ? "reconnecting" : "closed";
      this.lastError = `closed ${detail.code}${detail.reason ? ` (${detail.reason})` : ""}`;
      if (!detail.reconnecting) {
        // 4000 (room deleted) or 4001 (removed, token revoked): a new session says where to go
        setTimeout(() => this.refreshSession(true), SESSION_RETRY_MS[0]);
      }
    });
    const session = this.session;
    client.connect(session.ws_url, { token: session.token, observe: ["playbackState"] }).catch(() => {});
    client.observe("playback", { profile: { modes: [...NATIVE_MODES] } }).catch(() => {});
    // session.state is not applied: before the welcome the clock is not synced; the observe
    // reply right after it brings the same state
  }

  /** @param {boolean} [reconnect] open a new client even if the room stayed */
  async refreshSession(reconnect = false) {
    if (this._refreshing) return;
    this._refreshing = true;
    try {
      const answer = await fetch(`/api/displays/${encodeURIComponent(this.publicId)}/session`, { method: "POST" });
      const body = await answer.json().catch(() => ({}));
      if (!answer.ok) {
        this.lastError = body?.error?.message ?? `session: HTTP ${answer.status}`;
        if (reconnect) setTimeout(() => this.refreshSession(true), SESSION_RETRY_MS.at(-1));
        return;
      }
      this.useSession(body, reconnect);
    } catch (error) {
      this.lastError = String(/** @type {Error} */ (error).message ?? error);
      if (reconnect) setTimeout(() => this.refreshSession(true), SESSION_RETRY_MS.at(-1));
    } finally {
      this._refreshing = false;
    }
  }

  _scheduleRefresh() {
    if (this._refreshTimer !== null) clearTimeout(this._refreshTimer);
    const expires = Number(this.session?.expires_at);
    if (!Number.isFinite(expires)) return;
    const serverNow = Number(this.session.server_time_ms) || this.serverNow();
    const inMs = Math.max(60000, Math.min(2 ** 31 - 1, expires - serverNow - REFRESH_BEFORE_EXPIRY_MS));
    this._refreshTimer = setTimeout(() => this.refreshSession(), inMs);
  }

  // -- media and state -----------------------------------------------------------------------------

  /** @param {any} result a PlaybackResult or null */
  onPlayback(result) {
    if (!result || !result.media_id) return;
    const url = pickUrl(result, (format) => this.canPlay(format));
    if (url) this.mediaUrls.set(result.media_id, url);
    else this.lastError = `no playable source for media ${result.media_id}`;
    const state = this.client?.playbackState;
    if (state && state.media_id === result.media_id) this.applyState(state);
  }

  /** @param {string} format */
  canPlay(format) {
    return canPlayFormat(this.video, format);
  }

  /** @param {any} state */
  applyState(state) {
    this.state = state;
    const active = state && state.media_id && !state.ended;
    if (!active) {
      this.controller.setState(state && state.media_id ? state : null);
      this.render();
      this.warmer?.resume();
      return;
    }
    if (state.playing) this.warmer?.pause(); // the show has the network now
    const url = this.mediaUrls.get(state.media_id);
    if (!url) {
      this.controller.setState(null); // wait for the playback message with its URL
      this.render();
      return;
    }
    this.loadedMedia = state.media_id;
    this.load(url);
    this.controller.setState(state);
    this.render();
  }

  /**
   * Put `url` in the video element (preloading it) unless it is there already.
   * @param {string} url
   */
  load(url) {
    if (this.loadedUrl === url) return;
    this.loadedUrl = url;
    this.video.preload = "auto";
    this.video.src = url;
    this.video.load();
  }

  /**
   * The room's videos are known (GET /api/videos, with the media items playing each): their
   * URLs serve the states naming those items, and while nothing plays the first one is loaded
   * into the video element, paused at 0, so its first show starts from a decoder that is ready.
   * @param {any[]} videos
   */
  onVideosListed(videos) {
    for (const video of videos) {
      for (const mediaId of video.media_ids ?? []) {
        if (!this.mediaUrls.has(mediaId)) this.mediaUrls.set(mediaId, video.url);
      }
    }
    const state = this.state;
    const idle = !state || !state.media_id || state.ended;
    const first = videos.find((v) => (v.media_ids ?? []).length > 0);
    if (idle && this.loadedUrl === null && first) this.load(first.url);
  }

  /** @param {"idle" | "video"} view */
  setView(view) {
    if (view === this.view) return;
    this.view = view;
    this.root.dataset.view = view;
    if (view === "idle" && this.session) {
      // the admin may have replaced the idle image since
      const base = this.session.idle_image_url || "/admin/idle-image";
      this.idle.src = `${base}${base.includes("?") ? "&" : "?"}t=${Date.now()}`;
    }
  }

  render() {
    const state = this.state;
    let view = "idle";
    if (state && state.media_id && !state.ended && !this.video.ended) {
      if (state.playing && this.controller.revealed) view = "video";
      else if (!state.playing && state.position > 0 && this.loadedMedia === state.media_id) view = "video";
    }
    this.setView(/** @type {"idle" | "video"} */ (view));
    this.renderOverlay();
  }

  // -- telemetry, warming --------------------------------------------------------------------------

  sendTelemetry() {
    this.engine.sendTelemetry();
  }

  startWarming() {
    if (this.params.get("warm") === "0" || this.warmer) return;
    const session = this.session;
    this.warmer = new CacheWarmer({ listUrl: session.videos_url || "/api/videos", token: () => this.session.token });
    const warmer = this.warmer;
    warmer.addEventListener("listed", (e) => {
      if (warmer === this.warmer) this.onVideosListed(/** @type {CustomEvent} */ (e).detail.videos);
    });
    const state = this.state;
    if (!(state && state.playing && !state.ended)) this.warmer.resume();
    else this.warmer.pause();
  }

  // -- overlay and input ---------------------------------------------------------------------------

  /** @param {boolean} [show] */
  toggleOverlay(show) {
    const visible = show ?? this.overlay.hidden;
    this.overlay.hidden = !visible;
    this.root.dataset.overlay = visible ? "on" : "off";
    this.renderOverlay();
  }

  renderOverlay() {
    if (this.overlay.hidden) return;
    const c = this.controller;
    const client = this.client;
    const clock = client?.clock;
    const state = this.state;
    const warm = this.warmer?.status;
    const lines = [
      ["display", `${this.session?.display?.name ?? this.publicId}`],
      ["connection", `${this.connection}${this.reconnectAttempt ? ` (attempt ${this.reconnectAttempt})` : ""}`],
      ["clock", clock ? `offset ${fmt(clock.offsetMs)}  rtt ${fmt(clock.rttMs, 2).replace("+", "")}${clock.synced ? "" : "  (syncing)"}` : "—"],
      ["event", state?.event_id ?? "—"],
      ["state", state ? `v${state.version} ${state.ended ? "ended" : state.playing ? "playing" : "paused"} at ${fmt(state.position, 3, " s").replace("+", "")}` : "—"],
      ["mode", `${c.mode}${this.video.muted ? (this.mutedByPolicy ? "  (muted: autoplay policy)" : "  (muted)") : ""}`],
      ["position", state && this.loadedMedia ? `${this.video.currentTime.toFixed(3)} s  (expected ${(c.expected() ?? 0).toFixed(3)} s)` : "—"],
      ["drift", `${fmt(c.driftMs, 2)}  frame ${fmt(c.frameDriftMs, 1)}`],
      ["phase", c.phase ? `shift ${fmt(c.phaseShiftMs, 1)}  grid ${fmt(c.phase.gridMs, 1)}  shown ${fmt(c.phase.framesMs, 1)}  of ${c.phase.refreshMs.toFixed(2)}` : "off"],
      ["playbackRate", this.video.playbackRate.toFixed(4)],
      ["latency", `play ${fmt(c.playLatencyMs, 1).replace("+", "")}  seek ${fmt(c.seekLatencyMs, 0).replace("+", "")}`],
      ["counters", `starts ${c.counters.starts}  joins ${c.counters.joins}  seeks ${c.counters.seeks}`],
      ["cache", warm ? `${warm.state}  ${warm.warmed.length} warmed${warm.pending?.length ? `, ${warm.pending.length} to go` : ""}` : "off"],
      ["telemetry", `${this.telemetrySent} sent`],
    ];
    if (this.lastError) lines.push(["last error", this.lastError]);
    const text = lines.map(([k, v]) => `${k.padEnd(13)}${v}`).join("\n");
    if (this.overlay.textContent !== text) this.overlay.textContent = text;
  }

  _bindInput() {
    document.addEventListener("keydown", (event) => {
      const ctrlShiftD = event.ctrlKey && event.shiftKey && (event.key === "D" || event.key === "d" || event.code === "KeyD");
      if (event.key === "F2" || ctrlShiftD) {
        event.preventDefault();
        this.toggleOverlay();
      }
      this._userGesture();
    });
    document.addEventListener("dblclick", (event) => {
      event.preventDefault();
      this.toggleOverlay();
    });
    document.addEventListener("click", () => {
      this._userGesture();
      if (!document.fullscreenElement && this.root.requestFullscreen) this.root.requestFullscreen().catch(() => {});
    });
  }

  /** A user gesture lifts the autoplay policy's mute. */
  _userGesture() {
    if (this.mutedByPolicy) {
      this.mutedByPolicy = false;
      this.video.muted = false;
    }
  }

  _keepAwake() {
    const nav = /** @type {any} */ (navigator);
    if (!nav.wakeLock) return;
    const request = () => nav.wakeLock.request("screen").catch(() => {});
    request();
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") request();
    });
  }

  /** A JSON snapshot for tests, benchmarks and the curious (window.synctvDisplay.status()). */
  status() {
    return {
      ...this.engine.status(),
      publicId: this.publicId, connection: this.connection, view: this.view,
      overlay: !this.overlay.hidden, state: this.state ?? null, loadedMedia: this.loadedMedia,
      loadedUrl: this.loadedUrl, warming: this.warmer?.status ?? null, muted: this.video.muted,
      lastError: this.lastError,
    };
  }
}

/** Boot when loaded by display.html. */
const root = document.getElementById("synctv-display");
if (root) {
  const page = new DisplayPage({
    root,
    video: /** @type {HTMLVideoElement} */ (document.getElementById("video")),
    idle: /** @type {HTMLImageElement} */ (document.getElementById("idle")),
    overlay: /** @type {HTMLElement} */ (document.getElementById("overlay")),
    location: window.location,
  });
  Object.defineProperty(window, "synctvDisplay", { value: page, configurable: true });
  page.start();
}
