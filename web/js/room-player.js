// The room page's player: the room's media in one <video>, on the room's timeline.
//
// - The PlaybackResult (`playback` messages) names how this item can be played;
//   playableSources() lists the entries this browser plays, best first (native MP4/WebM, hls.js
//   for HLS -- an Emby/Jellyfin transcode --, mpegts.js for HTTP-FLV, an MKV last) and
//   MediaPlayer loads the first. One that turns out undecodable (a decode error, an hls.js codec
//   error, or a video whose picture stays empty while its sound plays: HEVC) gives way to the
//   next; when none is left, or none was playable (a DASH-only Bilibili answer), the problem says
//   what to do instead -- never a silent black player.
// - The playback state goes to the shared SyncEngine (engine.js) once the element holds the
//   state's media: clock sync, rate steering, hard seek past a bound, scheduled starts. A live
//   item has no timeline: it plays at the live edge while the room plays, and pauses with it.
// - Signed URLs expire: the result is asked for again a while before the first one expires
//   (and arrives again by itself after a reconnect). A fresh URL for the item playing is used
//   the next time the element needs one (an error, a pause, or when the old one is about to
//   expire), so a refresh never interrupts play.
// - Readiness (docs/realtime.md, "Waiting for viewers"): the player reports `readiness` when it
//   changes: ready when it can play at the room's position now; not ready after it has been
//   unable to for STALL_REPORT_MS (a short seek is no stall); `wait` is the "the room waits
//   for me" choice. A live item, nothing selected, or an item this browser cannot play counts as
//   ready (the room must not wait for what will never come).
//
// Plain ES module.

import { AUDIO_FORMATS, MediaPlayer, noPicture, playableSources, unplayable } from "./media.js";

export const STALL_REPORT_MS = 400;
const REFRESH_BEFORE_MS = 10 * 60 * 1000; // ask for fresh URLs this long before they expire
const SWAP_BEFORE_MS = 60 * 1000; // use the fresh URL at the latest this long before the old expires
/** What the page asks the server for: every mode a browser may play. */
export const PROFILE = Object.freeze({ modes: ["direct", "proxy", "hls", "flv"] });

/**
 * Events (CustomEvent): `source` {source | null, error | null} when what plays changes,
 * `problem` {message} (empty message: the problem is gone).
 */
export class RoomPlayer extends EventTarget {
  /**
   * @param {HTMLVideoElement} video
   * @param {import("./engine.js").SyncEngine} engine
   * @param {{infoCommand?: (mediaId: string) => string}} [options] infoCommand: the CLI line that
   *   prints an item's URLs for mpv (shown when the browser cannot play it)
   */
  constructor(video, engine, options = {}) {
    super();
    this.video = video;
    this.engine = engine;
    this.infoCommand = options.infoCommand ?? ((/** @type {string} */ id) => `synctv media info ROOM ${id}`);
    this.media = new MediaPlayer(video);
    /** @type {import("./realtime.js").RealtimeClient | null} */
    this.client = null;
    /** @type {any} the newest PlaybackResult */
    this.result = null;
    /** @type {import("./media.js").Source | null} */
    this.source = null;
    /** @type {import("./media.js").Source | null} a fresher URL for the loaded item */
    this.fresh = null;
    /** @type {string | null} the media id in the element */
    this.loadedMedia = null;
    /** @type {Set<string>} the loaded item's entries this browser failed to decode (entryKey) */
    this.failed = new Set();
    /** @type {string | null} the media id `failed` is about */
    this.failedMedia = null;
    this._lastFailure = "";
    this.fallbacks = 0; // entries given up for the next one (status)
    /** @type {any} */
    this.state = null;
    this.problem = "";
    this.waitForMe = true;
    /** @type {boolean | null} the readiness last reported */
    this.reported = null;
    /** @type {ReturnType<typeof setTimeout> | null} */
    this._stallTimer = null;
    /** @type {ReturnType<typeof setTimeout> | null} */
    this._refreshTimer = null;
    /** @type {ReturnType<typeof setTimeout> | null} */
    this._swapTimer = null;
    this.media.addEventListener("error", (e) => {
      const detail = /** @type {CustomEvent} */ (e).detail;
      if (detail.codec) this._undecodable(`this browser cannot decode this stream (${detail.message}): its codec, `
        + "e.g. HEVC/H.265, is not supported here; try another browser or ask for an H.264 version", false);
      else this._mediaError(detail.message);
    });
    video.addEventListener("error", () => this._videoError());
    for (const type of ["loadeddata", "resize", "playing"]) video.addEventListener(type, () => this._checkPicture());
    for (const type of ["waiting", "playing", "canplay", "canplaythrough", "seeking", "seeked", "stalled",
      "loadeddata", "emptied", "pause", "play"]) {
      video.addEventListener(type, () => this.checkReadiness());
    }
    video.addEventListener("pause", () => this._swapIfIdle());
    setInterval(() => this.checkReadiness(), 250);
  }

  /** @param {import("./realtime.js").RealtimeClient} client */
  attach(client) {
    this.client = client;
    client.addEventListener("welcome", () => {
      this.reported = null; // a new connection knows nothing: report again
      this.checkReadiness();
    });
  }

  get live() {
    return !!this.source?.live;
  }

  // -- what to play ------------------------------------------------------------------------------

  /** @param {any} result a PlaybackResult or null */
  onPlayback(result) {
    this.result = result;
    this._scheduleRefresh(result);
    if (!result || !result.media_id) {
      this._unload();
      this.apply();
      return;
    }
    if (this.failedMedia !== result.media_id) {
      this.failed = new Set();
      this.failedMedia = result.media_id;
    }
    const picked = this._candidates(result)[0];
    if (!picked && this.source && this.loadedMedia === result.media_id) {
      this.apply(); // its picture failed but its sound plays: keep it (the problem stays shown)
      return;
    }
    if (!picked) {
      const error = this.failed.size ? this._lastFailure : unplayable(result, this.infoCommand(result.media_id));
      this._unload();
      this.loadedMedia = result.media_id;
      this._setProblem(error);
      this.dispatchEvent(new CustomEvent("source", { detail: { source: null, error } }));
      this.apply();
      return;
    }
    const same = this.source && this.loadedMedia === result.media_id && this.source.kind === picked.kind
      && this.source.info.mode === picked.info.mode;
    if (same) {
      if (picked.url !== this.source?.url) this.fresh = picked; // used when the element next needs a URL
      this._scheduleSwap();
      this.apply();
      return;
    }
    this._load(picked, result.media_id);
  }

  /**
   * @param {import("./media.js").Source} source
   * @param {string} mediaId
   */
  _load(source, mediaId) {
    this.source = source;
    this.fresh = null;
    this.loadedMedia = mediaId;
    this._setProblem("");
    this.engine.follow(null);
    this.media.load(source).then(() => this.apply(), (error) => this._mediaError(String(error?.message ?? error)));
    this.dispatchEvent(new CustomEvent("source", { detail: { source, error: null } }));
    this._scheduleSwap();
  }

  /**
   * The entries of `result` this browser plays, best first, without those it failed to decode.
   * @param {any} result
   */
  _candidates(result) {
    return playableSources(result, this.video).filter((s) => !this.failed.has(entryKey(s)));
  }

  _unload() {
    this.media.unload();
    this.source = null;
    this.fresh = null;
    this.loadedMedia = null;
    this._setProblem("");
    this.dispatchEvent(new CustomEvent("source", { detail: { source: null, error: null } }));
  }

  /** @param {any} result */
  _scheduleRefresh(result) {
    if (this._refreshTimer !== null) clearTimeout(this._refreshTimer);
    this._refreshTimer = null;
    const expiries = (result?.infos ?? []).map((/** @type {any} */ i) => Number(i.expires_at)).filter(Number.isFinite);
    if (!expiries.length || !this.client) return;
    const inMs = Math.min(...expiries) - this.engine.serverNow() - REFRESH_BEFORE_MS;
    this._refreshTimer = setTimeout(() => {
      this.client?.observe("playback", { profile: PROFILE }).catch(() => {});
    }, Math.max(30_000, Math.min(2 ** 31 - 1, inMs)));
  }

  _scheduleSwap() {
    if (this._swapTimer !== null) clearTimeout(this._swapTimer);
    this._swapTimer = null;
    const expires = Number(this.source?.info?.expires_at);
    if (!Number.isFinite(expires)) return;
    const inMs = expires - this.engine.serverNow() - SWAP_BEFORE_MS;
    this._swapTimer = setTimeout(() => this._swap(), Math.max(1000, Math.min(2 ** 31 - 1, inMs)));
  }

  /** Load the fresher URL of the item in the element, then follow the state again. */
  _swap() {
    const fresh = this.fresh;
    if (!fresh || !this.loadedMedia) return;
    this._load(fresh, this.loadedMedia);
  }

  _swapIfIdle() {
    if (this.fresh && (!this.state || !this.state.playing)) this._swap();
  }

  // -- following the room ------------------------------------------------------------------------

  /** @param {any} state */
  onState(state) {
    this.state = state;
    this.apply();
  }

  apply() {
    const state = this.state;
    const video = this.video;
    if (!state || !state.media_id || !this.source || this.loadedMedia !== state.media_id) {
      this.engine.follow(null); // no media, or waiting for its URL
      this.checkReadiness();
      return;
    }
    if (this.live) {
      if (this.engine.controller.mode !== "stopped") this.engine.follow(null);
      const run = state.playing && !state.ended;
      if (run && video.paused) video.play().catch(() => {});
      if (!run && !video.paused) video.pause();
    } else {
      this.engine.follow(state);
    }
    this.checkReadiness();
  }

  // -- readiness ---------------------------------------------------------------------------------

  /** Whether the player can play at the room's position now (see the module header). */
  ready() {
    const state = this.state;
    if (!state || !state.media_id || state.ended || this.problem || this.live) return true;
    if (!this.source || this.loadedMedia !== state.media_id) return false;
    const video = this.video;
    return video.readyState >= 3 && !video.seeking;
  }

  checkReadiness() {
    const client = this.client;
    if (!client || !client.connected) return;
    const ready = this.ready();
    if (ready) {
      if (this._stallTimer !== null) clearTimeout(this._stallTimer);
      this._stallTimer = null;
      if (this.reported !== true) this._report(true);
      return;
    }
    if (this.reported === false || this._stallTimer !== null) return;
    this._stallTimer = setTimeout(() => {
      this._stallTimer = null;
      if (!this.ready() && this.reported !== false) this._report(false);
    }, STALL_REPORT_MS);
  }

  /** @param {boolean} wait the "the room waits for me" choice */
  setWaitForMe(wait) {
    this.waitForMe = wait;
    if (this.client?.connected && this.reported !== null) this._report(this.reported);
  }

  /** @param {boolean} ready */
  _report(ready) {
    this.reported = ready;
    this.client?.request({ type: "readiness", ready, wait: this.waitForMe }).catch(() => {
      this.reported = null; // not sent: try again on the next check
    });
  }

  // -- problems ----------------------------------------------------------------------------------

  /** @param {string} message */
  _setProblem(message) {
    if (message === this.problem) return;
    this.problem = message;
    this.dispatchEvent(new CustomEvent("problem", { detail: { message } }));
    this.checkReadiness();
  }

  /** @param {string} message */
  _mediaError(message) {
    if (this.fresh) {
      this._swap(); // an expired URL, most likely: the fresh one
      return;
    }
    this._setProblem(`${message}. The page asks for the media again; if it keeps failing, ask whoever added it to check the URL.`);
    this.client?.observe("playback", { profile: PROFILE }).catch(() => {});
  }

  _videoError() {
    const error = this.video.error;
    if (!error || !this.source) return;
    if (this.fresh) {
      this._swap();
      return;
    }
    if (error.code === 4 || error.code === 3) {
      // MEDIA_ERR_SRC_NOT_SUPPORTED / MEDIA_ERR_DECODE: the codec, most often (HEVC, AC-3)
      this._undecodable("this browser cannot play this video (its codec, e.g. HEVC/H.265, is not supported here); "
        + "try another browser or ask for an H.264 MP4 or a WebM version", false);
      return;
    }
    this._mediaError(`the video could not be loaded (${error.message || `error ${error.code}`})`);
  }

  /** A video whose sound plays but whose picture stays empty (HEVC in Chromium): undecodable. */
  _checkPicture() {
    const source = this.source;
    const video = this.video;
    if (!source || !this.loadedMedia || video.readyState < 2 || video.videoWidth > 0) return;
    if (AUDIO_FORMATS.includes(String(source.info.format)) || this.failed.has(entryKey(source))) return;
    this._undecodable(noPicture(this.infoCommand(this.loadedMedia)), true);
  }

  /**
   * The loaded entry cannot be decoded here: load the next playable entry of the result, or
   * say so (the next refresh of the result does not try it again).
   * @param {string} message what to tell the viewer when nothing else is left
   * @param {boolean} keepSound leave the element playing (its sound works)
   */
  _undecodable(message, keepSound) {
    const source = this.source;
    const mediaId = this.loadedMedia;
    if (!source || !mediaId) return;
    this.failed.add(entryKey(source));
    this._lastFailure = message;
    const next = this.result?.media_id === mediaId ? this._candidates(this.result)[0] : undefined;
    if (next) {
      this.fallbacks += 1;
      this._load(next, mediaId);
      return;
    }
    if (!keepSound) {
      this.media.unload();
      this.source = null;
      this.fresh = null;
      this.dispatchEvent(new CustomEvent("source", { detail: { source: null, error: message } }));
    }
    this._setProblem(message);
    this.apply();
  }
}

/**
 * What a Source has in common with the same entry of a refreshed result (whose URLs are new):
 * its place, mode and format.
 * @param {import("./media.js").Source} source
 */
function entryKey(source) {
  return `${source.index} ${source.info?.mode} ${source.info?.format}`;
}
