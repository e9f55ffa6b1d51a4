// The room page's playlist panel.
//
// The items in order (GET /api/rooms/{room}/media, fetched again on every `playlist` signal of
// the WebSocket), with titles and durations and the one playing marked. Members with
// `manage_media` add by URL -- a Bilibili link (a video page, a BV or av id, a live room) is added
// with the bilibili provider, every part at once when asked (POST .../media/import) --, add an
// RTMP live item, remove, and reorder by dragging (PUT .../order). Adding from linked provider
// accounts is room-accounts.js.
// Members with `control_playback` play an item now. Live items show their stream state (GET
// .../stream, every LIVE_POLL_MS while the panel is open); members with `manage_live` get the
// RTMP URL and the stream key, each with a copy button.
//
// Plain ES module. Text from the server is only ever set with textContent.

import { api, explain } from "./session.js";

const LIVE_POLL_MS = 5000;
const LIVE_PROVIDERS = new Set(["rtmp", "live"]);

/**
 * Whether `text` names a Bilibili video or live room ("video", "live"), or null: those are added
 * with the bilibili provider (the server reads the reference: synctv/providers/bilibili_api.py).
 * @param {string} text
 * @returns {"video" | "live" | null}
 */
export function bilibiliRef(text) {
  const t = text.trim();
  if (/^BV[0-9A-Za-z]{10}$/.test(t) || /^av\d+$/i.test(t)) return "video";
  let host = "";
  try {
    host = new URL(t.includes("://") ? t : `https://${t}`).hostname.toLowerCase();
  } catch {
    return null;
  }
  if (host === "live.bilibili.com" || host.endsWith(".live.bilibili.com")) return "live";
  return host === "bilibili.com" || host.endsWith(".bilibili.com") || host === "b23.tv" ? "video" : null;
}

/** @param {number | null | undefined} s */
export function duration(s) {
  if (s === null || s === undefined || !Number.isFinite(s)) return "";
  const total = Math.round(s);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const sec = String(total % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
}

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

/** @param {string} text */
async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}

export class RoomPlaylist {
  /**
   * @param {{list: HTMLOListElement, empty: HTMLElement, form: HTMLFormElement, addLive: HTMLButtonElement,
   *   error: HTMLElement, reason: HTMLElement, allParts: HTMLElement, panel: HTMLElement}} elements
   * @param {string} roomId
   * @param {{bilibiliAccount?: () => string | null}} [options] bilibiliAccount: the member's
   *   Bilibili account to add Bilibili links with (null: anonymously)
   */
  constructor(elements, roomId, options = {}) {
    this.e = elements;
    this.roomId = roomId;
    this.bilibiliAccount = options.bilibiliAccount ?? (() => null);
    /** @type {any[]} */
    this.items = [];
    /** @type {import("./realtime.js").RealtimeClient | null} */
    this.client = null;
    this.current = null;
    this.may = { manageMedia: false, control: false, manageLive: false };
    /** @type {Map<string, string>} media id -> stream state */
    this.streams = new Map();
    /** @type {Map<string, any>} media id -> {rtmp_url, stream_key} shown */
    this.keys = new Map();
    /** @type {string | null} */
    this.dragging = null;
    /** @type {ReturnType<typeof setTimeout> | null} */
    this._reload = null;
    elements.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.addByUrl();
    });
    elements.addLive.addEventListener("click", () => this.addLive());
    const url = /** @type {HTMLInputElement} */ (elements.form.elements.namedItem("url"));
    url.addEventListener("input", () => { elements.allParts.hidden = bilibiliRef(url.value) !== "video"; });
    elements.form.addEventListener("reset", () => { elements.allParts.hidden = true; });
    setInterval(() => this.pollStreams(), LIVE_POLL_MS);
  }

  get base() {
    return `/api/rooms/${encodeURIComponent(this.roomId)}/media`;
  }

  /** @param {import("./realtime.js").RealtimeClient} client */
  attach(client) {
    this.client = client;
    client.addEventListener("playlist", () => this.reloadSoon());
    client.addEventListener("welcome", () => this.reloadSoon());
  }

  /**
   * @param {{manageMedia: boolean, control: boolean, manageLive: boolean}} may
   */
  setPermissions(may) {
    this.may = may;
    this.e.form.hidden = !may.manageMedia;
    const reasons = [];
    if (!may.manageMedia) reasons.push("add, remove or reorder items (manage_media)");
    if (!may.control) reasons.push("play an item now (control_playback)");
    this.e.reason.hidden = reasons.length === 0;
    this.e.reason.textContent = reasons.length
      ? `You may not ${reasons.join(" or ")}; the room's creator can allow it.` : "";
    this.render();
  }

  /** @param {string | null} mediaId the item playing */
  setCurrent(mediaId) {
    if (mediaId === this.current) return;
    this.current = mediaId;
    this.render();
  }

  reloadSoon() {
    if (this._reload !== null) clearTimeout(this._reload);
    this._reload = setTimeout(() => {
      this._reload = null;
      this.load();
    }, 50);
  }

  async load() {
    try {
      const body = await api("GET", this.base);
      this.items = body.media ?? [];
      this.render();
      this.pollStreams();
    } catch (error) {
      this._error(explain(error, "reading the playlist"));
    }
  }

  /** @param {string} message */
  _error(message) {
    this.e.error.textContent = message;
    this.e.error.hidden = !message;
  }

  render() {
    const list = this.e.list;
    list.replaceChildren();
    this.e.empty.hidden = this.items.length > 0;
    for (const item of this.items) list.append(this._row(item));
  }

  /** @param {any} item */
  _row(item) {
    const row = el("li");
    row.dataset.id = item.id;
    if (item.id === this.current) row.classList.add("current");
    const handle = el("span", "handle", "⋮⋮");
    handle.title = this.may.manageMedia ? "Drag (or arrow keys) to reorder" : "Reordering needs manage_media";
    handle.setAttribute("aria-disabled", String(!this.may.manageMedia));
    row.append(handle);
    const text = el("div");
    text.append(el("div", "name", item.title));
    const meta = el("div", "meta");
    const live = LIVE_PROVIDERS.has(item.provider);
    if (live) {
      const state = this.streams.get(item.id) ?? "…";
      const badge = el("span", state === "live" ? "badge live" : "badge", state === "live" ? "LIVE" : state);
      badge.title = "the stream's state";
      meta.append(badge, document.createTextNode(` ${item.provider === "rtmp" ? "RTMP live" : "live relay"}`));
    } else {
      meta.textContent = [duration(item.duration), item.provider !== "direct" ? item.provider : ""]
        .filter(Boolean).join(" · ");
    }
    if (item.id === this.current) meta.append(document.createTextNode(meta.textContent ? " · playing" : "playing"));
    text.append(meta);
    row.append(text);
    const actions = el("div", "item-actions");
    if (this.may.control && item.id !== this.current) {
      const play = el("button", "", "Play now");
      play.type = "button";
      play.addEventListener("click", () => this.playNow(item.id));
      actions.append(play);
    }
    if (live && item.provider === "rtmp" && this.may.manageLive) {
      const key = el("button", "", this.keys.has(item.id) ? "Hide key" : "Stream key");
      key.type = "button";
      key.addEventListener("click", () => this.toggleKey(item.id));
      actions.append(key);
    }
    if (this.may.manageMedia) {
      const remove = el("button", "", "Remove");
      remove.type = "button";
      remove.title = `Remove ${item.title}`;
      remove.addEventListener("click", () => this.remove(item));
      actions.append(remove);
    }
    row.append(actions);
    const key = this.keys.get(item.id);
    if (key) row.append(this._keyBox(key));
    if (this.may.manageMedia) this._draggable(row, handle, item.id);
    return row;
  }

  /** @param {{rtmp_url: string, stream_key: string}} key */
  _keyBox(key) {
    const box = el("div", "stream-key");
    for (const [label, value] of [["RTMP URL (OBS: Server)", key.rtmp_url], ["Stream key", key.stream_key]]) {
      box.append(el("span", "muted", label));
      const row = el("div", "row");
      const input = /** @type {HTMLInputElement} */ (el("input"));
      input.readOnly = true;
      input.value = value;
      input.setAttribute("aria-label", label);
      const button = el("button", "", "Copy");
      button.type = "button";
      button.addEventListener("click", async () => {
        input.select();
        const ok = await copy(value);
        button.textContent = ok ? "Copied" : "Select and copy";
        setTimeout(() => { button.textContent = "Copy"; }, 1500);
      });
      row.append(input, button);
      box.append(row);
    }
    return box;
  }

  /**
   * @param {HTMLElement} row
   * @param {HTMLElement} handle
   * @param {string} id
   */
  _draggable(row, handle, id) {
    row.draggable = true;
    row.addEventListener("dragstart", (event) => {
      this.dragging = id;
      row.classList.add("dragging");
      event.dataTransfer?.setData("text/plain", id);
      if (event.dataTransfer) event.dataTransfer.effectAllowed = "move";
    });
    row.addEventListener("dragend", () => {
      this.dragging = null;
      row.classList.remove("dragging");
      for (const other of this.e.list.querySelectorAll(".drop-before")) other.classList.remove("drop-before");
    });
    row.addEventListener("dragover", (event) => {
      if (!this.dragging || this.dragging === id) return;
      event.preventDefault();
      for (const other of this.e.list.querySelectorAll(".drop-before")) other.classList.remove("drop-before");
      row.classList.add("drop-before");
    });
    row.addEventListener("drop", (event) => {
      event.preventDefault();
      const moved = this.dragging ?? event.dataTransfer?.getData("text/plain");
      if (moved && moved !== id) this.moveBefore(moved, id);
    });
    handle.tabIndex = 0;
    handle.addEventListener("keydown", (event) => {
      const i = this.items.findIndex((item) => item.id === id);
      if (event.key === "ArrowUp" && i > 0) {
        event.preventDefault();
        this.moveBefore(id, this.items[i - 1].id);
      } else if (event.key === "ArrowDown" && i >= 0 && i < this.items.length - 1) {
        event.preventDefault();
        this.moveBefore(id, this.items[i + 2]?.id ?? null);
      }
    });
  }

  /**
   * Put `moved` before `target` (null: at the end) and store the order.
   * @param {string} moved
   * @param {string | null} target
   */
  async moveBefore(moved, target) {
    const order = this.items.map((i) => i.id).filter((i) => i !== moved);
    order.splice(target === null ? order.length : order.indexOf(target), 0, moved);
    const byId = new Map(this.items.map((i) => [i.id, i]));
    this.items = order.map((i) => byId.get(i));
    this.render();
    try {
      const body = await api("PUT", `${this.base}/order`, { order });
      this.items = body.media ?? this.items;
      this.render();
      this._error("");
    } catch (error) {
      this._error(explain(error, "reordering"));
      this.load();
    }
  }

  async addByUrl() {
    const form = this.e.form;
    const url = /** @type {HTMLInputElement} */ (form.elements.namedItem("url")).value.trim();
    const title = /** @type {HTMLInputElement} */ (form.elements.namedItem("title")).value.trim();
    if (!url) {
      this._error("Paste the address of a video (an http(s) URL of an MP4, WebM or HLS .m3u8, or a Bilibili link).");
      return;
    }
    const bilibili = bilibiliRef(url);
    const every = bilibili === "video" && /** @type {HTMLInputElement} */ (form.elements.namedItem("all_parts")).checked;
    /** @type {Record<string, unknown>} */
    const body = bilibili ? { provider: "bilibili", url } : { url };
    const account = bilibili ? this.bilibiliAccount() : null;
    if (account) body.provider_data = { account };
    if (title && !every) body.title = title;
    try {
      await api("POST", every ? `${this.base}/import` : this.base, body);
      form.reset();
      this._error("");
      this.reloadSoon();
    } catch (error) {
      this._error(explain(error, bilibili ? "adding the Bilibili video" : "adding the item"));
    }
  }

  async addLive() {
    const title = /** @type {HTMLInputElement} */ (this.e.form.elements.namedItem("title")).value.trim() || "Live";
    try {
      const body = await api("POST", this.base, { provider: "rtmp", title });
      this._error("");
      if (this.may.manageLive) await this.toggleKey(body.media.id);
      this.reloadSoon();
    } catch (error) {
      this._error(explain(error, "adding a live stream"));
    }
  }

  /** @param {any} item */
  async remove(item) {
    try {
      await api("DELETE", `${this.base}/${encodeURIComponent(item.id)}`);
      this.keys.delete(item.id);
      this._error("");
      this.reloadSoon();
    } catch (error) {
      this._error(explain(error, "removing the item"));
    }
  }

  /** @param {string} mediaId */
  async playNow(mediaId) {
    const client = this.client;
    if (!client) return;
    try {
      await client.update("media", { media_id: mediaId });
      await client.update("play");
      this._error("");
    } catch (error) {
      this._error(explain(error, "starting the item"));
    }
  }

  /** @param {string} mediaId */
  async toggleKey(mediaId) {
    if (this.keys.has(mediaId)) {
      this.keys.delete(mediaId);
      this.render();
      return;
    }
    try {
      const key = await api("POST", `${this.base}/${encodeURIComponent(mediaId)}/stream-key`);
      this.keys.set(mediaId, key);
      this.render();
    } catch (error) {
      this._error(explain(error, "reading the stream key"));
    }
  }

  async pollStreams() {
    if (this.e.panel.hidden) return;
    for (const item of this.items.filter((i) => LIVE_PROVIDERS.has(i.provider))) {
      try {
        const info = await api("GET", `${this.base}/${encodeURIComponent(item.id)}/stream`);
        const state = String(info?.state ?? "offline");
        if (this.streams.get(item.id) !== state) {
          this.streams.set(item.id, state);
          this.render();
        }
      } catch {
        // the live subsystem may be off on this server: keep what was shown
      }
    }
  }
}
