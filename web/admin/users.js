// The Users section (site admins): the accounts with their role; create, change role, set a new
// password (which signs that user out everywhere) and delete.

import { api, enc } from "./api.js";
import {
  KeyedRows, card, confirmDialog, dataTable, emptyState, field, fill, fmtDate, formDialog, formValues, h, icon,
  loadingState, pageHead, toast,
} from "./ui.js";

const ROLES = [["user", "User"], ["admin", "Site admin"]];

/**
 * @param {HTMLElement} main
 * @param {{state: import("./state.js").AdminState}} ctx
 */
export function mount(main, ctx) {
  const { state } = ctx;
  main.append(pageHead("Users", "Accounts that sign in to rooms, the CLI and this console. Site admins hold every permission.",
    h("button", { class: "btn btn-primary", type: "button", onClick: () => createUser() }, icon("plus"), "New user")));
  const { table, tbody, wrap } = dataTable(["User", "Role", "Created", ["", "actions"]], "Users");
  table.id = "users-table";
  const slot = h("div", null, loadingState("Loading users…"));
  main.append(card({ title: "Users", flush: true }, slot).el);
  const rows = new KeyedRows(tbody, (u) => u.id, createRow);

  async function load() {
    try {
      const { users } = await api.get("/api/users");
      if (users.length === 0) fill(slot, emptyState("users", "No users", ""));
      else if (!slot.contains(wrap)) fill(slot, wrap);
      rows.set(users);
    } catch (error) {
      fill(slot, h("p", { class: "form-error", role: "alert", style: "margin:1rem" }, /** @type {Error} */ (error).message));
    }
  }

  /** @param {any} user */
  function createRow(user) {
    let current = user;
    const name = h("td");
    const role = h("td");
    const created = h("td", { class: "muted nowrap" });
    const actions = h("td", { class: "actions" });
    const row = /** @type {HTMLTableRowElement} */ (h("tr", null, name, role, created, actions));
    return {
      row,
      update: (/** @type {any} */ u) => {
        current = u;
        const self = u.id === state.user?.id;
        fill(name, h("span", { class: "name-cell" }, h("span", { class: "avatar", "aria-hidden": "true" }, u.name.slice(0, 1)),
          h("span", null, h("span", { class: "cell-title" }, u.name), self ? h("span", { class: "cell-sub" }, "you") : null)));
        fill(role, h("span", { class: `pill ${u.role === "user" ? "" : "info"}` }, u.role === "root" ? "root" : u.role === "admin" ? "site admin" : "user"));
        created.textContent = fmtDate(u.created_at);
        fill(actions,
          u.role !== "root" ? h("button", { class: "btn btn-sm", type: "button", onClick: () => changeRole(current) }, "Role") : null,
          h("button", { class: "btn btn-sm", type: "button", onClick: () => setPassword(current) }, "Password"),
          u.role !== "root" && !self ? h("button", { class: "btn btn-sm btn-ghost btn-icon btn-danger", type: "button", title: "Delete",
            "aria-label": `Delete ${u.name}`, onClick: () => removeUser(current) }, icon("trash")) : null);
      },
    };
  }

  /** @param {string} chosen */
  const roleSelect = (chosen) => {
    const select = /** @type {HTMLSelectElement} */ (h("select", { name: "role" }, ROLES.map(([v, l]) => h("option", { value: v }, l))));
    select.value = chosen;
    return select;
  };

  async function createUser() {
    const user = await formDialog({
      title: "New user", narrow: true, submit: "Create user",
      body: [
        field("Name", h("input", { name: "name", required: true, maxlength: 64, autocomplete: "off" })),
        field("Password", h("input", { name: "password", type: "password", required: true, autocomplete: "new-password" })),
        field("Role", roleSelect("user"), { hint: "Site admins manage every room, user and upload." }),
      ],
      onSubmit: async (form) => {
        const v = formValues(form);
        return (await api.post("/api/users", { name: v.name.trim(), password: v.password, role: v.role })).user;
      },
    });
    if (user) {
      toast(`User “${user.name}” created`);
      await load();
    }
  }

  /** @param {any} user */
  async function changeRole(user) {
    const done = await formDialog({
      title: `Role of “${user.name}”`, narrow: true,
      body: [field("Role", roleSelect(user.role))],
      onSubmit: async (form) => (await api.patch(`/api/users/${enc(user.id)}`, { role: formValues(form).role })).user,
    });
    if (done) {
      toast(`“${done.name}” is now ${done.role === "admin" ? "a site admin" : "a user"}`);
      await load();
    }
  }

  /** @param {any} user */
  async function setPassword(user) {
    const done = await formDialog({
      title: `New password for “${user.name}”`, narrow: true, submit: "Set password",
      text: "Every token of this user stops working: they sign in again everywhere.",
      body: [field("Password", h("input", { name: "password", type: "password", required: true, autocomplete: "new-password" }))],
      onSubmit: async (form) => (await api.patch(`/api/users/${enc(user.id)}`, { password: formValues(form).password })).user,
    });
    if (done) toast(`Password of “${done.name}” changed`);
  }

  /** @param {any} user */
  async function removeUser(user) {
    const done = await confirmDialog({
      title: `Delete “${user.name}”?`, confirm: "Delete user",
      text: "The account and its room memberships are removed; its tokens stop working.",
      action: () => api.del(`/api/users/${enc(user.id)}`),
    });
    if (done) {
      toast(`User “${user.name}” deleted`);
      await load();
    }
  }

  load();
  return () => {};
}
