// The home page (/, web/index.html): sign in; the rooms I belong to and the public ones (GET
// /api/lobby: who is online, what plays); create a room (name, optional password); open a room
// by its link or name. Refreshed every REFRESH_MS.
//
// Plain ES module. Text from the server is only ever set with textContent.

import { api, explain, signIn, signOut, stored } from "./session.js";
import { setUpTheme } from "./theme.js";

const REFRESH_MS = 10_000;

/** @param {string} id */
function $(id) {
  return /** @type {any} */ (document.getElementById(id));
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

/** @param {string} name */
export function roomPath(name) {
  return `/room/${encodeURIComponent(name)}`;
}

/**
 * The room a pasted link or name points at: `/room/NAME` from a URL (any host), else the text.
 * @param {string} text
 * @returns {string}
 */
export function roomFromLink(text) {
  const value = text.trim();
  try {
    const url = new URL(value);
    const match = url.pathname.match(/^\/room\/(.+)$/);
    if (match) return decodeURIComponent(match[1]);
  } catch {
    // not a URL: a name
  }
  const match = value.match(/^\/?room\/(.+)$/);
  return match ? decodeURIComponent(match[1]) : value;
}

/** @param {string} id @param {string} message */
function error(id, message) {
  $(id).textContent = message;
  $(id).hidden = !message;
}

/** @param {any} entry a LobbyRoom */
function card(entry) {
  const { room, member, state, title, online } = entry;
  const item = el("li");
  const link = /** @type {HTMLAnchorElement} */ (el("a", "card room-card"));
  link.href = roomPath(room.name);
  const name = el("strong", "", room.name);
  const badges = [];
  if (room.has_password) badges.push(el("span", "badge", "password"));
  if (member) badges.push(el("span", "badge good", member.role === "creator" ? "yours" : "member"));
  const head = el("div");
  head.append(name, ...badges.flatMap((b) => [document.createTextNode(" "), b]));
  const playing = el("div", "playing");
  playing.textContent = !state?.media_id ? "Nothing selected"
    : `${state.playing && !state.ended ? "▶ Playing" : state.ended ? "■ Ended" : "❚❚ Paused"}: ${title ?? "an item"}`;
  const names = (online ?? []).map((/** @type {any} */ u) => u.user_name);
  const people = el("div", "people", names.length
    ? `${names.length} online: ${names.slice(0, 6).join(", ")}${names.length > 6 ? ` and ${names.length - 6} more` : ""}`
    : "Nobody here right now");
  link.append(head, playing, people);
  item.append(link);
  return item;
}

async function refresh() {
  try {
    const { rooms } = await api("GET", "/api/lobby");
    $("rooms").replaceChildren(...rooms.map(card));
    $("rooms-empty").hidden = rooms.length > 0;
    error("rooms-error", "");
  } catch (e) {
    if (/** @type {any} */ (e).status === 401) {
      signOut();
      show();
      error("signin-error", explain(e));
      return;
    }
    error("rooms-error", explain(e, "listing the rooms"));
  }
}

function show() {
  const signedIn = stored();
  $("signin-view").hidden = !!signedIn;
  $("home-view").hidden = !signedIn;
  $("sign-out").hidden = !signedIn;
  $("who").textContent = signedIn ? signedIn.name : "";
  if (signedIn) refresh();
}

function main() {
  setUpTheme($("theme"));
  $("signin-form").addEventListener("submit", async (/** @type {Event} */ event) => {
    event.preventDefault();
    const form = $("signin-form");
    try {
      await signIn(form.elements.namedItem("name").value.trim(), form.elements.namedItem("password").value);
      error("signin-error", "");
      show();
    } catch (e) {
      error("signin-error", explain(e, "signing in"));
    }
  });
  $("sign-out").addEventListener("click", () => {
    signOut();
    show();
  });
  $("create-form").addEventListener("submit", async (/** @type {Event} */ event) => {
    event.preventDefault();
    const form = $("create-form");
    const name = form.elements.namedItem("name").value.trim();
    const password = form.elements.namedItem("room_password").value;
    try {
      const { room } = await api("POST", "/api/rooms", password ? { name, password } : { name });
      location.href = roomPath(room.name);
    } catch (e) {
      error("create-error", explain(e, "creating the room"));
    }
  });
  $("go-form").addEventListener("submit", (/** @type {Event} */ event) => {
    event.preventDefault();
    const room = roomFromLink($("go-form").elements.namedItem("link").value);
    if (!room) {
      error("go-error", "Paste a room link (…/room/NAME) or type a room's name.");
      return;
    }
    location.href = roomPath(room);
  });
  show();
  setInterval(() => {
    if (stored() && document.visibilityState === "visible") refresh();
  }, REFRESH_MS);
}

main();
