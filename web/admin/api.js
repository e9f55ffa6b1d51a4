// The admin console's HTTP client: JSON requests with the signed-in user's bearer token, errors as
// ApiError (the server's `{"error": {code, message, field?, detail?}}`), and raw-body uploads with
// progress through XMLHttpRequest (fetch has no upload progress). A 401 on any request but the
// sign-in itself calls the handler set with onUnauthorized (the console returns to sign-in).
//
// Plain ES module, no dependencies.

const TOKEN_KEY = "synctv.admin.token";

/** A refused request: `status` (0: no answer), the server's `code`, `message`, `field`, `detail`. */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} code
   * @param {string} message
   * @param {{field?: string, detail?: any, retryAfter?: number | null}} [extra]
   */
  constructor(status, code, message, extra = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.field = extra.field ?? null;
    this.detail = extra.detail ?? null;
    /** seconds, from Retry-After */
    this.retryAfter = extra.retryAfter ?? null;
  }
}

/** @type {(error: ApiError) => void} */
let unauthorized = () => {};

/** @param {(error: ApiError) => void} handler called on a 401 (not for sign-in) */
export function onUnauthorized(handler) {
  unauthorized = handler;
}

export function getToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

/** @param {string | null} token */
export function setToken(token) {
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // storage disabled: the token lives as long as the page
  }
  memoryToken = token;
}

let memoryToken = getToken();

function authHeader() {
  const token = memoryToken ?? getToken();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/**
 * An ApiError from a response's status, headers and body text.
 * @param {number} status
 * @param {string} text
 * @param {(name: string) => string | null} header
 */
function errorFrom(status, text, header) {
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: a proxy's page, say
  }
  const err = body && typeof body === "object" && body.error ? body.error : null;
  const retry = header("Retry-After");
  const retryAfter = retry !== null && retry !== "" && Number.isFinite(Number(retry)) ? Number(retry) : null;
  const message = err?.message ?? (status ? `the server answered ${status}` : "the server did not answer");
  return new ApiError(status, err?.code ?? `http_${status}`, message,
    { field: err?.field, detail: err?.detail, retryAfter });
}

/**
 * @param {ApiError} error
 * @param {boolean} signIn
 */
function report(error, signIn) {
  if (error.status === 401 && !signIn) unauthorized(error);
  return error;
}

/**
 * One JSON request. Resolves with the decoded body (null for an empty one).
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body] sent as JSON when not undefined
 * @param {{signIn?: boolean, signal?: AbortSignal}} [options]
 * @returns {Promise<any>}
 */
export async function request(method, path, body, options = {}) {
  /** @type {Record<string, string>} */
  const headers = { Accept: "application/json", ...authHeader() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store", signal: options.signal,
    });
  } catch (e) {
    if (/** @type {Error} */ (e).name === "AbortError") throw e;
    throw new ApiError(0, "network", "the server could not be reached; check the connection");
  }
  const text = await response.text();
  if (!response.ok) {
    throw report(errorFrom(response.status, text, (n) => response.headers.get(n)), !!options.signIn);
  }
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export const api = {
  /** @param {string} path @param {{signal?: AbortSignal}} [o] */
  get: (path, o) => request("GET", path, undefined, o),
  /** @param {string} path @param {unknown} [body] */
  post: (path, body) => request("POST", path, body ?? {}),
  /** @param {string} path @param {unknown} body */
  patch: (path, body) => request("PATCH", path, body),
  /** @param {string} path @param {unknown} body */
  put: (path, body) => request("PUT", path, body),
  /** @param {string} path */
  del: (path) => request("DELETE", path),
};

/** @param {string} s */
export const enc = (s) => encodeURIComponent(s);

/**
 * Signs in; stores the token. Resolves with `{token, expires_at, user}`.
 * @param {string} name
 * @param {string} password
 */
export async function signIn(name, password) {
  const answer = await request("POST", "/api/auth/login", { name, password }, { signIn: true });
  setToken(answer.token);
  return answer;
}

/**
 * @typedef {object} UploadProgress
 * @property {number} loaded bytes sent
 * @property {number} total bytes to send
 * @property {number} fraction 0..1
 */

/**
 * Sends `file` as the raw request body (not a form) with XMLHttpRequest, reporting progress.
 * `promise` resolves with the decoded answer or rejects with an ApiError (code "aborted" after
 * abort()).
 * @param {string} method
 * @param {string} path
 * @param {Blob} file
 * @param {{onProgress?: (p: UploadProgress) => void, contentType?: string}} [options]
 * @returns {{promise: Promise<any>, abort: () => void}}
 */
export function uploadRaw(method, path, file, options = {}) {
  const xhr = new XMLHttpRequest();
  const promise = new Promise((resolve, reject) => {
    xhr.open(method, path);
    const auth = authHeader();
    if (auth.Authorization) xhr.setRequestHeader("Authorization", auth.Authorization);
    xhr.setRequestHeader("Content-Type", options.contentType || file.type || "application/octet-stream");
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = (e) => {
      const total = e.lengthComputable ? e.total : file.size;
      options.onProgress?.({ loaded: e.loaded, total, fraction: total ? Math.min(1, e.loaded / total) : 0 });
    };
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        options.onProgress?.({ loaded: file.size, total: file.size, fraction: 1 });
        try {
          resolve(xhr.responseText ? JSON.parse(xhr.responseText) : null);
        } catch {
          resolve(xhr.responseText);
        }
        return;
      }
      reject(report(errorFrom(xhr.status, xhr.responseText, (n) => xhr.getResponseHeader(n)), false));
    };
    xhr.onerror = () => reject(new ApiError(0, "network",
      "the upload was cut off: the server closed the connection (it refuses uploads before their body "
      + "when the sign-in was revoked, the user is no site admin, two uploads are already running or the "
      + "file is over its size limit), or it is unreachable"));
    xhr.onabort = () => reject(new ApiError(0, "aborted", "the upload was cancelled"));
    xhr.send(file);
  });
  return { promise, abort: () => xhr.abort() };
}
