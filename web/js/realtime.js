// The browser client of the synctv realtime protocol (docs/realtime.md): one WebSocket per room.
//
//   const client = new RealtimeClient();
//   client.addEventListener("playbackState", (e) => render(e.detail));
//   await client.connect(roomSocketUrl("movie-night"), { token });
//   await client.clock.whenSynced();
//   client.expectedPosition();            // seconds, at the server's now
//   await client.update("play");          // fills in the current version
//
// Requests carry an `id`; their replies (or `error` frames) settle the returned promise. The
// client re-connects with exponential backoff and jitter (reset after a welcome), then re-observes
// what was observed, re-syncs the clock with a fresh burst and emits the fresh state. Playback
// states older than the newest seen are dropped, so a listener never sees version N after N+1.
//
// Plain ES module, no dependencies.

import { ClockSync, defaultNow } from "./clock.js";

/**
 * @typedef {object} PlaybackState
 * @property {string | null} media_id
 * @property {boolean} playing
 * @property {boolean} ended
 * @property {number} position seconds, true at server time at_ms
 * @property {number} rate
 * @property {number} at_ms server ms
 * @property {number} version
 * @property {string} [event_id]
 */

/**
 * @typedef {object} Welcome
 * @property {string} connection_id
 * @property {number} server_time_ms
 * @property {{id: string, name: string, role: string}} user
 * @property {{id: string, name: string} & Record<string, unknown>} room
 * @property {Record<string, unknown> | null} member
 * @property {{max_frame_bytes: number, messages_per_s: number, chat_max_chars: number,
 *   danmaku_max_chars: number}} limits
 */

/** @typedef {"playbackState" | "playback" | "presence" | "chat" | "viewers" | "playlist"} Resource */
/** @typedef {"play" | "pause" | "seek" | "rate" | "media"} UpdateAction */

/**
 * @typedef {object} RealtimeOptions
 * @property {() => number} [now] local clock (ms) shared with the ClockSync
 * @property {number} [requestTimeoutMs] a reply later than this rejects with code "timeout" (10000)
 * @property {number} [backoffInitialMs] first reconnect delay (250)
 * @property {number} [backoffMaxMs] reconnect delay cap (10000)
 * @property {number} [backoffJitter] share of the delay drawn at random, 0..1 (0.5)
 * @property {number} [deadAfterMs] no frame for this long while open: drop and reconnect (60000)
 * @property {typeof WebSocket} [WebSocket] the WebSocket constructor (default globalThis.WebSocket)
 * @property {import("./clock.js").ClockSyncOptions} [clock] options of the ClockSync
 */

/**
 * @typedef {object} ConnectOptions
 * @property {string} [token] sent as the subprotocol `bearer.TOKEN`
 * @property {Resource[]} [observe] resources to observe from the start (["playbackState"])
 */

/** Close codes after which the client does not reconnect (docs/realtime.md). */
export const FINAL_CLOSE_CODES = Object.freeze(new Set([4000, 4001]));

/** A refused request: `code` is the server's error code, or timeout / disconnected / closed. */
export class RealtimeError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {{id?: string | number, detail?: unknown}} [extra]
   */
  constructor(code, message, extra = {}) {
    super(message);
    this.name = "RealtimeError";
    this.code = code;
    this.id = extra.id;
    this.detail = extra.detail;
  }
}

/**
 * The expected media position (seconds) of `state` at server time `serverNowMs`: the DESIGN.md
 * formula `position + (now - at_ms) / 1000 * rate` while playing and past `at_ms`.
 * @param {PlaybackState} state
 * @param {number} serverNowMs
 * @returns {number}
 */
export function expectedPosition(state, serverNowMs) {
  if (!state.playing || serverNowMs <= state.at_ms) return state.position;
  return state.position + ((serverNowMs - state.at_ms) / 1000) * state.rate;
}

/**
 * The WebSocket URL of a room on the page's own server (ws: or wss: after the page's scheme).
 * @param {string} room id or name
 * @param {string | URL} [base] default: location.href
 * @returns {string}
 */
export function roomSocketUrl(room, base = globalThis.location?.href) {
  const url = new URL(`/ws/rooms/${encodeURIComponent(room)}`, base);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.href;
}

/**
 * @param {number} attempt 0 for the first retry
 * @param {number} initialMs
 * @param {number} maxMs
 * @param {number} jitter 0..1
 * @param {() => number} [random]
 * @returns {number} ms to wait before the attempt
 */
export function backoffDelay(attempt, initialMs, maxMs, jitter, random = Math.random) {
  const full = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return full * (1 - jitter) + full * jitter * random();
}

/**
 * Events (CustomEvent; `detail` is the frame unless said otherwise):
 * `welcome`, `playbackState` (the state, plus `fresh: true` on the first one after a (re)connect),
 * `playback`, `presence`, `chat`, `danmaku`, `webrtc`, `viewers`, `playlist`, `error` (an error frame no request is
 * waiting for), `open`, `close` {code, reason, reconnecting}, `reconnecting` {attempt, delayMs},
 * `clock` {offsetMs, rttMs, samples} (the clock estimate moved), `frame` (every frame).
 */
export class RealtimeClient extends EventTarget {
  /** @param {RealtimeOptions} [options] */
  constructor(options = {}) {
    super();
    this.now = options.now ?? defaultNow;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10000;
    this.backoffInitialMs = options.backoffInitialMs ?? 250;
    this.backoffMaxMs = options.backoffMaxMs ?? 10000;
    this.backoffJitter = options.backoffJitter ?? 0.5;
    this.deadAfterMs = options.deadAfterMs ?? 60000;
    this._WebSocket = options.WebSocket ?? globalThis.WebSocket;
    this.clock = new ClockSync((t0) => this._timeExchange(t0), { now: this.now, ...options.clock });
    this._burstSpacingMs = this.clock.burstSpacingMs;
    this.clock.addEventListener("change", (e) => this._emit("clock", /** @type {CustomEvent} */ (e).detail));

    /** @type {string | null} */
    this.url = null;
    /** @type {string | null} */
    this._token = null;
    /** @type {WebSocket | null} */
    this._ws = null;
    this._ready = false;
    this._closed = false;
    this._attempt = 0;
    this._nextId = 1;
    this._freshState = false;
    /** @type {Map<string | number, {resolve: (r: {frame: any, receivedAt: number}) => void, reject: (e: Error) => void, timer: ReturnType<typeof setTimeout>}>} */
    this._pending = new Map();
    /** @type {Map<Resource, object | undefined>} resource -> observe options */
    this._observed = new Map();
    /** @type {Map<Resource, Promise<any>>} the replies of the last (re-)observe per resource */
    this._observeReplies = new Map();
    /** @type {Array<{resolve: (w: Welcome) => void, reject: (e: Error) => void}>} */
    this._welcomeWaiters = [];
    /** @type {ReturnType<typeof setTimeout> | null} */
    this._reconnectTimer = null;
    /** @type {ReturnType<typeof setInterval> | null} */
    this._watchdog = null;
    this._lastFrameAt = 0;
    /** @type {Welcome | null} */
    this.welcome = null;
    /** @type {PlaybackState | null} */
    this._state = null;
    /** @type {unknown} */
    this.playback = null;
    /** @type {unknown[] | null} */
    this.presence = null;
  }

  // -- state -------------------------------------------------------------------------------------

  /** The newest playback state seen, or null. */
  get playbackState() { return this._state; }

  /** True between a welcome and the socket's close. */
  get connected() { return this._ready; }

  /** The server's clock now (ms), from the clock sync. */
  serverNow() { return this.clock.serverNow(); }

  /**
   * The expected position (seconds) of the current playback state, or null without a state.
   * @param {number} [serverNowMs] default: serverNow()
   * @returns {number | null}
   */
  expectedPosition(serverNowMs = this.clock.serverNow()) {
    return this._state ? expectedPosition(this._state, serverNowMs) : null;
  }

  // -- connection --------------------------------------------------------------------------------

  /**
   * Replaces the token used by the next (re)connect; the open socket is left as it is.
   * @param {string | null} token
   */
  setToken(token) {
    this._token = token;
  }

  /**
   * Opens the connection; resolves with the first welcome. Reconnects until close().
   * @param {string} url ws:// or wss:// URL, or a path on the page's server
   * @param {ConnectOptions} [options]
   * @returns {Promise<Welcome>}
   */
  connect(url, options = {}) {
    const absolute = new URL(url, globalThis.location?.href);
    if (absolute.protocol === "http:") absolute.protocol = "ws:";
    if (absolute.protocol === "https:") absolute.protocol = "wss:";
    this.url = absolute.href;
    this._token = options.token ?? null;
    this._closed = false;
    if (this._reconnectTimer !== null) clearTimeout(this._reconnectTimer);
    this._reconnectTimer = null;
    const previous = this._ws;
    if (previous) {
      this._detach();
      if (previous.readyState <= 1) previous.close(1000, "reconnecting");
      this.clock.stop();
      this._rejectAll("disconnected", "connect() was called again");
    }
    for (const resource of options.observe ?? ["playbackState"]) {
      if (!this._observed.has(resource)) this._observed.set(resource, undefined);
    }
    const welcome = this.whenConnected();
    this._open();
    this._startWatchdog();
    return welcome;
  }

  /**
   * Resolves with the next welcome (at once with the current one when connected).
   * @returns {Promise<Welcome>}
   */
  whenConnected() {
    if (this._ready && this.welcome) return Promise.resolve(this.welcome);
    return new Promise((resolve, reject) => this._welcomeWaiters.push({ resolve, reject }));
  }

  /** Closes for good: no reconnect; pending requests reject with code "closed". */
  close(code = 1000, reason = "") {
    this._closed = true;
    this.clock.stop();
    if (this._reconnectTimer !== null) clearTimeout(this._reconnectTimer);
    this._reconnectTimer = null;
    if (this._watchdog !== null) clearInterval(this._watchdog);
    this._watchdog = null;
    const ws = this._ws;
    this._detach();
    if (ws && ws.readyState <= 1) ws.close(code, reason);
    if (ws) this._emit("close", { code, reason, reconnecting: false });
    this._rejectAll("closed", "the client was closed");
    const waiters = this._welcomeWaiters;
    this._welcomeWaiters = [];
    for (const w of waiters) w.reject(new RealtimeError("closed", "the client was closed"));
  }

  _open() {
    const protocols = ["synctv.v1"];
    if (this._token) protocols.push(`bearer.${this._token}`);
    /** @type {WebSocket} */
    let ws;
    try {
      ws = new this._WebSocket(/** @type {string} */ (this.url), protocols);
    } catch (error) {
      this._scheduleReconnect(1006, String(error));
      return;
    }
    this._ws = ws;
    ws.onopen = () => this._emit("open", {});
    ws.onmessage = (event) => this._onMessage(event);
    ws.onclose = (event) => this._onClose(event.code, event.reason);
    ws.onerror = () => {}; // a close event always follows
  }

  /** Drops the socket's handlers so a late event from it changes nothing. */
  _detach() {
    const ws = this._ws;
    if (ws) ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    this._ws = null;
    this._ready = false;
  }

  /**
   * @param {number} code
   * @param {string} reason
   */
  _onClose(code, reason) {
    this._detach();
    this.clock.stop();
    this._rejectAll("disconnected", `the connection closed (${code})`);
    this._scheduleReconnect(code, reason);
  }

  /**
   * @param {number} code
   * @param {string} reason
   */
  _scheduleReconnect(code, reason) {
    const reconnecting = !this._closed && !FINAL_CLOSE_CODES.has(code);
    this._emit("close", { code, reason, reconnecting });
    if (!reconnecting) {
      this._closed = true;
      if (this._watchdog !== null) clearInterval(this._watchdog);
      this._watchdog = null;
      const waiters = this._welcomeWaiters;
      this._welcomeWaiters = [];
      for (const w of waiters) w.reject(new RealtimeError("closed", `the server closed the connection (${code})`));
      return;
    }
    const delayMs = backoffDelay(this._attempt, this.backoffInitialMs, this.backoffMaxMs, this.backoffJitter);
    this._emit("reconnecting", { attempt: this._attempt + 1, delayMs });
    this._attempt += 1;
    this._reconnectTimer = setTimeout(() => {
      this._reconnectTimer = null;
      if (!this._closed) this._open();
    }, delayMs);
  }

  _startWatchdog() {
    if (this._watchdog !== null) return;
    const period = Math.max(1000, Math.min(5000, this.deadAfterMs / 4));
    this._watchdog = setInterval(() => {
      if (this._ready && this.now() - this._lastFrameAt > this.deadAfterMs) {
        const ws = this._ws;
        this._detach();
        if (ws) ws.close(4100, "no frame from the server");
        this.clock.stop();
        this._rejectAll("disconnected", "the server stopped answering");
        this._scheduleReconnect(1006, "no frame from the server");
      }
    }, period);
  }

  // -- frames ------------------------------------------------------------------------------------

  /** @param {MessageEvent} event */
  _onMessage(event) {
    const receivedAt = this.now(); // t3 of a time reply: before any parsing
    this._lastFrameAt = receivedAt;
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return;
    }
    if (!frame || typeof frame !== "object") return;
    this._emit("frame", frame);
    if (frame.type === "welcome") {
      this._onWelcome(frame, receivedAt);
      return;
    }
    const pending = frame.id !== undefined ? this._pending.get(frame.id) : undefined;
    if (pending) {
      this._pending.delete(frame.id);
      clearTimeout(pending.timer);
    }
    if (frame.type === "error") {
      if (frame.code === "stale_version" && frame.detail && typeof frame.detail === "object") {
        this._applyState(frame.detail);
      }
      const error = new RealtimeError(frame.code, frame.message, { id: frame.id, detail: frame.detail });
      if (pending) pending.reject(error);
      else this._emit("error", frame);
      return;
    }
    switch (frame.type) {
      case "playbackState":
        this._applyState(frame);
        break;
      case "playback":
        this.playback = frame.result;
        this._emit("playback", frame);
        break;
      case "presence":
        this.presence = frame.online;
        this._emit("presence", frame);
        break;
      case "chat":
      case "danmaku":
      case "webrtc":
      case "viewers":
      case "playlist":
      case "notice":
        this._emit(frame.type, frame);
        break;
      default:
        break;
    }
    if (pending) pending.resolve({ frame, receivedAt });
  }

  /**
   * @param {Welcome & {type: string}} frame
   * @param {number} receivedAt
   */
  _onWelcome(frame, receivedAt) {
    if (this.welcome && this.welcome.room?.id !== frame.room?.id) this._state = null; // another room
    this.welcome = frame;
    this._ready = true;
    this._attempt = 0;
    this._freshState = true;
    this.clock.seed(frame.server_time_ms, receivedAt);
    // keep the clock's bursts within the server's sustained message rate
    const perSecond = frame.limits?.messages_per_s;
    this.clock.burstSpacingMs = typeof perSecond === "number" && perSecond > 0
      ? Math.max(this._burstSpacingMs, 1000 / perSecond) : this._burstSpacingMs;
    this._observeReplies.clear();
    for (const [resource, options] of this._observed) {
      const reply = this._sendObserve(resource, options);
      reply.catch(() => {}); // reported to whoever awaits it; a reconnect retries
      this._observeReplies.set(resource, reply);
    }
    this.clock.reset();
    this.clock.start();
    this._emit("welcome", frame);
    const waiters = this._welcomeWaiters;
    this._welcomeWaiters = [];
    for (const w of waiters) w.resolve(frame);
  }

  /** @param {any} state */
  _applyState(state) {
    if (typeof state.version !== "number") return;
    const current = this._state;
    const fresh = this._freshState;
    if (current && (state.version < current.version || (state.version === current.version && !fresh))) return;
    this._freshState = false;
    /** @type {PlaybackState} */
    const next = {
      media_id: state.media_id ?? null,
      playing: !!state.playing,
      ended: !!state.ended,
      position: state.position,
      rate: state.rate,
      at_ms: state.at_ms,
      version: state.version,
    };
    if (state.event_id !== undefined) next.event_id = state.event_id;
    this._state = next;
    this._emit("playbackState", fresh ? { ...next, fresh: true } : next);
  }

  // -- requests ----------------------------------------------------------------------------------

  /**
   * Sends a message with a fresh id; resolves with its reply frame, rejects with a RealtimeError
   * (the server's error code, or "timeout", "disconnected", "not_connected", "closed").
   * @param {Record<string, unknown> & {type: string}} message
   * @param {{timeoutMs?: number}} [options]
   * @returns {Promise<any>}
   */
  request(message, options = {}) {
    return this._request(message, options.timeoutMs).then((r) => r.frame);
  }

  /**
   * @param {Record<string, unknown>} message
   * @param {number} [timeoutMs]
   * @returns {Promise<{frame: any, receivedAt: number}>}
   */
  _request(message, timeoutMs = this.requestTimeoutMs) {
    const ws = this._ws;
    if (!ws || !this._ready || ws.readyState !== 1) {
      return Promise.reject(new RealtimeError("not_connected", "not connected"));
    }
    const id = this._nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._pending.delete(id);
        reject(new RealtimeError("timeout", `no reply to ${message.type} within ${timeoutMs} ms`, { id }));
      }, timeoutMs);
      this._pending.set(id, { resolve, reject, timer });
      ws.send(JSON.stringify({ ...message, id }));
    });
  }

  /**
   * @param {string} code
   * @param {string} message
   */
  _rejectAll(code, message) {
    const pending = this._pending;
    this._pending = new Map();
    for (const [id, p] of pending) {
      clearTimeout(p.timer);
      p.reject(new RealtimeError(code, message, { id }));
    }
  }

  /**
   * One `time` exchange for the ClockSync, with the arrival time noted before parsing.
   * @param {number} t0
   * @returns {Promise<import("./clock.js").TimeReply>}
   */
  async _timeExchange(t0) {
    const { frame, receivedAt } = await this._request({ type: "time", t0 }, this.clock.timeoutMs);
    return { t1: frame.t1, t2: frame.t2, t3: receivedAt };
  }

  /**
   * Observes a resource: resolves with its current value; every change is then emitted as an
   * event. Observed again after each reconnect. Before the first welcome, waits for it.
   * @param {Resource} resource
   * @param {{profile?: {modes?: string[], formats?: string[], headers?: Record<string, string>}}} [options]
   * @returns {Promise<any>}
   */
  observe(resource, options) {
    this._observed.set(resource, options);
    if (this._ready) {
      const reply = this._sendObserve(resource, options);
      this._observeReplies.set(resource, reply);
      return reply;
    }
    if (this._closed && this.url === null) {
      return Promise.reject(new RealtimeError("not_connected", "connect() first"));
    }
    return this.whenConnected().then(() => /** @type {Promise<any>} */ (this._observeReplies.get(resource)));
  }

  /**
   * @param {Resource} resource
   * @param {object | undefined} options
   */
  _sendObserve(resource, options) {
    return this.request({ type: "observe", resource, ...(options ?? {}) });
  }

  /**
   * Stops observing a resource (also across reconnects).
   * @param {Resource} resource
   * @returns {Promise<any>}
   */
  unobserve(resource) {
    this._observed.delete(resource);
    this._observeReplies.delete(resource);
    if (!this._ready) return Promise.resolve(null);
    return this.request({ type: "unobserve", resource });
  }

  /**
   * Changes the playback state. `version` defaults to the current state's. Resolves with the new
   * state; rejects with a RealtimeError (e.g. code "stale_version", whose `detail` is the current
   * state, already applied here).
   * @param {UpdateAction} action
   * @param {{position?: number, rate?: number, media_id?: string, version?: number}} [fields]
   * @returns {Promise<PlaybackState>}
   */
  async update(action, fields = {}) {
    const version = fields.version ?? this._state?.version ?? 0;
    const frame = await this.request({ type: "update", action, ...fields, version });
    const { type: _type, id: _id, ...state } = frame;
    return /** @type {PlaybackState} */ (state);
  }

  /**
   * @param {string} text
   * @returns {Promise<any>} the ack
   */
  chat(text) {
    return this.request({ type: "chat", text });
  }

  /**
   * @param {string} text
   * @param {number} at media position, seconds
   * @returns {Promise<any>} the ack
   */
  danmaku(text, at) {
    return this.request({ type: "danmaku", text, at });
  }

  /**
   * Reports playback telemetry; offset_ms and rtt_ms default to the clock's estimate.
   * @param {{drift_ms: number, rate: number, offset_ms?: number, rtt_ms?: number}} fields
   * @returns {Promise<any>} the ack
   */
  telemetry(fields) {
    const rtt = Number.isFinite(this.clock.rttMs) ? this.clock.rttMs : 0;
    return this.request({ type: "telemetry", offset_ms: this.clock.offsetMs, rtt_ms: rtt, ...fields });
  }

  /**
   * Relays a WebRTC signal to another connection of the room.
   * @param {string} to connection id
   * @param {unknown} signal
   * @returns {Promise<any>} the ack
   */
  webrtc(to, signal) {
    return this.request({ type: "webrtc", to, signal });
  }

  /**
   * @param {string} type
   * @param {unknown} detail
   */
  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
