"""The media proxy's routes (``ROUTES``, served by the ``SynctvAPI`` that ``synctv.site.build_site``
makes, so they are in the OpenAPI document and docs/api.md).

- ``GET|HEAD|OPTIONS /api/rooms/{room}/media/{media}/proxy`` and ``.../proxy/{kind}/{index}``:
  no bearer token (a ``<video>`` element cannot send one); the signed query of the URL that
  PlaybackInfo gave is the credential (docs/proxy.md). The body streams; errors before the body
  starts are the usual JSON envelope (502/504 for upstream failures, 416 for a bad range). Every
  answer carries CORS headers so browser players (hls.js, fetch-based players) can read it.
  They are direct routes (``synctv.api.app.DirectRoutes``): a player asks for one per byte range
  or segment, so they skip Klein's routing.
- ``GET|DELETE /api/admin/cache``: slice cache statistics and purge, for site admins.
"""

from __future__ import annotations

from typing import Any

from twisted.web.iweb import IRequest

from synctv.api.app import Call, RouteTable, SynctvAPI
from synctv.api.openapi import QueryParam, RouteDoc
from synctv.core import permissions
from synctv.core.errors import Unavailable
from synctv.proxy.media_types import ANSWER_HEADERS
from synctv.proxy.proxy_urls import KIND_ITEM, check_resource

ROUTES = RouteTable("proxy")
ITEM_PATH = "/api/rooms/{room}/media/{media}/proxy"
RESOURCE_PATH = ITEM_PATH + "/{kind}/{index}"
_SIGNED_QUERY = (
    QueryParam("u", "the user the URL was issued to"),
    QueryParam("e", "expiry, server time in ms"),
    QueryParam("s", "signature"),
)
_STREAM_DESCRIPTION = (
    "No bearer token: the URL from PlaybackInfo (mode proxy) is signed and expires. Honours Range "
    "and If-Range (206, or 416 with Content-Range: bytes */total); HEAD works. X-Cache says HIT, MISS or "
    "BYPASS (an upstream without Range support, relayed as it is). Upstream failures are 502/504."
)
CORS_HEADERS = {
    b"Access-Control-Allow-Origin": b"*",
    b"Access-Control-Expose-Headers": b"Content-Range, Accept-Ranges, Content-Length, X-Cache, ETag",
    **ANSWER_HEADERS,  # nosniff and CSP sandbox on every answer, errors and preflights included
}
PREFLIGHT_HEADERS = {
    b"Access-Control-Allow-Methods": b"GET, HEAD, OPTIONS",
    b"Access-Control-Allow-Headers": b"Range, If-Range",
    b"Access-Control-Max-Age": b"86400",
}


def _proxy(api: SynctvAPI) -> Any:
    proxy = getattr(api, "proxy", None)
    if proxy is None:
        raise Unavailable("the media proxy is not enabled on this server")
    return proxy


def stream_route(path: str, summary: str, description: str, query: tuple[QueryParam, ...]) -> Any:
    """Declare a streaming GET (+ HEAD, OPTIONS) route in ``ROUTES`` and document it."""
    doc = RouteDoc(method="GET", path=path, summary=summary, auth=False, errors=(403, 416, 502, 503, 504),
                   query=query, content_type="application/octet-stream", description=description)

    def decorate(f: Any) -> Any:
        async def handler(api: SynctvAPI, request: IRequest, **params: str) -> None:
            request.synctv_route = doc.path
            for name, value in CORS_HEADERS.items():
                request.setHeader(name, value)
            if request.method == b"OPTIONS":
                request.setResponseCode(204)
                for name, value in PREFLIGHT_HEADERS.items():
                    request.setHeader(name, value)
                return None
            await f(api, request, **params)
            return None

        handler.__name__ = f.__name__
        ROUTES.add(doc, handler, methods=("GET", "HEAD", "OPTIONS"), direct=True)
        return handler

    return decorate


@stream_route(ITEM_PATH, "A media item through the proxy (signed URL)", _STREAM_DESCRIPTION, _SIGNED_QUERY)
async def proxy_item(api: SynctvAPI, request: IRequest, room: str, media: str) -> None:
    proxy = getattr(api, "proxy", None)
    if proxy is None:
        await api.actions.find_media(room, media)  # unknown references are 404 first
        _proxy(api)
    await proxy.serve(request, room, media, KIND_ITEM, "0")


@stream_route(
    RESOURCE_PATH, "A subtitle or a playlist URI of a media item through the proxy (signed URL)",
    _STREAM_DESCRIPTION + " kind is subtitle or an HLS URI kind (variant, segment, key, map, media, ...); "
    "index counts from 0 and may carry the upstream's extension (3.ts).",
    (*_SIGNED_QUERY, QueryParam("r", "the upstream URL (playlist URIs only; covered by the signature)")),
)
async def proxy_resource(api: SynctvAPI, request: IRequest, room: str, media: str, kind: str, index: str) -> None:
    check_resource(kind, index)  # an unknown kind or index is 404 like an unknown room
    proxy = getattr(api, "proxy", None)
    if proxy is None:
        await api.actions.find_media(room, media)
        _proxy(api)
    await proxy.serve(request, room, media, kind, index)


@ROUTES.route("GET", "/api/admin/cache", "Slice cache statistics (site admins)", errors=(403, 503),
                       description="Backend, bounds, entries, bytes, hits, misses, evictions, answers by "
                                   "X-Cache, upstream requests and bytes.")
async def cache_stats(api: SynctvAPI, call: Call) -> Any:
    permissions.require_site_admin(call.actor.role)
    return {"cache": _proxy(api).stats()}


@ROUTES.route("DELETE", "/api/admin/cache", "Purge the slice cache (site admins)", errors=(403, 503))
async def cache_purge(api: SynctvAPI, call: Call) -> Any:
    permissions.require_site_admin(call.actor.role)
    proxy = _proxy(api)
    await proxy.purge()
    return {"purged": True, "cache": proxy.stats()}
