// Light and dark themes for the home and room pages: the system's choice by default
// (prefers-color-scheme), or the one the user picked with the theme button (kept in localStorage).
//
// Plain ES module, no dependencies.

const THEME_KEY = "synctv.theme";
const ORDER = ["auto", "light", "dark"];
const LABELS = { auto: "Theme: system", light: "Theme: light", dark: "Theme: dark" };

function read() {
  try {
    const value = localStorage.getItem(THEME_KEY);
    return ORDER.includes(value ?? "") ? /** @type {string} */ (value) : "auto";
  } catch {
    return "auto";
  }
}

/** @param {string} theme */
function apply(theme) {
  if (theme === "auto") delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = theme;
}

/**
 * Applies the stored theme and makes `button` cycle system -> light -> dark.
 * @param {HTMLButtonElement | null} button
 */
export function setUpTheme(button) {
  let theme = read();
  apply(theme);
  if (!button) return;
  const label = () => {
    button.title = LABELS[/** @type {keyof typeof LABELS} */ (theme)];
    button.setAttribute("aria-label", button.title);
    button.dataset.theme = theme;
  };
  label();
  button.addEventListener("click", () => {
    theme = ORDER[(ORDER.indexOf(theme) + 1) % ORDER.length];
    try {
      localStorage.setItem(THEME_KEY, theme);
    } catch {
      // not kept
    }
    apply(theme);
    label();
  });
}
