// Cache warming for display screens: the first MiB of each video of the screen's room, fetched
// with a Range request while nothing plays, so a show starts from the browser's cache (the
// video files are served `Cache-Control: immutable`, so the cached head is reused). One request
// at a time; pause() (an event starts: the show has the network) aborts the one in flight, which
// is fetched again on resume(). The event `listed` {videos} gives the list (with each video's
// media_ids) as soon as it is read.
//
// Plain ES module, no dependencies. Used by display.js.

export const WARM_BYTES = 1 << 20; // the first MiB of each video: its header and first seconds

/**
 * Fetches the first MiB of each video with a Range request, one at a time; pause() aborts the
 * request in flight (it is fetched again on resume()).
 */
export class CacheWarmer extends EventTarget {
  /**
   * @param {{listUrl: string, token: () => string, bytes?: number, fetch?: typeof fetch}} options
   */
  constructor(options) {
    super();
    this.listUrl = options.listUrl;
    this.token = options.token;
    this.bytes = options.bytes ?? WARM_BYTES;
    this._fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    /** @type {"new" | "running" | "paused" | "done" | "failed"} */
    this.state = "new";
    /** @type {Array<{id: string, url: string}> | null} */
    this.queue = null;
    /** @type {any[]} the listed videos (GET /api/videos entries, with media_ids) */
    this.videos = [];
    /** @type {string[]} */
    this.warmed = [];
    /** @type {string[]} */
    this.failed = [];
    this.aborted = 0;
    this.requests = 0;
    /** @type {AbortController | null} */
    this._abort = null;
    this._paused = false;
    this._running = false;
  }

  get status() {
    return {
      state: this.state, warmed: [...this.warmed], failed: [...this.failed], aborted: this.aborted,
      requests: this.requests, pending: this.queue ? this.queue.map((v) => v.id) : null,
    };
  }

  /** Start (or go on) unless paused. */
  resume() {
    this._paused = false;
    if (!this._running && this.state !== "done") this._run();
  }

  /** Stop at once: the request in flight is aborted and fetched again on resume(). */
  pause() {
    this._paused = true;
    if (this._abort) this._abort.abort();
    if (this.state === "running" || this.state === "new") this._set("paused");
  }

  /** @param {"new" | "running" | "paused" | "done" | "failed"} state */
  _set(state) {
    if (this.state === state) return;
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: this.status }));
  }

  async _run() {
    this._running = true;
    try {
      if (this.queue === null) {
        const answer = await this._fetch(this.listUrl, { headers: { Authorization: `Bearer ${this.token()}` } });
        if (!answer.ok) throw new Error(`GET ${this.listUrl}: HTTP ${answer.status}`);
        const body = await answer.json();
        this.videos = (body.videos ?? []).filter((/** @type {any} */ v) => typeof v.url === "string");
        this.queue = this.videos.map((/** @type {any} */ v) => ({ id: v.id, url: v.url }));
        this.dispatchEvent(new CustomEvent("listed", { detail: { videos: this.videos } }));
      }
      while (!this._paused && this.queue.length > 0) {
        this._set("running");
        const video = this.queue[0];
        this._abort = new AbortController();
        try {
          this.requests += 1;
          const answer = await this._fetch(video.url, {
            headers: { Range: `bytes=0-${this.bytes - 1}` }, signal: this._abort.signal,
          });
          await answer.arrayBuffer(); // read it all: the cache keeps what was read
          if (!answer.ok) throw new Error(`HTTP ${answer.status}`);
          this.warmed.push(video.id);
        } catch (error) {
          if (/** @type {Error} */ (error).name === "AbortError") {
            this.aborted += 1;
            break; // paused: this video is warmed again on resume
          }
          this.failed.push(video.id);
        } finally {
          this._abort = null;
        }
        this.queue.shift();
      }
      if (this._paused) this._set("paused");
      else if (this.queue.length === 0) this._set("done");
    } catch {
      this._set("failed"); // the list could not be read: read again on the next resume()
    } finally {
      this._running = false;
    }
  }
}
