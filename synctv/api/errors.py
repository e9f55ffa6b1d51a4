"""The one place where failures become HTTP answers (docs/api.md, "Errors").

Every failure is ``{"error": {"code", "message", "field"?, "detail"?}}`` with the status below.
Routing failures from werkzeug (no such route, wrong method) use the same envelope.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.web.iweb import IRequest

from synctv.core.errors import DomainError

STATUS_BY_CODE: dict[str, int] = {
    "bad_request": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "conflict": 409,
    "stale_version": 409,
    "payload_too_large": 413,
    "rate_limited": 429,
    "internal": 500,
    "unavailable": 503,
    "bad_gateway": 502,
    "gateway_timeout": 504,
}
JSON_CONTENT_TYPE = b"application/json; charset=utf-8"


def status_for(code: str) -> int:
    """The HTTP status of an error code; an unknown code is a server bug, hence 500."""
    return STATUS_BY_CODE.get(code, 500)


def encode_json(value: Any) -> bytes:
    """Compact UTF-8 JSON; refuses NaN/Infinity so every answer is valid JSON."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")


def error_body(code: str, message: str, *, field: str | None = None, detail: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    if detail is not None:
        body["detail"] = detail
    return {"error": body}


def write_error(
    request: IRequest, code: str, message: str, *, field: str | None = None, detail: Any = None
) -> bytes:
    """Set status and headers on ``request`` and return the encoded error body."""
    status = status_for(code)
    request.setResponseCode(status)
    request.setHeader(b"Content-Type", JSON_CONTENT_TYPE)
    request.setHeader(b"Cache-Control", b"no-store")
    if status == 401:
        request.setHeader(b"WWW-Authenticate", b'Bearer realm="synctv"')
    if code == "rate_limited" and isinstance(detail, dict) and isinstance(detail.get("retry_after"), int):
        request.setHeader(b"Retry-After", str(detail["retry_after"]).encode("ascii"))
    return encode_json(error_body(code, message, field=field, detail=detail))


def render_domain_error(request: IRequest, error: DomainError) -> bytes:
    return write_error(request, error.code, error.message, field=error.field, detail=error.detail)
