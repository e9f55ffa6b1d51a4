"""The HTTP API (docs/api.md): Klein routes on a class that holds its dependencies.

Routes are thin: authenticate, parse the body with its schema, call ``Actions``, render JSON.
Each route is declared once with ``table.route(...)``, which registers it on the Klein app and
records its ``RouteDoc`` for the OpenAPI document. Failures become JSON in the error handlers at
the bottom of the class, through ``synctv.api.errors``.

Direct routes: a route added with ``direct=True`` (the media proxy's signed-URL streams, requested
once per byte range a player reads) is matched by ``DirectRoutes`` -- literal path segments and
``{param}`` segments, compared with the request's segments -- and run by ``APIResource`` without
Klein's routing and rendering (werkzeug's URL map, its request adapter, several Deferreds per
request). Everything else goes to Klein, and so does a request a direct route does not take in
every respect (another method, a parameter holding ``/``), so its answers (405 with ``Allow``, the
404 envelope) stay Klein's. A direct route answers as a Klein route does: its result bytes are
written, its failures pass through the same ``domain_error``/``unexpected`` handlers, and a client
that goes away cancels it.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import attrs
from klein import Klein
from prometheus_client import CONTENT_TYPE_LATEST
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import resource, server
from twisted.web.iweb import IRequest
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.exceptions import NotFound as RouteNotFound

from synctv.actions import Actions, RoomView
from synctv.api import schema as s
from synctv.api.errors import JSON_CONTENT_TYPE, encode_json, render_domain_error, write_error
from synctv.api.metrics import HttpMetrics, authorize_scrape
from synctv.api.openapi import QueryParam, RouteDoc, build_openapi
from synctv.core.errors import BadRequest, DomainError, Unauthorized, Unavailable
from synctv.core.models import Subtitle, User
from synctv.core.playback import parse_update
from synctv.core.throttle import source_key
from synctv.providers.base import ClientProfile
from synctv.store.interface import UNSET

HEALTH_TIMEOUT_S = 5.0
HOW_TO_LOG_IN = (
    "log in first: POST /api/auth/login with {\"name\", \"password\"}, then send the token as "
    "'Authorization: Bearer TOKEN'"
)
Handler = Callable[..., Coroutine[Any, Any, Any]]


@attrs.frozen
class Call:
    """What a route handler gets: the request, the authenticated user and the parsed body."""

    request: IRequest
    actor: User  # None on the few routes declared with auth=False (they do not read it)
    body: dict[str, Any]  # {} on routes without a body schema


def bearer_token(request: IRequest) -> str:
    header = request.getHeader(b"authorization")
    if header is None:
        raise Unauthorized(HOW_TO_LOG_IN)
    scheme, _, token = header.decode("latin-1").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("the Authorization header must be 'Bearer TOKEN'; " + HOW_TO_LOG_IN)
    return token.strip()


def client_source(request: IRequest) -> str | None:
    """The client's address as password throttling counts it (``synctv.core.throttle.source_key``)."""
    host = getattr(request.getClientAddress(), "host", None)
    return source_key(host) if isinstance(host, str) else None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def read_json_body(request: IRequest) -> Any:
    """The request body as JSON; an empty body reads as ``{}``. Any Content-Type is accepted."""
    content = request.content.read() if request.content is not None else b""
    if not content.strip():
        return {}
    try:
        return json.loads(content, parse_constant=_reject_constant)
    except RecursionError:
        raise BadRequest("the body is nested too deeply") from None
    except ValueError as e:  # includes JSONDecodeError and UnicodeDecodeError
        raise BadRequest(f"the body is not valid JSON: {str(e)[:200]}") from None


def render_json(request: IRequest, value: Any, status: int = 200) -> bytes:
    request.setResponseCode(status)
    request.setHeader(b"Content-Type", JSON_CONTENT_TYPE)
    request.setHeader(b"Cache-Control", b"no-store")
    return encode_json(value)


@attrs.frozen
class RouteEntry:
    """One route of a ``RouteTable``: ``handler(api, request, **params)`` answers ``methods``."""

    doc: RouteDoc
    methods: tuple[str, ...]
    endpoint: str
    handler: Handler
    direct: bool = False  # served by DirectRoutes, not Klein (module docstring)


class RouteTable:
    """Routes declared in one module, with how each is documented.

    A table registers nothing by itself: ``SynctvAPI`` is given the tables it serves and puts
    their entries on its own Klein app, bound to itself (Klein's non-global state pattern), so
    what a server answers is the list ``synctv.site.build_site`` passes, not what was imported.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.entries: list[RouteEntry] = []

    @property
    def docs(self) -> list[RouteDoc]:
        return [entry.doc for entry in self.entries]

    def add(self, doc: RouteDoc, handler: Handler, methods: tuple[str, ...] | None = None, *,
            direct: bool = False) -> None:
        """Add a raw handler ``(api, request, **params)``; it renders its own answer. ``direct``:
        matched and run without Klein (module docstring), for routes a player requests often."""
        methods = methods or (doc.method,)
        endpoint = f"{self.name}.{doc.method.lower()}.{handler.__name__}"
        self.entries.append(RouteEntry(doc, methods, endpoint, handler, direct))

    def route(self, method: str, path: str, summary: str, **options: Any) -> Callable[[Handler], Handler]:
        """Declare a JSON route: ``f(api, call, **params)`` gets the authenticated user (unless
        ``auth=False``) and the body parsed by ``body``; what it returns is rendered as JSON
        (bytes are sent as they are, with the Content-Type the handler set)."""
        doc = RouteDoc(method=method, path=path, summary=summary, **options)

        def decorate(f: Handler) -> Handler:
            @functools.wraps(f)
            async def handler(api: SynctvAPI, request: IRequest, **params: str) -> Any:
                request.synctv_route = doc.path  # the metrics label: a template, not the path
                actor = await api.actions.authenticate(bearer_token(request)) if doc.auth else None
                body = doc.body.parse(read_json_body(request)) if doc.body is not None else {}
                result = await f(api, Call(request, actor, body), **params)
                if isinstance(result, bytes):  # already encoded, Content-Type set by the handler
                    request.setResponseCode(doc.status)
                    return result
                return render_json(request, result, doc.status)

            self.add(doc, handler)
            return f

        return decorate


CORE_ROUTES = RouteTable("core")


def _room_view(view: RoomView) -> dict[str, Any]:
    return {"room": view.room.to_json(), "member": view.member.to_json() if view.member else None}


def _subtitles(items: list[dict[str, Any]]) -> list[Subtitle]:
    return [Subtitle(**item) for item in items]


class SynctvAPI:
    """The HTTP API of one server: its own Klein app serving ``routes`` (``RouteTable``s) with
    the subsystems they use; ``resource()`` is what the Site mounts for /api, /healthz and
    /metrics. A subsystem that is not given (``live``, ``proxy``, ``displays``, ``accounts``) makes its routes
    answer 503 after the usual 401/403/404 checks."""

    log = Logger()

    def __init__(
        self, actions: Actions, *, routes: Sequence[RouteTable] = (CORE_ROUTES,), metrics: HttpMetrics | None = None,
        reactor: IReactorTime | None = None, live: Any = None, proxy: Any = None, displays: Any = None,
        pages: Any = None,
        accounts: Any = None,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor as global_reactor

            reactor = global_reactor  # type: ignore[assignment]
        self.actions = actions
        self.live = live  # synctv.live.service.LiveHub (synctv.api.live_routes)
        self.proxy = proxy  # synctv.proxy.gateway.MediaProxy (synctv.api.proxy_routes)
        self.displays = displays  # synctv.displays.subsystem.DisplayRuntime (synctv.api.display_routes)
        self.pages = pages  # synctv.api.page_routes.RoomPages (synctv.api.page_routes)
        self.accounts = accounts  # synctv.providers.accounts.ProviderAccounts (synctv.api.account_routes)
        self.metrics = metrics if metrics is not None else HttpMetrics()
        self.reactor = reactor
        self.routes = tuple(routes)
        self.app = Klein()
        for table in self.routes:
            for entry in table.entries:
                self.app.route(entry.doc.klein_path, methods=list(entry.methods), endpoint=entry.endpoint)(
                    _bound(entry.handler, self))
        self.app.handle_errors(DomainError)(self.domain_error)
        self.app.handle_errors(HTTPException)(self.routing_error)
        self.app.handle_errors(self.unexpected)
        self.direct = DirectRoutes(
            (entry.doc.path, entry.methods, _bound(entry.handler, self))
            for table in self.routes for entry in table.entries if entry.direct)
        self._openapi = encode_json(build_openapi(self.docs))

    @property
    def docs(self) -> list[RouteDoc]:
        return [doc for table in self.routes for doc in table.docs]

    def resource(self) -> resource.IResource:
        """What the Site serves the API's paths from: the direct routes, then Klein's."""
        return APIResource(self, self.app.resource())

    # -- operations -----------------------------------------------------------------------------

    @CORE_ROUTES.route("GET", "/healthz", "Liveness and database check", auth=False, response=s.HEALTH, errors=(503,))
    async def healthz(self, call: Call) -> Any:
        try:
            await self.actions.ping().addTimeout(HEALTH_TIMEOUT_S, self.reactor)
        except Exception as e:
            self.log.warn("health check: the database does not answer: {error!r}", error=e)
            raise Unavailable("the database does not answer", detail={"status": "unavailable",
                                                                      "database": "error"}) from None
        return {"status": "ok", "database": "ok"}

    @CORE_ROUTES.route("GET", "/metrics", "Prometheus metrics (a site admin's token, or a source in [server] "
                 "metrics_networks)", auth=False, content_type="text/plain", errors=(401, 403))
    async def prometheus(self, call: Call) -> Any:
        await authorize_scrape(call.request, self.metrics.scrape_networks,
                               lambda request: self.actions.authenticate(bearer_token(request)))
        try:
            self.metrics.rooms.set(await self.actions.count_rooms())
        except Exception as e:
            self.log.warn("metrics: cannot count rooms: {error!r}", error=e)
        call.request.setHeader(b"Content-Type", CONTENT_TYPE_LATEST.encode("ascii"))
        return self.metrics.exposition()

    @CORE_ROUTES.route("GET", "/api/openapi.json", "This document (OpenAPI 3.1)", auth=False)
    async def openapi(self, call: Call) -> Any:
        call.request.setHeader(b"Content-Type", JSON_CONTENT_TYPE)
        return self._openapi

    # -- auth -----------------------------------------------------------------------------------

    @CORE_ROUTES.route("POST", "/api/auth/login", "Log in; answers a bearer token", auth=False, body=s.LOGIN,
                 response=s.LOGIN_RESULT, errors=(401, 429),
                 description="After [auth] max_failures failures for one name, or max_failures_per_address "
                             "from one address, within failure_window_s: 429 rate_limited with Retry-After.")
    async def login(self, call: Call) -> Any:
        result = await self.actions.login(call.body["name"], call.body["password"], source=client_source(call.request))
        return {"token": result.token, "expires_at": result.expires_at, "user": result.user.to_json()}

    @CORE_ROUTES.route("GET", "/api/auth/me", "The caller", response=s.ONE_USER)
    async def me(self, call: Call) -> Any:
        return {"user": call.actor.to_json()}

    @CORE_ROUTES.route("POST", "/api/auth/revoke", "Revoke every token of the caller", response=s.REVOKED)
    async def revoke(self, call: Call) -> Any:
        await self.actions.revoke(call.actor)
        return {"revoked": True}

    # -- users ----------------------------------------------------------------------------------

    @CORE_ROUTES.route("GET", "/api/users", "List users (site admins)", response=s.USERS, errors=(403,))
    async def list_users(self, call: Call) -> Any:
        return {"users": [u.to_json() for u in await self.actions.list_users(call.actor)]}

    @CORE_ROUTES.route("POST", "/api/users", "Create a user (site admins)", body=s.USER_CREATE, response=s.ONE_USER,
                 status=201, errors=(403, 409))
    async def create_user(self, call: Call) -> Any:
        b = call.body
        user = await self.actions.create_user(call.actor, b["name"], b["password"], b["role"])
        return {"user": user.to_json()}

    @CORE_ROUTES.route("GET", "/api/users/{user}", "A user (site admins, or yourself)", response=s.ONE_USER,
                 errors=(403,))
    async def get_user(self, call: Call, user: str) -> Any:
        return {"user": (await self.actions.get_user(call.actor, user)).to_json()}

    @CORE_ROUTES.route("PATCH", "/api/users/{user}", "Change a user's role or password", body=s.USER_PATCH,
                 response=s.ONE_USER, errors=(403,),
                 description="Site admins change roles; anyone may change their own password. "
                             "A new password revokes the user's tokens.")
    async def update_user(self, call: Call, user: str) -> Any:
        b = call.body
        updated = await self.actions.update_user(
            call.actor, user, role=b.get("role", UNSET), password=b.get("password", UNSET)
        )
        return {"user": updated.to_json()}

    @CORE_ROUTES.route("DELETE", "/api/users/{user}", "Delete a user (site admins)", response=s.DELETED, errors=(403,))
    async def delete_user(self, call: Call, user: str) -> Any:
        return {"deleted": await self.actions.delete_user(call.actor, user)}

    # -- rooms ----------------------------------------------------------------------------------

    @CORE_ROUTES.route("GET", "/api/rooms", "List rooms", response=s.ROOMS)
    async def list_rooms(self, call: Call) -> Any:
        return {"rooms": [r.to_json() for r in await self.actions.list_rooms(call.actor)]}

    @CORE_ROUTES.route("POST", "/api/rooms", "Create a room; the caller becomes its creator", body=s.ROOM_CREATE,
                 response=s.ROOM_AND_MEMBER, status=201, errors=(409,))
    async def create_room(self, call: Call) -> Any:
        b = call.body
        view = await self.actions.create_room(
            call.actor, b["name"], password=b.get("password"), kind=b["kind"], settings=b["settings"]
        )
        return _room_view(view)

    @CORE_ROUTES.route("GET", "/api/rooms/{room}", "A room and the caller's membership (or null)",
                 response=s.ROOM_AND_MAYBE_MEMBER)
    async def get_room(self, call: Call, room: str) -> Any:
        return _room_view(await self.actions.get_room(call.actor, room))

    @CORE_ROUTES.route("PATCH", "/api/rooms/{room}", "Change a room (manage_room)", body=s.ROOM_PATCH,
                 response=s.ONE_ROOM, errors=(403, 409))
    async def update_room(self, call: Call, room: str) -> Any:
        b = call.body
        updated = await self.actions.update_room(
            call.actor, room, name=b.get("name", UNSET), password=b.get("password", UNSET),
            settings=b.get("settings", UNSET),
        )
        return {"room": updated.to_json()}

    @CORE_ROUTES.route("DELETE", "/api/rooms/{room}", "Delete a room (manage_room)", response=s.DELETED, errors=(403,))
    async def delete_room(self, call: Call, room: str) -> Any:
        return {"deleted": await self.actions.delete_room(call.actor, room)}

    @CORE_ROUTES.route("POST", "/api/rooms/{room}/join", "Join a room (with its password if it has one)",
                 body=s.JOIN, response=s.ROOM_AND_MEMBER, errors=(403, 429))
    async def join(self, call: Call, room: str) -> Any:
        return _room_view(await self.actions.join(call.actor, room, call.body.get("password"),
                                                  source=client_source(call.request)))

    # -- members --------------------------------------------------------------------------------

    @CORE_ROUTES.route("GET", "/api/rooms/{room}/members", "A room's members", response=s.MEMBERS, errors=(403,))
    async def list_members(self, call: Call, room: str) -> Any:
        return {"members": [m.to_json() for m in await self.actions.list_members(call.actor, room)]}

    @CORE_ROUTES.route("PATCH", "/api/rooms/{room}/members/{user}", "Change a member's role or permissions",
                 body=s.MEMBER_PATCH, response=s.ONE_MEMBER, errors=(403,))
    async def update_member(self, call: Call, room: str, user: str) -> Any:
        b = call.body
        member = await self.actions.update_member(
            call.actor, room, user, role=b.get("role", UNSET), permissions=b.get("permissions", UNSET)
        )
        return {"member": member.to_json()}

    @CORE_ROUTES.route("DELETE", "/api/rooms/{room}/members/{user}", "Remove a member (or leave)", response=s.DELETED,
                 errors=(403,))
    async def remove_member(self, call: Call, room: str, user: str) -> Any:
        return {"deleted": await self.actions.remove_member(call.actor, room, user)}

    # -- media ----------------------------------------------------------------------------------

    @CORE_ROUTES.route("GET", "/api/rooms/{room}/media", "The playlist, in order", response=s.MEDIA_LIST,
                 errors=(403,))
    async def list_media(self, call: Call, room: str) -> Any:
        return {"media": [m.to_json() for m in await self.actions.list_media(call.actor, room)]}

    @CORE_ROUTES.route("POST", "/api/rooms/{room}/media", "Add a media item (manage_media)", body=s.MEDIA_CREATE,
                 response=s.ONE_MEDIA, status=201, errors=(403,))
    async def add_media(self, call: Call, room: str) -> Any:
        b = call.body
        item = await self.actions.add_media(
            call.actor, room, url=b.get("url", ""), title=b.get("title"), provider=b["provider"],
            provider_data=b["provider_data"], headers=b["headers"], subtitles=_subtitles(b["subtitles"]),
            duration=b.get("duration"),
        )
        return {"media": item.to_json()}

    @CORE_ROUTES.route("PUT", "/api/rooms/{room}/media/order", "Reorder the playlist (manage_media)",
                 body=s.MEDIA_ORDER, response=s.MEDIA_LIST, errors=(403,))
    async def reorder_media(self, call: Call, room: str) -> Any:
        items = await self.actions.reorder_media(call.actor, room, call.body["order"])
        return {"media": [m.to_json() for m in items]}

    @CORE_ROUTES.route("GET", "/api/rooms/{room}/media/{media}", "A media item", response=s.ONE_MEDIA, errors=(403,))
    async def get_media(self, call: Call, room: str, media: str) -> Any:
        return {"media": (await self.actions.get_media(call.actor, room, media)).to_json()}

    @CORE_ROUTES.route("PATCH", "/api/rooms/{room}/media/{media}", "Change a media item (manage_media)",
                 body=s.MEDIA_PATCH, response=s.ONE_MEDIA, errors=(403,))
    async def update_media(self, call: Call, room: str, media: str) -> Any:
        b = call.body
        item = await self.actions.update_media(
            call.actor, room, media, title=b.get("title", UNSET), url=b.get("url", UNSET),
            headers=b.get("headers", UNSET),
            subtitles=_subtitles(b["subtitles"]) if "subtitles" in b else UNSET,
            duration=b.get("duration", UNSET),
        )
        return {"media": item.to_json()}

    @CORE_ROUTES.route("DELETE", "/api/rooms/{room}/media/{media}", "Remove a media item (manage_media)",
                 response=s.DELETED, errors=(403,),
                 description="If the item was playing, the playback state is cleared (a new version).")
    async def delete_media(self, call: Call, room: str, media: str) -> Any:
        return {"deleted": await self.actions.delete_media(call.actor, room, media)}

    @CORE_ROUTES.route(
        "GET", "/api/rooms/{room}/media/{media}/playback", "How this client can play a media item",
        response=s.PLAYBACK_RESULT, errors=(403, 503),
        description="Every way to play the item that fits the client profile, best first; an empty "
                    "list when none fits. With no profile, every mode is listed.",
        query=(
            QueryParam("modes", "comma-separated modes the client accepts", "direct,proxy"),
            QueryParam("formats", "comma-separated formats the client can play", "mp4,hls"),
            QueryParam("headers", "1 if the client can send request headers, 0 if not", "0"),
        ),
    )
    async def playback(self, call: Call, room: str, media: str) -> Any:
        profile = ClientProfile.from_query(call.request.args)
        return (await self.actions.playback_result(call.actor, room, media, profile)).to_json()

    # -- playback state -------------------------------------------------------------------------

    @CORE_ROUTES.route("GET", "/api/rooms/{room}/playback-state", "The room's playback state",
                 response=s.PLAYBACK_STATE, errors=(403,))
    async def get_playback_state(self, call: Call, room: str) -> Any:
        return (await self.actions.get_playback_state(call.actor, room)).to_json()

    @CORE_ROUTES.route("PATCH", "/api/rooms/{room}/playback-state", "Play, pause, seek, change rate or media",
                 body=s.PLAYBACK_UPDATE, response=s.PLAYBACK_STATE, errors=(403, 409),
                 description="Names the version it is based on; a stale version answers 409 stale_version "
                             "with the current state in detail.")
    async def update_playback_state(self, call: Call, room: str) -> Any:
        update = parse_update(call.body)
        return (await self.actions.update_playback(call.actor, room, update)).to_json()

    # -- failures: the one place they become answers --------------------------------------------

    def domain_error(self, request: IRequest, failure: Failure) -> bytes:
        return render_domain_error(request, failure.value)

    def routing_error(self, request: IRequest, failure: Failure) -> bytes:
        error = failure.value
        path = request.path.decode("utf-8", "replace")[:200]
        method = request.method.decode("latin-1")[:16]
        if isinstance(error, MethodNotAllowed):
            allowed = sorted(error.valid_methods or ())
            request.setHeader(b"Allow", ", ".join(allowed).encode("ascii"))
            return write_error(request, "method_not_allowed", f"{method} is not allowed on {path}; "
                               f"allowed: {', '.join(allowed)}")
        if isinstance(error, RouteNotFound):
            return write_error(request, "not_found", f"no such route: {method} {path}")
        return write_error(request, "bad_request", f"the request could not be routed: {error.description}")

    def unexpected(self, request: IRequest, failure: Failure) -> bytes:
        self.log.failure("unhandled error answering {method} {path}", failure,
                         method=request.method, path=request.path)
        return write_error(request, "internal", "the server failed to answer; the error is logged")



class DirectRoutes:
    """Routes matched by path segments alone (module docstring, "Direct routes"): ``match``
    finds the handler and its ``{param}`` values for a request's method and path segments."""

    def __init__(self, routes: Any) -> None:
        """``routes``: ``(path template, methods, handler)``; the handler takes ``(request, **params)``."""
        self._by_length: dict[int, list[tuple[tuple[bytes | str, ...], frozenset[bytes], Handler]]] = {}
        for path, methods, handler in routes:
            pattern = tuple(segment[1:-1] if segment.startswith("{") and segment.endswith("}")
                            else segment.encode("utf-8") for segment in path.split("/")[1:])
            allowed = frozenset(method.encode("ascii") for method in methods)
            self._by_length.setdefault(len(pattern), []).append((pattern, allowed, handler))

    def __bool__(self) -> bool:
        return bool(self._by_length)

    def match(self, method: bytes, segments: Sequence[bytes]) -> tuple[Handler, dict[str, str]] | None:
        """The handler and its parameters, or None: Klein is to answer this request."""
        for pattern, allowed, handler in self._by_length.get(len(segments), ()):
            params: dict[str, str] = {}
            for want, got in zip(pattern, segments, strict=True):
                if isinstance(want, str):
                    if not got or b"/" in got:  # empty, or an escaped "/": Klein's answer, not ours
                        break
                    try:
                        params[want] = got.decode("utf-8")
                    except UnicodeDecodeError:
                        break
                elif want != got:
                    break
            else:
                return (handler, params) if method in allowed else None
        return None


class APIResource(resource.Resource):
    """The API's resource: a request a direct route takes is run here, any other is Klein's."""

    isLeaf = True

    def __init__(self, api: SynctvAPI, klein: resource.IResource) -> None:
        super().__init__()
        self.api = api
        self.klein = klein

    def render(self, request: IRequest) -> Any:
        found = self.api.direct.match(request.method, request.postpath) if self.api.direct else None
        if found is None:
            return self.klein.render(request)
        handler, params = found
        gone: list[object] = []
        request.notifyFinish().addBoth(gone.append)
        d: Deferred[Any] = Deferred.fromCoroutine(handler(request, **params))
        request.notifyFinish().addErrback(lambda _: d.cancel())

        def answer(result: Any) -> None:
            if gone:
                return
            if isinstance(result, bytes):
                request.write(result)
            request.finish()

        def failed(failure: Failure) -> None:
            if gone:  # the client went away: nobody to answer
                if not failure.check(CancelledError):
                    self.api.log.failure("after the client went away, {method} {path} failed", failure,
                                         method=request.method, path=request.path)
                return
            if failure.check(DomainError):
                body = self.api.domain_error(request, failure)
            else:
                body = self.api.unexpected(request, failure)
            answer(body)

        d.addCallbacks(answer, failed)
        d.addErrback(lambda failure: self.api.log.failure("writing the answer to {path} failed", failure,
                                                          path=request.path))
        return server.NOT_DONE_YET


def _bound(handler: Handler, api: SynctvAPI) -> Handler:
    """``handler(api, request, **params)`` as Klein calls it: ``(request, **params)``."""

    @functools.wraps(handler)
    async def bound(request: IRequest, **params: str) -> Any:
        return await handler(api, request, **params)

    return bound
