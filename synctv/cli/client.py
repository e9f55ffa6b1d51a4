"""The synctv HTTP API client used by the ``synctv`` command (docs/api.md is the contract).

Synchronous and stdlib only (``urllib.request``): the command must start fast, so nothing here
imports Twisted. Every failure becomes a ``CLIError`` whose ``message`` is one line for people and
whose ``exit_code`` is one of the ``EXIT_*`` values below (docs/cli.md lists them).
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

from synctv import __version__

DEFAULT_SERVER = "http://127.0.0.1:8080"
DEFAULT_TIMEOUT = 30.0

EXIT_OK = 0
EXIT_ERROR = 1  # any other failure: a server error (5xx), a bad request (400), 413, 429, ...
EXIT_USAGE = 2  # bad command line (argparse uses 2 as well)
EXIT_UNREACHABLE = 3  # no answer: refused, unknown host, timed out, TLS failure
EXIT_AUTH = 4  # 401 and 403
EXIT_NOT_FOUND = 5  # 404
EXIT_CONFLICT = 6  # 409: a taken name, or a stale playback version

_STATUS_EXIT = {401: EXIT_AUTH, 403: EXIT_AUTH, 404: EXIT_NOT_FOUND, 409: EXIT_CONFLICT}
_STATUS_LABEL = {
    400: "bad request",
    403: "forbidden",
    404: "not found",
    413: "request too large",
    429: "rate limited",
}


class CLIError(Exception):
    """A failure the command reports with one line on stderr and ``exit_code``."""

    exit_code = EXIT_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(CLIError):
    exit_code = EXIT_USAGE


class Unreachable(CLIError):
    exit_code = EXIT_UNREACHABLE


class ApiError(CLIError):
    """The server answered with an error status; ``code``/``detail`` come from its JSON body."""

    def __init__(
        self, message: str, *, status: int, code: str, server_message: str,
        field: str | None = None, detail: Any = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.server_message = server_message
        self.field = field
        self.detail = detail

    @property
    def exit_code(self) -> int:  # type: ignore[override]
        return _STATUS_EXIT.get(self.status, EXIT_ERROR)


def normalize_server(text: str) -> str:
    """``http[s]://host[:port][/prefix]`` without a trailing slash; the key tokens are stored under."""
    parts = urllib.parse.urlsplit(text.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"bad server URL {text!r}: expected http://HOST[:PORT] or https://HOST[:PORT]")
    if parts.query or parts.fragment:
        raise UsageError(f"bad server URL {text!r}: no query or fragment allowed")
    try:
        port = parts.port
    except ValueError:
        raise UsageError(f"bad server URL {text!r}: bad port") from None
    host = parts.hostname  # lower-cased, without brackets
    netloc = (f"[{host}]" if ":" in host else host) + ("" if port is None else f":{port}")
    return urllib.parse.urlunsplit((scheme, netloc, parts.path.rstrip("/"), "", ""))


def api_path(*segments: str) -> str:
    """``/api/<seg>/<seg>...`` with every segment percent-encoded (spaces, ``/``, unicode)."""
    return "/api/" + "/".join(urllib.parse.quote(segment, safe="") for segment in segments)


def _reason(exc: BaseException) -> str:
    """A short, lower-case description of why a connection failed."""
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException):
        exc = exc.reason
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return "unknown host"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error ({exc.reason or exc})"
    if isinstance(exc, (ConnectionResetError, http.client.RemoteDisconnected)):
        return "the connection was closed before an answer"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ApiClient:
    """One server, one optional bearer token; ``request`` returns the decoded JSON object."""

    def __init__(
        self, server: str, token: str | None = None, *, token_source: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.server = server
        self.token = token
        self.token_source = token_source  # "SYNCTV_TOKEN" or the token file's path; for messages
        self.timeout = timeout
        self._opener = urllib.request.build_opener()

    # -- HTTP --------------------------------------------------------------------------------

    def get(self, path: str) -> dict[str, Any]:
        return self.request("GET", path)

    def post(self, path: str, body: Mapping[str, Any] | None = None, *, auth: bool = True) -> dict[str, Any]:
        return self.request("POST", path, {} if body is None else body, auth=auth)

    def patch(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self.request("PATCH", path, body)

    def delete(self, path: str) -> dict[str, Any]:
        return self.request("DELETE", path)

    def request(
        self, method: str, path: str, body: Mapping[str, Any] | None = None, *, auth: bool = True
    ) -> dict[str, Any]:
        headers = {"Accept": "application/json", "User-Agent": f"synctv-cli/{__version__}"}
        data = None
        if body is not None:
            data = json.dumps(body, allow_nan=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if auth and self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.server + path, data=data, headers=headers, method=method)
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status = exc.code
            try:
                raw = exc.read()
            except (OSError, http.client.HTTPException):
                raw = b""
            raise self._api_error(status, exc.reason, raw, auth=auth) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            cause = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            if isinstance(cause, TimeoutError):  # while connecting (wrapped) or reading (bare)
                raise Unreachable(f"cannot reach {self.server}: no answer within {self.timeout:g}s "
                                  "(use --timeout to wait longer)") from None
            raise Unreachable(
                f"cannot reach {self.server}: {_reason(exc)}; is the server running? "
                "(set --server or SYNCTV_SERVER)"
            ) from None
        try:
            answer = json.loads(raw)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise CLIError(f"{self.server}: {method} {path} answered HTTP {status} without a JSON object")
        return answer

    def _api_error(self, status: int, reason: str, raw: bytes, *, auth: bool) -> ApiError:
        code, message, field, detail = "", "", None, None
        try:
            error = json.loads(raw)["error"]
            code, message = str(error.get("code", "")), str(error.get("message", ""))
            field, detail = error.get("field"), error.get("detail")
        except (ValueError, KeyError, TypeError, AttributeError):
            message = raw.decode("utf-8", "replace").strip() or str(reason or "")
        message = _one_line(message) or f"HTTP {status}"
        if status == 401 and auth:
            if self.token_source == "SYNCTV_TOKEN":
                line = (f"{self.server}: the token in SYNCTV_TOKEN was refused ({message}); "
                        "unset it or run `synctv login USER`")
            elif self.token:
                line = f"{self.server}: not logged in or the token expired ({message}); run `synctv login USER`"
            else:
                line = f"{self.server}: not logged in; run `synctv login USER`"
        elif status == 401:
            line = f"{self.server}: {message}"
        elif status == 409:
            label = "stale version" if code == "stale_version" else "conflict"
            line = f"{label}: {message}"
        elif status >= 500:
            line = f"server error (HTTP {status} {code or reason}): {message}"
        else:
            label = _STATUS_LABEL.get(status, f"HTTP {status}")
            line = f"{label}: {message}" + (f" (field {field})" if field else "")
        return ApiError(line, status=status, code=code, server_message=message, field=field, detail=detail)

    # -- playback ----------------------------------------------------------------------------

    def update_playback(self, room: str, steps: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Apply ``steps`` (update bodies without ``version``) in order, each on the version the
        previous one returned; the first is based on a fresh GET. A step refused with
        ``stale_version`` (someone else changed the state meanwhile) is retried once on the state the
        error carries. Returns the final state."""
        path = api_path("rooms", room, "playback-state")
        state = self.get(path)
        for step in steps:
            state = self._patch_playback(path, step, state)
        return state

    def _patch_playback(self, path: str, step: Mapping[str, Any], state: Mapping[str, Any]) -> dict[str, Any]:
        try:
            return self.patch(path, {**step, "version": _version(state)})
        except ApiError as exc:
            if exc.code != "stale_version":
                raise
            fresh = exc.detail if isinstance(exc.detail, dict) and "version" in exc.detail else self.get(path)
        try:
            return self.patch(path, {**step, "version": _version(fresh)})
        except ApiError as exc:
            if exc.code == "stale_version":
                exc.message += f" (the playback changed twice during `{step.get('action')}`; try again)"
            raise


def _version(state: Mapping[str, Any]) -> int:
    version = state.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise CLIError(f"the server's playback state has no integer version: {_one_line(json.dumps(state))}")
    return version
