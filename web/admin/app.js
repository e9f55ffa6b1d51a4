// The admin console's entry point (/admin/): sign-in, the section navigation (#/displays,
// #/events, #/videos, #/idle, #/rooms, #/users, #/system) and the session. The token lives in
// sessionStorage; a 401 from any request returns to the sign-in form with a message.
//
// Each section module exports `mount(main, ctx) -> cleanup`, where ctx is {state, navigate}.
//
// Plain ES module, no build step.

import { api, getToken, onUnauthorized, setToken, signIn } from "./api.js";
import { AdminState } from "./state.js";
import { clearFormErrors, fill, h, icon, showFormError, toast } from "./ui.js";

const SECTIONS = [
  { group: "Displays" },
  { id: "displays", label: "Screens", icon: "monitor", load: () => import("./displays.js") },
  { id: "events", label: "Events", icon: "bolt", load: () => import("./events.js") },
  { id: "videos", label: "Videos", icon: "film", load: () => import("./videos.js") },
  { id: "idle", label: "Idle image", icon: "image", load: () => import("./idle.js") },
  { group: "Server" },
  { id: "rooms", label: "Rooms", icon: "rooms", load: () => import("./rooms.js") },
  { id: "users", label: "Users", icon: "users", admin: true, load: () => import("./users.js") },
  { id: "system", label: "Cache & streams", icon: "server", load: () => import("./system.js") },
];
const DEFAULT_SECTION = "displays";

const state = new AdminState();
/** @type {(() => void) | null} */
let cleanup = null;
let mountedId = "";
let routeSerial = 0;

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));

// -- sign in --------------------------------------------------------------------------------------

/** @param {string} [message] shown above the form */
function showSignIn(message) {
  unmountSection();
  state.stop();
  $("app").hidden = true;
  $("signin").hidden = false;
  const note = $("signin-message");
  note.textContent = message ?? "";
  note.hidden = !message;
  const form = /** @type {HTMLFormElement} */ ($("signin-form"));
  clearFormErrors(form);
  const password = /** @type {HTMLInputElement} */ (form.elements.namedItem("password"));
  password.value = "";
  const name = /** @type {HTMLInputElement} */ (form.elements.namedItem("name"));
  (name.value ? password : name).focus();
  document.title = "Sign in · synctv admin";
}

function setupSignIn() {
  const form = /** @type {HTMLFormElement} */ ($("signin-form"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFormErrors(form);
    const name = /** @type {HTMLInputElement} */ (form.elements.namedItem("name")).value.trim();
    const password = /** @type {HTMLInputElement} */ (form.elements.namedItem("password")).value;
    if (!name || !password) {
      showFormError(form, { message: "Enter your user name and password." });
      return;
    }
    const button = /** @type {HTMLButtonElement} */ (form.querySelector("button[type=submit]"));
    button.disabled = true;
    button.classList.add("busy");
    try {
      const answer = await signIn(name, password);
      await enter(answer.user);
    } catch (error) {
      showFormError(form, /** @type {any} */ (error).status === 401
        ? { message: "That user name and password do not match." } : /** @type {any} */ (error));
    } finally {
      button.disabled = false;
      button.classList.remove("busy");
    }
  });
  $("signout").addEventListener("click", () => {
    setToken(null);
    showSignIn("You are signed out.");
  });
  onUnauthorized(() => {
    if (!getToken()) return;
    setToken(null);
    showSignIn("Your session expired or was revoked. Sign in again.");
  });
}

// -- the console ----------------------------------------------------------------------------------

/** @param {{id: string, name: string, role: string}} user */
async function enter(user) {
  state.user = user;
  $("signin").hidden = true;
  $("app").hidden = false;
  $("user-name").textContent = user.name;
  $("user-role").textContent = user.role === "user" ? "user" : "site admin";
  $("user-avatar").textContent = user.name.slice(0, 1);
  renderNav();
  try {
    await state.loadRooms();
  } catch (error) {
    toast(/** @type {Error} */ (error).message, "bad");
  }
  state.start();
  route();
}

function visibleSections() {
  return SECTIONS.filter((s) => !s.admin || state.isSiteAdmin);
}

function renderNav() {
  const nav = $("nav");
  fill(nav, visibleSections().map((s) => s.group
    ? h("div", { class: "nav-label", text: s.group })
    : h("a", { class: "nav-link", href: `#/${s.id}`, dataset: { section: s.id } },
      icon(/** @type {any} */ (s.icon)), h("span", { text: s.label }))));
}

function currentId() {
  const id = location.hash.replace(/^#\/?/, "").split("/")[0];
  return visibleSections().some((s) => s.id === id) ? id : DEFAULT_SECTION;
}

function unmountSection() {
  if (cleanup) {
    try {
      cleanup();
    } catch (error) {
      console.error(error);
    }
  }
  cleanup = null;
  mountedId = "";
}

async function route() {
  if ($("app").hidden) return;
  const id = currentId();
  for (const link of document.querySelectorAll(".nav-link")) {
    const el = /** @type {HTMLElement} */ (link);
    if (el.dataset.section === id) el.setAttribute("aria-current", "page");
    else el.removeAttribute("aria-current");
  }
  if (id === mountedId) return;
  unmountSection();
  mountedId = id;
  const serial = ++routeSerial;
  const section = /** @type {any} */ (SECTIONS.find((s) => s.id === id));
  const main = $("main");
  document.title = `${section.label} · synctv admin`;
  try {
    const module = await section.load();
    if (serial !== routeSerial) return;
    main.replaceChildren();
    cleanup = module.mount(main, { state, navigate });
  } catch (error) {
    main.replaceChildren(h("p", { class: "form-error", role: "alert" },
      `This section could not load: ${/** @type {Error} */ (error).message}`));
  }
  main.focus({ preventScroll: true });
}

/** @param {string} id a section id */
function navigate(id) {
  location.hash = `#/${id}`;
}

async function boot() {
  setupSignIn();
  window.addEventListener("hashchange", route);
  if (!getToken()) {
    showSignIn();
    return;
  }
  try {
    const { user } = await api.get("/api/auth/me");
    await enter(user);
  } catch (error) {
    if (/** @type {any} */ (error).status !== 401) {
      showSignIn(`The server could not be asked who you are: ${/** @type {Error} */ (error).message}`);
    }
  }
}

boot();
