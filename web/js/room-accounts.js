// "From your accounts" in the room page's playlist panel: the member's own provider accounts
// (docs/providers.md).
//
// - Lists them (GET /api/me/accounts); a server without provider accounts (503) hides the section.
// - Links one (POST /api/me/accounts {kind, server, username, password | cookie}): a refused
//   login shows the upstream's own reason (detail.upstream_reason); a Jellyfin account without a
//   password answers a quick-connect code to approve in Jellyfin.
// - Browses the chosen one (GET .../browse?path=): Alist folders, Emby/Jellyfin libraries, series
//   and seasons, with a trail back up; each entry's image through the account thumbnail route,
//   fetched with the bearer token in a header (never in a URL) and shown from a blob: URL.
// - Adds a playable entry (POST /api/rooms/{room}/media {provider, provider_data: {account,
//   item}}) and imports a folder, series or season (POST .../media/import): every playable child.
// Bilibili accounts are not browsed: the add form uses one (the first that is ok) for Bilibili links.
//
// Plain ES module. Text from the server is only ever set with textContent; the only innerHTML is
// the constant placeholder icons below.

import { api, explain, token } from "./session.js";
import { duration } from "./room-playlist.js";

/** @type {Record<string, string>} */
export const KIND_NAMES = { alist: "Alist", emby: "Emby", jellyfin: "Jellyfin", bilibili: "Bilibili" };
const FOLDERS = new Set(["folder", "series", "season"]);
const THUMBS_AT_ONCE = 3;
const MAX_THUMBS = 300;
// placeholders (constant markup, never data): a folder, a film, a note
const svg = (/** @type {string} */ d) => `<svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true" fill="currentColor"><path d="${d}"/></svg>`;
const ICONS = {
  folder: svg("M10 4H4a2 2 0 0 0-2 2v12a2 2 0 0 0 2 2h16a2 2 0 0 0 2-2V8a2 2 0 0 0-2-2h-8l-2-2z"),
  video: svg("M4 5h16a1 1 0 0 1 1 1v12a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1V6a1 1 0 0 1 1-1zm6 4v6l5-3z"),
  audio: svg("M12 3v10.55A4 4 0 1 0 14 17V7h4V3h-6z"),
};

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

/**
 * @param {string} text
 * @param {() => void} onClick
 * @param {string} [className]
 */
function button(text, onClick, className = "") {
  const node = /** @type {HTMLButtonElement} */ (el("button", className, text));
  node.type = "button";
  node.addEventListener("click", onClick);
  return node;
}

/**
 * How an account is named in the list.
 * @param {any} account
 */
export function accountLabel(account) {
  let where = account.username || "";
  try {
    const host = new URL(account.server).host;
    where = where ? `${where} @ ${host}` : host;
  } catch {
    where = where || (account.kind === "bilibili" ? "cookie" : account.id);
  }
  const status = account.status === "pending" ? " (waiting for quick connect)"
    : account.status === "login_failed" ? " (sign-in refused: link it again)" : "";
  return `${KIND_NAMES[account.kind] ?? account.kind}: ${where}${status}`;
}

/**
 * What to say about a refused link: the upstream's own reason when it gave one.
 * @param {any} error an HttpError
 * @param {string} kind
 */
export function explainLink(error, kind) {
  const reason = error?.detail?.upstream_reason;
  const name = KIND_NAMES[kind] ?? kind;
  if (typeof reason === "string" && reason) {
    const check = kind === "bilibili" ? "Check the cookie (copy it again from a signed-in browser)."
      : "Check the server address, the user name and the password.";
    return `The ${name} server refused the sign-in: “${reason}”. ${check}`;
  }
  if (error?.code === "forbidden" && /address|network/i.test(String(error?.message))) {
    return `${explain(error, "linking the account")} A server on your own network must be allowed by the operator ([proxy] allow_networks).`;
  }
  return explain(error, "linking the account");
}

export class AccountBrowser {
  /**
   * @param {{section: HTMLElement, select: HTMLSelectElement, linkToggle: HTMLButtonElement,
   *   linkForm: HTMLFormElement, linkError: HTMLElement, linkHint: HTMLElement, quickConnect: HTMLElement,
   *   crumbs: HTMLElement, list: HTMLOListElement, empty: HTMLElement, error: HTMLElement, note: HTMLElement,
   *   picker: HTMLElement}} elements
   * @param {{roomId: string, onAdded: () => void}} options
   */
  constructor(elements, options) {
    this.e = elements;
    this.roomId = options.roomId;
    this.onAdded = options.onAdded;
    /** @type {any[]} */
    this.accounts = [];
    this.available = false;
    /** @type {Array<{id: string, title: string}>} where the browser is: the top first */
    this.trail = [];
    /** @type {any[]} the entries shown */
    this.entries = [];
    /** @type {Map<string, string>} "account item" -> blob: URL of its image */
    this.thumbs = new Map();
    /** @type {Array<() => Promise<void>>} */
    this._thumbQueue = [];
    this._thumbsRunning = 0;
    this._browsing = 0;
    /** @type {string | null} the account the trail is in */
    this.openAccount = null;
    this.added = 0;
    elements.select.addEventListener("change", () => this.open(elements.select.value));
    elements.linkToggle.addEventListener("click", () => this.showLinkForm(elements.linkForm.hidden, true));
    elements.linkForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.link();
    });
    elements.linkForm.addEventListener("reset", () => setTimeout(() => this._kindChanged(), 0));
    this._field("kind").addEventListener("change", () => this._kindChanged());
    this._kindChanged();
  }

  /** @param {string} name */
  _field(name) {
    return /** @type {HTMLInputElement} */ (this.e.linkForm.elements.namedItem(name));
  }

  /** The account the add form uses for Bilibili links: the first Bilibili account that is ok. */
  get bilibiliAccount() {
    return this.accounts.find((a) => a.kind === "bilibili" && a.status === "ok")?.id ?? null;
  }

  /**
   * Shown to members who may add items (manage_media) on a server with provider accounts.
   * @param {boolean} allowed
   */
  async setAllowed(allowed) {
    if (!allowed) {
      this.e.section.hidden = true;
      return;
    }
    await this.load();
  }

  /** @param {string} [openId] the account to open afterwards (one just linked) */
  async load(openId) {
    try {
      this.accounts = (await api("GET", "/api/me/accounts")).accounts ?? [];
      this.available = true;
    } catch {
      this.available = false; // no provider accounts on this server (503): the section stays hidden
    }
    this.e.section.hidden = !this.available;
    if (!this.available) return;
    const browsable = this.accounts.filter((a) => a.kind !== "bilibili");
    const select = this.e.select;
    const keep = select.value;
    select.replaceChildren(...browsable.map((a) => {
      const option = /** @type {HTMLOptionElement} */ (el("option", "", accountLabel(a)));
      option.value = a.id;
      return option;
    }));
    this.e.picker.hidden = browsable.length === 0;
    if (!this.accounts.length) this.showLinkForm(true);
    const wanted = browsable.find((a) => a.id === openId) ?? browsable.find((a) => a.id === keep) ?? browsable[0];
    if (!wanted) {
      this.openAccount = null;
      this.trail = [];
      this._show([], "");
      return;
    }
    select.value = wanted.id;
    if (wanted.id !== this.openAccount || wanted.id === openId) await this.open(wanted.id);
  }

  /**
   * @param {boolean} show
   * @param {boolean} [focus] move the focus to it (when the user asked for it)
   */
  showLinkForm(show, focus = false) {
    this.e.linkForm.hidden = !show;
    this.e.linkToggle.setAttribute("aria-expanded", String(show));
    this.e.linkToggle.textContent = show ? "Close" : "Link account";
    if (show && focus) this._field("kind").focus({ preventScroll: true });
  }

  _kindChanged() {
    const kind = this._field("kind").value;
    const form = this.e.linkForm;
    for (const label of form.querySelectorAll("[data-kinds]")) {
      const kinds = /** @type {HTMLElement} */ (label).dataset.kinds?.split(" ") ?? [];
      /** @type {HTMLElement} */ (label).hidden = !kinds.includes(kind);
    }
    this._field("server").placeholder = { alist: "http://nas.lan:5244", emby: "http://emby.lan:8096",
      jellyfin: "http://jellyfin.lan:8096" }[kind] ?? "";
    this.e.linkHint.textContent = {
      alist: "Your Alist user. Everyone in the room plays what you add with it; nobody sees the password.",
      emby: "Your Emby user. Everyone in the room plays what you add with it; nobody sees the password.",
      jellyfin: "Your Jellyfin user. Leave the password empty to link with Quick Connect (approve the code in Jellyfin).",
      bilibili: "Optional: Bilibili videos play without an account. A cookie (SESSDATA=...) from a signed-in browser gets what that account may watch.",
    }[kind] ?? "";
  }

  async link() {
    const kind = this._field("kind").value;
    /** @type {Record<string, string>} */
    const body = { kind };
    for (const name of kind === "bilibili" ? ["cookie"] : ["server", "username", "password"]) {
      const value = this._field(name).value.trim();
      if (value) body[name] = name === "password" ? this._field(name).value : value;
    }
    const needed = kind === "bilibili" ? [["cookie", "the cookie"]]
      : [["server", "the server's address"], ["username", "the user name"],
        ...(kind === "jellyfin" ? [] : [["password", "the password"]])]; // Jellyfin: quick connect
    const missing = needed.find(([name]) => !body[name]);
    if (missing) {
      this._linkError(`Fill in ${missing[1]}.`);
      return;
    }
    const submit = /** @type {HTMLButtonElement} */ (this.e.linkForm.querySelector("button[type=submit]"));
    submit.disabled = true;
    this._linkError("");
    try {
      const answer = await api("POST", "/api/me/accounts", body);
      this.e.linkForm.reset();
      this.showLinkForm(false);
      const code = answer.quick_connect?.code;
      this.e.quickConnect.hidden = !code;
      this.e.quickConnect.textContent = code
        ? `Approve the code ${code} in Jellyfin (your user menu, Quick Connect); then choose the account again.` : "";
      this._note(`Linked ${accountLabel(answer.account)}.`);
      await this.load(answer.account.id);
    } catch (error) {
      this._linkError(explainLink(error, kind));
    } finally {
      submit.disabled = false;
    }
  }

  /** @param {string} message */
  _linkError(message) {
    this.e.linkError.textContent = message;
    this.e.linkError.hidden = !message;
  }

  /** @param {string} message */
  _error(message) {
    this.e.error.textContent = message;
    this.e.error.hidden = !message;
  }

  /** @param {string} message */
  _note(message) {
    this.e.note.textContent = message;
    this.e.note.hidden = !message;
  }

  /**
   * Open an account at its top.
   * @param {string} accountId
   */
  open(accountId) {
    this.openAccount = accountId;
    this.trail = [{ id: "", title: "Top" }];
    return this.browse(accountId);
  }

  /**
   * Show where the trail ends.
   * @param {string} accountId
   */
  async browse(accountId) {
    const here = this.trail[this.trail.length - 1] ?? { id: "", title: "Top" };
    const ticket = ++this._browsing;
    this.e.section.setAttribute("aria-busy", "true");
    try {
      const body = await api("GET", `/api/me/accounts/${encodeURIComponent(accountId)}/browse?path=${encodeURIComponent(here.id)}`);
      if (ticket !== this._browsing) return; // a later click won
      this._error("");
      this._show(body.items ?? [], accountId);
    } catch (error) {
      if (ticket !== this._browsing) return;
      this._show([], accountId);
      this._error(explain(error, "browsing the account"));
    } finally {
      if (ticket === this._browsing) this.e.section.removeAttribute("aria-busy");
    }
  }

  /**
   * @param {any[]} items
   * @param {string} accountId
   */
  _show(items, accountId) {
    this.entries = items;
    this._crumbs(accountId);
    this.e.empty.hidden = !accountId || items.length > 0;
    this._thumbQueue = []; // images of rows no longer shown are not fetched
    this.e.list.replaceChildren(...items.map((entry) => this._row(entry, accountId)));
    this._pumpThumbs();
  }

  /** @param {string} accountId */
  _crumbs(accountId) {
    const nodes = [];
    this.trail.forEach((step, i) => {
      if (i > 0) nodes.push(el("span", "sep", "›"));
      if (i === this.trail.length - 1) {
        const current = el("span", "here", step.title);
        current.setAttribute("aria-current", "location");
        nodes.push(current);
      } else {
        nodes.push(button(step.title, () => {
          this.trail = this.trail.slice(0, i + 1);
          this.browse(accountId);
        }, "link"));
      }
    });
    this.e.crumbs.replaceChildren(...nodes);
  }

  /**
   * @param {any} entry {id, title, kind, playable, duration?, thumbnail?}
   * @param {string} accountId
   */
  _row(entry, accountId) {
    const row = el("li");
    row.dataset.kind = entry.kind;
    const folder = !entry.playable && FOLDERS.has(entry.kind);
    const thumb = el("span", "thumb");
    thumb.innerHTML = ICONS[folder ? "folder" : entry.kind === "audio" ? "audio" : "video"]; // constant markup
    // only this server's own account image route ever gets the token
    if (typeof entry.thumbnail === "string" && entry.thumbnail.startsWith(`/api/me/accounts/${encodeURIComponent(accountId)}/thumbnail?`)) {
      this._thumbnail(thumb, `${accountId} ${entry.id}`, entry.thumbnail);
    }
    row.append(thumb);
    const text = el("div", "text");
    text.append(el("div", "name", entry.title));
    text.lastElementChild?.setAttribute("title", entry.title);
    text.append(el("div", "meta", [entry.kind, duration(entry.duration)].filter(Boolean).join(" · ")));
    row.append(text);
    const actions = el("div", "item-actions");
    if (folder) {
      actions.append(button("Open", () => {
        this.trail.push({ id: entry.id, title: entry.title });
        this.browse(accountId);
      }));
      const all = button("Add all", () => this.importAll(entry, accountId, all));
      all.title = `Add every playable item of ${entry.title} to the playlist`;
      actions.append(all);
    } else if (entry.playable) {
      const add = button("Add", () => this.add(entry, accountId, add), "primary");
      add.title = `Add ${entry.title} to the playlist`;
      actions.append(add);
    }
    row.append(actions);
    return row;
  }

  /**
   * @param {any} entry
   * @param {string} accountId
   * @param {HTMLButtonElement} control
   */
  async add(entry, accountId, control) {
    const kind = this.accounts.find((a) => a.id === accountId)?.kind;
    control.disabled = true;
    try {
      const body = await api("POST", `/api/rooms/${encodeURIComponent(this.roomId)}/media`,
        { provider: kind, provider_data: { account: accountId, item: entry.id } });
      this.added += 1;
      this._error("");
      this._note(`Added “${body.media?.title ?? entry.title}” to the playlist.`);
      this.onAdded();
    } catch (error) {
      this._error(explain(error, "adding from the account"));
    } finally {
      control.disabled = false;
    }
  }

  /**
   * @param {any} entry a folder, series or season
   * @param {string} accountId
   * @param {HTMLButtonElement} control
   */
  async importAll(entry, accountId, control) {
    const kind = this.accounts.find((a) => a.id === accountId)?.kind;
    control.disabled = true;
    this._note(`Adding everything in “${entry.title}”…`);
    try {
      const body = await api("POST", `/api/rooms/${encodeURIComponent(this.roomId)}/media/import`,
        { provider: kind, provider_data: { account: accountId, item: entry.id } });
      const n = body.media?.length ?? 0;
      this.added += n;
      this._error("");
      this._note(n ? `Added ${n} ${n === 1 ? "item" : "items"} from “${entry.title}” to the playlist.`
        : `“${entry.title}” has nothing playable.`);
      this.onAdded();
    } catch (error) {
      this._note("");
      this._error(explain(error, `adding everything in ${entry.title}`));
    } finally {
      control.disabled = false;
    }
  }

  // -- images ----------------------------------------------------------------------------------

  /**
   * Put an entry's image in `box` (kept as a blob: URL; fetched with the token in a header) once
   * the row is on the page (_show runs the queue).
   * @param {HTMLElement} box
   * @param {string} key
   * @param {string} url
   */
  _thumbnail(box, key, url) {
    const show = (/** @type {string} */ src) => {
      const img = /** @type {HTMLImageElement} */ (el("img"));
      img.alt = "";
      img.src = src;
      img.addEventListener("error", () => img.remove());
      box.replaceChildren(img);
      box.classList.add("has-image");
    };
    const kept = this.thumbs.get(key);
    if (kept) {
      show(kept);
      return;
    }
    this._thumbQueue.push(async () => {
      if (!box.isConnected) return; // browsed elsewhere meanwhile
      const bearer = token();
      const answer = await fetch(url, { headers: bearer ? { Authorization: `Bearer ${bearer}` } : {} });
      if (!answer.ok || !/^image\//.test(answer.headers.get("Content-Type") ?? "")) return;
      const src = URL.createObjectURL(await answer.blob());
      this.thumbs.set(key, src);
      if (this.thumbs.size > MAX_THUMBS) {
        const [oldest, old] = this.thumbs.entries().next().value ?? [];
        if (oldest !== undefined && old !== undefined) {
          this.thumbs.delete(oldest);
          URL.revokeObjectURL(old);
        }
      }
      if (box.isConnected) show(src);
    });
  }

  _pumpThumbs() {
    while (this._thumbsRunning < THUMBS_AT_ONCE && this._thumbQueue.length) {
      const job = /** @type {() => Promise<void>} */ (this._thumbQueue.shift());
      this._thumbsRunning += 1;
      job().catch(() => {}).finally(() => {
        this._thumbsRunning -= 1;
        this._pumpThumbs();
      });
    }
  }

  /** For the page's status(). */
  status() {
    return {
      available: this.available, accounts: this.accounts.map((a) => ({ id: a.id, kind: a.kind, status: a.status })),
      account: this.e.select.value || null, trail: this.trail.map((t) => t.title),
      entries: this.entries.map((e) => e.title), thumbnails: this.e.list.querySelectorAll(".thumb img").length,
      added: this.added,
    };
  }
}
