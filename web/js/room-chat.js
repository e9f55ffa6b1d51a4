// Chat and danmaku on the room page.
//
// The chat panel shows the backlog (`observe chat`: the last 50 lines the server keeps in memory)
// and each new line. Danmaku are short lines that fly over the video at a moment of the media:
// each carries `at` (the sender's media position); it is shown when this page's video reaches
// that moment, at once when the video is already there (within DANMAKU_LATE_S), and never when
// that moment is long past (a page that joins later does not replay them). Lines run in lanes
// so they do not overlap; at most MAX_FLYING fly at once; they stop while the video is paused.
// A provider's danmaku (Bilibili's comments, docs/realtime.md) carry `mode` and `color`: mode 4
// stays at the bottom and 5 at the top, centred, for FIXED_S; 1-3 and 6 scroll; 7-9 (advanced,
// code, BAS: scripts, not text) are not shown. `color` (0xRRGGBB) colours the text.
//
// The server's limits (welcome.limits: chat 500, danmaku 100 characters, messages per second)
// are shown next to the input and explained when a message is refused.
//
// Plain ES module. Text from the server is only ever set with textContent.

export const DANMAKU_LATE_S = 3;
export const FLY_S = 7;
export const FIXED_S = 4;
const SCROLL_MODES = new Set([1, 2, 3, 6]);
const MAX_FLYING = 60;
const MAX_CHAT_LINES = 300;

/**
 * @param {string} tag
 * @param {string} [className]
 * @param {string} [text]
 */
function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * The CSS colour of a danmaku's `color` (0xRRGGBB); "" (the default white) for white or anything else.
 * @param {unknown} value
 */
export function danmakuColor(value) {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value >= 0xffffff) return "";
  return `#${value.toString(16).padStart(6, "0")}`;
}

/**
 * A danmaku waiting for its moment: `place` scroll, top or bottom; `color` a CSS colour or "" (white).
 * @typedef {{text: string, at: number, mine: boolean, id: string, place: "scroll" | "top" | "bottom", color: string}} Shown
 */

/** Danmaku over the video, by media time. */
export class DanmakuLayer {
  /**
   * @param {HTMLElement} layer
   * @param {HTMLVideoElement} video
   */
  constructor(layer, video) {
    this.layer = layer;
    this.video = video;
    /** @type {Shown[]} waiting for their moment */
    this.pending = [];
    /** @type {{scroll: number[], top: number[], bottom: number[]}} per lane: until when (perf ms) it is taken */
    this.lanes = { scroll: [], top: [], bottom: [] };
    this.shown = 0;
    const tick = () => {
      this._release();
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
    setInterval(() => this._release(), 250); // animation frames stop in background tabs
  }

  /**
   * @param {{id: string, text: string, at: number, mode?: number, color?: number}} danmaku
   * @param {boolean} mine
   */
  add(danmaku, mine) {
    if (typeof danmaku.text !== "string" || !Number.isFinite(danmaku.at)) return;
    const mode = danmaku.mode ?? 1;
    const place = SCROLL_MODES.has(mode) ? "scroll" : mode === 4 ? "bottom" : mode === 5 ? "top" : null;
    if (place === null) return; // advanced, code or BAS danmaku: scripts, not text
    this.pending.push({ text: danmaku.text, at: danmaku.at, mine, id: danmaku.id, place, color: danmakuColor(danmaku.color) });
    this.pending.sort((a, b) => a.at - b.at);
    if (this.pending.length > 500) this.pending.splice(0, this.pending.length - 500);
    this._release();
  }

  /** Clear what waits (another item plays). */
  clear() {
    this.pending = [];
    this.layer.replaceChildren();
  }

  _release() {
    const now = this.video.currentTime;
    while (this.pending.length && this.pending[0].at <= now + 0.05) {
      const next = /** @type {Shown} */ (this.pending.shift());
      if (now - next.at <= DANMAKU_LATE_S) this._fly(next);
    }
  }

  /** @param {Shown} d */
  _fly(d) {
    if (this.layer.childElementCount >= MAX_FLYING) return;
    const lineHeight = Math.max(22, Math.min(36, this.layer.clientHeight / 10));
    const laneCount = Math.max(1, Math.floor((this.layer.clientHeight * (d.place === "scroll" ? 0.8 : 0.4)) / lineHeight));
    const lanes = this.lanes[d.place];
    const perf = performance.now();
    let lane = 0;
    for (; lane < laneCount; lane++) if ((lanes[lane] ?? 0) <= perf) break;
    if (lane === laneCount) lane = Math.floor(Math.random() * laneCount);
    // a scrolling line frees its lane once it moved off the edge; a fixed one when it goes
    lanes[lane] = perf + (d.place === "scroll" ? 1500 : FIXED_S * 1000);
    const node = el("span", `danmaku ${d.place}${d.mine ? " mine" : ""}`, d.text);
    node.dataset.place = d.place;
    if (d.color) {
      node.style.color = d.color;
      const n = parseInt(d.color.slice(1), 16);
      // a dark colour gets a light outline (the default one is black)
      if (0.2126 * (n >> 16) + 0.7152 * ((n >> 8) & 255) + 0.0722 * (n & 255) < 60) node.classList.add("dark");
    }
    if (d.place === "bottom") node.style.bottom = `${lane * lineHeight + 4}px`;
    else node.style.top = `${lane * lineHeight + 4}px`;
    node.style.animationDuration = `${d.place === "scroll" ? FLY_S : FIXED_S}s`;
    node.addEventListener("animationend", () => node.remove());
    this.layer.append(node);
    if (d.place === "scroll") node.style.setProperty("--fly", `${-(this.layer.clientWidth + node.offsetWidth + 8)}px`);
    this.shown += 1;
  }
}

/** The chat panel, the input and the danmaku. */
export class RoomChat {
  /**
   * @param {{log: HTMLOListElement, form: HTMLFormElement, input: HTMLInputElement, count: HTMLElement,
   *   danmakuButton: HTMLButtonElement, sendButton: HTMLButtonElement, error: HTMLElement, note: HTMLElement,
   *   layer: HTMLElement, video: HTMLVideoElement}} elements
   */
  constructor(elements) {
    this.e = elements;
    this.danmaku = new DanmakuLayer(elements.layer, elements.video);
    /** @type {import("./realtime.js").RealtimeClient | null} */
    this.client = null;
    this.limits = { chat_max_chars: 500, danmaku_max_chars: 100, messages_per_s: 20 };
    /** sends made so far, and the one whose refusal the error line explains */
    this.sends = 0;
    this.errorSeq = 0;
    this.seen = new Set();
    this.myId = "";
    this.allowed = true;
    this.lines = 0;
    elements.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.send("chat");
    });
    elements.danmakuButton.addEventListener("click", () => this.send("danmaku"));
    elements.input.addEventListener("input", () => this._count());
  }

  /** @param {import("./realtime.js").RealtimeClient} client */
  attach(client) {
    this.client = client;
    client.addEventListener("welcome", (e) => {
      const welcome = /** @type {CustomEvent} */ (e).detail;
      this.limits = { ...this.limits, ...(welcome.limits ?? {}) };
      this.myId = welcome.user?.id ?? "";
      this.e.input.maxLength = this.limits.chat_max_chars;
      this.e.note.textContent = `Chat lines up to ${this.limits.chat_max_chars} characters, danmaku up to `
        + `${this.limits.danmaku_max_chars}; at most ${this.limits.messages_per_s} messages a second. `
        + "The server keeps the last 50 lines while someone is here.";
      this._count();
    });
    client.addEventListener("chat", (e) => {
      for (const message of /** @type {CustomEvent} */ (e).detail.messages ?? []) this._line(message);
    });
    client.addEventListener("danmaku", (e) => {
      const d = /** @type {CustomEvent} */ (e).detail;
      if (this.seen.has(d.id)) return;
      this.seen.add(d.id);
      this.danmaku.add(d, d.from?.user_id === this.myId);
    });
  }

  /**
   * Whether this user may chat (the chat permission); `reason` says why not.
   * @param {boolean} allowed
   * @param {string} reason
   */
  setAllowed(allowed, reason) {
    this.allowed = allowed;
    for (const control of [this.e.input, this.e.sendButton, this.e.danmakuButton]) control.disabled = !allowed;
    this.e.input.placeholder = allowed ? "Say something…" : reason;
  }

  _count() {
    const n = this.e.input.value.length;
    this.e.count.textContent = `${n}/${this.limits.chat_max_chars}`;
    this.e.count.style.color = n > this.limits.danmaku_max_chars ? "var(--warn)" : "";
    this.e.count.title = n > this.limits.danmaku_max_chars
      ? `too long for a danmaku (at most ${this.limits.danmaku_max_chars} characters)` : "";
  }

  /** @param {any} message */
  _line(message) {
    if (!message || this.seen.has(message.id)) return;
    this.seen.add(message.id);
    const item = el("li");
    item.append(el("span", "from", message.from?.user_name ?? "?"), document.createTextNode(message.text ?? ""));
    const at = new Date(Number(message.at_ms));
    if (Number.isFinite(at.getTime())) {
      item.append(el("span", "at", at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })));
    }
    this.e.log.append(item);
    this.lines += 1;
    while (this.e.log.childElementCount > MAX_CHAT_LINES) this.e.log.firstElementChild?.remove();
    item.scrollIntoView({ block: "nearest" });
  }

  /** @param {string} message */
  _error(message) {
    this.e.error.textContent = message;
    this.e.error.hidden = !message;
  }

  /** @param {"chat" | "danmaku"} kind */
  async send(kind) {
    const text = this.e.input.value;
    const client = this.client;
    if (!client || !text.trim()) return;
    if (kind === "danmaku" && text.length > this.limits.danmaku_max_chars) {
      this._error(`A danmaku may be at most ${this.limits.danmaku_max_chars} characters (this one has `
        + `${text.length}); shorten it or send it as a chat line.`);
      return;
    }
    if (text.length > this.limits.chat_max_chars) {
      this._error(`A chat line may be at most ${this.limits.chat_max_chars} characters (this one has ${text.length}).`);
      return;
    }
    // Replies may settle out of order (a refusal is answered at once, an accepted line after
    // its broadcast): a success clears only an explanation given to an earlier send, so a
    // burst that hit the rate limit keeps saying so.
    const seq = ++this.sends;
    try {
      if (kind === "chat") await client.chat(text);
      else await client.danmaku(text, Math.max(0, this.e.video.currentTime || 0));
      if (this.e.input.value === text) this.e.input.value = "";
      this._count();
      if (seq > this.errorSeq) this._error("");
    } catch (error) {
      this.errorSeq = seq;
      this._error(explainSend(error, this.limits));
    }
  }
}

/**
 * @param {any} error a RealtimeError
 * @param {{messages_per_s: number}} limits
 */
export function explainSend(error, limits) {
  switch (error?.code) {
    case "rate_limited":
      return `You are sending faster than the room allows (${limits.messages_per_s} messages a second); wait a moment.`;
    case "forbidden":
      return "You may not chat in this room (the chat permission); ask the room's creator.";
    case "bad_request":
      return `The server refused it: ${error.message}.`;
    case "not_connected":
    case "disconnected":
    case "timeout":
      return "Not connected right now; the page reconnects by itself. Send it again in a moment.";
    default:
      return `Not sent: ${error?.message ?? error}.`;
  }
}
