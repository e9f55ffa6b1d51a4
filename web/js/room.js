// The room page (/room/{room}, web/room.html): watch together (docs/rooms.md).
//
// Signed out it shows the sign-in form (inputs `name`, `password`); then it opens the room by id
// or name (GET /api/rooms/{room}), joins it when needed (asking for the room password, input
// `room_password`), and connects to its WebSocket. From there:
//
// - the player (room-player.js) plays the room's media in one <video> and follows the playback
//   state with the shared sync engine (engine.js, the display pages' engine);
// - the controls (play, pause, seek, rate, start together, and the keys space and arrows) send
//   `update`s for members with `control_playback`; the others see them disabled, with why;
// - a scheduled start (`at_ms` in the future) counts down on every page; a wait for a viewer
//   ("the room waits for its slowest viewer") says whom it waits for and for how long at most;
// - chat and danmaku (room-chat.js), the playlist (room-playlist.js) with the member's provider
//   accounts (room-accounts.js), voice (voice.js), and the people in the room with each one's
//   sync figures (from `viewers`, the telemetry every page sends).
//
// `window.synctvRoom.status()` returns the page's state as JSON (tests, the benchmark). Query
// parameters: the drift controller's (engine.js optionsFromQuery), and `muted=1`.

import { SyncEngine, optionsFromQuery } from "./engine.js";
import { soundMayAutoplay } from "./media.js";
import { RealtimeClient, roomSocketUrl } from "./realtime.js";
import { AccountBrowser } from "./room-accounts.js";
import { RoomChat } from "./room-chat.js";
import { PROFILE, RoomPlayer } from "./room-player.js";
import { RoomPlaylist, duration } from "./room-playlist.js";
import { api, explain, signIn, signOut, stored } from "./session.js";
import { setUpTheme } from "./theme.js";
import { Voice } from "./voice.js";

const SEEK_STEP_S = 5;
// icons (constant markup, never data): the system fonts of kiosks and servers often lack ▶ or 🔊
const svg = (/** @type {string} */ d) => `<svg viewBox="0 0 24 24" width="18" height="18" aria-hidden="true" fill="currentColor"><path d="${d}"/></svg>`;
const ICONS = {
  play: svg("M8 5v14l11-7z"),
  pause: svg("M6 5h4v14H6zm8 0h4v14h-4z"),
  volume: svg("M3 9v6h4l5 5V4L7 9H3zm13.5 3A4.5 4.5 0 0 0 14 8v8a4.5 4.5 0 0 0 2.5-4z"),
  muted: svg("M3 9v6h4l5 5V4L7 9H3zm18.3-1.3-1.4-1.4L17 9.2l-2.9-2.9-1.4 1.4 2.9 2.9-2.9 2.9 1.4 1.4 2.9-2.9 2.9 2.9 1.4-1.4-2.9-2.9z"),
  fullscreen: svg("M7 14H5v5h5v-2H7v-3zm-2-4h2V7h3V5H5v5zm12 7h-3v2h5v-5h-2v3zM14 5v2h3v3h2V5h-5z"),
};
const OVERLAY_MS = 100;
const SIDE_MS = 500;

/** @param {string} id */
function $(id) {
  return /** @type {any} */ (document.getElementById(id));
}

/**
 * Writes only what changed (the page redraws often; unchanged writes still cost layout work).
 * @param {HTMLElement} node
 * @param {string} text
 */
function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

/**
 * @param {HTMLElement} node
 * @param {boolean} hidden
 */
function setHidden(node, hidden) {
  if (node.hidden !== hidden) node.hidden = hidden;
}

/**
 * @param {any} node
 * @param {string} name a property (value, max, disabled, title, ...)
 * @param {unknown} value
 */
function setProp(node, name, value) {
  if (node[name] !== value) node[name] = value;
}

/** @param {number | null | undefined} ms */
function fmtMs(ms, digits = 1) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "—";
  return `${ms >= 0 ? "+" : ""}${ms.toFixed(digits)} ms`;
}

/** The room reference from /room/{room}. */
export function roomRef(pathname = location.pathname) {
  const parts = pathname.split("/").filter(Boolean);
  try {
    return decodeURIComponent(parts.slice(1).join("/"));
  } catch {
    return parts.slice(1).join("/");
  }
}

export class RoomPage {
  constructor() {
    this.ref = roomRef();
    this.params = new URLSearchParams(location.search);
    /** @type {any} */
    this.room = null;
    /** @type {any} */
    this.member = null;
    /** @type {any} */
    this.user = null;
    /** @type {RealtimeClient | null} */
    this.client = null;
    this.video = /** @type {HTMLVideoElement} */ ($("video"));
    this.engine = new SyncEngine(this.video, optionsFromQuery(this.params, "synctv.room.playLatencyMs"));
    this.player = new RoomPlayer(this.video, this.engine, { infoCommand: (media) => this.infoCommand(media) });
    this.chat = new RoomChat({
      log: $("chat-log"), form: $("say-form"), input: $("say"), count: $("say-count"),
      danmakuButton: $("send-danmaku"), sendButton: $("send-chat"), error: $("say-error"), note: $("chat-note"),
      layer: $("danmaku-layer"), video: this.video,
    });
    this.voice = new Voice();
    /** @type {RoomPlaylist | null} */
    this.playlist = null;
    /** @type {AccountBrowser | null} */
    this.accounts = null;
    /** @type {any} */
    this.state = null;
    /** @type {any} */
    this.viewers = { viewers: [], wait: null };
    /** @type {any[]} */
    this.online = [];
    this.connection = "starting";
    this.view = "";
    this.lastError = "";
    this.seekDragging = false;
    this.mutedByPolicy = false;
    this.may = { control: false, chat: false, manageMedia: false, manageLive: false };
  }

  /**
   * The CLI line that prints an item's URLs (for mpv or VLC when this browser cannot play it).
   * @param {string} mediaId
   */
  infoCommand(mediaId) {
    const name = this.room?.name ?? "";
    const room = /^[\w.-]+$/.test(name) ? name : this.room?.id ?? this.ref;
    return `synctv media info ${room} ${mediaId}`;
  }

  // -- views -------------------------------------------------------------------------------------

  /** @param {"signin" | "password" | "problem" | "room"} view */
  show(view) {
    this.view = view;
    for (const name of ["signin", "password", "problem", "room"]) $(`${name}-view`).hidden = name !== view;
    const signedIn = stored();
    $("sign-out").hidden = !signedIn;
    $("who").textContent = signedIn ? signedIn.name : "";
  }

  /**
   * @param {string} title
   * @param {string} text
   * @param {{create?: boolean}} [options]
   */
  problem(title, text, options = {}) {
    $("problem-title").textContent = title;
    $("problem-text").textContent = text;
    $("create-room").hidden = !options.create;
    this.lastError = text;
    this.show("problem");
  }

  // -- opening the room --------------------------------------------------------------------------

  async start() {
    setUpTheme($("theme"));
    document.title = `${this.ref || "room"} · synctv`;
    $("room-title").textContent = this.ref;
    $("signin-room").textContent = this.ref ? `to join “${this.ref}”` : "";
    $("signin-form").addEventListener("submit", (/** @type {Event} */ e) => this.onSignIn(e));
    $("password-form").addEventListener("submit", (/** @type {Event} */ e) => this.onRoomPassword(e));
    $("sign-out").addEventListener("click", () => {
      this.client?.close();
      this.voice.leave();
      signOut();
      location.reload();
    });
    $("retry").addEventListener("click", () => this.open());
    $("create-room").addEventListener("click", () => this.create());
    if (!this.ref) {
      this.problem("No room in the address", "Room addresses look like /room/NAME. Pick a room on the home page.");
      return;
    }
    if (this.params.get("muted") === "1") this.video.muted = true;
    else if (!(await soundMayAutoplay())) {
      this.video.muted = true;
      this.mutedByPolicy = true;
    }
    await this.open();
  }

  async open() {
    if (!stored()) {
      this.show("signin");
      $("signin-form").elements.namedItem("name").focus();
      return;
    }
    try {
      const { room, member } = await api("GET", `/api/rooms/${encodeURIComponent(this.ref)}`);
      this.room = room;
      this.member = member;
      this.user = (await api("GET", "/api/auth/me")).user;
    } catch (error) {
      const e = /** @type {any} */ (error);
      if (e.status === 401) {
        signOut();
        this.show("signin");
        this.signInError(explain(e));
        return;
      }
      if (e.status === 404) {
        this.problem("No such room", `There is no room “${this.ref}”. Check the link, or create it.`, { create: true });
        return;
      }
      this.problem("Cannot open the room", explain(e, "opening the room"));
      return;
    }
    if (this.room.kind !== "watch") {
      this.problem("A display room", "This room drives display screens; open it in the admin console (/admin/).");
      return;
    }
    if (!this.member && !["root", "admin"].includes(this.user.role)) {
      await this.join(undefined);
      return;
    }
    this.enter();
  }

  /** @param {string | undefined} password */
  async join(password) {
    try {
      const { member } = await api("POST", `/api/rooms/${encodeURIComponent(this.room.id)}/join`,
        password === undefined ? {} : { password });
      this.member = member;
      this.enter();
    } catch (error) {
      const e = /** @type {any} */ (error);
      if (e.field === "password") {
        this.show("password");
        const input = $("password-form").elements.namedItem("room_password");
        input.focus();
        if (password !== undefined) this.formError("password-error", explain(e, "joining the room"));
        return;
      }
      if (e.code === "rate_limited") {
        this.show("password");
        this.formError("password-error", explain(e, "with the room password"));
        return;
      }
      this.problem("Cannot join the room", explain(e, "joining the room"));
    }
  }

  /** @param {Event} event */
  async onSignIn(event) {
    event.preventDefault();
    const form = /** @type {HTMLFormElement} */ (event.target);
    const name = /** @type {HTMLInputElement} */ (form.elements.namedItem("name")).value.trim();
    const password = /** @type {HTMLInputElement} */ (form.elements.namedItem("password")).value;
    try {
      await signIn(name, password);
      this.signInError("");
      await this.open();
    } catch (error) {
      this.signInError(explain(error, "signing in"));
    }
  }

  /** @param {string} message */
  signInError(message) {
    this.formError("signin-error", message);
  }

  /**
   * @param {string} id
   * @param {string} message
   */
  formError(id, message) {
    $(id).textContent = message;
    $(id).hidden = !message;
    if (message) this.lastError = message;
  }

  /** @param {Event} event */
  async onRoomPassword(event) {
    event.preventDefault();
    const password = /** @type {HTMLInputElement} */ ($("password-form").elements.namedItem("room_password")).value;
    await this.join(password);
  }

  async create() {
    try {
      const { room, member } = await api("POST", "/api/rooms", { name: this.ref });
      this.room = room;
      this.member = member;
      this.enter();
    } catch (error) {
      this.problem("Cannot create the room", explain(error, "creating the room"));
    }
  }

  // -- in the room -------------------------------------------------------------------------------

  enter() {
    this.show("room");
    $("room-title").textContent = this.room.name;
    document.title = `${this.room.name} · synctv`;
    const accounts = new AccountBrowser({
      section: $("from-account"), select: $("account"), linkToggle: $("link-account"), linkForm: $("link-form"),
      linkError: $("link-error"), linkHint: $("link-hint"), quickConnect: $("quick-connect"), crumbs: $("account-crumbs"),
      list: $("account-items"), empty: $("account-empty"), error: $("account-error"), note: $("account-note"),
      picker: $("account-picker"),
    }, { roomId: this.room.id, onAdded: () => this.playlist?.reloadSoon() });
    this.accounts = accounts;
    this.playlist = new RoomPlaylist({
      list: $("playlist"), empty: $("playlist-empty"), form: $("add-media"), addLive: $("add-live"),
      error: $("add-error"), reason: $("playlist-reason"), allParts: $("all-parts"), panel: $("panel-playlist"),
    }, this.room.id, { bilibiliAccount: () => accounts.bilibiliAccount });
    this.bindControls();
    this.bindTabs();
    this.connect();
    setInterval(() => this.renderOverlay(), OVERLAY_MS);
    setInterval(() => this.renderSide(), SIDE_MS);
  }

  connect() {
    const client = new RealtimeClient();
    this.client = client;
    this.engine.attach(client);
    this.player.attach(client);
    this.chat.attach(client);
    this.voice.attach(client);
    /** @type {RoomPlaylist} */ (this.playlist).attach(client);
    client.addEventListener("welcome", (e) => this.onWelcome(/** @type {CustomEvent} */ (e).detail));
    client.addEventListener("playbackState", (e) => this.onState(/** @type {CustomEvent} */ (e).detail));
    client.addEventListener("clock", () => this.renderSide());
    client.addEventListener("playback", (e) => this.player.onPlayback(/** @type {CustomEvent} */ (e).detail.result));
    client.addEventListener("presence", (e) => {
      this.online = /** @type {CustomEvent} */ (e).detail.online ?? [];
      this.renderPeople();
    });
    client.addEventListener("viewers", (e) => {
      const { viewers, wait } = /** @type {CustomEvent} */ (e).detail;
      this.viewers = { viewers: viewers ?? [], wait: wait ?? null };
      this.renderPeople();
      this.renderOverlay();
    });
    client.addEventListener("reconnecting", (e) => {
      this.connection = "reconnecting";
      this.setStageMessage(`Connection lost; reconnecting (attempt ${/** @type {CustomEvent} */ (e).detail.attempt})…`);
      this.renderConnection();
    });
    client.addEventListener("close", (e) => {
      const { code, reconnecting } = /** @type {CustomEvent} */ (e).detail;
      this.connection = reconnecting ? "reconnecting" : "closed";
      if (!reconnecting) {
        this.setStageMessage(code === 4000 ? "This room was deleted." : code === 4001
          ? "You were removed from this room." : "Disconnected. Reload the page to connect again.");
      }
      this.renderConnection();
    });
    client.addEventListener("notice", (e) => this.setStageMessage(/** @type {CustomEvent} */ (e).detail.message));
    client.addEventListener("error", (e) => {
      const frame = /** @type {CustomEvent} */ (e).detail;
      if (frame.code === "rate_limited") this.setStageMessage("The page sent too much at once; it slows down.");
    });
    this.player.addEventListener("problem", (e) => this.setStageMessage(/** @type {CustomEvent} */ (e).detail.message));
    this.player.addEventListener("source", () => {
      this.chat.danmaku.clear();
      this.renderControls();
    });
    this.voice.addEventListener("change", () => {
      this.renderVoice();
      this.renderPeople();
    });
    this.voice.addEventListener("error", (e) => {
      $("voice-error").textContent = /** @type {CustomEvent} */ (e).detail.message;
      $("voice-error").hidden = false;
    });
    client.connect(roomSocketUrl(this.room.id), {
      token: stored()?.token, observe: ["playbackState", "presence", "chat", "viewers", "playlist"],
    }).catch((error) => this.setStageMessage(explain(error, "connecting")));
    client.observe("playback", { profile: PROFILE }).catch(() => {});
    this.engine.startTelemetry();
  }

  /** @param {any} welcome */
  onWelcome(welcome) {
    this.connection = "connected";
    this.setStageMessage(this.player.problem);
    this.user = { ...this.user, ...welcome.user };
    this.member = welcome.member;
    const admin = ["root", "admin"].includes(welcome.user?.role);
    const granted = new Set(welcome.member?.permissions ?? []);
    this.may = {
      control: admin || granted.has("control_playback"), chat: admin || granted.has("chat"),
      manageMedia: admin || granted.has("manage_media"), manageLive: admin || granted.has("manage_live"),
    };
    this.chat.setAllowed(this.may.chat, "You may not chat here (the chat permission)");
    /** @type {RoomPlaylist} */ (this.playlist).setPermissions({
      manageMedia: this.may.manageMedia, control: this.may.control, manageLive: this.may.manageLive });
    this.accounts?.setAllowed(this.may.manageMedia);
    this.renderControls();
    this.renderConnection();
    this.renderSide();
  }

  /** @param {any} state */
  onState(state) {
    this.state = state;
    this.player.onState(state);
    /** @type {RoomPlaylist} */ (this.playlist).setCurrent(state.media_id ?? null);
    this.renderControls();
    this.renderOverlay();
  }

  /** @param {string} message */
  setStageMessage(message) {
    $("stage-message").textContent = message;
    $("stage-message").hidden = !message;
    if (message) this.lastError = message;
  }

  // -- controls ----------------------------------------------------------------------------------

  bindControls() {
    const video = this.video;
    this._icon($("fullscreen"), "fullscreen");
    $("play").addEventListener("click", () => this.togglePlay());
    const seek = $("seek");
    seek.addEventListener("input", () => {
      this.seekDragging = true;
      $("time").textContent = `${duration(Number(seek.value))} / ${duration(this.duration())}`;
    });
    seek.addEventListener("change", () => {
      this.seekDragging = false;
      this.send("seek", { position: Number(seek.value) });
    });
    $("rate").addEventListener("change", () => this.send("rate", { rate: Number($("rate").value) }));
    $("start-together").addEventListener("click", () => this.send("play", { lead_ms: Number($("lead").value) }));
    $("start-now").addEventListener("click", () => this.send("play"));
    $("dont-wait-now").addEventListener("click", () => {
      $("wait-for-me").checked = false;
      this.player.setWaitForMe(false);
    });
    $("wait-for-me").addEventListener("change", () => this.player.setWaitForMe($("wait-for-me").checked));
    $("mute").addEventListener("click", () => {
      video.muted = !video.muted;
      this.mutedByPolicy = false;
      this.renderControls();
    });
    $("unmute").addEventListener("click", () => {
      video.muted = false;
      this.mutedByPolicy = false;
      this.renderControls();
    });
    $("volume").addEventListener("input", () => {
      video.volume = Number($("volume").value);
      video.muted = video.volume === 0;
      this.renderControls();
    });
    $("fullscreen").addEventListener("click", () => {
      const player = $("player");
      if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
      else player.requestFullscreen?.().catch(() => {});
    });
    for (const type of ["timeupdate", "durationchange", "play", "pause", "ratechange", "volumechange"]) {
      video.addEventListener(type, () => this.renderControls());
    }
    document.addEventListener("keydown", (event) => this.onKey(event));
  }

  bindTabs() {
    const tabs = ["chat", "playlist", "people"];
    for (const name of tabs) {
      $(`tab-${name}`).addEventListener("click", () => {
        for (const other of tabs) {
          $(`tab-${other}`).setAttribute("aria-selected", String(other === name));
          $(`panel-${other}`).hidden = other !== name;
        }
        if (name === "playlist") this.playlist?.pollStreams();
      });
    }
    $("voice-join").addEventListener("click", () => {
      $("voice-error").hidden = true;
      this.voice.join();
    });
    $("voice-leave").addEventListener("click", () => this.voice.leave());
    $("voice-mute").addEventListener("click", () => this.voice.toggleMute());
  }

  /** @param {KeyboardEvent} event */
  onKey(event) {
    const target = /** @type {HTMLElement} */ (event.target);
    if (this.view !== "room" || event.ctrlKey || event.metaKey || event.altKey) return;
    if (target && (["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName) || target.isContentEditable)) return;
    if (event.key === " " || event.key === "k") {
      event.preventDefault();
      this.togglePlay();
    } else if (event.key === "ArrowLeft" || event.key === "ArrowRight") {
      event.preventDefault();
      const here = this.client?.expectedPosition() ?? this.video.currentTime;
      const step = event.key === "ArrowLeft" ? -SEEK_STEP_S : SEEK_STEP_S;
      this.send("seek", { position: Math.max(0, Math.min(this.duration() || Infinity, here + step)) });
    } else if (event.key === "ArrowUp" || event.key === "ArrowDown") {
      event.preventDefault();
      const video = this.video;
      video.volume = Math.max(0, Math.min(1, video.volume + (event.key === "ArrowUp" ? 0.1 : -0.1)));
      video.muted = video.volume === 0;
    }
  }

  togglePlay() {
    const state = this.state;
    if (!state || !state.media_id) return;
    this.send(state.playing && !state.ended ? "pause" : "play");
  }

  /**
   * An update from the controls; refused ones say why.
   * @param {"play" | "pause" | "seek" | "rate" | "media"} action
   * @param {Record<string, unknown>} [fields]
   */
  async send(action, fields = {}) {
    const client = this.client;
    if (!client) return;
    if (!this.may.control) {
      this.setStageMessage("You cannot control playback in this room (it needs the control_playback permission; ask the room's creator).");
      return;
    }
    try {
      await client.update(action, fields);
    } catch (error) {
      const e = /** @type {any} */ (error);
      if (e.code === "stale_version") {
        try {
          await client.update(action, fields); // someone else changed it just before: on the new state
          return;
        } catch (again) {
          this.setStageMessage(explain(again, "changing playback"));
          return;
        }
      }
      this.setStageMessage(explain(e, "changing playback"));
    }
  }

  duration() {
    const d = this.video.duration;
    return Number.isFinite(d) && d > 0 ? d : 0;
  }

  renderControls() {
    const video = this.video;
    const state = this.state;
    const hasMedia = !!(state && state.media_id);
    const live = this.player.live;
    const can = this.may.control;
    const playing = !!(state && state.playing && !state.ended);
    this._icon($("play"), playing ? "pause" : "play");
    setProp($("play"), "title", playing ? "Pause (space)" : "Play (space)");
    if ($("play").getAttribute("aria-label") !== (playing ? "Pause" : "Play")) {
      $("play").setAttribute("aria-label", playing ? "Pause" : "Play");
    }
    for (const id of ["play", "seek", "rate", "start-together", "lead"]) {
      setProp($(id), "disabled", !can || !hasMedia || (live && (id === "seek" || id === "rate")));
    }
    const reason = !can
      ? "Only members allowed to control playback (control_playback) can play, pause, seek or change the speed; ask the room's creator."
      : !hasMedia ? "Pick something in the playlist to play." : live ? "A live stream plays at its live edge: no seeking or speed." : "";
    setText($("control-reason"), reason);
    setHidden($("control-reason"), !reason);
    const total = this.duration();
    const seek = $("seek");
    setProp(seek, "max", String(total || 0));
    if (!this.seekDragging) {
      setProp(seek, "value", String(Math.min(total, video.currentTime || 0)));
      setText($("time"), live ? "live" : `${duration(video.currentTime || 0)} / ${duration(total)}`);
    }
    if (state && Number($("rate").value) !== state.rate && document.activeElement !== $("rate")) {
      const option = [...$("rate").options].find((/** @type {HTMLOptionElement} */ o) => Number(o.value) === state.rate);
      if (!option) $("rate").append(new Option(`${state.rate}×`, String(state.rate)));
      $("rate").value = String(state.rate);
    }
    this._icon($("mute"), video.muted ? "muted" : "volume");
    if ($("mute").getAttribute("aria-label") !== (video.muted ? "Unmute" : "Mute")) {
      $("mute").setAttribute("aria-label", video.muted ? "Unmute" : "Mute");
    }
    if ($("player").dataset.paused !== String(video.paused)) $("player").dataset.paused = String(video.paused);
  }

  /**
   * @param {HTMLElement} button
   * @param {keyof typeof ICONS} name
   */
  _icon(button, name) {
    if (button.dataset.icon === name) return;
    button.dataset.icon = name;
    button.innerHTML = ICONS[name]; // a constant above, never text from the server
  }

  renderConnection() {
    const dot = $("connection-dot");
    dot.className = `dot ${this.connection === "connected" ? "on" : "off"}`;
    dot.title = this.connection;
  }

  // -- the countdown and the wait ----------------------------------------------------------------

  /** The wait the room is in now (docs/realtime.md, "Waiting for viewers"), or null. */
  currentWait() {
    const wait = this.viewers.wait;
    const state = this.state;
    if (!wait || !state || wait.version !== state.version) return null;
    return this.engine.serverNow() < wait.until_ms ? wait : null;
  }

  renderOverlay() {
    const state = this.state;
    const overlay = $("stage-overlay");
    const now = this.engine.serverNow();
    const wait = this.currentWait();
    let big = "";
    let line = "";
    let startNow = false;
    let dontWait = false;
    if (state && state.media_id && state.playing && !state.ended && state.at_ms > now && !this.player.live) {
      const seconds = Math.ceil((state.at_ms - now) / 1000);
      if (wait) {
        const names = (wait.waiting_for ?? []).map((/** @type {any} */ w) => w.user_name);
        const mine = (wait.waiting_for ?? []).some((/** @type {any} */ w) => w.connection_id === this.client?.welcome?.connection_id);
        big = "Waiting";
        const more = Math.max(0, (wait.waiting ?? names.length) - names.length);
        line = names.length
          ? `Waiting for ${names.join(", ")}${more ? ` and ${more} more` : ""} (buffering); starting in ${seconds} s at the latest`
          : "Everyone is ready; starting";
        startNow = this.may.control && names.length > 0;
        dontWait = mine;
      } else {
        big = String(seconds);
        line = "Starting together";
      }
    }
    if (!big && this.mutedByPolicy && state && state.playing && !state.ended) {
      big = "Muted";
      line = "The browser started the video without sound.";
    }
    setHidden(overlay, !big);
    setText($("overlay-big"), big);
    setText($("overlay-line"), line);
    setHidden($("start-now"), !startNow);
    setHidden($("dont-wait-now"), !dontWait);
    setHidden($("unmute"), !this.mutedByPolicy);
    const kind = wait ? "wait" : big ? "countdown" : "";
    if (overlay.dataset.kind !== kind) overlay.dataset.kind = kind;
  }

  // -- people, sync status, voice ----------------------------------------------------------------

  renderSide() {
    const s = this.engine.status();
    const clock = s.synced ? `${fmtMs(s.offsetMs, 1)} ±${(s.rttMs ?? 0).toFixed(1)} ms` : "syncing…";
    setText($("sync-clock"), clock);
    setText($("sync-drift"), s.mode === "playing" ? fmtMs(s.driftMs, 1) : "—");
    setText($("sync-rate"), this.video.playbackRate.toFixed(3));
    const drift = Math.abs(s.driftMs ?? 0);
    const good = this.connection === "connected" && s.synced && (s.mode !== "playing" || drift < 50);
    const dotClass = `dot ${good ? "on" : "off"}`;
    if ($("sync-dot").className !== dotClass) $("sync-dot").className = dotClass;
    setText($("sync-summary"), this.connection !== "connected" ? this.connection
      : !s.synced ? "syncing the clock" : s.mode === "playing" ? (drift < 50 ? "in sync" : "catching up") : s.mode);
    this.renderControls();
  }

  renderPeople() {
    const list = $("people");
    /** @type {Map<string, any>} */
    const figures = new Map((this.viewers.viewers ?? []).map((/** @type {any} */ v) => [v.connection_id, v]));
    const speaking = new Set(this.voice.speaking());
    const inVoice = new Set([...this.voice.peers.keys()]);
    if (this.voice.joined && this.client?.welcome) inVoice.add(this.client.welcome.connection_id);
    const rows = [];
    for (const user of this.online) {
      for (const id of user.connection_ids ?? []) {
        const v = figures.get(id);
        const li = document.createElement("li");
        const dot = document.createElement("span");
        const ready = v?.ready;
        dot.className = `dot ${ready === false ? "off" : "on"}`;
        dot.title = ready === false ? "buffering" : ready === true ? "ready" : "connected";
        const name = document.createElement("span");
        name.textContent = `${user.user_name}${id === this.client?.welcome?.connection_id ? " (you)" : ""}`;
        if (speaking.has(id)) name.className = "speaking";
        const tags = document.createElement("span");
        tags.className = "muted";
        tags.textContent = [inVoice.has(id) ? (speaking.has(id) ? "speaking" : "in voice") : "",
          v?.wait === false ? "not waited for" : v?.over_budget ? "waited for enough" : ""].filter(Boolean).join(" · ");
        const t = v?.telemetry;
        const figuresLine = document.createElement("span");
        figuresLine.className = "figures";
        figuresLine.textContent = t
          ? `drift ${fmtMs(t.drift_ms, 1)} · rate ${Number(t.rate ?? 1).toFixed(3)} · clock ${fmtMs(t.offset_ms, 1)} · rtt ${Number(t.rtt_ms ?? 0).toFixed(1)} ms`
          : "no sync figures yet";
        li.append(dot, name, tags, figuresLine);
        rows.push(li);
      }
    }
    list.replaceChildren(...rows);
  }

  renderVoice() {
    const v = this.voice;
    $("voice-join").hidden = v.joined;
    $("voice-leave").hidden = !v.joined;
    $("voice-mute").hidden = !v.joined;
    $("voice-mute").textContent = v.muted ? "Unmute" : "Mute";
    const peers = v.peers.size;
    $("voice-state").textContent = v.joined
      ? `${v.muted ? "muted" : "on air"} · ${peers} ${peers === 1 ? "other" : "others"} in voice` : "";
  }

  // -- status ------------------------------------------------------------------------------------

  /** A JSON snapshot for tests, benchmarks and the curious (window.synctvRoom.status()). */
  status() {
    const welcome = this.client?.welcome;
    return {
      ...this.engine.status(),
      view: this.view, connection: this.connection, connectionId: welcome?.connection_id ?? null,
      room: this.room ? { id: this.room.id, name: this.room.name } : null, user: this.user?.name ?? null,
      may: { ...this.may }, state: this.state, source: this.player.source
        ? { kind: this.player.source.kind, mode: this.player.source.info.mode, live: this.player.source.live } : null,
      loadedMedia: this.player.loadedMedia, problem: this.player.problem, fallbacks: this.player.fallbacks,
      videoWidth: this.video.videoWidth, reportedReady: this.player.reported,
      waitForMe: this.player.waitForMe, wait: this.currentWait(), viewers: this.viewers.viewers,
      overlay: $("stage-overlay").hidden ? null : { kind: $("stage-overlay").dataset.kind, big: $("overlay-big").textContent,
        line: $("overlay-line").textContent },
      currentTime: this.video.currentTime, paused: this.video.paused, readyState: this.video.readyState,
      muted: this.video.muted, chatLines: this.chat.lines, danmakuShown: this.chat.danmaku.shown,
      playlist: (this.playlist?.items ?? []).map((i) => i.id), voice: this.voice.status(),
      accounts: this.accounts?.status() ?? null,
      lastError: this.lastError,
    };
  }
}

const page = new RoomPage();
Object.defineProperty(window, "synctvRoom", { value: page, configurable: true });
page.start();
