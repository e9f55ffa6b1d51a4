// Clock sync with the synctv server: an NTP-style estimate of server time from `time` exchanges.
//
// A sample is one exchange: the client notes t0 (local send), the server answers t1 (receive) and
// t2 (send) in server milliseconds, the client notes t3 (local arrival). Then
//   offset = ((t1 - t0) + (t2 - t3)) / 2      rtt = (t3 - t0) - (t2 - t1)
// and serverNow() = localNow() + offset. The offset's error is at most half the round trip, and a
// queued or delayed reply shows up as a long round trip, so the estimate keeps the samples with the
// smallest round trips: the median offset of the best few of a window of recent samples.
//
// Local time is `performance.timeOrigin + performance.now()` by default, never Date.now(): it
// advances with the monotonic clock, so a wall clock that is wrong (or stepped by NTP) only moves
// the fixed `timeOrigin` part, which the offset absorbs. Date.now() may jump while the page runs.
//
// The server answers in whole milliseconds, truncated. When t1 and t2 are integers the true
// instants lie anywhere in [t, t + 1), so half a tick is added to both (`serverTickMs`).
//
// Plain ES module, no dependencies. Used by realtime.js, the room page and the display page.

/**
 * @typedef {object} ClockSample
 * @property {number} t0 local send time (ms)
 * @property {number} t1 server receive time (ms)
 * @property {number} t2 server send time (ms)
 * @property {number} t3 local arrival time (ms)
 * @property {number} offset server minus local (ms)
 * @property {number} rtt round trip without the server's own time (ms)
 */

/**
 * What a transport returns for one `time` exchange. `t3` is the local arrival time if the
 * transport noted it as the frame arrived (better: no parsing or promise delay in it); otherwise
 * ClockSync reads its own clock when the promise resolves.
 * @typedef {{t1: number, t2: number, t3?: number}} TimeReply
 */

/**
 * Sends `time {t0}` and resolves with the server's times; rejects when the reply is lost.
 * @typedef {(t0: number) => Promise<TimeReply>} TimeRequest
 */

/**
 * @typedef {object} ClockSyncOptions
 * @property {() => number} [now] local clock in ms; default performance.timeOrigin + performance.now()
 * @property {number} [burstSize] samples taken at start() and after reset() (8)
 * @property {number} [burstSpacingMs] pause between the samples of a burst (50)
 * @property {number} [resyncIntervalMs] time between periodic re-sync bursts (20000)
 * @property {number} [resyncBurstSize] samples in a periodic re-sync burst (4)
 * @property {number} [timeoutMs] a reply later than this is lost (2000)
 * @property {number} [windowSize] recent samples kept (16)
 * @property {number} [maxSampleAgeMs] samples older than this are dropped, clocks drift (120000)
 * @property {number} [bestOf] how many lowest-round-trip samples the estimate uses (3)
 * @property {number} [serverTickMs] resolution of integer server times (1); 0 disables the correction
 */

/** @returns {number} */
export function defaultNow() {
  return performance.timeOrigin + performance.now();
}

/**
 * One sample from the four timestamps of an exchange.
 * @param {number} t0
 * @param {number} t1
 * @param {number} t2
 * @param {number} t3
 * @param {number} [serverTickMs]
 * @returns {ClockSample}
 */
export function makeSample(t0, t1, t2, t3, serverTickMs = 1) {
  let s1 = t1;
  let s2 = t2;
  if (serverTickMs > 0 && Number.isInteger(t1) && Number.isInteger(t2)) {
    s1 += serverTickMs / 2;
    s2 += serverTickMs / 2;
  }
  return {
    t0, t1, t2, t3,
    offset: ((s1 - t0) + (s2 - t3)) / 2,
    rtt: Math.max(0, (t3 - t0) - (t2 - t1)),
  };
}

/**
 * The estimate from a set of samples: the median offset of the `bestOf` samples with the smallest
 * round trips, and the smallest round trip.
 * @param {ClockSample[]} samples
 * @param {number} bestOf
 * @returns {{offsetMs: number, rttMs: number} | null}
 */
export function estimate(samples, bestOf) {
  if (samples.length === 0) return null;
  const best = [...samples].sort((a, b) => a.rtt - b.rtt).slice(0, Math.max(1, bestOf));
  const offsets = best.map((s) => s.offset).sort((a, b) => a - b);
  const mid = offsets.length >> 1;
  const offsetMs = offsets.length % 2 ? offsets[mid] : (offsets[mid - 1] + offsets[mid]) / 2;
  return { offsetMs, rttMs: best[0].rtt };
}

/** @param {number} ms */
function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Keeps an estimate of the server's clock.
 *
 * Events (CustomEvent, `detail` as given):
 * - `change` {offsetMs, rttMs, samples}: the estimate moved (after a sample);
 * - `synced` {offsetMs, rttMs, samples}: a burst finished with at least one sample;
 * - `lost` {t0, error}: an exchange failed or timed out (the sample is skipped).
 */
export class ClockSync extends EventTarget {
  /**
   * @param {TimeRequest} request one `time` exchange over some transport
   * @param {ClockSyncOptions} [options]
   */
  constructor(request, options = {}) {
    super();
    this._request = request;
    /** @type {() => number} */
    this.now = options.now ?? defaultNow;
    this.burstSize = options.burstSize ?? 8;
    this.burstSpacingMs = options.burstSpacingMs ?? 50;
    this.resyncIntervalMs = options.resyncIntervalMs ?? 20000;
    this.resyncBurstSize = options.resyncBurstSize ?? 4;
    this.timeoutMs = options.timeoutMs ?? 2000;
    this.windowSize = options.windowSize ?? 16;
    this.maxSampleAgeMs = options.maxSampleAgeMs ?? 120000;
    this.bestOf = options.bestOf ?? 3;
    this.serverTickMs = options.serverTickMs ?? 1;
    /** @type {ClockSample[]} */
    this._samples = [];
    /** server minus local, ms; 0 until the first sample or seed */
    this._offsetMs = 0;
    this._rttMs = Infinity;
    this._hasEstimate = false;
    this._synced = false;
    this._running = false;
    this._generation = 0;
    /** @type {ReturnType<typeof setTimeout> | null} */
    this._timer = null;
    /** @type {Promise<number> | null} */
    this._burst = null;
    /** @type {Array<() => void>} */
    this._syncWaiters = [];
    this.lostCount = 0;
  }

  /** Server minus local clock, in ms (0 before any sample). */
  get offsetMs() { return this._offsetMs; }

  /** The smallest round trip among the samples in use, in ms (Infinity before any sample). */
  get rttMs() { return this._rttMs; }

  /** True once a burst since the last reset() gave at least one sample. */
  get synced() { return this._synced; }

  /** The samples in the window, oldest first (a copy). */
  get samples() { return [...this._samples]; }

  /** The server's clock now, in ms. */
  serverNow() {
    return this.now() + this._offsetMs;
  }

  /**
   * A server time in ms converted to the local clock.
   * @param {number} serverMs
   */
  toLocal(serverMs) {
    return serverMs - this._offsetMs;
  }

  /**
   * A rough estimate before any exchange, e.g. from `welcome.server_time_ms` and its arrival time.
   * Ignored once an estimate exists (an old estimate is closer than a one-way guess).
   * @param {number} serverMs
   * @param {number} [localMs]
   */
  seed(serverMs, localMs = this.now()) {
    if (this._hasEstimate) return;
    this._hasEstimate = true;
    this._offsetMs = serverMs - localMs;
    this._emit("change");
  }

  /** Burst now, then re-sync periodically until stop(). */
  start() {
    this._running = true;
    this._clearTimer();
    this.burst(this.burstSize).finally(() => this._scheduleResync());
  }

  /** Stops periodic re-sync and abandons a burst in progress. The estimate stays. */
  stop() {
    this._running = false;
    this._generation += 1;
    this._burst = null;
    this._clearTimer();
  }

  /**
   * Forgets the samples (e.g. after a reconnect: the server may be another node). The current
   * offset stays in use until the first new sample replaces it.
   */
  reset() {
    this._generation += 1;
    this._burst = null;
    this._samples = [];
    this._rttMs = Infinity;
    this._synced = false;
  }

  /**
   * Resolves once synced (at once if already).
   * @returns {Promise<void>}
   */
  whenSynced() {
    if (this._synced) return Promise.resolve();
    return new Promise((resolve) => this._syncWaiters.push(resolve));
  }

  /**
   * Takes `count` samples one after the other, `burstSpacingMs` apart. Resolves with the number of
   * samples obtained. A burst already running is joined rather than doubled.
   * @param {number} [count]
   * @returns {Promise<number>}
   */
  burst(count = this.burstSize) {
    if (this._burst) return this._burst;
    const generation = this._generation;
    const run = async () => {
      let got = 0;
      for (let i = 0; i < count && generation === this._generation; i++) {
        if (i > 0) await sleep(this.burstSpacingMs);
        if (generation !== this._generation) break;
        if (await this.sampleOnce(generation)) got += 1;
      }
      if (generation === this._generation) {
        this._burst = null;
        if (got > 0 || this._samples.length > 0) {
          this._synced = true;
          this._emit("synced");
          const waiters = this._syncWaiters;
          this._syncWaiters = [];
          for (const resolve of waiters) resolve();
        }
      }
      return got;
    };
    const promise = run();
    this._burst = promise;
    return promise;
  }

  /**
   * One exchange; adds the sample and updates the estimate. Resolves false when the reply was lost
   * or the sync was reset meanwhile.
   * @param {number} [generation]
   * @returns {Promise<boolean>}
   */
  async sampleOnce(generation = this._generation) {
    const t0 = this.now();
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    let timer;
    try {
      const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error("time reply timed out")), this.timeoutMs);
      });
      const reply = await Promise.race([this._request(t0), timeout]);
      const t3 = typeof reply.t3 === "number" ? reply.t3 : this.now();
      if (generation !== this._generation) return false;
      if (!Number.isFinite(reply.t1) || !Number.isFinite(reply.t2) || t3 < t0) {
        throw new Error("malformed time reply");
      }
      this.addSample(makeSample(t0, reply.t1, reply.t2, t3, this.serverTickMs));
      return true;
    } catch (error) {
      this.lostCount += 1;
      this._emit("lost", { t0, error });
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Adds a sample to the window and re-estimates.
   * @param {ClockSample} sample
   */
  addSample(sample) {
    this._samples.push(sample);
    const oldest = sample.t3 - this.maxSampleAgeMs;
    this._samples = this._samples.filter((s) => s.t3 >= oldest).slice(-this.windowSize);
    const next = estimate(this._samples, this.bestOf);
    if (!next) return;
    const changed = next.offsetMs !== this._offsetMs || next.rttMs !== this._rttMs || !this._hasEstimate;
    this._offsetMs = next.offsetMs;
    this._rttMs = next.rttMs;
    this._hasEstimate = true;
    if (changed) this._emit("change");
  }

  _scheduleResync() {
    if (!this._running) return;
    this._clearTimer();
    this._timer = setTimeout(() => {
      this._timer = null;
      if (!this._running) return;
      this.burst(this.resyncBurstSize).finally(() => this._scheduleResync());
    }, this.resyncIntervalMs);
  }

  _clearTimer() {
    if (this._timer !== null) {
      clearTimeout(this._timer);
      this._timer = null;
    }
  }

  /**
   * @param {string} type
   * @param {object} [extra]
   */
  _emit(type, extra) {
    const detail = extra ?? { offsetMs: this._offsetMs, rttMs: this._rttMs, samples: this._samples.length };
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
