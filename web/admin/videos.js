// The Videos section: uploads with a real progress bar (the raw file as the body of
// POST /api/videos?filename=..., XMLHttpRequest upload progress), and the library: title,
// duration, size, type, where it is used; rename, add to a room's playlist, delete (409 while
// media items play it).

import { ApiError, api, enc, uploadRaw } from "./api.js";
import {
  KeyedRows, card, confirmDialog, dataTable, emptyState, field, fill, fmtBytes, fmtDate, fmtDuration, formDialog,
  formValues, h, icon, loadingState, pageHead, toast,
} from "./ui.js";

/** @type {HTMLElement | null} the upload list, kept while the page lives */
let uploadList = null;
/** refreshes the library of the mounted section after an upload */
let afterUpload = () => {};

/**
 * @param {HTMLElement} main
 * @param {{state: import("./state.js").AdminState, navigate: (id: string) => void}} ctx
 */
export function mount(main, ctx) {
  const { state } = ctx;
  const admin = state.isSiteAdmin;
  const input = /** @type {HTMLInputElement} */ (h("input", { type: "file", accept: "video/*", multiple: true,
    class: "sr-only", id: "video-file", tabindex: "-1" }));
  const chooseButton = h("button", { class: "btn btn-primary", type: "button", disabled: !admin,
    onClick: () => input.click() }, icon("upload"), "Upload videos");
  main.append(pageHead("Videos", "The library the events play. Screens cache the videos of their room ahead of a show.",
    chooseButton));

  uploadList ??= h("div", { class: "uploads", id: "uploads" });
  const uploads = uploadList; // kept across visits: uploads go on while another section shows
  afterUpload = () => load();
  const dropzone = h("div", { class: "dropzone", role: "button", tabindex: "0", "aria-describedby": "dropzone-hint",
    "aria-label": "Upload videos: choose files or drop them here" },
  icon("upload"), h("strong", null, "Drop video files here, or click to choose"),
  h("small", { id: "dropzone-hint" }, "MP4 or WebM, uploaded as they are (no transcoding), up to the server's limit "
    + "([displays] max_video_bytes, 4 GiB by default)."));
  const uploadCard = card({ title: "Upload" }, admin ? [dropzone, input, uploads]
    : emptyState("upload", "Uploads are for site admins", "Ask an admin to upload videos; you can use them in events."));
  const { table, tbody, wrap } = dataTable(["Title", ["Duration", "num"], ["Size", "num"], "Type", "Used by", "Added",
    ["", "actions"]], "Video library");
  table.id = "videos-table";
  const slot = h("div", null, loadingState("Loading videos…"));
  const count = h("span");
  const libraryCard = card({ title: "Library", sub: count, flush: true }, slot);
  main.append(h("div", { class: "stack" }, uploadCard.el, libraryCard.el));
  const rows = new KeyedRows(tbody, (v) => v.id, createRow);
  /** @type {Map<string, {room_id: string, title: string}>} media id -> where */
  let mediaRooms = new Map();

  // -- the library ------------------------------------------------------------------------------

  async function load() {
    try {
      const [{ videos }, places] = await Promise.all([api.get("/api/videos"), usage()]);
      mediaRooms = places;
      count.textContent = `${videos.length} video${videos.length === 1 ? "" : "s"}, ${fmtBytes(videos.reduce(
        (/** @type {number} */ n, /** @type {any} */ v) => n + v.size, 0))}`;
      if (videos.length === 0) {
        fill(slot, emptyState("film", "No videos yet", admin ? "Upload a video above; then pick it in an event."
          : "A site admin uploads the videos events play."));
      } else if (!slot.contains(wrap)) {
        fill(slot, wrap);
      }
      rows.set(videos);
    } catch (error) {
      fill(slot, h("p", { class: "form-error", role: "alert", style: "margin:1rem" }, /** @type {Error} */ (error).message));
    }
  }

  /** media id -> its room, for the display rooms (where uploads are played) */
  async function usage() {
    /** @type {Map<string, {room_id: string, title: string}>} */
    const places = new Map();
    await Promise.all(state.displayRooms().map(async (r) => {
      try {
        for (const m of await state.roomMedia(r.id)) places.set(m.id, { room_id: r.id, title: m.title });
      } catch {
        // not a member: unknown place
      }
    }));
    return places;
  }

  /** @param {any} video */
  function createRow(video) {
    let current = video;
    const title = h("span", { class: "cell-title" });
    const sub = h("span", { class: "cell-sub mono" });
    const duration = h("td", { class: "num" });
    const size = h("td", { class: "num" });
    const type = h("td");
    const used = h("td");
    const added = h("td", { class: "muted nowrap" });
    const preview = /** @type {HTMLAnchorElement} */ (h("a", { class: "btn btn-sm btn-ghost btn-icon", target: "_blank",
      rel: "noopener", title: "Open the file", "aria-label": `Open ${video.title}` }, icon("external")));
    const row = /** @type {HTMLTableRowElement} */ (h("tr", null,
      h("td", null, title, sub), duration, size, type, used, added,
      h("td", { class: "actions" },
        preview,
        h("button", { class: "btn btn-sm", type: "button", onClick: () => addToRoom(current) }, icon("plus"), "Add to room"),
        admin ? h("button", { class: "btn btn-sm btn-ghost btn-icon", type: "button", title: "Rename",
          "aria-label": `Rename ${video.title}`, onClick: () => rename(current) }, icon("edit")) : null,
        admin ? h("button", { class: "btn btn-sm btn-ghost btn-icon btn-danger", type: "button", title: "Delete",
          "aria-label": `Delete ${video.title}`, onClick: () => remove(current) }, icon("trash")) : null)));
    return {
      row,
      update: (/** @type {any} */ v) => {
        current = v;
        title.textContent = v.title;
        sub.textContent = v.id;
        duration.textContent = fmtDuration(v.duration);
        size.textContent = fmtBytes(v.size);
        fill(type, h("span", { class: "pill" }, v.format || "?"), h("span", { class: "cell-sub" }, v.content_type));
        const ids = v.media_ids ?? [];
        const rooms = [...new Set(ids.map((/** @type {string} */ id) => mediaRooms.get(id)?.room_id).filter(Boolean))]
          .map((id) => state.roomName(/** @type {string} */ (id)));
        fill(used, ids.length ? h("span", { class: "pill info" }, rooms.length ? rooms.join(", ") : `${ids.length} item${ids.length > 1 ? "s" : ""}`)
          : h("span", { class: "muted" }, "not used"));
        added.textContent = fmtDate(v.created_at);
        preview.href = v.url;
      },
    };
  }

  /** @param {any} video */
  async function rename(video) {
    const done = await formDialog({
      title: "Rename video", narrow: true,
      body: [field("Title", h("input", { name: "title", required: true, maxlength: 256, value: video.title }))],
      onSubmit: async (form) => (await api.patch(`/api/videos/${enc(video.id)}`, { title: formValues(form).title.trim() })).video,
    });
    if (done) {
      toast(`Renamed to “${done.title}”`);
      await load();
    }
  }

  /** @param {any} video */
  async function addToRoom(video) {
    const rooms = [...state.displayRooms(), ...state.rooms.filter((r) => r.kind !== "display")];
    if (!rooms.length) {
      toast("Create a room first", "bad");
      return;
    }
    const select = /** @type {HTMLSelectElement} */ (h("select", { name: "room", required: true },
      rooms.map((r) => h("option", { value: r.id }, `${r.name}${r.kind === "display" ? " (display)" : ""}`))));
    select.value = state.displayRoomId || rooms[0].id;
    const added = await formDialog({
      title: `Add “${video.title}” to a room`, narrow: true, submit: "Add to playlist",
      text: "The video becomes an item of the room's playlist, ready for its events (or for the room's viewers).",
      body: [field("Room", select)],
      onSubmit: async (form) => {
        const room = formValues(form).room;
        const { media } = await api.post(`/api/rooms/${enc(room)}/media`, {
          url: `upload:${video.id}`, provider: "upload", title: video.title,
          ...(video.duration ? { duration: video.duration } : {}),
        });
        return { media, room };
      },
    });
    if (added) {
      toast(`Added to the playlist of “${state.roomName(added.room)}”`);
      await load();
    }
  }

  /** @param {any} video */
  async function remove(video) {
    const done = await confirmDialog({
      title: `Delete “${video.title}”?`, confirm: "Delete video",
      text: "The file is removed from the server. A video that a room's playlist still plays cannot be deleted.",
      action: async () => {
        try {
          await api.del(`/api/videos/${enc(video.id)}`);
        } catch (error) {
          const e = /** @type {any} */ (error);
          if (e.status === 409 && Array.isArray(e.detail?.media)) {
            const where = [...new Set(e.detail.media.map((/** @type {any} */ m) => state.roomName(m.room_id)))].join(", ");
            throw new ApiError(409, e.code, `${e.message}. Used in: ${where}.`);
          }
          throw error;
        }
      },
    });
    if (done) {
      toast(`Video “${video.title}” deleted`);
      await load();
    }
  }

  // -- uploads ----------------------------------------------------------------------------------

  /** @param {File} file */
  function upload(file) {
    const bar = /** @type {HTMLProgressElement} */ (h("progress", { max: 100, value: 0, "aria-label": `Uploading ${file.name}` }));
    const percent = h("span", { class: "state" }, "0 %");
    const detail = h("span", null, `0 B of ${fmtBytes(file.size)}`);
    const cancel = h("button", { class: "btn btn-sm btn-ghost", type: "button", "aria-label": `Cancel ${file.name}` }, "Cancel");
    const item = h("div", { class: "upload", role: "group", "aria-label": file.name },
      h("span", { class: "name", title: file.name }, file.name), cancel, bar, h("div", { class: "meta" }, percent, detail));
    uploads.prepend(item);
    const started = performance.now();
    const job = uploadRaw("POST", `/api/videos?filename=${enc(file.name)}`, file, {
      contentType: file.type || "application/octet-stream",
      onProgress: (p) => {
        const pct = Math.round(p.fraction * 100);
        bar.value = pct;
        const seconds = (performance.now() - started) / 1000;
        const speed = seconds > 0.2 ? p.loaded / seconds : 0;
        const left = speed > 0 ? (p.total - p.loaded) / speed : 0;
        percent.textContent = pct >= 100 ? "100 % · checking the video…" : `${pct} %`;
        detail.textContent = `${fmtBytes(p.loaded)} of ${fmtBytes(p.total)}${speed && pct < 100
          ? ` · ${fmtBytes(speed)}/s · ${Math.ceil(left)} s left` : ""}`;
      },
    });
    cancel.addEventListener("click", () => job.abort());
    job.promise.then((answer) => {
      bar.value = 100;
      item.classList.add("done");
      percent.textContent = "100 % · added to the library";
      detail.textContent = `${fmtBytes(file.size)} · ${fmtDuration(answer.video.duration)} · ${answer.video.format}`;
      fill(cancel, "Dismiss");
      cancel.onclick = () => item.remove();
      toast(`“${answer.video.title}” uploaded`);
      afterUpload();
    }, (error) => {
      item.classList.add("failed");
      percent.textContent = error.code === "aborted" ? "Cancelled" : "Failed";
      detail.textContent = error.message;
      item.setAttribute("role", "alert");
      fill(cancel, "Dismiss");
      cancel.onclick = () => item.remove();
    });
  }

  /** @param {FileList | null} files */
  function uploadAll(files) {
    for (const file of files ?? []) upload(file);
  }

  input.addEventListener("change", () => {
    uploadAll(input.files);
    input.value = "";
  });
  dropzone.addEventListener("click", () => input.click());
  dropzone.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      input.click();
    }
  });
  dropzone.addEventListener("dragover", (e) => {
    e.preventDefault();
    dropzone.classList.add("over");
  });
  dropzone.addEventListener("dragleave", () => dropzone.classList.remove("over"));
  dropzone.addEventListener("drop", (e) => {
    e.preventDefault();
    dropzone.classList.remove("over");
    uploadAll(e.dataTransfer?.files ?? null);
  });

  load();
  return () => {
    afterUpload = () => {};
  };
}
