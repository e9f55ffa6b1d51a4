// Choosing and loading media: which PlaybackInfo of a PlaybackResult fits this browser, and a
// player that puts it in a <video> element (docs/rooms.md, "Playing"). Shared by the room page
// and the display page.
//
//   const source = pickSource(result, video);      // {kind: "native" | "hls" | "flv", info} or {error}
//   const all = playableSources(result, video);    // every playable one, best first (fallbacks)
//   const player = new MediaPlayer(video);
//   await player.load(source);                     // native src, hls.js or mpegts.js
//
// hls.js and mpegts.js are loaded on first use from /vendor/ (synctv/site.py serves them from
// web/node_modules); a browser that plays HLS natively (Safari) gets the playlist as its src.
//
// Plain ES module, no dependencies.

/** Modes a browser plays as a plain src (a file over HTTP, Range requests). */
export const NATIVE_MODES = Object.freeze(["direct", "proxy"]);
export const HLS_JS_URL = "/vendor/hls.js/hls.min.js";
export const MPEGTS_JS_URL = "/vendor/mpegts.js/mpegts.js";

/** MIME types to ask `canPlayType` about, by PlaybackInfo format. */
const TYPES = Object.freeze({
  mp4: ['video/mp4; codecs="avc1.42E01E, mp4a.40.2"', "video/mp4"],
  m4v: ["video/mp4"],
  mov: ["video/mp4"],
  webm: ['video/webm; codecs="vp9, opus"', 'video/webm; codecs="vp8, vorbis"', "video/webm"],
  mkv: ["video/webm"],
  ogg: ["video/ogg", "audio/ogg"],
  mp3: ["audio/mpeg"],
  m4a: ["audio/mp4"],
  hevc: ['video/mp4; codecs="hvc1.1.6.L93.B0"'],
  flac: ["audio/flac"],
  wav: ["audio/wav"],
  aac: ["audio/aac"],
  opus: ['audio/ogg; codecs="opus"'],
});

// a WAV of silence (44 bytes of header, 2 samples): the autoplay probe
const SILENT_WAV = "data:audio/wav;base64,UklGRigAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YQQAAAAAAAAA";

/**
 * Whether `video` plays `format` natively ("unknown": assume it may, the file decides).
 * @param {HTMLMediaElement} video
 * @param {string} format
 */
export function canPlayFormat(video, format) {
  if (format === "unknown") return true;
  const types = TYPES[/** @type {keyof typeof TYPES} */ (format)];
  if (!types) return false;
  return types.some((type) => video.canPlayType(type) !== "");
}

/** Whether Media Source Extensions are there (hls.js and mpegts.js need them). */
export function hasMSE() {
  const w = /** @type {any} */ (globalThis);
  return typeof w.MediaSource === "function" || typeof w.ManagedMediaSource === "function";
}

/**
 * The URL to play for a PlaybackResult, or null: the first direct or proxy entry whose format
 * this browser plays natively.
 * @param {any} result
 * @param {(format: string) => boolean} canPlay
 * @returns {string | null}
 */
export function pickUrl(result, canPlay) {
  for (const info of result?.infos ?? []) {
    if (NATIVE_MODES.includes(info.mode) && typeof info.url === "string" && canPlay(info.format ?? "unknown")) {
      return info.url;
    }
  }
  return null;
}

/**
 * @typedef {object} Source
 * @property {"native" | "hls" | "flv"} kind how to play it
 * @property {any} info the PlaybackInfo
 * @property {string} url
 * @property {boolean} live the item is a live stream (metadata.live)
 * @property {number} [index] its place in the result's infos
 */

/** Containers browsers play natively or not depending on codecs the page cannot see (MKV with
 * HEVC, AC-3, DTS...): tried only when nothing surer is offered, e.g. after a server's HLS
 * transcode. */
const UNSURE_FORMATS = new Set(["mkv"]);
/** Formats with no picture: "no picture" is no problem for these. */
export const AUDIO_FORMATS = Object.freeze(["mp3", "m4a", "ogg", "oga", "opus", "flac", "wav", "aac"]);

/**
 * Every PlaybackInfo of `result` this browser can play, best first: the server's order, except
 * that an MKV comes after everything surer. direct/proxy in a format the video element plays;
 * hls with hls.js (MSE) or natively; flv with mpegts.js (MSE).
 * @param {any} result a PlaybackResult
 * @param {HTMLMediaElement} video
 * @param {{mse?: boolean}} [options] mse: override the MSE check (tests)
 * @returns {Source[]}
 */
export function playableSources(result, video, options = {}) {
  const mse = options.mse ?? hasMSE();
  const infos = Array.isArray(result?.infos) ? result.infos : [];
  /** @type {Source[]} */
  const sure = [];
  /** @type {Source[]} */
  const unsure = [];
  infos.forEach((/** @type {any} */ info, /** @type {number} */ index) => {
    if (typeof info?.url !== "string") return;
    const live = !!info.metadata?.live;
    const format = String(info.format ?? "unknown");
    const url = info.url;
    if (NATIVE_MODES.includes(info.mode) && !["hls", "flv", "dash"].includes(format) && canPlayFormat(video, format)) {
      (UNSURE_FORMATS.has(format) ? unsure : sure).push({ kind: "native", info, url, live, index });
    } else if (info.mode === "hls" || format === "hls") {
      if (mse) sure.push({ kind: "hls", info, url, live, index });
      else if (video.canPlayType("application/vnd.apple.mpegurl")) sure.push({ kind: "native", info, url, live, index });
    } else if ((info.mode === "flv" || format === "flv") && mse) {
      sure.push({ kind: "flv", info, url, live, index });
    }
  });
  return [...sure, ...unsure];
}

/**
 * The best PlaybackInfo of `result` this browser can play (playableSources' first); when none
 * fits, `{error}` says what to do.
 * @param {any} result a PlaybackResult
 * @param {HTMLMediaElement} video
 * @param {{mse?: boolean, infoCommand?: string}} [options] mse: override the MSE check (tests);
 *   infoCommand: the `synctv media info ...` line that prints this item's URLs
 * @returns {Source | {error: string}}
 */
export function pickSource(result, video, options = {}) {
  const [best] = playableSources(result, video, options);
  return best ?? { error: unplayable(result, options.infoCommand) };
}

/**
 * Why nothing of `result` plays here, and what to do instead.
 * @param {any} result a PlaybackResult
 * @param {string} [infoCommand] the command that prints the item's URLs for a native player
 */
export function unplayable(result, infoCommand = "synctv media info ROOM MEDIA") {
  const infos = Array.isArray(result?.infos) ? result.infos.filter((/** @type {any} */ i) => typeof i?.url === "string") : [];
  if (infos.length === 0) {
    return "the server offers no way to play this item here; ask whoever added it to check its URL";
  }
  const formats = new Set(infos.map((/** @type {any} */ i) => String(i.format ?? "unknown")));
  const elsewhere = `play it with mpv or VLC: \`${infoCommand} --modes proxy\` prints its URL`;
  if (formats.has("dash")) {
    return `this video is only available as DASH (separate video and audio streams), which this page cannot play; ${elsewhere}`;
  }
  const named = [...formats].filter((f) => f !== "unknown").map((f) => f.toUpperCase());
  if (named.includes("HEVC") || named.includes("MKV")) {
    return `this browser cannot play ${named.join(", ")}; try another browser (Safari, Edge) or ask for an MP4 (H.264) or WebM version, or ${elsewhere}`;
  }
  return `this browser cannot play ${named.length ? named.join(", ") : "this item"}; try another browser or another version of the item, or ${elsewhere}`;
}

/** What to say when the browser plays the sound of a video but cannot decode its picture. */
export function noPicture(infoCommand = "synctv media info ROOM MEDIA") {
  return "this browser cannot show this video's picture (its codec, most likely HEVC/H.265, is not supported here; "
    + `only the sound plays). Try another browser (Safari, or Edge with HEVC), or play it with mpv or VLC: \`${infoCommand} --modes proxy\` prints its URL`;
}

/**
 * Loads a classic script once (the UMD builds of hls.js and mpegts.js set a global).
 * @param {string} src
 * @param {string} global the name it defines on window
 * @returns {Promise<any>}
 */
const scripts = new Map();
export function loadScript(src, global) {
  const w = /** @type {any} */ (globalThis);
  if (w[global]) return Promise.resolve(w[global]);
  if (!scripts.has(src)) {
    scripts.set(src, new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = src;
      script.async = true;
      script.onload = () => (w[global] ? resolve(w[global]) : reject(new Error(`${src} did not define ${global}`)));
      script.onerror = () => {
        scripts.delete(src);
        reject(new Error(`could not load ${src}; is web/node_modules installed (npm ci in web/)?`));
      };
      document.head.append(script);
    }));
  }
  return scripts.get(src);
}

/**
 * Mutes nothing; tells whether the autoplay policy allows sound (a silent probe's play()).
 * @returns {Promise<boolean>}
 */
export async function soundMayAutoplay() {
  try {
    const probe = new Audio(SILENT_WAV);
    probe.muted = false;
    await Promise.race([probe.play(), new Promise((resolve) => setTimeout(resolve, 1000))]);
    probe.pause();
    return true;
  } catch (error) {
    return /** @type {Error} */ (error).name !== "NotAllowedError";
  }
}

/**
 * Puts one Source at a time into a video element. Events (CustomEvent): `error` {message, fatal,
 * codec} (codec: the browser cannot decode the stream, e.g. HEVC in HLS).
 */
export class MediaPlayer extends EventTarget {
  /** @param {HTMLVideoElement} video */
  constructor(video) {
    super();
    this.video = video;
    /** @type {Source | null} */
    this.source = null;
    /** @type {any} an hls.js or mpegts.js player */
    this.engine = null;
    this._generation = 0;
  }

  /** The URL in the element (or in its hls.js / mpegts.js player), or null. */
  get url() {
    return this.source?.url ?? null;
  }

  /**
   * Plays `source` in the element (replacing what was there). Resolves when it is attached.
   * @param {Source} source
   */
  async load(source) {
    const gen = ++this._generation;
    this.unload();
    this.source = source;
    const video = this.video;
    const absolute = new URL(source.url, globalThis.location?.href).href;
    if (source.kind === "native") {
      video.preload = "auto";
      video.src = absolute;
      video.load();
      return;
    }
    if (source.kind === "hls") {
      const Hls = await loadScript(HLS_JS_URL, "Hls");
      if (gen !== this._generation) return;
      const hls = new Hls({ liveSyncDurationCount: 2, enableWorker: true });
      hls.on(Hls.Events.ERROR, (/** @type {any} */ _e, /** @type {any} */ data) => {
        if (!data?.fatal) return;
        const codec = /IncompatibleCodecs|CodecError/i.test(String(data.details));
        this._fail(`HLS: ${data.type} ${data.details}`, true, codec);
      });
      hls.loadSource(absolute);
      hls.attachMedia(video);
      this.engine = hls;
      return;
    }
    const mpegts = await loadScript(MPEGTS_JS_URL, "mpegts");
    if (gen !== this._generation) return;
    if (!mpegts.getFeatureList().mseLivePlayback) {
      this._fail("this browser cannot play HTTP-FLV live streams (no Media Source Extensions)", true);
      return;
    }
    const flv = mpegts.createPlayer({ type: "flv", isLive: true, url: absolute },
      { enableStashBuffer: false, liveBufferLatencyChasing: true, lazyLoad: false });
    flv.on(mpegts.Events.ERROR, (/** @type {string} */ type, /** @type {string} */ detail) => {
      this._fail(`live stream: ${type} ${detail}`, true);
    });
    flv.attachMediaElement(video);
    flv.load();
    this.engine = flv;
  }

  /** Empties the element and destroys the hls.js / mpegts.js player. */
  unload() {
    const engine = this.engine;
    this.engine = null;
    if (engine) {
      try {
        if (typeof engine.destroy === "function") engine.destroy();
      } catch {
        // already torn down
      }
    }
    if (this.source && this.source.kind === "native") {
      this.video.removeAttribute("src");
      this.video.load();
    }
    this.source = null;
  }

  /**
   * @param {string} message
   * @param {boolean} fatal
   * @param {boolean} [codec] the browser cannot decode the stream's codec (a retry cannot help)
   */
  _fail(message, fatal, codec = false) {
    this.dispatchEvent(new CustomEvent("error", { detail: { message, fatal, codec } }));
  }
}
