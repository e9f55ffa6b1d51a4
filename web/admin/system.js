// The "Cache & streams" section: the media proxy's slice cache (GET /api/admin/cache, purge with
// DELETE, site admins) and the live items of the rooms (provider rtmp or live): stream state,
// viewers and bitrate, and the RTMP address and stream key for OBS (rotate replaces the key).

import { api, enc } from "./api.js";
import {
  busy, card, confirmDialog, copyButton, dataTable, emptyState, fill, fmtBytes, fmtDuration, formDialog, h, icon,
  loadingState, pageHead, toast,
} from "./ui.js";

const LIVE_PROVIDERS = new Set(["rtmp", "live"]);

/**
 * @param {HTMLElement} main
 * @param {{state: import("./state.js").AdminState}} ctx
 */
export function mount(main, ctx) {
  const { state } = ctx;
  main.append(pageHead("Cache & streams", "The media proxy's slice cache and the live streams of the rooms."));
  const cacheSlot = h("div", null, loadingState("Reading the cache…"));
  const purge = h("button", { class: "btn btn-danger btn-sm", type: "button", onClick: () => purgeCache() }, icon("trash"), "Purge");
  const refresh = h("button", { class: "btn btn-sm", type: "button", onClick: () => busy(refresh, loadAll) }, icon("refresh"), "Refresh");
  const streamSlot = h("div", null, loadingState("Looking for live items…"));
  main.append(h("div", { class: "stack" },
    state.isSiteAdmin ? card({ title: "Proxy cache", actions: [purge] }, cacheSlot).el : null,
    card({ title: "Live streams", actions: [refresh], flush: true,
      foot: "Publish with OBS: Settings → Stream → Custom, Server = the RTMP URL, Stream Key = the key." }, streamSlot).el));

  async function loadCache() {
    if (!state.isSiteAdmin) return;
    try {
      const { cache } = await api.get("/api/admin/cache");
      const lookups = cache.hits + cache.misses;
      const stat = (/** @type {string} */ label, /** @type {any} */ value, /** @type {string} */ unit = "") =>
        h("div", { class: "stat", style: "padding:0" }, h("div", { class: "label", text: label }),
          h("div", { class: "value" }, String(value), unit ? h("small", null, unit) : null));
      fill(cacheSlot, h("div", { class: "stats", id: "cache-stats" },
        stat("Stored", fmtBytes(cache.bytes), `of ${fmtBytes(cache.max_bytes)}`),
        stat("Slices", cache.entries, `× ${fmtBytes(cache.slice_size)}`),
        stat("Hit rate", lookups ? (100 * cache.hits / lookups).toFixed(1) : "–", lookups ? "%" : ""),
        stat("Evictions", cache.evictions),
        stat("From upstream", fmtBytes(cache.upstream?.bytes ?? 0), `${cache.upstream?.requests ?? 0} requests`)),
      h("p", { class: "muted", style: "margin:0.9rem 0 0;font-size:0.82rem" },
        `Backend: ${cache.backend}. Answers: ${Object.entries(cache.answers ?? {}).map(([k, v]) => `${k} ${v}`).join(", ")}.`));
    } catch (error) {
      const e = /** @type {any} */ (error);
      fill(cacheSlot, e.status === 503 ? emptyState("server", "The media proxy is not running", e.message)
        : h("p", { class: "form-error", role: "alert" }, e.message));
    }
  }

  async function purgeCache() {
    const done = await confirmDialog({
      title: "Purge the proxy cache?", confirm: "Purge",
      text: "Every cached slice is removed; viewers fetch from the upstream servers again.",
      action: () => api.del("/api/admin/cache"),
    });
    if (done) {
      toast("The proxy cache was purged");
      loadCache();
    }
  }

  async function loadStreams() {
    /** @type {Array<{room: any, media: any}>} */
    const items = [];
    await Promise.all(state.rooms.map(async (room) => {
      try {
        for (const media of await state.roomMedia(room.id)) if (LIVE_PROVIDERS.has(media.provider)) items.push({ room, media });
      } catch {
        // not a member of that room
      }
    }));
    if (items.length === 0) {
      fill(streamSlot, emptyState("broadcast", "No live items", "Add one with `synctv media add ROOM --provider rtmp --title T`, "
        + "then get its key here."));
      return;
    }
    const { tbody, wrap } = dataTable(["Stream", "State", "Video", ["Bitrate", "num"], ["Viewers", "num"], ["Uptime", "num"],
      ["", "actions"]], "Live streams");
    for (const { room, media } of items) {
      const stateCell = h("td", null, "…");
      const video = h("td", { class: "muted" });
      const bitrate = h("td", { class: "num" });
      const viewers = h("td", { class: "num" });
      const uptime = h("td", { class: "num" });
      tbody.append(h("tr", null,
        h("td", null, h("span", { class: "cell-title" }, media.title), h("span", { class: "cell-sub" }, `${room.name} · ${media.provider}`)),
        stateCell, video, bitrate, viewers, uptime,
        h("td", { class: "actions" }, media.provider === "rtmp"
          ? h("button", { class: "btn btn-sm", type: "button", onClick: () => showKey(room, media) }, icon("key"), "Stream key") : null)));
      api.get(`/api/rooms/${enc(room.id)}/media/${enc(media.id)}/stream`).then((info) => {
        const s = info.state ?? "offline";
        fill(stateCell, h("span", { class: `pill ${s === "live" ? "ok" : s === "ended" ? "warn" : ""}` },
          s === "live" ? h("span", { class: "dot ok" }) : null, s));
        video.textContent = info.video ? `${info.video.codec ?? ""} ${info.video.width ?? "?"}×${info.video.height ?? "?"}`
          + `${info.video.fps ? ` @ ${Math.round(info.video.fps)}` : ""}` : "–";
        bitrate.textContent = info.bitrate_kbps ? `${Math.round(info.bitrate_kbps)} kb/s` : "–";
        viewers.textContent = info.viewers ? String((info.viewers.flv ?? 0) + (info.viewers.hls ?? 0)) : "0";
        uptime.textContent = info.uptime_s ? fmtDuration(info.uptime_s) : "–";
      }, (error) => fill(stateCell, h("span", { class: "pill bad", title: error.message }, "unavailable")));
    }
    fill(streamSlot, wrap);
  }

  /**
   * @param {any} room
   * @param {any} media
   */
  async function showKey(room, media) {
    const path = `/api/rooms/${enc(room.id)}/media/${enc(media.id)}/stream-key`;
    let key;
    try {
      key = await api.post(path);
    } catch (error) {
      toast(/** @type {Error} */ (error).message, "bad");
      return;
    }
    const keyText = h("code", { id: "stream-key" }, "•".repeat(16));
    let shown = false;
    const reveal = h("button", { class: "btn btn-sm btn-ghost", type: "button" }, "Show");
    reveal.addEventListener("click", () => {
      shown = !shown;
      keyText.textContent = shown ? key.stream_key : "•".repeat(16);
      reveal.textContent = shown ? "Hide" : "Show";
    });
    const urlText = h("code", null, key.rtmp_url);
    await formDialog({
      title: `Stream key of “${media.title}”`, submit: "Rotate key", danger: true,
      text: "Rotating gives a new key and stops a publish that uses the old one.",
      body: [h("dl", { class: "kv" },
        h("dt", null, "RTMP URL"), h("dd", null, urlText, " ", copyButton(() => key.rtmp_url, "Copy the RTMP URL")),
        h("dt", null, "Stream key"), h("dd", null, keyText, " ", reveal, copyButton(() => key.stream_key, "Copy the stream key")))],
      onSubmit: async () => {
        key = await api.post(`${path}?rotate=1`);
        toast("A new stream key was issued; the old one no longer publishes");
        return key;
      },
    });
  }

  async function loadAll() {
    await Promise.all([loadCache(), loadStreams()]);
  }

  loadAll();
  return () => {};
}
