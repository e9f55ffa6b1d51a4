// DOM helpers of the admin console: an element builder, icons, formatting, toasts, dialogs with
// forms that show the server's error message (and mark the field it names), keyed table rows that
// update in place (a 1 s refresh never steals focus), and empty/loading states.
//
// Plain ES module, no dependencies.

/**
 * Builds an element. `attrs`: `class`, `text`, `dataset`, `on{Event}` handlers, booleans (set when
 * true), anything else as an attribute. Children: nodes, strings, arrays, null/false (skipped).
 * @param {string} tag
 * @param {Record<string, any> | null} [attrs]
 * @param {...any} children
 * @returns {HTMLElement}
 */
export function h(tag, attrs = null, ...children) {
  const el = tag.startsWith("svg:")
    ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4))
    : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.setAttribute("class", value);
    else if (key === "text") el.textContent = String(value);
    else if (key === "dataset") Object.assign(/** @type {HTMLElement} */ (el).dataset, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2).toLowerCase(), value);
    else if (key === "value" && "value" in el) /** @type {any} */ (el).value = value;
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return /** @type {HTMLElement} */ (el);
}

/**
 * @param {Element} parent
 * @param {any[]} children
 */
function append(parent, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(parent, child);
    else parent.append(child instanceof Node ? child : String(child));
  }
}

/**
 * Replaces an element's children.
 * @param {Element} el
 * @param {...any} children
 */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// -- icons (24x24 strokes) ------------------------------------------------------------------------

const ICONS = {
  monitor: "M3 5h18v11H3zM8 20h8M12 16v4",
  bolt: "M13 2 4 14h7l-1 8 9-12h-7z",
  film: "M4 3h16v18H4zM8 3v18M16 3v18M4 8h4M4 16h4M16 8h4M16 16h4M4 12h16",
  image: "M3 4h18v16H3zM3 16l5-5 4 4 3-3 6 6M15.5 8.5h.01",
  rooms: "M4 21V5l8-2 8 2v16M9 21v-5h6v5M8 9h.01M16 9h.01M8 13h.01M16 13h.01",
  users: "M16 20v-1a4 4 0 0 0-4-4H7a4 4 0 0 0-4 4v1M9.5 11a3.5 3.5 0 1 0 0-7 3.5 3.5 0 0 0 0 7M21 20v-1a4 4 0 0 0-3-3.9M16 4.1a3.5 3.5 0 0 1 0 6.8",
  server: "M3 4h18v7H3zM3 13h18v7H3zM7 7.5h.01M7 16.5h.01",
  broadcast: "M12 12h.01M8.5 15.5a5 5 0 0 1 0-7M15.5 8.5a5 5 0 0 1 0 7M5.6 18.4a9 9 0 0 1 0-12.8M18.4 5.6a9 9 0 0 1 0 12.8",
  plus: "M12 5v14M5 12h14",
  copy: "M9 9h11v11H9zM5 15H4V4h11v1",
  check: "M5 12l5 5L20 7",
  play: "M7 4v16l13-8z",
  pause: "M7 4h3v16H7zM14 4h3v16h-3z",
  stop: "M6 6h12v12H6z",
  clock: "M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18M12 7v5l3 2",
  upload: "M12 16V4M7 9l5-5 5 5M4 16v4h16v-4",
  trash: "M4 7h16M9 7V4h6v3M6 7l1 13h10l1-13",
  edit: "M4 20h4L19 9l-4-4L4 16zM13.5 6.5l4 4",
  external: "M14 4h6v6M20 4l-9 9M18 14v6H4V6h6",
  refresh: "M20 11a8 8 0 0 0-14.9-3M4 4v4h4M4 13a8 8 0 0 0 14.9 3M20 20v-4h-4",
  key: "M15 7a4 4 0 1 1-3.9 4.9L4 19v-3h3v-3h3l1.1-1.1A4 4 0 0 1 15 7",
  x: "M6 6l12 12M18 6 6 18",
};

/**
 * @param {keyof typeof ICONS} name
 * @returns {SVGElement}
 */
export function icon(name) {
  const svg = /** @type {SVGElement} */ (/** @type {unknown} */ (h("svg:svg", {
    viewBox: "0 0 24 24", fill: "none", stroke: "currentColor", "stroke-width": "1.8",
    "stroke-linecap": "round", "stroke-linejoin": "round", "aria-hidden": "true", focusable: "false",
  })));
  svg.append(h("svg:path", { d: ICONS[name] }));
  return svg;
}

// -- formatting -----------------------------------------------------------------------------------

/** @param {number | null | undefined} bytes */
export function fmtBytes(bytes) {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let i = 0;
  while (value >= 1024 && i < units.length - 1) {
    value /= 1024;
    i += 1;
  }
  return `${i === 0 ? value : value.toFixed(value < 10 ? 1 : 0)} ${units[i]}`;
}

/** @param {number | null | undefined} seconds as m:ss or h:mm:ss */
export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
  const s = Math.max(0, seconds);
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const secs = Math.floor(s % 60);
  const pad = (/** @type {number} */ n) => String(n).padStart(2, "0");
  return hours ? `${hours}:${pad(minutes)}:${pad(secs)}` : `${minutes}:${pad(secs)}`;
}

/**
 * A signed millisecond figure: "+3.2 ms".
 * @param {number | null | undefined} ms
 * @param {number} [digits]
 */
export function fmtMs(ms, digits = 1) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "–";
  const text = Math.abs(ms).toFixed(digits);
  const sign = Number(text) === 0 ? "" : ms > 0 ? "+" : "−";
  return `${sign}${text} ms`;
}

/** @param {number} ms an age: "3 s", "4 min", "2 h" */
export function fmtAge(ms) {
  if (!Number.isFinite(ms)) return "–";
  const s = Math.max(0, ms / 1000);
  if (s < 1) return "just now";
  if (s < 60) return `${Math.floor(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86400)} d`;
}

/** @param {number | null | undefined} ms epoch ms */
export function fmtTime(ms, withMs = false) {
  if (!ms) return "–";
  const d = new Date(ms);
  const time = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
  return withMs ? `${time}.${String(d.getMilliseconds()).padStart(3, "0")}` : time;
}

/** @param {number | null | undefined} ms epoch ms */
export function fmtDate(ms) {
  if (!ms) return "–";
  return new Date(ms).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
}

// -- feedback --------------------------------------------------------------------------------------

/**
 * A transient message in the corner (announced politely to screen readers).
 * @param {string} message
 * @param {"ok" | "bad"} [kind]
 */
export function toast(message, kind = "ok") {
  const box = document.getElementById("toasts");
  if (!box) return;
  const el = h("div", { class: `toast ${kind === "bad" ? "bad" : ""}`, role: kind === "bad" ? "alert" : "status" },
    message);
  box.append(el);
  setTimeout(() => el.remove(), kind === "bad" ? 7000 : 3500);
}

/**
 * @param {keyof typeof ICONS} iconName
 * @param {string} title
 * @param {string} text
 * @param {HTMLElement | null} [action]
 */
export function emptyState(iconName, title, text, action = null) {
  return h("div", { class: "empty" }, icon(iconName), h("strong", { text: title }), h("p", { text }), action);
}

/** @param {string} [text] */
export function loadingState(text = "Loading…") {
  return h("div", { class: "loading", role: "status" }, h("span", { class: "spinner", "aria-hidden": "true" }), text);
}

/**
 * A button that copies `text()` to the clipboard.
 * @param {() => string} text
 * @param {string} label accessible name
 */
export function copyButton(text, label) {
  const button = h("button", { class: "btn btn-ghost btn-sm btn-icon", type: "button", title: label,
    "aria-label": label }, icon("copy"));
  button.addEventListener("click", async () => {
    const value = text();
    try {
      await navigator.clipboard.writeText(value);
    } catch {
      const area = h("textarea", { class: "sr-only" });
      /** @type {HTMLTextAreaElement} */ (area).value = value;
      document.body.append(area);
      /** @type {HTMLTextAreaElement} */ (area).select();
      document.execCommand("copy");
      area.remove();
    }
    button.replaceChildren(icon("check"));
    toast("Copied to the clipboard");
    setTimeout(() => button.replaceChildren(icon("copy")), 1500);
  });
  return button;
}

/**
 * Runs `work` with `button` marked busy (disabled, spinner); returns its result.
 * @template T
 * @param {HTMLButtonElement | HTMLElement | null} button
 * @param {() => Promise<T>} work
 * @returns {Promise<T>}
 */
export async function busy(button, work) {
  const b = /** @type {HTMLButtonElement | null} */ (button);
  if (b) {
    b.disabled = true;
    b.classList.add("busy");
    b.setAttribute("aria-busy", "true");
  }
  try {
    return await work();
  } finally {
    if (b) {
      b.disabled = false;
      b.classList.remove("busy");
      b.removeAttribute("aria-busy");
    }
  }
}

// -- forms and dialogs --------------------------------------------------------------------------------

/**
 * A labelled form field wrapping `control` (its `name` is the field name the server reports).
 * @param {string} label
 * @param {HTMLElement} control
 * @param {{hint?: string, wide?: boolean}} [options]
 */
export function field(label, control, options = {}) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  const hintId = options.hint ? `${id}-hint` : null;
  const errorId = `${id}-error`;
  control.setAttribute("aria-describedby", [hintId, errorId].filter(Boolean).join(" "));
  return h("div", { class: `field${options.wide ? " wide" : ""}` },
    h("label", { for: id }, h("span", { text: label })),
    control,
    options.hint ? h("small", { id: hintId, text: options.hint }) : null,
    h("div", { class: "field-error", id: errorId, role: "alert", hidden: true }));
}

/** @param {HTMLFormElement} form */
export function clearFormErrors(form) {
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  for (const el of form.querySelectorAll(".field-error")) {
    el.textContent = "";
    /** @type {HTMLElement} */ (el).hidden = true;
  }
  const top = /** @type {HTMLElement | null} */ (form.querySelector(".form-error"));
  if (top) top.hidden = true;
}

/**
 * Shows an error on a form: next to the field the server named (`error.field`), else at the top.
 * @param {HTMLFormElement} form
 * @param {{message: string, field?: string | null, code?: string}} error
 */
export function showFormError(form, error) {
  clearFormErrors(form);
  const control = error.field ? /** @type {HTMLElement | null} */ (form.querySelector(`[name="${error.field}"]`)) : null;
  if (control) {
    control.setAttribute("aria-invalid", "true");
    const slot = document.getElementById(`${control.id}-error`);
    if (slot) {
      slot.textContent = error.message;
      slot.hidden = false;
    }
    control.focus();
    return;
  }
  let top = /** @type {HTMLElement | null} */ (form.querySelector(".form-error"));
  if (!top) {
    top = h("p", { class: "form-error", role: "alert" });
    const body = form.querySelector(".dialog-body") ?? form;
    body.prepend(top);
  }
  top.textContent = error.message;
  top.hidden = false;
}

/**
 * Checks the browser's constraints (required, min, max, pattern) and shows the first problem like
 * a server error; returns false when the form is not valid.
 * @param {HTMLFormElement} form
 */
export function checkForm(form) {
  clearFormErrors(form);
  for (const el of form.elements) {
    const control = /** @type {HTMLInputElement} */ (el);
    if (control.willValidate && !control.checkValidity()) {
      showFormError(form, { message: control.validationMessage, field: control.name });
      return false;
    }
  }
  return true;
}

/**
 * Opens a modal dialog holding a form. `onSubmit(form)` runs on submit; when it resolves the
 * dialog closes, when it throws the error is shown on the form (field or top) and it stays open.
 * Resolves with onSubmit's result, or null when cancelled.
 * @template T
 * @param {{title: string, text?: string, body: any[], submit?: string, danger?: boolean, narrow?: boolean,
 *   onSubmit: (form: HTMLFormElement) => Promise<T>, onOpen?: (form: HTMLFormElement) => void}} spec
 * @returns {Promise<T | null>}
 */
export function formDialog(spec) {
  return new Promise((resolve) => {
    const submit = h("button", { class: `btn ${spec.danger ? "btn-solid-danger" : "btn-primary"}`, type: "submit" },
      spec.submit ?? "Save");
    const cancel = h("button", { class: "btn", type: "button", value: "cancel" }, "Cancel");
    const form = /** @type {HTMLFormElement} */ (h("form", { novalidate: true },
      h("div", { class: "dialog-head" }, h("h2", { text: spec.title }), spec.text ? h("p", { text: spec.text }) : null),
      h("div", { class: "dialog-body" }, h("p", { class: "form-error", role: "alert", hidden: true }), ...spec.body),
      h("div", { class: "dialog-foot" }, cancel, submit)));
    const dialog = /** @type {HTMLDialogElement} */ (h("dialog", { class: spec.narrow ? "narrow" : "" }, form));
    let result = /** @type {T | null} */ (null);
    cancel.addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(result);
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!checkForm(form)) return;
      try {
        result = await busy(submit, () => spec.onSubmit(form));
        dialog.close();
      } catch (error) {
        showFormError(form, /** @type {any} */ (error));
      }
    });
    document.body.append(dialog);
    dialog.showModal();
    spec.onOpen?.(form);
    const first = /** @type {HTMLElement | null} */ (form.querySelector("input:not([type=hidden]), select, textarea"));
    first?.focus();
  });
}

/**
 * Asks to confirm; `action` runs on confirm (its error is shown in the dialog). Resolves true when
 * the action succeeded.
 * @param {{title: string, text: string, confirm: string, action: () => Promise<unknown>}} spec
 */
export async function confirmDialog(spec) {
  const done = await formDialog({
    title: spec.title, text: spec.text, body: [], submit: spec.confirm, danger: true, narrow: true,
    onSubmit: async () => {
      await spec.action();
      return true;
    },
  });
  return done === true;
}

/** @param {HTMLFormElement} form */
export function formValues(form) {
  /** @type {Record<string, string>} */
  const values = {};
  for (const [key, value] of new FormData(form)) values[key] = String(value);
  return values;
}

// -- keyed rows -------------------------------------------------------------------------------------

/**
 * @template T
 * @typedef {{row: HTMLTableRowElement, update: (item: T) => void}} KeyedRow
 */

/**
 * Keeps a tbody's rows in step with a list: one row per key, created once, updated in place.
 * @template T
 */
export class KeyedRows {
  /**
   * @param {HTMLElement} tbody
   * @param {(item: T) => string} key
   * @param {(item: T) => KeyedRow<T>} create
   */
  constructor(tbody, key, create) {
    this.tbody = tbody;
    this.key = key;
    this.create = create;
    /** @type {Map<string, KeyedRow<T>>} */
    this.rows = new Map();
  }

  /** @param {T[]} items */
  set(items) {
    const seen = new Set();
    let previous = /** @type {Element | null} */ (null);
    for (const item of items) {
      const k = this.key(item);
      seen.add(k);
      let entry = this.rows.get(k);
      if (!entry) {
        entry = this.create(item);
        entry.row.dataset.key = k;
        this.rows.set(k, entry);
      }
      entry.update(item);
      const wanted = previous ? previous.nextElementSibling : this.tbody.firstElementChild;
      if (wanted !== entry.row) this.tbody.insertBefore(entry.row, wanted);
      previous = entry.row;
    }
    for (const [k, entry] of this.rows) {
      if (!seen.has(k)) {
        entry.row.remove();
        this.rows.delete(k);
      }
    }
  }
}

/**
 * A data table: `columns` are header labels (or [label, className]).
 * @param {Array<string | [string, string]>} columns
 * @param {string} label accessible name
 */
export function dataTable(columns, label) {
  const tbody = h("tbody");
  const table = h("table", { class: "data", "aria-label": label },
    h("thead", null, h("tr", null, columns.map((c) => Array.isArray(c)
      ? h("th", { class: c[1], scope: "col" }, c[0]) : h("th", { scope: "col" }, c)))),
    tbody);
  return { table, tbody, wrap: h("div", { class: "table-wrap" }, table) };
}

/**
 * A page header.
 * @param {string} title
 * @param {string} text
 * @param {...any} actions
 */
export function pageHead(title, text, ...actions) {
  return h("header", { class: "page-head" },
    h("div", null, h("h1", { text: title }), h("p", { text })),
    h("div", { class: "page-actions" }, ...actions));
}

/**
 * A card with a head (title, optional sub-title and head actions) and a body.
 * @param {{title: string, sub?: any, actions?: any[], flush?: boolean, foot?: any, label?: string}} spec
 * @param {...any} body
 */
export function card(spec, ...body) {
  const bodyEl = h("div", { class: `card-body${spec.flush ? " flush" : ""}` }, ...body);
  const el = h("section", { class: "card", "aria-label": spec.label ?? spec.title },
    h("div", { class: "card-head" },
      h("h2", null, spec.title, spec.sub ? h("span", { class: "sub" }, spec.sub) : null),
      spec.actions ? h("div", { class: "page-actions" }, ...spec.actions) : null),
    bodyEl,
    spec.foot ? h("div", { class: "card-foot" }, spec.foot) : null);
  return { el, body: bodyEl };
}
