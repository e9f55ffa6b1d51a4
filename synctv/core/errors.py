"""Domain errors with stable codes.

Raised anywhere in synctv; mapped to an HTTP status in ``synctv.api.errors`` and to a WebSocket
``error`` frame in ``synctv.realtime`` -- one place each. ``code`` is part of the public contract.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A refusal a client can act on. ``code`` is stable; ``message`` is for people."""

    code: str = "error"

    def __init__(self, message: str, *, field: str | None = None, detail: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.detail = detail

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        if self.detail is not None:
            body["detail"] = self.detail
        return body


class BadRequest(DomainError):
    """The input is malformed or a field has a bad value (``field`` names it)."""

    code = "bad_request"


class Unauthorized(DomainError):
    """No credentials, or credentials that are wrong, expired or revoked."""

    code = "unauthorized"


class Forbidden(DomainError):
    """Authenticated, but not allowed to do this."""

    code = "forbidden"


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    """The request clashes with what exists (a duplicate name, say)."""

    code = "conflict"


class StaleVersion(DomainError):
    """An update named a version that is no longer current; ``detail`` carries the current state."""

    code = "stale_version"


class PayloadTooLarge(DomainError):
    code = "payload_too_large"


class RateLimited(DomainError):
    """Too many requests; ``detail`` may carry ``retry_after`` seconds."""

    code = "rate_limited"


class Unavailable(DomainError):
    """A dependency (database, upstream) is not answering; retrying later may work."""

    code = "unavailable"


class BadGateway(DomainError):
    """An upstream (a media server the proxy fetches from) failed or answered something unusable."""

    code = "bad_gateway"


class GatewayTimeout(DomainError):
    """An upstream did not answer in time."""

    code = "gateway_timeout"
