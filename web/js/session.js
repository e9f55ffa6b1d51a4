// The signed-in user of the home page and the room page: the token in localStorage (shared by
// the tabs of one browser; the admin console keeps its own), JSON requests with it, and errors
// that say what to do.
//
// Plain ES module, no dependencies. Everything shown to the user from the server goes through
// textContent in the pages, never innerHTML.

const TOKEN_KEY = "synctv.token";

/** A refused request: `status` (0: no answer), the server's `code`, `message`, `field`, `detail`. */
export class HttpError extends Error {
  /**
   * @param {number} status
   * @param {string} code
   * @param {string} message
   * @param {{field?: string | null, detail?: any, retryAfter?: number | null}} [extra]
   */
  constructor(status, code, message, extra = {}) {
    super(message);
    this.name = "HttpError";
    this.status = status;
    this.code = code;
    this.field = extra.field ?? null;
    this.detail = extra.detail ?? null;
    this.retryAfter = extra.retryAfter ?? null;
  }
}

/** @returns {{token: string, expiresAt: number, name: string} | null} */
export function stored() {
  try {
    const value = JSON.parse(localStorage.getItem(TOKEN_KEY) ?? "null");
    if (!value || typeof value.token !== "string") return null;
    if (Number.isFinite(value.expiresAt) && value.expiresAt < Date.now()) return null;
    return value;
  } catch {
    return null;
  }
}

export function token() {
  return stored()?.token ?? null;
}

/** @param {{token: string, expires_at: number, user: {name: string}} | null} login */
export function remember(login) {
  try {
    if (login) {
      localStorage.setItem(TOKEN_KEY, JSON.stringify({ token: login.token, expiresAt: login.expires_at,
        name: login.user?.name ?? "" }));
    } else {
      localStorage.removeItem(TOKEN_KEY);
    }
  } catch {
    // storage disabled: the user signs in again on the next page
  }
}

/**
 * A JSON request with the stored token; resolves with the body, rejects with an HttpError.
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 * @returns {Promise<any>}
 */
export async function api(method, path, body) {
  /** @type {Record<string, string>} */
  const headers = {};
  const bearer = token();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let answer;
  try {
    answer = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new HttpError(0, "offline", "the server did not answer");
  }
  const text = await answer.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: a proxy's error page
  }
  if (!answer.ok) {
    const err = json?.error ?? {};
    const retry = Number(answer.headers.get("Retry-After"));
    throw new HttpError(answer.status, err.code ?? "http", err.message ?? `the server answered ${answer.status}`,
      { field: err.field, detail: err.detail, retryAfter: Number.isFinite(retry) && retry > 0 ? retry : null });
  }
  return json;
}

/**
 * Sign in; remembers the token.
 * @param {string} name
 * @param {string} password
 */
export async function signIn(name, password) {
  const login = await api("POST", "/api/auth/login", { name, password });
  remember(login);
  return login;
}

export function signOut() {
  remember(null);
}

/**
 * What to tell the user about a failure: what happened and what to do.
 * @param {any} error an HttpError, a RealtimeError or anything thrown
 * @param {string} [doing] what the page was doing ("signing in", "joining the room", ...)
 * @returns {string}
 */
export function explain(error, doing = "") {
  const status = error?.status ?? 0;
  const code = error?.code ?? "";
  const message = String(error?.message ?? error ?? "something went wrong");
  const wait = error?.retryAfter ?? error?.detail?.retry_after;
  if (code === "offline" || code === "disconnected" || code === "not_connected" || code === "timeout") {
    return "The server does not answer. Check your connection; the page keeps trying.";
  }
  if (code === "rate_limited" || status === 429) {
    return `Too many tries${doing ? ` ${doing}` : ""}: ${message}. Wait${wait ? ` ${Math.ceil(wait)} s` : " a moment"} and try again.`;
  }
  if (status === 401 && doing === "signing in") return "Wrong name or password. Check both (the name is case sensitive).";
  if (status === 401 || code === "unauthorized") return "Your sign-in has expired or was revoked. Sign in again.";
  if (error?.field === "password" && code === "forbidden") {
    return message.includes("wrong")
      ? "The room password was wrong. Check it with whoever shared the link."
      : "This room needs a password. Ask whoever shared the link for it.";
  }
  if (code === "forbidden") return `Not allowed: ${message}.`;
  if (code === "not_found") return `Not found: ${message}. Check the link.`;
  if (code === "unavailable" || status === 503) return `The server cannot do this now (${message}). Try again in a moment.`;
  if (code === "bad_request") return `${message[0]?.toUpperCase() ?? ""}${message.slice(1)}.`;
  return `${doing ? `While ${doing}: ` : ""}${message}.`;
}
