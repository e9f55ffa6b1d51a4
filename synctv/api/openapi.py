"""The OpenAPI 3.1 document, built from the route table (``RouteDoc`` per route, filled in by
``synctv.api.app``'s route decorator) and the schemas of ``synctv.api.schema``.

Every route the Klein app registers is in the document (a test keeps the two equal). Static web
files and the WebSocket endpoint are not Klein routes and are not described here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import attrs

from synctv.api.errors import STATUS_BY_CODE
from synctv.api.schema import ERROR, Refs, Schema

_PARAM = re.compile(r"\{([a-z_]+)\}")
PATH_PARAMETERS: dict[str, str] = {
    "room": "a room's id or name",
    "user": "a user's id or name",
    "media": "a media item's id",
}
_REASONS = {
    200: "OK", 201: "Created", 400: "Bad request", 401: "Unauthorized", 403: "Forbidden",
    404: "Not found", 409: "Conflict", 413: "Payload too large", 429: "Too many requests",
    500: "Internal error", 503: "Unavailable",
}


@attrs.frozen
class QueryParam:
    name: str
    description: str
    example: str | None = None


@attrs.frozen
class RouteDoc:
    """One route as documented: ``path`` uses ``{param}`` (OpenAPI) syntax."""

    method: str
    path: str
    summary: str
    auth: bool = True
    body: Schema | None = None
    response: Schema | None = None
    status: int = 200
    errors: tuple[int, ...] = ()
    query: tuple[QueryParam, ...] = ()
    content_type: str = "application/json"
    description: str = ""

    @property
    def klein_path(self) -> str:
        """The same path in werkzeug's ``<param>`` syntax."""
        return _PARAM.sub(r"<\1>", self.path)

    @property
    def parameters(self) -> list[str]:
        return _PARAM.findall(self.path)


def _tag(path: str) -> str:
    """Routes are grouped by their first segment after /api/ (auth, users, rooms)."""
    parts = path.split("/")
    return parts[2] if len(parts) > 3 and parts[1] == "api" else "operations"


def _error_statuses(route: RouteDoc) -> list[int]:
    statuses = set(route.errors)
    if route.body is not None:
        statuses |= {400, 413}
    if route.auth:
        statuses.add(401)
    if route.parameters:
        statuses.add(404)
    statuses.add(500)
    return sorted(statuses)


def _operation(route: RouteDoc, refs: Refs) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": route.summary,
        "operationId": f"{route.method.lower()}_{re.sub(r'[^a-z0-9]+', '_', route.path.lower()).strip('_')}",
        "tags": [_tag(route.path)],
    }
    if route.description:
        op["description"] = route.description
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "description": PATH_PARAMETERS.get(name, name),
         "schema": {"type": "string"}}
        for name in route.parameters
    ]
    parameters += [
        {"name": q.name, "in": "query", "required": False, "description": q.description,
         "schema": {"type": "string"}, **({"example": q.example} if q.example else {})}
        for q in route.query
    ]
    if parameters:
        op["parameters"] = parameters
    if route.body is not None:
        op["requestBody"] = {
            "required": any(not f.may_be_absent for f in route.body.fields.values()),
            "content": {"application/json": {"schema": route.body.json_schema(refs)}},
        }
    if route.content_type == "application/json":
        ok_content: dict[str, Any] = {"application/json": {
            "schema": route.response.json_schema(refs) if route.response is not None else {}
        }}
    else:
        ok_content = {route.content_type: {"schema": {"type": "string"}}}
    responses: dict[str, Any] = {
        str(route.status): {"description": _REASONS.get(route.status, "OK"), "content": ok_content}
    }
    error_ref = ERROR.json_schema(refs)
    for status in _error_statuses(route):
        codes = [code for code, s in STATUS_BY_CODE.items() if s == status]
        responses[str(status)] = {
            "description": f"{_REASONS.get(status, 'Error')} (error code: {', '.join(codes)})",
            "content": {"application/json": {"schema": error_ref}},
        }
    op["responses"] = responses
    op["security"] = [{"bearer": []}] if route.auth else []
    return op


def build_openapi(routes: Iterable[RouteDoc], *, title: str = "synctv", version: str = "0.1.0") -> dict[str, Any]:
    refs: Refs = {}
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, refs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "JSON in, JSON out. Authenticate with `Authorization: Bearer TOKEN` from "
                           "`POST /api/auth/login`. Every failure is `{\"error\": {\"code\", \"message\", "
                           "\"field\"?, \"detail\"?}}`.",
        },
        "paths": {path: paths[path] for path in sorted(paths)},
        "components": {
            "schemas": {name: refs[name] for name in sorted(refs)},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
