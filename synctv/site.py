"""The one twisted.web Site: the Klein API, the WebSocket slot and the web/ files on one port.

Dispatch by the first path segment (``SiteRoot``):

- ``/api/...``, ``/healthz``, ``/metrics``, ``/room/...``, ``/display/...``, the triggers -> the
  Klein resource of ``SynctvAPI`` (it sees the whole path, so its routes are written as
  ``/api/rooms/<room>``);
- ``/ws/...`` -> ``SynctvSite.ws_resource``, the realtime layer's WebSocket resource given to
  ``build_site(ws=...)`` (it sees ``rooms/{room}`` as its postpath); without one Klein answers a
  JSON 404 (``mount_ws`` adds one to a site built without it: test worlds that need no socket);
- anything else -> static files from ``web_dir`` (``index.html`` for directories, no listings).

Request bodies are capped (``max_body_bytes``, 1 MiB) without buffering and without reading past
the cap: a ``Content-Length`` over it is answered 413 as soon as the headers are in, a chunked
body the moment it passes it; the rest is never read, and the connection is closed
(``SynctvRequest.refuse_body_now``). The Site counts requests in flight
so shutdown can wait for them (``wait_idle``), feeds the HTTP metrics, and writes the access log
where ``[server] access_log`` says (``synctv.access_log``: secret query parameters cut short).
"""

from __future__ import annotations

import io
import pathlib
import time
from collections.abc import Sequence
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime, ISSLTransport
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import http, pages, resource, server, static
from twisted.web.iweb import IRequest

from synctv.access_log import OFF, SERVER_LOG, AccessLogFile, access_line
from synctv.actions import Actions
from synctv.api import account_routes, display_routes, live_routes, node_routes, page_routes, proxy_routes
from synctv.api.app import CORE_ROUTES, RouteTable, SynctvAPI
from synctv.api.errors import JSON_CONTENT_TYPE, encode_json, error_body, status_for, write_error
from synctv.api.metrics import HttpMetrics

DEFAULT_MAX_BODY_BYTES = 1 << 20
BODY_LINGER_S = 2.0  # after an early 413, how long the socket stays (write side shut, not read)
#: Every route a synctv server answers, by subsystem (each module declares its own table).
ROUTE_TABLES: tuple[RouteTable, ...] = (CORE_ROUTES, live_routes.ROUTES, proxy_routes.ROUTES, display_routes.ROUTES,
                                        account_routes.ROUTES, page_routes.ROUTES, node_routes.ROUTES)
KLEIN_SEGMENTS = frozenset({b"api", b"healthz", b"metrics", b"trigger", b"trigger_by_name", b"display", b"room"})
KLEIN_PATHS = frozenset({(b"admin", b"idle-image")})  # Klein routes inside a static folder (web/admin/)


class StaticFiles(static.File):
    """web/ files: ``index.html`` for a directory, no directory listings, and types for what
    the pages load that the system's mime table may lack (source maps, modules)."""

    contentTypes = {**static.File.contentTypes, ".map": "application/json", ".mjs": "text/javascript",
                    ".js": "text/javascript", ".webmanifest": "application/manifest+json"}
    childNotFound = pages.notFound("No Such Resource", "File not found.")
    forbidden = pages.forbidden("Forbidden", "Access denied.")

    def directoryListing(self) -> resource.Resource:
        return self.childNotFound


_request_log = Logger()


class _JSONError(resource.Resource):
    isLeaf = True

    def __init__(self, code: str, message: str) -> None:
        super().__init__()
        self._code = code
        self._message = message

    def render(self, request: IRequest) -> bytes:
        return write_error(request, self._code, self._message)


class SiteRoot(resource.Resource):
    """Hands each request to Klein, the WebSocket resource or the static files."""

    def __init__(self, api: resource.IResource, static_root: resource.IResource,
                 ws: resource.IResource | None = None) -> None:
        super().__init__()
        self.api = api
        self.static = static_root
        self.ws_resource = ws

    def getChildWithDefault(self, name: bytes, request: IRequest) -> resource.IResource:
        for segment in (name, *request.postpath):
            try:
                segment.decode("utf-8")
            except UnicodeDecodeError:
                return _JSONError("bad_request", "the path is not valid UTF-8")
        if (name in KLEIN_SEGMENTS or (name, *request.postpath) in KLEIN_PATHS
                or (name == b"ws" and self.ws_resource is None)):
            request.synctv_area = "api"
            # Klein routes on the whole path: give the segment back
            request.postpath.insert(0, request.prepath.pop())
            return self.api
        if name == b"ws":
            assert self.ws_resource is not None
            request.synctv_area = "ws"
            return self.ws_resource
        request.synctv_area = "static"
        return self.static.getChildWithDefault(name, request)

    def render(self, request: IRequest) -> Any:
        request.synctv_area = "static"
        return self.static.render(request)


class SynctvRequest(server.Request):
    """A request that refuses an oversized body before reading it, and reports its end.

    Past ``max_body_bytes`` (announced by ``Content-Length``, or reached by a chunked body) the
    request is answered at once by :meth:`refuse_body_now` and the rest of the body is never
    read; see the module docstring. ``synctv.api.uploads.UploadRequest`` takes the bodies of the
    upload routes over before the first byte is read and judges them itself; any subclass may
    call :meth:`refuse_body_now`, and one that only sets ``body_too_large`` while it keeps
    reading gets the 413 from ``process`` once the body ended.
    """

    body_too_large = False
    body_bytes = 0
    started: float | None = None
    answered_early = False  # the 413 went out from gotLength/handleContentChunk
    _linger: IDelayedCall | None = None

    def _limit(self) -> int:
        site = getattr(self.channel, "site", None)
        return getattr(site, "max_body_bytes", DEFAULT_MAX_BODY_BYTES)

    def gotLength(self, length: int | None) -> None:
        self.body_bytes = 0
        self.content = io.BytesIO()
        if length is not None and length > self._limit():
            self.refuse_body_now()

    def handleContentChunk(self, data: bytes) -> None:
        self.body_bytes += len(data)
        if self.body_too_large:
            return
        if self.body_bytes > self._limit():
            self.refuse_body_now()
            return
        self.content.write(data)

    def refuse_body_now(self) -> None:
        """Answer 413 now, read nothing more of this connection, and close it.

        The answer is written straight to the transport (the request line is not even handed to
        the Request yet), reading stops (TCP back-pressure holds the client), and the write side
        is shut once the answer is out, so the client reads the 413 and an end of stream. The
        socket is dropped ``BODY_LINGER_S`` later: closing it at once, with unread bytes queued,
        would reset the connection and could destroy the answer before the client read it. An
        ``Expect: 100-continue`` is forgotten, so no "100 Continue" follows the 413.
        """
        self.body_too_large = True
        self.content = io.BytesIO()  # drop what was kept
        channel, transport = self.channel, getattr(self.channel, "transport", None)
        if self.answered_early or not isinstance(channel, http.HTTPChannel) or transport is None:
            return  # not HTTP/1.x: process() answers once the body has ended
        self.answered_early = True
        self.requestHeaders.removeHeader(b"expect")
        channel.persistent = False
        transport.pauseProducing()
        limit = self._limit()
        transport.write(_payload_too_large(limit))
        if ISSLTransport.providedBy(transport):
            transport.loseConnection()  # TLS: close_notify, then close
        else:
            transport.loseWriteConnection()
        self._linger = channel.callLater(BODY_LINGER_S, transport.abortConnection)
        peer = getattr(transport.getPeer(), "host", "?")
        _request_log.info("refused a request body over {limit} bytes from {peer} before reading it",
                          limit=limit, peer=peer)
        site = getattr(channel, "site", None)
        if isinstance(site, SynctvSite):
            site.metrics.observe("other", "too_large", 413, 0.0)  # the method is not parsed yet

    def process(self) -> None:
        if self.answered_early:
            return  # the body ended within the read that passed the limit; the 413 is out
        site = self.channel.site
        self.started = time.monotonic()
        if isinstance(site, SynctvSite):
            site.request_started(self)
        if self.body_too_large:
            self._refuse_body()
            return
        super().process()

    def _refuse_body(self) -> None:
        self.site = self.channel.site
        self.setHeader(b"Connection", b"close")
        self.channel.persistent = False
        limit = self._limit()
        body = write_error(self, "payload_too_large", f"the request body is over the limit of {limit} bytes")
        self.setHeader(b"Content-Length", str(len(body)).encode("ascii"))
        self.write(body)
        self.finish()

    def connectionLost(self, reason: Failure) -> None:
        if self._linger is not None and self._linger.active():
            self._linger.cancel()
        super().connectionLost(reason)


def _payload_too_large(limit: int) -> bytes:
    """The whole 413 answer of :meth:`SynctvRequest.refuse_body_now`, as bytes on the wire."""
    status = status_for("payload_too_large")
    body = encode_json(error_body("payload_too_large", f"the request body is over the limit of {limit} bytes"))
    head = [
        b"HTTP/1.1 %d %s" % (status, http.RESPONSES[status]),
        b"Date: " + http.datetimeToString(),
        b"Content-Type: " + JSON_CONTENT_TYPE,
        b"Content-Length: %d" % len(body),
        b"Cache-Control: no-store",
        b"Connection: close",
    ]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


class SiteService(Service):
    """The Site's life as a child of the server's services: it starts answering when started,
    and when stopped waits for the requests in flight to finish, for up to ``drain_s``."""

    def __init__(self, site: SynctvSite, reactor: IReactorTime, drain_s: float) -> None:
        self.site = site
        self.reactor = reactor
        self.drain_s = drain_s

    def startService(self) -> None:
        super().startService()
        self.site.doStart()
        if isinstance(self.site.access_log, AccessLogFile):
            self.site.access_log.start()

    def stopService(self) -> Deferred[bool]:
        super().stopService()
        idle = self.site.wait_idle(self.reactor, self.drain_s)

        def close_log(result: bool) -> bool:
            if isinstance(self.site.access_log, AccessLogFile):
                self.site.access_log.close()
            return result

        return idle.addBoth(close_log)


class SynctvSite(server.Site):
    """The Site of ``build_site``; see the module docstring."""

    requestFactory = SynctvRequest
    _site_log = Logger()

    def __init__(
        self, root: SiteRoot, api: SynctvAPI, *, max_body_bytes: int, reactor: Any = None, uploads: Any = None,
        access_log: str | AccessLogFile = SERVER_LOG,
    ) -> None:
        """``uploads``: the upload routes' policy (``synctv.api.uploads.UploadPolicy``, from the displays
        subsystem); with one, requests are ``UploadRequest``s that spool those bodies. ``access_log``:
        ``"log"``, ``"off"`` or an ``AccessLogFile`` (``synctv.access_log``)."""
        # bodies are JSON, never forms: twisted must not parse them into request.args
        kwargs: dict[str, Any] = {"logFormatter": access_line, "parsePOSTFormSubmission": False}
        if reactor is not None:
            kwargs["reactor"] = reactor
        super().__init__(root, **kwargs)
        self.root = root
        self.api = api
        self.metrics = api.metrics
        self.max_body_bytes = max_body_bytes
        self.uploads = uploads
        if uploads is not None:
            from synctv.api.uploads import UploadRequest  # not at import time: uploads imports this module

            self.requestFactory = UploadRequest
        self.active_requests: set[SynctvRequest] = set()
        self._idle_waiters: list[Deferred[bool]] = []
        self.access_log = access_log

    def log(self, request: IRequest) -> None:
        """The access line of a finished request (``twisted.web.http.HTTPFactory.log``): see
        ``synctv.access_log``."""
        sink = self.access_log
        if sink == SERVER_LOG:
            super().log(request)
        elif sink != OFF:
            sink.write(request)

    # -- the WebSocket slot ---------------------------------------------------------------------

    @property
    def ws_resource(self) -> resource.IResource | None:
        return self.root.ws_resource

    def mount_ws(self, ws: resource.IResource) -> None:
        """Serve ``/ws/...`` from ``ws`` (the realtime layer's WebSocket resource)."""
        self.root.ws_resource = ws

    # -- requests in flight ---------------------------------------------------------------------

    def request_started(self, request: SynctvRequest) -> None:
        self.active_requests.add(request)
        self.metrics.in_flight.inc()
        request.notifyFinish().addBoth(self._request_ended, request)

    def _request_ended(self, result: Failure | None, request: SynctvRequest) -> None:
        self.active_requests.discard(request)
        self.metrics.in_flight.dec()
        route = getattr(request, "synctv_route", None)
        if route is None:
            area = "too_large" if request.body_too_large else getattr(request, "synctv_area", "unmatched")
            route = "unmatched" if area == "api" else area
        elapsed = time.monotonic() - request.started if request.started is not None else 0.0
        status = request.code if result is None else 499  # 499: the client went away first
        self.metrics.observe(request.method, route, status, elapsed)
        if not self.active_requests:
            waiters, self._idle_waiters = self._idle_waiters, []
            for waiter in waiters:
                waiter.callback(True)

    def wait_idle(self, reactor: IReactorTime, timeout_s: float) -> Deferred[bool]:
        """Fire with True once no request is in flight, or with False after ``timeout_s``."""
        if not self.active_requests:
            return succeed(True)
        waiter: Deferred[bool] = Deferred()
        self._idle_waiters.append(waiter)

        def give_up() -> None:
            if waiter in self._idle_waiters:
                self._idle_waiters.remove(waiter)
                self._site_log.warn("{count} requests still in flight after {timeout_s}s",
                              count=len(self.active_requests), timeout_s=timeout_s)
                waiter.callback(False)

        call = reactor.callLater(timeout_s, give_up)
        waiter.addBoth(lambda r: (call.cancel() if call.active() else None, r)[1])
        return waiter


VENDOR_PACKAGES = ("hls.js", "mpegts.js")  # served as /vendor/<name>/ (files: build_web.PLAYERS)


def vendor_resource(web_dir: pathlib.Path) -> resource.Resource:
    """``/vendor/hls.js/...`` and ``/vendor/mpegts.js/...``: each player's ``dist`` folder from
    ``npm ci`` (``web_dir/node_modules/<name>/dist``, in a checkout) when there, else the files
    the build put in ``web_dir/vendor/<name>`` (an installed wheel, or an editable install without
    npm). See build_web.py."""
    vendor = resource.Resource()
    for name in VENDOR_PACKAGES:
        npm = web_dir / "node_modules" / name / "dist"
        vendor.putChild(name.encode("ascii"), StaticFiles(str(npm if npm.is_dir() else web_dir / "vendor" / name)))
    return vendor


def build_site(
    actions: Actions, *, web_dir: pathlib.Path, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    reactor: Any = None, live: Any = None, proxy: Any = None, displays: Any = None,
    metrics: HttpMetrics | None = None, routes: Sequence[RouteTable] = ROUTE_TABLES, accounts: Any = None,
    online: page_routes.Online = page_routes.nobody_online, ws: resource.IResource | None = None,
    access_log: str | pathlib.Path = SERVER_LOG,
) -> SynctvSite:
    """The Site serving the API (``routes``, with the subsystems they use: ``live`` a LiveHub,
    ``proxy`` a MediaProxy, ``displays`` a DisplayRuntime, ``accounts`` the ProviderAccounts; one
    not given answers 503), the WebSocket endpoint ``ws`` at ``/ws/``, and ``web_dir`` (with the
    room page; ``online`` says who is in a room for the home page: ``ConnectionRuntime.online``).
    ``access_log``: ``"log"``, ``"off"`` or the path of a file (``synctv.access_log``)."""
    api = SynctvAPI(actions, routes=routes, metrics=metrics, reactor=reactor, live=live, proxy=proxy,
                    displays=displays, accounts=accounts, pages=page_routes.RoomPages(web_dir, online))
    static_root = StaticFiles(str(web_dir))
    static_root.putChild(b"vendor", vendor_resource(web_dir))
    root = SiteRoot(api.resource(), static_root, ws)
    uploads = displays.uploads if displays is not None else None
    if access_log in (SERVER_LOG, OFF):
        sink: str | AccessLogFile = str(access_log)
    else:
        if reactor is None:
            from twisted.internet import reactor
        sink = AccessLogFile(pathlib.Path(access_log), reactor)
    return SynctvSite(root, api, max_body_bytes=max_body_bytes, reactor=reactor, uploads=uploads, access_log=sink)
