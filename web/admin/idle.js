// The Idle image section: what every screen shows when nothing plays, previewed at 16:9, and
// replaced with PUT /admin/idle-image (the raw PNG, JPEG, GIF, WebP or AVIF file, site admins).

import { uploadRaw } from "./api.js";
import { card, fill, fmtBytes, fmtDate, h, icon, pageHead, toast } from "./ui.js";

const ACCEPT = ["image/png", "image/jpeg", "image/gif", "image/webp", "image/avif"];

/**
 * @param {HTMLElement} main
 * @param {{state: import("./state.js").AdminState}} ctx
 */
export function mount(main, ctx) {
  const admin = ctx.state.isSiteAdmin;
  const input = /** @type {HTMLInputElement} */ (h("input", { type: "file", accept: ACCEPT.join(","), class: "sr-only",
    id: "idle-file", tabindex: "-1" }));
  const replace = h("button", { class: "btn btn-primary", type: "button", disabled: !admin, onClick: () => input.click() },
    icon("upload"), "Replace image");
  main.append(pageHead("Idle image", "Shown on every screen before a show, after it ends, and whenever nothing plays.",
    input, replace));

  const img = /** @type {HTMLImageElement} */ (h("img", { alt: "The current idle image", id: "idle-preview" }));
  const facts = h("dl", { class: "kv" });
  const progress = /** @type {HTMLProgressElement} */ (h("progress", { max: 100, value: 0, hidden: true,
    "aria-label": "Uploading the idle image" }));
  const message = h("p", { class: "form-error", role: "alert", hidden: true });
  main.append(h("div", { class: "grid-2" },
    card({ title: "Preview", sub: "16:9, as a screen shows it" }, h("div", { class: "idle-preview" }, img)).el,
    card({ title: "Details" }, facts, h("div", { style: "margin-top:1rem;display:grid;gap:0.6rem" }, progress, message),
      h("p", { class: "muted", style: "margin:1rem 0 0;font-size:0.85rem" },
        "PNG, JPEG, GIF, WebP or AVIF, up to [displays] max_image_bytes (32 MiB by default). SVG is not accepted. "
        + "Screens pick up a new image the next time they go idle.")).el));

  async function load() {
    img.src = `/admin/idle-image?t=${Date.now()}`;
    try {
      const r = await fetch("/admin/idle-image", { method: "HEAD", cache: "no-store" });
      const type = r.headers.get("Content-Type") ?? "";
      const isDefault = type.startsWith("image/svg");
      fill(facts,
        h("dt", null, "Image"), h("dd", null, isDefault ? "none uploaded: plain black" : "uploaded"),
        h("dt", null, "Type"), h("dd", null, type || "–"),
        h("dt", null, "Size"), h("dd", null, isDefault ? "–" : fmtBytes(Number(r.headers.get("Content-Length")))),
        h("dt", null, "Changed"), h("dd", null, isDefault ? "–" : fmtDate(Date.parse(r.headers.get("Last-Modified") ?? "")) ),
        h("dt", null, "Address"), h("dd", null, h("a", { href: "/admin/idle-image", target: "_blank", rel: "noopener" }, "/admin/idle-image")));
    } catch {
      fill(facts, h("dt", null, "Image"), h("dd", null, "unknown"));
    }
  }

  input.addEventListener("change", () => {
    const file = input.files?.[0];
    input.value = "";
    if (!file) return;
    message.hidden = true;
    if (!ACCEPT.includes(file.type)) {
      message.textContent = `“${file.name}” is not a PNG, JPEG, GIF, WebP or AVIF image.`;
      message.hidden = false;
      return;
    }
    progress.hidden = false;
    progress.value = 0;
    replace.setAttribute("disabled", "");
    const job = uploadRaw("PUT", "/admin/idle-image", file, { onProgress: (p) => { progress.value = Math.round(p.fraction * 100); } });
    job.promise.then(() => {
      toast("Idle image replaced");
      load();
    }, (error) => {
      message.textContent = error.message;
      message.hidden = false;
    }).finally(() => {
      progress.hidden = true;
      if (admin) replace.removeAttribute("disabled");
    });
  });

  load();
  return () => {};
}
