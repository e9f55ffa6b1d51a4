// The Events section: display events (which video, which room's screens, UDP port and payload,
// cooldown, lead time) with each port's status, a live cooldown countdown, Trigger and Force
// buttons that show the scheduled start or the 429 answer, and create / edit / delete.

import { api, enc } from "./api.js";
import { displayRoomPicker, newDisplayRoom } from "./displays.js";
import {
  KeyedRows, busy, card, confirmDialog, copyButton, dataTable, emptyState, field, fill, fmtAge, fmtTime,
  formDialog, formValues, h, icon, loadingState, pageHead, toast,
} from "./ui.js";

const POLL_MS = 2000;
const DEFAULT_LEAD_MS = 5000;
const MAX_LEAD_MS = 600000;
const MAX_COOLDOWN_S = 86400;

/** @param {string} text quoted for a POSIX shell when it needs it */
function shellQuote(text) {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, "'\\''")}'`;
}

/** @param {any} status an event's UDP port status */
function portPill(status) {
  const udp = status?.udp ?? "off";
  if (udp === "listening") return h("span", { class: "pill ok", title: `UDP port ${status.port} is bound on this node` },
    h("span", { class: "dot ok" }), "listening");
  if (udp === "error") return h("span", { class: "pill bad", title: status.error ?? "" }, `error: ${status.error ?? "unknown"}`);
  if (udp === "off") return h("span", { class: "pill", title: "No UDP port: HTTP triggers only" }, "off");
  return h("span", { class: "pill warn" }, udp);
}

/**
 * @param {HTMLElement} main
 * @param {{state: import("./state.js").AdminState, navigate: (id: string) => void}} ctx
 */
export function mount(main, ctx) {
  const { state } = ctx;
  const picker = displayRoomPicker(state);
  const newButton = h("button", { class: "btn btn-primary", type: "button", onClick: () => editEvent(null) },
    icon("plus"), "New event");
  const body = h("div", { class: "stack" });
  main.append(pageHead("Events",
    "A UDP packet or an HTTP request starts an event's video on every screen of its room, after its lead time.",
    picker.el, newButton), body);

  const result = h("div", { id: "trigger-result", role: "status", "aria-live": "polite" });
  const countdown = h("strong", { "aria-hidden": "true" });
  /** @type {number | null} server ms of the last start this page scheduled */
  let scheduledAt = null;
  const { table, tbody, wrap } = dataTable(["Event", "Media", "UDP trigger", "Port", "Cooldown", ["Lead", "num"],
    "Last trigger", ["", "actions"]], "Events");
  table.id = "events-table";
  const slot = h("div", null, loadingState("Loading events…"));
  const listCard = card({ title: "Events", flush: true }, slot);
  const how = h("dl", { class: "kv", id: "trigger-how" });
  const howCard = card({ title: "From a show controller", sub: "what the controller sends",
    foot: h("span", null, "No account is needed to trigger. ", h("code", null, "?force=1"), " skips the cooldown for site admins "
      + "and for sources inside ", h("code", null, "[triggers] lan_networks"), "; allowed sources limit who may trigger.") },
  how);
  /** @type {any[] | null} */
  let events = null;
  /** @type {Map<string, string>} media id -> title */
  const mediaTitles = new Map();
  /** @type {Map<string, number>} room id -> when its playlist was last read for titles */
  const roomReadAt = new Map();
  const rows = new KeyedRows(tbody, (e) => e.id, createRow);
  /** @type {Map<string, HTMLElement>} event id -> its cooldown cell */
  const cooldownCells = new Map();

  function layout() {
    newButton.toggleAttribute("disabled", state.displayRooms().length === 0);
    if (state.displayRooms().length === 0) {
      fill(body, card({ title: "Get started" }, emptyState("bolt", state.isSiteAdmin ? "No display room yet" : "No display room you manage",
        "Events start videos on the screens of a display room. Create a room first.",
        h("button", { class: "btn btn-primary", type: "button", onClick: () => newDisplayRoom(state) },
          icon("plus"), "Create a display room"))).el);
      return;
    }
    fill(body, result, listCard.el, howCard.el);
    render();
  }

  function shown() {
    return (events ?? []).filter((e) => !state.displayRoomId || e.room_id === state.displayRoomId);
  }

  function render() {
    if (!listCard.el.isConnected || events === null) return;
    const list = shown();
    if (list.length === 0) {
      const where = state.displayRoomId ? ` in “${state.roomName(state.displayRoomId)}”` : "";
      fill(slot, emptyState("bolt", `No events${where} yet`,
        "An event names a video, the UDP packet or URL that starts it, a lead time so every screen can "
        + "get ready, and a cooldown.",
        h("button", { class: "btn btn-primary", type: "button", onClick: () => editEvent(null) }, icon("plus"), "New event")));
    } else if (!slot.contains(wrap)) {
      fill(slot, wrap);
    }
    rows.set(list);
    renderHow(list.find((e) => e.udp_port) ?? list[0]);
    tick();
  }

  /** @param {any} event an example event, or undefined */
  function renderHow(event) {
    howCard.el.hidden = !event;
    if (!event) return;
    const origin = location.origin;
    const host = location.hostname;
    /** @type {Array<[string, string]>} */
    const lines = [];
    if (event.udp_port) lines.push(["UDP", `printf '%s' ${shellQuote(event.udp_payload)} | nc -u -w1 ${host} ${event.udp_port}`]);
    lines.push(["HTTP", `curl -X POST ${origin}/trigger_by_name/${encodeURIComponent(event.name)}`]);
    lines.push(["Browser", `${origin}/trigger/${event.id}`]);
    lines.push(["CLI", `synctv event trigger ${shellQuote(event.name)}`]);
    fill(how, lines.map(([label, text]) => [h("dt", null, label),
      h("dd", { class: "linkish" }, h("code", null, text), copyButton(() => text, `Copy the ${label} trigger`))]));
  }

  async function poll() {
    try {
      events = (await api.get("/api/events")).events;
      const missing = new Set((events ?? []).filter((e) => e.media_id && !mediaTitles.has(e.media_id)).map((e) => e.room_id));
      for (const roomId of missing) {
        if (Date.now() - (roomReadAt.get(roomId) ?? 0) < 10000) continue;
        roomReadAt.set(roomId, Date.now());
        for (const m of await state.roomMedia(roomId)) mediaTitles.set(m.id, m.title);
      }
      render();
    } catch (error) {
      if (events === null) fill(slot, h("p", { class: "form-error", role: "alert", style: "margin:1rem" },
        /** @type {Error} */ (error).message));
    }
  }

  /** Updates the cooldown countdowns and the countdown to the last scheduled start. */
  function tick() {
    const now = state.serverNow();
    if (scheduledAt !== null) {
      const left = scheduledAt - now;
      countdown.textContent = left > 0 ? `Starting in ${(left / 1000).toFixed(1)} s…` : "Started.";
    }
    for (const e of shown()) {
      const cell = cooldownCells.get(e.id);
      if (!cell) continue;
      const remaining = e.last_triggered_at ? e.last_triggered_at + e.cooldown_s * 1000 - now : 0;
      const text = e.cooldown_s ? `${e.cooldown_s} s` : "none";
      const next = remaining > 0
        ? [h("span", { class: "pill warn" }, icon("clock"), `${(remaining / 1000).toFixed(1)} s left`), h("span", { class: "cell-sub" }, `of ${text}`)]
        : [h("span", { class: "pill ok" }, "ready"), h("span", { class: "cell-sub" }, e.cooldown_s ? `cooldown ${text}` : "no cooldown")];
      cell.dataset.cooling = remaining > 0 ? "true" : "false";
      fill(cell, next);
    }
  }

  /** @param {any} event */
  function createRow(event) {
    let current = event;
    const name = h("span", { class: "cell-title nowrap" });
    const room = h("span", { class: "cell-sub" });
    const media = h("td", { class: "nowrap" });
    const udp = h("td", { class: "nowrap" });
    const port = h("td");
    const cooldown = h("td", { class: "nowrap" });
    const lead = h("td", { class: "num" });
    const last = h("td", { class: "muted nowrap" });
    cooldownCells.set(event.id, cooldown);
    const trigger = h("button", { class: "btn btn-sm btn-go", type: "button", onClick: () => fire(current, false, trigger) },
      icon("play"), "Trigger");
    const force = h("button", { class: "btn btn-sm", type: "button", title: "Start now, skipping the cooldown",
      onClick: () => fire(current, true, force) }, "Force");
    const row = /** @type {HTMLTableRowElement} */ (h("tr", null,
      h("td", null, name, room), media, udp, port, cooldown, lead, last,
      h("td", { class: "actions" }, trigger, force,
        h("button", { class: "btn btn-sm btn-ghost btn-icon", type: "button", title: "Edit", "aria-label": `Edit ${event.name}`,
          onClick: () => editEvent(current) }, icon("edit")),
        h("button", { class: "btn btn-sm btn-ghost btn-icon btn-danger", type: "button", title: "Delete",
          "aria-label": `Delete ${event.name}`, onClick: () => removeEvent(current) }, icon("trash")))));
    return {
      row,
      update: (/** @type {any} */ e) => {
        current = e;
        name.textContent = e.name;
        room.textContent = state.roomName(e.room_id);
        fill(media, e.media_id ? (mediaTitles.get(e.media_id) ?? h("span", { class: "muted" }, e.media_id.slice(0, 8)))
          : h("span", { class: "pill bad", title: "Its media item was removed: give it another to fire" }, "no media"));
        fill(udp, e.udp_port ? [h("code", null, `:${e.udp_port}`), " ", h("code", { class: "muted" }, JSON.stringify(e.udp_payload))]
          : h("span", { class: "muted" }, "HTTP only"));
        fill(port, portPill(e.status));
        lead.textContent = `${e.lead_ms} ms`;
        const age = e.last_triggered_at ? fmtAge(state.serverNow() - e.last_triggered_at) : "";
        last.textContent = !e.last_triggered_at ? "never" : age === "just now" ? age : `${age} ago`;
        last.title = e.last_triggered_at ? new Date(e.last_triggered_at).toLocaleString() : "";
      },
    };
  }

  // -- triggering -------------------------------------------------------------------------------

  /**
   * @param {any} event
   * @param {boolean} force
   * @param {HTMLElement} button
   */
  async function fire(event, force, button) {
    try {
      const answer = await busy(button, () => api.post(`/trigger/${enc(event.id)}${force ? "?force=1" : ""}`));
      const screens = (state.displays ?? []).filter((d) => d.room_id === event.room_id);
      const online = screens.filter((d) => d.status?.online).length;
      scheduledAt = answer.at_ms;
      showResult("ok", [h("strong", null, `“${event.name}” scheduled`), ` to start at ${fmtTime(answer.at_ms, true)} `,
        h("span", { class: "mono", id: "starts-in" }, `(in ${answer.starts_in_ms} ms)`),
        ` on ${online} of ${screens.length} screen${screens.length === 1 ? "" : "s"} online. `, countdown]);
      const i = (events ?? []).findIndex((e) => e.id === event.id);
      if (events && i >= 0) events[i] = { ...events[i], last_triggered_at: answer.event.last_triggered_at };
      render();
      state.refreshDisplays();
    } catch (error) {
      scheduledAt = null;
      const e = /** @type {any} */ (error);
      if (e.status === 429) {
        const ms = e.detail?.retry_after_ms;
        const wait = ms !== undefined ? `${(ms / 1000).toFixed(1)} s` : `${e.retryAfter} s`;
        showResult("warn", [h("strong", null, `“${event.name}” is cooling down.`),
          ` Try again in ${wait} (Retry-After: ${e.retryAfter ?? "?"} s), or use Force to start it now. `,
          h("span", { class: "muted" }, e.message)]);
      } else {
        showResult("bad", [h("strong", null, `“${event.name}” did not start: `), e.message]);
      }
    }
  }

  /**
   * @param {"ok" | "warn" | "bad"} kind
   * @param {any[]} content
   */
  function showResult(kind, content) {
    fill(result, h("div", { class: `banner ${kind}`, dataset: { kind } },
      icon(kind === "ok" ? "check" : kind === "warn" ? "clock" : "x"),
      h("div", null, ...content),
      h("button", { class: "btn btn-sm btn-ghost close", type: "button", "aria-label": "Dismiss",
        onClick: () => result.replaceChildren() }, icon("x"))));
  }

  // -- editing ----------------------------------------------------------------------------------

  /**
   * Fills the media select with the room's playlist and the video library.
   * @param {HTMLSelectElement} select
   * @param {string} roomId
   * @param {string | null} chosen
   */
  async function mediaOptions(select, roomId, chosen) {
    fill(select, h("option", { value: "" }, "Loading…"));
    select.disabled = true;
    try {
      const [playlist, { videos }] = await Promise.all([roomId ? state.roomMedia(roomId) : [], api.get("/api/videos")]);
      const playing = new Set(playlist.filter((/** @type {any} */ m) => m.provider === "upload")
        .map((/** @type {any} */ m) => m.url.replace(/^upload:/, "")));
      const library = videos.filter((/** @type {any} */ v) => !playing.has(v.id));
      for (const m of playlist) mediaTitles.set(m.id, m.title);
      fill(select, h("option", { value: "" }, playlist.length + library.length ? "Choose a video…" : "No videos yet: upload one first"),
        playlist.length ? h("optgroup", { label: "The room's playlist" },
          playlist.map((/** @type {any} */ m) => h("option", { value: m.id }, m.title))) : null,
        library.length ? h("optgroup", { label: "Video library (added to the playlist)" },
          library.map((/** @type {any} */ v) => h("option", { value: v.id }, v.title))) : null);
      select.value = chosen ?? "";
    } catch (error) {
      fill(select, h("option", { value: "" }, `Could not list videos: ${/** @type {Error} */ (error).message}`));
    }
    select.disabled = false;
  }

  /** @param {any | null} event null for a new one */
  async function editEvent(event) {
    const rooms = state.displayRooms();
    const roomSelect = /** @type {HTMLSelectElement} */ (h("select", { name: "room", required: true },
      rooms.map((r) => h("option", { value: r.id }, r.name))));
    roomSelect.value = event?.room_id ?? (state.displayRoomId || rooms[0]?.id || "");
    const mediaSelect = /** @type {HTMLSelectElement} */ (h("select", { name: "media", required: true }));
    roomSelect.addEventListener("change", () => mediaOptions(mediaSelect, roomSelect.value, null));
    mediaOptions(mediaSelect, roomSelect.value, event?.media_id ?? null);
    const num = (/** @type {string} */ n, /** @type {Record<string, any>} */ a) => h("input", { name: n, type: "number", ...a });
    const saved = await formDialog({
      title: event ? `Edit “${event.name}”` : "New event",
      submit: event ? "Save event" : "Create event",
      body: [h("div", { class: "form-grid" },
        field("Name", h("input", { name: "name", required: true, maxlength: 64, value: event?.name ?? "", placeholder: "show" }),
          { hint: "Also triggers by name: /trigger_by_name/{name}" }),
        field("Display room", roomSelect),
        field("Video", mediaSelect, { wide: true }),
        field("Lead time (ms)", num("lead_ms", { min: 0, max: MAX_LEAD_MS, step: 1, required: true,
          value: event?.lead_ms ?? DEFAULT_LEAD_MS }), { hint: "From the trigger to the first frame: time to get ready." }),
        field("Cooldown (s)", num("cooldown_s", { min: 0, max: MAX_COOLDOWN_S, step: "any", required: true,
          value: event?.cooldown_s ?? 5 }), { hint: "Triggers within this time are refused (429); 0: no cooldown." }),
        h("div", { class: "form-section", text: "UDP trigger (optional)" }),
        field("UDP port", num("udp_port", { min: 1, max: 65535, step: 1, value: event?.udp_port ?? "", placeholder: "5000",
          readonly: !state.isSiteAdmin }),
          { hint: state.isSiteAdmin ? "Inside [triggers] udp_ports (default 5000-5999)." : "Only site admins set UDP ports." }),
        field("Payload", h("input", { name: "udp_payload", maxlength: 1024, value: event?.udp_payload ?? "", placeholder: "SHOW_START" }),
          { hint: "Exact packet text; a trailing CR/LF is ignored." }),
        field("Allowed sources", h("textarea", { name: "allowed_sources", rows: 2, placeholder: "192.168.1.0/24" },
          (event?.allowed_sources ?? []).join("\n")), { wide: true, hint: "CIDRs, one per line; empty: any source may trigger." }),
      )],
      onSubmit: async (form) => {
        const v = formValues(form);
        const body = {
          name: v.name.trim(), room: v.room, media: v.media,
          lead_ms: Number(v.lead_ms), cooldown_s: Number(v.cooldown_s),
          udp_port: v.udp_port === "" ? null : Number(v.udp_port),
          udp_payload: v.udp_payload === "" ? null : v.udp_payload,
          allowed_sources: v.allowed_sources.split(/[\s,]+/).filter(Boolean),
        };
        if (!event) return (await api.post("/api/events", body)).event;
        /** @type {Record<string, unknown>} */
        const patch = {};
        const before = { ...event, room: event.room_id, media: event.media_id };
        for (const [k, value] of Object.entries(body)) {
          if (JSON.stringify(value) !== JSON.stringify(before[k])) patch[k] = value;
        }
        return Object.keys(patch).length ? (await api.patch(`/api/events/${enc(event.id)}`, patch)).event : event;
      },
    });
    if (saved) {
      const port = saved.status?.udp === "error" ? ` — UDP port ${saved.udp_port}: ${saved.status.error}` : "";
      toast(`Event “${saved.name}” ${event ? "saved" : "created"}${port}`, port ? "bad" : "ok");
      mediaTitles.clear();
      roomReadAt.clear();
      await poll();
    }
  }

  /** @param {any} event */
  async function removeEvent(event) {
    const done = await confirmDialog({
      title: `Delete “${event.name}”?`, confirm: "Delete event",
      text: event.udp_port ? `Its UDP port ${event.udp_port} is released unless another event uses it.`
        : "Its trigger URL stops working.",
      action: () => api.del(`/api/events/${enc(event.id)}`),
    });
    if (done) {
      toast(`Event “${event.name}” deleted`);
      await poll();
    }
  }

  // -- life -------------------------------------------------------------------------------------

  let timer = /** @type {ReturnType<typeof setTimeout> | null} */ (null);
  let alive = true;
  const loop = async () => {
    await poll();
    if (alive) timer = setTimeout(loop, POLL_MS);
  };
  const onRoom = () => layout();
  state.addEventListener("displayRoom", onRoom);
  state.addEventListener("rooms", onRoom);
  const ticker = setInterval(tick, 200);
  layout();
  loop();

  return () => {
    alive = false;
    if (timer !== null) clearTimeout(timer);
    clearInterval(ticker);
    picker.destroy();
    state.removeEventListener("displayRoom", onRoom);
    state.removeEventListener("rooms", onRoom);
  };
}
