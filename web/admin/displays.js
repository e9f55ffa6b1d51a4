// The Screens section: the chosen display room's live playback (what the screens play now), the
// screens' figures, a live chart of each screen's drift over the last 5 minutes, and the screens
// table (page address, online, drift, clock offset, rate, telemetry age) with add, edit,
// re-address and delete. The screens are polled every second by AdminState.

import { api, enc } from "./api.js";
import { DriftChart, FRAME_MS, seriesColor } from "./chart.js";
import { HISTORY_MS } from "./state.js";
import {
  KeyedRows, busy, card, confirmDialog, copyButton, dataTable, emptyState, field, fill, fmtAge, fmtDuration,
  fmtMs, formDialog, formValues, h, icon, loadingState, pageHead, toast,
} from "./ui.js";

/**
 * The display room chooser shown on the Screens and Events pages ("" is every display room).
 * @param {import("./state.js").AdminState} state
 */
export function displayRoomPicker(state) {
  const select = /** @type {HTMLSelectElement} */ (h("select", { id: "display-room", name: "display-room" }));
  const render = () => {
    const rooms = state.displayRooms();
    fill(select, h("option", { value: "" }, "All display rooms"),
      rooms.map((r) => h("option", { value: r.id }, r.name)));
    select.value = state.displayRoomId;
  };
  render();
  select.addEventListener("change", () => state.chooseDisplayRoom(select.value));
  state.addEventListener("rooms", render);
  const el = h("div", { class: "select-inline" }, h("label", { for: "display-room", text: "Room" }), select);
  return { el, destroy: () => state.removeEventListener("rooms", render) };
}

/**
 * Asks for a new display room's name and creates it (POST /api/rooms {name, kind: "display"}).
 * @param {import("./state.js").AdminState} state
 */
export async function newDisplayRoom(state) {
  const name = h("input", { name: "name", required: true, maxlength: 64, placeholder: "lobby-wall" });
  const room = await formDialog({
    title: "New display room", narrow: true, submit: "Create room",
    text: "A display room groups the screens that start together; events play videos in it.",
    body: [field("Name", name, { hint: "Unique; shown to operators and in the CLI." })],
    onSubmit: async (form) => (await api.post("/api/rooms", { name: formValues(form).name.trim(), kind: "display" })).room,
  });
  if (room) {
    await state.loadRooms();
    state.chooseDisplayRoom(room.id);
    toast(`Display room “${room.name}” created`);
  }
  return room;
}

/** @param {string} page a path such as /display/abc */
const pageUrl = (page) => new URL(page, location.href).href;

/** @param {number | null | undefined} ms */
function driftClass(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "";
  const a = Math.abs(ms);
  return a <= 5 ? "drift-ok" : a <= FRAME_MS ? "drift-warn" : "drift-bad";
}

/**
 * @param {HTMLElement} main
 * @param {{state: import("./state.js").AdminState, navigate: (id: string) => void}} ctx
 */
export function mount(main, ctx) {
  const { state } = ctx;
  const picker = displayRoomPicker(state);
  const newRoomButton = h("button", { class: "btn", type: "button", onClick: () => newDisplayRoom(state) },
    icon("plus"), "Display room");
  const addButton = h("button", { class: "btn btn-primary", type: "button", onClick: () => addScreen() },
    icon("plus"), "Add screen");
  const body = h("div", { class: "stack" });
  main.append(pageHead("Screens", "Browsers on the LAN that start videos together and stay frame-aligned.",
    picker.el, newRoomButton, addButton), body);

  // -- parts ------------------------------------------------------------------------------------
  const nowEl = h("section", { class: "card now", "aria-label": "Now playing" });
  const statEls = {
    online: h("div", { class: "value" }), drift: h("div", { class: "value" }),
    frame: h("div", { class: "value" }), rtt: h("div", { class: "value" }),
  };
  const stat = (/** @type {string} */ label, /** @type {HTMLElement} */ value) =>
    h("div", { class: "card stat" }, h("div", { class: "label", text: label }), value);
  const stats = h("div", { class: "stats" }, stat("Screens online", statEls.online),
    stat("Largest drift now", statEls.drift), stat("Within ±1 frame (5 min)", statEls.frame),
    stat("Median round trip", statEls.rtt));
  const canvas = /** @type {HTMLCanvasElement} */ (h("canvas", { role: "img", "aria-label": "Drift chart" }));
  const legend = h("div", { class: "legend" });
  const scaleButtons = [["frame", "±1 frame"], ["fit", "Fit"]].map(([value, text]) => {
    const b = h("button", { class: "btn btn-sm", type: "button", "aria-pressed": String(value === "frame"), dataset: { scale: value } }, text);
    b.addEventListener("click", () => {
      chart.scale = value;
      for (const other of scaleButtons) other.setAttribute("aria-pressed", String(other === b));
      chart.draw();
    });
    return b;
  });
  const chartCard = card({ title: "Drift", sub: "last 5 minutes, per screen", label: "Drift chart",
    actions: [h("div", { class: "segmented", role: "group", "aria-label": "Drift scale" }, scaleButtons)] },
    h("div", { class: "chart-box" }, canvas), h("div", { style: "margin-top:0.6rem" }, legend));
  const chart = new DriftChart(canvas, { windowMs: HISTORY_MS });
  const { table, tbody, wrap } = dataTable(["Screen", "Room", "Page address", "Status", ["Drift", "num"],
    ["Clock offset", "num"], ["Rate", "num"], ["Telemetry", "num"], ["", "actions"]], "Screens");
  table.id = "screens-table";
  const tableSlot = h("div");
  const tableCard = card({ title: "Screens", flush: true,
    foot: "Open a screen's page address in a full-screen browser on that screen. Drift is the video's "
      + "distance from where it should be; the clock offset is the screen's wall clock against the server's." },
  tableSlot);
  const rows = new KeyedRows(tbody, (d) => d.id, createRow);
  /** @type {Map<string, string>} display id -> colour */
  const colors = new Map();
  /** @type {Map<string, string>} media id -> title, for the chosen room */
  let mediaTitles = new Map();
  /** @type {Map<string, string>} event id -> name */
  let eventNames = new Map();

  function layout() {
    const rooms = state.displayRooms();
    addButton.toggleAttribute("disabled", rooms.length === 0);
    if (rooms.length === 0) {
      fill(body, card({ title: "Get started" }, emptyState("monitor", state.isSiteAdmin ? "No display room yet" : "No display room you manage",
        "A display room groups the screens that play together. Create one, add its screens, then define "
        + "an event that starts a video on all of them.",
        h("button", { class: "btn btn-primary", type: "button", onClick: () => newDisplayRoom(state) },
          icon("plus"), "Create a display room"))).el);
      return;
    }
    fill(body, state.displayRoomId ? nowEl : null, stats, chartCard.el, tableCard.el);
    chart.draw();
    loadNames();
    renderNow();
    renderDisplays();
  }

  async function loadNames() {
    const roomId = state.displayRoomId;
    try {
      const [media, events] = await Promise.all([roomId ? state.roomMedia(roomId) : [], api.get("/api/events")]);
      mediaTitles = new Map(media.map((/** @type {any} */ m) => [m.id, m.title]));
      eventNames = new Map(events.events.map((/** @type {any} */ e) => [e.id, e.name]));
      renderNow();
    } catch {
      // titles are a nicety; ids stay shown
    }
  }

  /** The screens of the chosen room (all display rooms for ""), oldest first. */
  function shown() {
    const all = state.displays ?? [];
    for (const d of all) if (!colors.has(d.id)) colors.set(d.id, seriesColor(colors.size));
    return all.filter((d) => !state.displayRoomId || d.room_id === state.displayRoomId);
  }

  // -- now playing ------------------------------------------------------------------------------

  const nowParts = {
    icon: h("div", { class: "now-icon" }),
    title: h("div", { class: "now-title", id: "now-title" }),
    sub: h("div", { class: "now-sub" }),
    bar: h("span"),
    barBox: h("div", { class: "now-bar" }),
    live: h("span", { class: "pill" }),
    stop: h("button", { class: "btn", type: "button", onClick: (/** @type {Event} */ e) => stopRoom(/** @type {any} */ (e.currentTarget)) },
      icon("stop"), "Stop"),
    said: h("span", { class: "sr-only", "aria-live": "polite" }),
  };
  nowParts.barBox.append(nowParts.bar);
  nowEl.append(nowParts.icon, h("div", { class: "now-text" }, nowParts.title, nowParts.sub, nowParts.barBox),
    nowParts.said, nowParts.live,
    h("button", { class: "btn", type: "button", onClick: () => ctx.navigate("events") }, icon("bolt"), "Events"),
    nowParts.stop);

  function renderNow() {
    const watch = state.watch;
    if (!watch || !nowEl.isConnected) return;
    const s = watch.state;
    const now = watch.serverNow();
    let phase = "idle";
    let title = "Idle";
    let sub = "Nothing plays: the screens show the idle image.";
    let progress = null;
    const media = s?.media_id ? mediaTitles.get(s.media_id) ?? "a video" : null;
    const event = s?.event_id ? eventNames.get(s.event_id) : null;
    const from = event ? ` · event “${event}”` : "";
    if (watch.status !== "live" && !s) {
      phase = "waiting";
      title = watch.status === "closed" ? "Not connected" : "Connecting…";
      sub = "Waiting for the room's playback state.";
    } else if (s && s.media_id && s.playing && !s.ended && s.at_ms > now) {
      phase = "scheduled";
      title = `Starts in ${((s.at_ms - now) / 1000).toFixed(1)} s`;
      sub = `“${media}”${from}`;
    } else if (s && s.media_id && s.playing && !s.ended) {
      phase = "playing";
      const pos = watch.position() ?? 0;
      const duration = durationOf(s.media_id);
      title = `Playing “${media}”`;
      sub = `${fmtDuration(pos)}${duration ? ` / ${fmtDuration(duration)}` : ""}${from}`;
      progress = duration ? Math.min(1, pos / duration) : null;
    } else if (s && s.media_id && s.ended) {
      phase = "ended";
      title = "Ended";
      sub = `“${media}” played to its end${from}; the screens show the idle image.`;
    } else if (s && s.media_id) {
      phase = "stopped";
      title = "Stopped";
      sub = `“${media}” stopped at ${fmtDuration(s.position)}; the screens show the idle image.`;
    }
    if (nowEl.dataset.phase !== phase) {
      nowEl.dataset.phase = phase;
      fill(nowParts.icon, icon(phase === "playing" ? "play" : phase === "scheduled" ? "clock" : "image"));
      nowParts.said.textContent = `${title}. ${sub}`;
    }
    nowParts.title.textContent = title;
    nowParts.sub.textContent = sub;
    nowParts.barBox.hidden = progress === null;
    nowParts.bar.style.width = `${((progress ?? 0) * 100).toFixed(2)}%`;
    nowParts.stop.hidden = !(phase === "playing" || phase === "scheduled");
    const live = watch.status === "live";
    nowParts.live.className = `pill ${live ? "ok" : "warn"}`;
    fill(nowParts.live, live ? h("span", { class: "dot ok" }) : null, live ? "live" : watch.status);
  }

  /** @param {string} mediaId */
  const durationOf = (mediaId) => mediaDurations.get(mediaId) ?? null;
  /** @type {Map<string, number>} */
  const mediaDurations = new Map();
  async function loadDurations() {
    if (!state.displayRoomId) return;
    try {
      for (const m of await state.roomMedia(state.displayRoomId)) if (m.duration) mediaDurations.set(m.id, m.duration);
      const { videos } = await api.get("/api/videos");
      for (const v of videos) for (const id of v.media_ids ?? []) if (v.duration) mediaDurations.set(id, v.duration);
    } catch {
      // no duration: no progress bar
    }
  }

  /** @param {HTMLElement} button */
  async function stopRoom(button) {
    const watch = state.watch;
    if (!watch) return;
    try {
      await busy(button, () => watch.update("pause"));
      toast("Stopped: the screens show the idle image");
    } catch (error) {
      toast(/** @type {Error} */ (error).message, "bad");
    }
  }

  // -- figures, chart and table -------------------------------------------------------------------

  function renderDisplays() {
    if (!tableCard.el.isConnected) return;
    if (state.displays === null) {
      if (state.displaysError) fill(tableSlot, h("p", { class: "form-error", role: "alert", style: "margin:1rem" },
        state.displaysError.message));
      else fill(tableSlot, loadingState("Loading screens…"));
      return;
    }
    const list = shown();
    const now = state.serverNow();
    if (list.length === 0) {
      const where = state.displayRoomId ? ` in “${state.roomName(state.displayRoomId)}”` : "";
      fill(tableSlot, emptyState("monitor", `No screens${where} yet`,
        "Add a screen, then open its page address in the browser of that screen.",
        h("button", { class: "btn btn-primary", type: "button", onClick: () => addScreen() }, icon("plus"), "Add screen")));
    } else if (!tableSlot.contains(wrap)) {
      fill(tableSlot, wrap);
    }
    rows.set(list);

    const online = list.filter((d) => d.status?.online);
    const tele = online.map((d) => d.status.telemetry).filter(Boolean);
    statEls.online.replaceChildren(`${online.length}`, h("small", null, `/ ${list.length}`));
    const worst = tele.length ? Math.max(...tele.map((t) => Math.abs(t.drift_ms))) : null;
    statEls.drift.className = `value ${driftClass(worst)}`;
    statEls.drift.replaceChildren(worst === null ? "–" : worst.toFixed(1), worst === null ? "" : h("small", null, "ms"));
    let inside = 0;
    let total = 0;
    for (const d of list) {
      for (const p of state.history.get(d.id) ?? []) {
        total += 1;
        if (Math.abs(p.drift) <= FRAME_MS) inside += 1;
      }
    }
    statEls.frame.replaceChildren(total ? (100 * inside / total).toFixed(1) : "–", h("small", null, total ? "%" : ""));
    const rtts = tele.map((t) => t.rtt_ms).filter(Number.isFinite).sort((a, b) => a - b);
    const rtt = rtts.length ? rtts[Math.floor(rtts.length / 2)] : null;
    statEls.rtt.replaceChildren(rtt === null ? "–" : rtt.toFixed(1), rtt === null ? "" : h("small", null, "ms"));

    const series = list.map((d) => ({ name: d.name, color: colors.get(d.id) ?? "#888", points: state.history.get(d.id) ?? [] }));
    chart.set(series, now);
    canvas.setAttribute("aria-label", `Drift over the last 5 minutes: ${list.map((d) => {
      const t = d.status?.online ? d.status.telemetry : null;
      return `${d.name} ${t ? fmtMs(t.drift_ms) : "no data"}`;
    }).join(", ") || "no screens"}`);
    fill(legend, list.map((d) => h("span", null, h("i", { class: "swatch", style: `background:${colors.get(d.id)}` }), d.name)),
      h("span", { class: "muted" }, h("i", { class: "band-key" }), "±1 frame at 60 Hz (16.7 ms)"));
  }

  /** @param {any} display */
  function createRow(display) {
    const name = h("span", { class: "cell-title" });
    const swatch = h("i", { class: "swatch" });
    const room = h("td", { class: "nowrap" });
    const link = /** @type {HTMLAnchorElement} */ (h("a", { target: "_blank", rel: "noopener" }));
    let current = display;
    const status = h("td");
    const drift = h("td", { class: "num" });
    const offset = h("td", { class: "num" });
    const rate = h("td", { class: "num" });
    const age = h("td", { class: "num muted" });
    const row = /** @type {HTMLTableRowElement} */ (h("tr", null,
      h("td", null, h("span", { class: "name-cell" }, swatch, name)),
      room,
      h("td", null, h("span", { class: "linkish" }, link,
        copyButton(() => pageUrl(current.page), `Copy the page address of ${display.name}`))),
      status, drift, offset, rate, age,
      h("td", { class: "actions" },
        h("button", { class: "btn btn-sm btn-ghost btn-icon", type: "button", title: "Rename or move",
          "aria-label": `Edit ${display.name}`, onClick: () => editScreen(current) }, icon("edit")),
        h("button", { class: "btn btn-sm btn-ghost btn-icon", type: "button", title: "New page address",
          "aria-label": `New page address for ${display.name}`, onClick: () => readdress(current) }, icon("refresh")),
        h("button", { class: "btn btn-sm btn-ghost btn-icon btn-danger", type: "button", title: "Delete",
          "aria-label": `Delete ${display.name}`, onClick: () => removeScreen(current) }, icon("trash")))));
    return {
      row,
      update: (/** @type {any} */ d) => {
        current = d;
        name.textContent = d.name;
        swatch.style.background = colors.get(d.id) ?? "";
        room.textContent = state.roomName(d.room_id);
        link.href = pageUrl(d.page);
        link.textContent = d.page.length > 24 ? `${d.page.slice(0, 16)}…${d.page.slice(-5)}` : d.page;
        link.title = pageUrl(d.page);
        const on = !!d.status?.online;
        const t = on ? d.status.telemetry : null;
        row.dataset.online = on ? "true" : "false";
        fill(status, h("span", { class: `pill ${on ? "ok" : ""}` }, h("span", { class: `dot ${on ? "ok" : ""}` }),
          on ? (d.status.connections > 1 ? `Online ×${d.status.connections}` : "Online") : "Offline"));
        drift.className = `num ${driftClass(t?.drift_ms)}`;
        drift.textContent = t ? fmtMs(t.drift_ms) : "–";
        offset.textContent = t ? fmtMs(t.offset_ms, 0) : "–";
        rate.textContent = t ? `${Number(t.rate).toFixed(3)}×` : "–";
        age.textContent = t ? fmtAge(state.serverNow() - t.at_ms) : on ? "none yet" : "–";
      },
    };
  }

  // -- changes ----------------------------------------------------------------------------------

  /** @param {HTMLSelectElement} select @param {string} chosen */
  function roomOptions(select, chosen) {
    for (const r of state.displayRooms()) select.append(h("option", { value: r.id }, r.name));
    select.value = chosen || state.displayRooms()[0]?.id || "";
    return select;
  }

  async function addScreen() {
    const display = await formDialog({
      title: "Add a screen", narrow: true, submit: "Add screen",
      text: "The screen gets a page address to open in its browser (full screen, autoplay allowed).",
      body: [
        field("Name", h("input", { name: "name", required: true, maxlength: 64, placeholder: "left" })),
        field("Display room", roomOptions(/** @type {HTMLSelectElement} */ (h("select", { name: "room", required: true })),
          state.displayRoomId)),
      ],
      onSubmit: async (form) => {
        const v = formValues(form);
        return (await api.post("/api/displays", { name: v.name.trim(), room: v.room })).display;
      },
    });
    if (display) {
      toast(`Screen “${display.name}” added: open its page address on that screen`);
      await state.refreshDisplays();
    }
  }

  /** @param {any} display */
  async function editScreen(display) {
    const changed = await formDialog({
      title: `Edit “${display.name}”`, narrow: true,
      body: [
        field("Name", h("input", { name: "name", required: true, maxlength: 64, value: display.name })),
        field("Display room", roomOptions(/** @type {HTMLSelectElement} */ (h("select", { name: "room", required: true })),
          display.room_id), { hint: "Moving a screen makes it follow the other room's events." }),
      ],
      onSubmit: async (form) => {
        const v = formValues(form);
        /** @type {Record<string, unknown>} */
        const patch = {};
        if (v.name.trim() !== display.name) patch.name = v.name.trim();
        if (v.room !== display.room_id) patch.room = v.room;
        if (Object.keys(patch).length === 0) return display;
        return (await api.patch(`/api/displays/${enc(display.id)}`, patch)).display;
      },
    });
    if (changed) await state.refreshDisplays();
  }

  /** @param {any} display */
  async function readdress(display) {
    const done = await confirmDialog({
      title: `New page address for “${display.name}”?`, confirm: "Give a new address",
      text: "The current address stops working at once: a browser showing it loses its screen. Use this when "
        + "an address leaked, then open the new one on the screen.",
      action: () => api.patch(`/api/displays/${enc(display.id)}`, { new_public_id: true }),
    });
    if (done) {
      toast(`“${display.name}” has a new page address`);
      await state.refreshDisplays();
    }
  }

  /** @param {any} display */
  async function removeScreen(display) {
    const done = await confirmDialog({
      title: `Delete “${display.name}”?`, confirm: "Delete screen",
      text: "Its page address stops working. Other screens of the room are not affected.",
      action: () => api.del(`/api/displays/${enc(display.id)}`),
    });
    if (done) {
      toast(`Screen “${display.name}” deleted`);
      await state.refreshDisplays();
    }
  }

  // -- life -------------------------------------------------------------------------------------

  /** @type {import("./state.js").RoomWatch | null} */
  let watched = null;
  let namesFor = "";
  const onWatch = () => {
    // a media item or event the names do not know yet: fetch them again (once per state)
    const s = state.watch?.state;
    const key = s ? `${s.media_id}|${s.event_id ?? ""}` : "";
    if (s && key !== namesFor && ((s.media_id && !mediaTitles.has(s.media_id)) || (s.event_id && !eventNames.has(s.event_id)))) {
      namesFor = key;
      loadNames();
      loadDurations();
    }
    renderNow();
  };
  function follow() {
    if (watched === state.watch) return;
    watched?.removeEventListener("state", onWatch);
    watched?.removeEventListener("status", onWatch);
    watched = state.watch;
    watched?.addEventListener("state", onWatch);
    watched?.addEventListener("status", onWatch);
  }
  const onDisplays = () => renderDisplays();
  const onRoom = () => {
    follow();
    mediaDurations.clear();
    loadDurations();
    layout();
  };
  state.addEventListener("displays", onDisplays);
  state.addEventListener("displayRoom", onRoom);
  state.addEventListener("rooms", onRoom);
  follow();
  const ticker = setInterval(() => {
    renderNow();
    if (chartCard.el.isConnected) chart.set(chart.series, state.serverNow());
  }, 250);
  loadDurations();
  layout();

  return () => {
    clearInterval(ticker);
    chart.destroy();
    picker.destroy();
    watched?.removeEventListener("state", onWatch);
    watched?.removeEventListener("status", onWatch);
    state.removeEventListener("displays", onDisplays);
    state.removeEventListener("displayRoom", onRoom);
    state.removeEventListener("rooms", onRoom);
  };
}
