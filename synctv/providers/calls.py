"""Upstream API calls as values, and reading their JSON answers safely. Pure.

A provider builds each request to Alist, Emby, Jellyfin or Bilibili as an :class:`ApiCall` and
parses the :class:`ApiAnswer` with pure functions, so both halves are tested without a network;
``synctv.providers.client.ApiClient`` is the thin Twisted part that sends one and reads the answer
(bounded in size and time, through the proxy's address guard).

Every reader here turns an answer that does not have the documented shape into
:class:`MalformedAnswer` (502 ``bad_gateway``) naming what was wrong, never a ``KeyError`` or
``TypeError``: an upstream is not trusted to send what its documentation says.

Errors an upstream means:
- :class:`CredentialsRejected` -- it refused the account's credentials or session (HTTP 401,
  Alist's ``code: 401``); the account's session is renewed once, then it is a 502 with the reason;
- :class:`UpstreamRefused` -- any other error answer (502, ``detail.upstream_status``);
- ``NotFound`` -- the upstream has no such item (404, Bilibili ``-404``).
Messages quote the upstream's own reason, cut short; they never hold a credential.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import attrs

from synctv.core.errors import BadGateway

MAX_REASON = 200


@attrs.frozen
class ApiCall:
    """One HTTP request to an upstream API; ``what`` names it in errors (``"alist fs/get"``)."""

    method: str
    url: str
    what: str
    headers: Mapping[str, str] = attrs.field(factory=dict)
    body: bytes | None = attrs.field(default=None, repr=False)

    def with_headers(self, extra: Mapping[str, str]) -> ApiCall:
        return attrs.evolve(self, headers={**self.headers, **extra})


def json_call(method: str, url: str, what: str, payload: Any, headers: Mapping[str, str] | None = None) -> ApiCall:
    body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    return ApiCall(method, url, what, {"Content-Type": "application/json", **(headers or {})}, body)


def with_query(url: str, params: Iterable[tuple[str, str]]) -> str:
    """``url`` with ``params`` appended to its query."""
    parts = urlsplit(url)
    query = urlencode([*parse_qsl(parts.query, keep_blank_values=True), *params])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def without_params(url: str, names: Iterable[str]) -> str:
    """``url`` without the query parameters ``names`` (case-insensitive), the rest untouched."""
    drop = {n.lower() for n in names}
    parts = urlsplit(url)
    if not parts.query or not drop:
        return url
    kept = [p for p in parts.query.split("&") if p.split("=", 1)[0].lower() not in drop]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "&".join(kept), parts.fragment))


@attrs.frozen
class ApiAnswer:
    status: int
    headers: Mapping[str, str]  # lower-case names, first value
    body: bytes = attrs.field(repr=False)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class MalformedAnswer(BadGateway):
    """The upstream's answer does not have the documented shape."""


class UpstreamRefused(BadGateway):
    """The upstream answered an error."""


class CredentialsRejected(BadGateway):
    """The upstream refused the account's credentials or session; ``reason`` is its own words."""

    def __init__(self, message: str, *, reason: str = "", detail: Any = None) -> None:
        super().__init__(message, detail=detail)
        self.reason = reason


def reason_text(value: Any, secrets: Iterable[str] = ()) -> str:
    """An upstream's error text as it may be shown: one line, cut short, known secrets masked."""
    text = value if isinstance(value, str) else ("" if value is None else str(value))
    text = " ".join(text.split())[:MAX_REASON]
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def body_reason(answer: ApiAnswer, secrets: Iterable[str] = ()) -> str:
    """The reason in an error answer's body: a JSON ``message``/``Message``/``error``, else its text."""
    try:
        value = json.loads(answer.body)
    except (ValueError, UnicodeDecodeError):
        return reason_text(answer.body[:400].decode("utf-8", "replace"), secrets)
    if isinstance(value, dict):
        for key in ("message", "Message", "error", "ErrorMessage"):
            if isinstance(value.get(key), str):
                return reason_text(value[key], secrets)
    return ""


def parse_json(answer: ApiAnswer, what: str) -> Any:
    try:
        return json.loads(answer.body, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise MalformedAnswer(f"the {what} answer is not JSON") from None


def _no_constant(name: str) -> Any:
    raise ValueError(name)


class Reader:
    """Typed access to one JSON object of an answer; ``where`` names it in errors."""

    def __init__(self, value: Any, what: str, where: str = "") -> None:
        if not isinstance(value, dict):
            raise MalformedAnswer(f"the {what} answer has no object at {where or 'the top'}")
        self.value: dict[str, Any] = value
        self.what = what
        self.where = where

    def _bad(self, key: str, wanted: str) -> MalformedAnswer:
        path = f"{self.where}.{key}" if self.where else key
        return MalformedAnswer(f"the {self.what} answer's {path} is not {wanted}")

    def has(self, key: str) -> bool:
        return self.value.get(key) is not None

    def obj(self, key: str, *, optional: bool = False) -> Reader | None:
        value = self.value.get(key)
        if value is None and optional:
            return None
        if not isinstance(value, dict):
            raise self._bad(key, "an object")
        return Reader(value, self.what, f"{self.where}.{key}" if self.where else key)

    def need_obj(self, key: str) -> Reader:
        reader = self.obj(key)
        assert reader is not None
        return reader

    def objs(self, key: str, *, null_is_empty: bool = True) -> list[Reader]:
        value = self.value.get(key)
        if value is None and null_is_empty:
            return []
        if not isinstance(value, list):
            raise self._bad(key, "a list")
        where = f"{self.where}.{key}" if self.where else key
        return [Reader(item, self.what, f"{where}[{i}]") for i, item in enumerate(value)]

    def text(self, key: str, default: str | None = None) -> str:
        value = self.value.get(key)
        if value is None and default is not None:
            return default
        if not isinstance(value, str):
            raise self._bad(key, "a string")
        return value

    def opt_text(self, key: str) -> str | None:
        value = self.value.get(key)
        return value if isinstance(value, str) else None

    def integer(self, key: str, default: int | None = None) -> int:
        value = self.value.get(key)
        if value is None and default is not None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._bad(key, "an integer")
        return value

    def opt_number(self, key: str) -> float | None:
        value = self.value.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        number = float(value)
        return number if math.isfinite(number) else None

    def flag(self, key: str, default: bool = False) -> bool:
        value = self.value.get(key)
        return value if isinstance(value, bool) else default

    def texts(self, key: str) -> list[str]:
        value = self.value.get(key)
        if not isinstance(value, list):
            return []
        return [v for v in value if isinstance(v, str)]
