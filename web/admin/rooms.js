// The Rooms section: every room (kind, password, members), and for the selected room its live
// playback state over the WebSocket (RealtimeClient observing playbackState) with play, pause,
// seek and media buttons, its playlist and its members; create and delete rooms.

import { api, enc } from "./api.js";
import { RoomWatch } from "./state.js";
import {
  KeyedRows, busy, card, confirmDialog, dataTable, emptyState, field, fill, fmtDate, fmtDuration, formDialog,
  formValues, h, icon, loadingState, pageHead, toast,
} from "./ui.js";

/**
 * @param {HTMLElement} main
 * @param {{state: import("./state.js").AdminState, navigate: (id: string) => void}} ctx
 */
export function mount(main, ctx) {
  const { state } = ctx;
  main.append(pageHead("Rooms", "Watch-together rooms and display rooms share one playback model.",
    h("button", { class: "btn btn-primary", type: "button", onClick: () => createRoom() }, icon("plus"), "New room")));
  const { table, tbody, wrap } = dataTable(["Room", "Kind", ["Members", "num"], "Created", ["", "actions"]], "Rooms");
  table.id = "rooms-table";
  const listSlot = h("div", null, loadingState("Loading rooms…"));
  const detail = h("div", { class: "stack" });
  main.append(h("div", { class: "grid-2" }, card({ title: "Rooms", flush: true }, listSlot).el, detail));
  /** @type {Map<string, number | null>} */
  const memberCounts = new Map();
  let selected = "";
  /** @type {RoomWatch | null} */
  let watch = null;
  const rows = new KeyedRows(tbody, (r) => r.id, createRow);

  function renderList() {
    if (state.rooms.length === 0) {
      fill(listSlot, emptyState("rooms", "No rooms yet", "Create a watch room for people, or a display room for screens."));
      return;
    }
    if (!listSlot.contains(wrap)) fill(listSlot, wrap);
    rows.set(state.rooms);
  }

  /** @param {any} room */
  function createRow(room) {
    let current = room;
    const name = h("button", { class: "btn btn-ghost btn-sm", type: "button", style: "padding:0;color:inherit",
      onClick: () => select(current.id) });
    const kind = h("td");
    const members = h("td", { class: "num" });
    const created = h("td", { class: "muted nowrap" });
    const row = /** @type {HTMLTableRowElement} */ (h("tr", null,
      h("td", null, name), kind, members, created,
      h("td", { class: "actions" },
        h("button", { class: "btn btn-sm", type: "button", onClick: () => select(current.id) }, "Open"),
        h("button", { class: "btn btn-sm btn-ghost btn-icon btn-danger", type: "button", title: "Delete",
          "aria-label": `Delete ${room.name}`, onClick: () => removeRoom(current) }, icon("trash")))));
    return {
      row,
      update: (/** @type {any} */ r) => {
        current = r;
        fill(name, h("span", { class: "cell-title" }, r.name), r.has_password ? h("span", { class: "pill", style: "margin-left:0.4rem" }, "password") : null);
        fill(kind, h("span", { class: `pill ${r.kind === "display" ? "info" : ""}` }, r.kind));
        const n = memberCounts.get(r.id);
        members.textContent = n === undefined ? "…" : n === null ? "–" : String(n);
        created.textContent = fmtDate(r.created_at);
        row.classList.toggle("selected", r.id === selected);
      },
    };
  }

  async function countMembers() {
    await Promise.all(state.rooms.map(async (r) => {
      try {
        memberCounts.set(r.id, (await api.get(`/api/rooms/${enc(r.id)}/members`)).members.length);
      } catch {
        memberCounts.set(r.id, null);
      }
    }));
    renderList();
  }

  // -- the selected room --------------------------------------------------------------------------

  /** @param {string} roomId */
  async function select(roomId) {
    selected = roomId;
    renderList();
    watch?.close();
    watch = null;
    const room = state.room(roomId);
    if (!room) {
      fill(detail, card({ title: "Room" }, emptyState("rooms", "Choose a room", "Its playback, playlist and members show here.")).el);
      return;
    }
    const stateText = h("div", { class: "now-title", id: "room-playback" }, "Connecting…");
    const stateSub = h("div", { class: "now-sub" });
    const mediaSelect = /** @type {HTMLSelectElement} */ (h("select", { "aria-label": "Media to play", style: "width:auto;min-width:12rem" }));
    const control = (/** @type {string} */ label, /** @type {any} */ iconName, /** @type {() => Promise<any>} */ act) => {
      const b = h("button", { class: "btn", type: "button" }, icon(iconName), label);
      b.addEventListener("click", () => busy(b, act).catch((e) => toast(e.message, "bad")));
      return b;
    };
    const play = control("Play", "play", () => /** @type {RoomWatch} */ (watch).update("play", { position: watch?.position() ?? 0 }));
    const pause = control("Pause", "pause", () => /** @type {RoomWatch} */ (watch).update("pause", { position: watch?.position() ?? 0 }));
    const back = control("−10 s", "refresh", () => /** @type {RoomWatch} */ (watch).update("seek", { position: Math.max(0, (watch?.position() ?? 0) - 10) }));
    const load = control("Load", "film", async () => {
      if (mediaSelect.value) await /** @type {RoomWatch} */ (watch).update("media", { media_id: mediaSelect.value });
    });
    const playlist = h("div", null, loadingState());
    const members = h("div", null, loadingState());
    fill(detail,
      card({ title: room.name, sub: `${room.kind} room`, label: "Playback" },
        h("div", { class: "now", style: "padding:0" },
          h("div", { class: "now-text" }, stateText, stateSub)),
        h("div", { class: "inline-form", style: "margin-top:0.9rem" }, play, pause, back, mediaSelect, load)).el,
      card({ title: "Playlist", flush: true }, playlist).el,
      card({ title: "Members", flush: true }, members).el);

    let member = null;
    try {
      member = (await api.get(`/api/rooms/${enc(roomId)}`)).member;
    } catch {
      // shown below as not connected
    }
    if (selected !== roomId) return;
    if (!member && !state.isSiteAdmin) {
      stateText.textContent = "You are not a member of this room";
      stateSub.textContent = "Join it (POST /api/rooms/{room}/join) to see and control its playback.";
      for (const b of [play, pause, back, load]) b.setAttribute("disabled", "");
      mediaSelect.disabled = true;
    }
    const w = member || state.isSiteAdmin ? new RoomWatch(roomId) : null;
    watch = w;
    if (!w) {
      fill(playlist, h("p", { class: "muted", style: "margin:1rem" }, "Members only."));
      fill(members, h("p", { class: "muted", style: "margin:1rem" }, "Members only."));
      return;
    }
    /** @type {Map<string, any>} */
    let items = new Map();
    const render = () => {
      if (watch !== w) return;
      const s = w.state;
      if (!s) {
        stateText.textContent = w.status === "closed" ? "Not connected (are you a member?)" : "Connecting…";
        return;
      }
      const item = s.media_id ? items.get(s.media_id) : null;
      const now = w.serverNow();
      const where = `${fmtDuration(w.position())}${item?.duration ? ` / ${fmtDuration(item.duration)}` : ""}`;
      stateText.textContent = !s.media_id ? "Nothing selected"
        : s.ended ? `Ended: ${item?.title ?? s.media_id}`
          : s.playing && s.at_ms > now ? `Starts in ${((s.at_ms - now) / 1000).toFixed(1)} s: ${item?.title ?? s.media_id}`
            : `${s.playing ? "Playing" : "Paused"}: ${item?.title ?? s.media_id}`;
      stateSub.textContent = s.media_id ? `${where} · rate ${s.rate}× · version ${s.version} · ${w.status}` : `version ${s.version} · ${w.status}`;
    };
    w.addEventListener("state", render);
    w.addEventListener("status", render);
    const ticker = setInterval(() => (watch === w ? render() : clearInterval(ticker)), 250);

    try {
      const media = await state.roomMedia(roomId);
      items = new Map(media.map((/** @type {any} */ m) => [m.id, m]));
      fill(mediaSelect, media.length ? media.map((/** @type {any} */ m) => h("option", { value: m.id }, m.title))
        : h("option", { value: "" }, "The playlist is empty"));
      fill(playlist, media.length ? (() => {
        const t = dataTable(["#", "Title", "Provider", ["Duration", "num"]], "Playlist");
        t.tbody.append(...media.map((/** @type {any} */ m, /** @type {number} */ i) => h("tr", null,
          h("td", { class: "muted" }, String(i + 1)), h("td", null, m.title), h("td", null, h("span", { class: "pill" }, m.provider)),
          h("td", { class: "num" }, fmtDuration(m.duration)))));
        return t.wrap;
      })() : emptyState("film", "Empty playlist", "Add media with the CLI or, for uploads, from Videos."));
    } catch (error) {
      fill(playlist, h("p", { class: "muted", style: "margin:1rem" }, /** @type {Error} */ (error).message));
    }
    try {
      const { members: list } = await api.get(`/api/rooms/${enc(roomId)}/members`);
      const t = dataTable(["User", "Role", "Permissions"], "Members");
      t.tbody.append(...list.map((/** @type {any} */ m) => h("tr", null, h("td", { class: "cell-title" }, m.user_name ?? m.user_id),
        h("td", null, h("span", { class: "pill" }, m.role)), h("td", { class: "muted", style: "font-size:0.8rem" }, m.permissions.join(", ")))));
      fill(members, list.length ? t.wrap : emptyState("users", "No members", ""));
    } catch (error) {
      fill(members, h("p", { class: "muted", style: "margin:1rem" }, /** @type {Error} */ (error).message));
    }
    render();
  }

  async function createRoom() {
    const kind = /** @type {HTMLSelectElement} */ (h("select", { name: "kind" },
      h("option", { value: "watch" }, "Watch together"), h("option", { value: "display" }, "Display room (screens)")));
    const room = await formDialog({
      title: "New room", narrow: true, submit: "Create room",
      body: [
        field("Name", h("input", { name: "name", required: true, maxlength: 64 })),
        field("Kind", kind),
        field("Password", h("input", { name: "password", type: "password", autocomplete: "new-password" }),
          { hint: "Optional: needed to join (watch rooms)." }),
      ],
      onSubmit: async (form) => {
        const v = formValues(form);
        return (await api.post("/api/rooms", { name: v.name.trim(), kind: v.kind, ...(v.password ? { password: v.password } : {}) })).room;
      },
    });
    if (room) {
      toast(`Room “${room.name}” created`);
      await state.loadRooms();
      countMembers();
      select(room.id);
    }
  }

  /** @param {any} room */
  async function removeRoom(room) {
    const done = await confirmDialog({
      title: `Delete “${room.name}”?`, confirm: "Delete room",
      text: room.kind === "display" ? "Its screens, events and playlist are removed; open screens lose their page."
        : "Its playlist and members are removed; people in it are disconnected.",
      action: () => api.del(`/api/rooms/${enc(room.id)}`),
    });
    if (done) {
      toast(`Room “${room.name}” deleted`);
      if (selected === room.id) select("");
      await state.loadRooms();
    }
  }

  const onRooms = () => renderList();
  state.addEventListener("rooms", onRooms);
  state.loadRooms().then(() => {
    renderList();
    countMembers();
  }, (error) => fill(listSlot, h("p", { class: "form-error", role: "alert", style: "margin:1rem" }, error.message)));
  select(state.displayRoomId || "");

  return () => {
    watch?.close();
    watch = null;
    state.removeEventListener("rooms", onRooms);
  };
}
