// What the admin console knows while signed in: the user, the rooms, the screens (polled every
// second with their presence and telemetry, kept as a 5-minute drift history per screen), the
// chosen display room and a live watch of a room's playback state over the WebSocket
// (RealtimeClient, which also gives the server's clock for countdowns).
//
// Events (CustomEvent): `displays` (a poll answered), `rooms` (the room list changed),
// `displayRoom` (another display room was chosen).
//
// Plain ES module.

import { api, enc, getToken } from "./api.js";
import { RealtimeClient, expectedPosition, roomSocketUrl } from "/js/realtime.js";

export const HISTORY_MS = 5 * 60 * 1000;
export const POLL_MS = 1000;
const ROOM_KEY = "synctv.admin.displayRoom";

/**
 * @typedef {{t: number, drift: number}} DriftSample  server ms, drift ms
 */

/**
 * One room's playback state, live: observes `playbackState` over the room's WebSocket with the
 * user's token. Events: `state` (detail: the state), `status` (detail: "connecting" | "live" |
 * "reconnecting" | "closed").
 */
export class RoomWatch extends EventTarget {
  /** @param {string} roomId */
  constructor(roomId) {
    super();
    this.roomId = roomId;
    this.status = "connecting";
    /** @type {import("/js/realtime.js").PlaybackState | null} */
    this.state = null;
    this.client = new RealtimeClient({ backoffMaxMs: 5000 });
    this.client.addEventListener("playbackState", (e) => {
      this.state = /** @type {CustomEvent} */ (e).detail;
      this._emit("state", this.state);
    });
    this.client.addEventListener("welcome", () => this._setStatus("live"));
    this.client.addEventListener("reconnecting", () => this._setStatus("reconnecting"));
    this.client.addEventListener("close", (e) => {
      if (!/** @type {CustomEvent} */ (e).detail.reconnecting) this._setStatus("closed");
    });
    this.client.connect(roomSocketUrl(roomId), { token: getToken() ?? undefined, observe: ["playbackState"] })
      .catch(() => this._setStatus("closed"));
  }

  /** The server's clock (ms): the clock sync's estimate once connected, else this machine's. */
  serverNow() {
    return this.client.welcome ? this.client.serverNow() : Date.now();
  }

  /** The expected position (s) of the state now, or null. */
  position() {
    return this.state ? expectedPosition(this.state, this.serverNow()) : null;
  }

  /**
   * @param {"play" | "pause" | "seek" | "media"} action
   * @param {{position?: number, media_id?: string}} [fields]
   */
  update(action, fields = {}) {
    return this.client.update(action, fields);
  }

  close() {
    this.client.close();
  }

  /** @param {string} status */
  _setStatus(status) {
    this.status = status;
    this._emit("status", status);
  }

  /**
   * @param {string} type
   * @param {unknown} detail
   */
  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

export class AdminState extends EventTarget {
  constructor() {
    super();
    /** @type {{id: string, name: string, role: string} | null} */
    this.user = null;
    /** @type {any[]} */
    this.rooms = [];
    /** @type {Set<string>} display rooms a user who is not a site admin manages */
    this.managed = new Set();
    /** @type {any[] | null} null until the first poll answers */
    this.displays = null;
    /** @type {Error | null} */
    this.displaysError = null;
    /** @type {Map<string, DriftSample[]>} display id -> samples, oldest first */
    this.history = new Map();
    /** @type {string} "" for every display room */
    this.displayRoomId = localStorage.getItem(ROOM_KEY) ?? "";
    /** @type {RoomWatch | null} */
    this.watch = null;
    this._timer = /** @type {ReturnType<typeof setTimeout> | null} */ (null);
    this._polling = false;
  }

  get isSiteAdmin() {
    return this.user?.role === "root" || this.user?.role === "admin";
  }

  /** The display rooms the user manages (site admins: all of them). */
  displayRooms() {
    return this.rooms.filter((r) => r.kind === "display" && (this.isSiteAdmin || this.managed.has(r.id)));
  }

  /** @param {string} id */
  room(id) {
    return this.rooms.find((r) => r.id === id) ?? null;
  }

  /** @param {string} id */
  roomName(id) {
    return this.room(id)?.name ?? id.slice(0, 8);
  }

  async loadRooms() {
    const { rooms } = await api.get("/api/rooms");
    if (!this.isSiteAdmin) {
      // which display rooms this user may manage (screens and events need manage_room)
      const managed = new Set();
      await Promise.all(rooms.filter((/** @type {any} */ r) => r.kind === "display").map(async (/** @type {any} */ r) => {
        try {
          const { member } = await api.get(`/api/rooms/${enc(r.id)}`);
          if (member?.permissions?.includes("manage_room")) managed.add(r.id);
        } catch {
          // not visible: not managed
        }
      }));
      this.managed = managed;
    }
    this.rooms = rooms;
    const displayRooms = this.displayRooms();
    if (this.displayRoomId && !displayRooms.some((r) => r.id === this.displayRoomId)) this.displayRoomId = "";
    if (!this.displayRoomId && displayRooms.length === 1) this.displayRoomId = displayRooms[0].id;
    this._syncWatch();
    this._emit("rooms", rooms);
    return rooms;
  }

  /** @param {string} roomId "" for every display room */
  chooseDisplayRoom(roomId) {
    this.displayRoomId = roomId;
    try {
      localStorage.setItem(ROOM_KEY, roomId);
    } catch {
      // private mode
    }
    this._syncWatch();
    this._emit("displayRoom", roomId);
  }

  /** Keeps one live watch on the chosen display room (for "every room", on the first one: its
   * connection still gives the server's clock). */
  _syncWatch() {
    const roomId = this.displayRoomId || this.displayRooms()[0]?.id || "";
    if (this.watch && this.watch.roomId === roomId) return;
    this.watch?.close();
    this.watch = roomId ? new RoomWatch(roomId) : null;
  }

  /** The server's clock (ms), as well as it is known. */
  serverNow() {
    return this.watch ? this.watch.serverNow() : Date.now();
  }

  // -- the screens poll ----------------------------------------------------------------------

  start() {
    if (this._polling) return;
    this._polling = true;
    this._poll();
  }

  stop() {
    this._polling = false;
    if (this._timer !== null) clearTimeout(this._timer);
    this._timer = null;
    this.watch?.close();
    this.watch = null;
    this.displays = null;
    this.history.clear();
    this.user = null;
    this.rooms = [];
    this.managed = new Set();
  }

  /** Polls now (after a change), without waiting for the next tick. */
  refreshDisplays() {
    if (!this._polling) return Promise.resolve();
    if (this._timer !== null) clearTimeout(this._timer);
    return this._poll();
  }

  async _poll() {
    this._timer = null;
    try {
      const { displays } = await api.get("/api/displays");
      this.displays = displays;
      this.displaysError = null;
      this._record(displays);
    } catch (error) {
      this.displaysError = /** @type {Error} */ (error);
    }
    if (!this._polling) return;
    this._emit("displays", this.displays);
    if (this._timer === null) this._timer = setTimeout(() => this._poll(), POLL_MS);
  }

  /** @param {any[]} displays */
  _record(displays) {
    const cutoff = this.serverNow() - HISTORY_MS;
    const ids = new Set();
    for (const display of displays) {
      ids.add(display.id);
      let samples = this.history.get(display.id);
      if (!samples) {
        samples = [];
        this.history.set(display.id, samples);
      }
      const t = display.status?.online ? display.status.telemetry : null;
      if (t && Number.isFinite(t.drift_ms) && Number.isFinite(t.at_ms)
          && (samples.length === 0 || t.at_ms > samples[samples.length - 1].t)) {
        samples.push({ t: t.at_ms, drift: t.drift_ms });
      }
      while (samples.length && samples[0].t < cutoff) samples.shift();
    }
    for (const id of [...this.history.keys()]) if (!ids.has(id)) this.history.delete(id);
  }

  // -- helpers used by several sections ---------------------------------------------------------

  /** @param {string} roomId */
  async roomMedia(roomId) {
    const { media } = await api.get(`/api/rooms/${enc(roomId)}/media`);
    return media;
  }

  /**
   * @param {string} type
   * @param {unknown} detail
   */
  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
