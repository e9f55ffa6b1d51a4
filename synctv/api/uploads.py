"""Large request bodies (video and image uploads) streamed to a file as they arrive.

The Site keeps JSON bodies in memory under a 1 MiB cap (``synctv.site.SynctvRequest``). For the
few upload routes an ``UploadPolicy`` names, ``UploadRequest`` instead writes the body to a spool
file (``synctv.api.spool.Spool``) while it arrives, under that route's own size limit. Writes run in a thread, in
order, a megabyte at a time; while one is running and another megabyte has arrived, the
connection stops reading (TCP back-pressure), so memory stays bounded whatever the upload's size.
The route handler runs once every byte is on disk: it finds the ``Spool`` as ``request.content``
and takes the file with ``claim()``; an unclaimed spool file is deleted when the request ends or
the connection is lost.

Who may upload is decided before the body is read. When the headers are in (``gotLength``) the
connection stops reading; then, without the database, the bearer token's signature and expiry,
the Content-Type and the declared length (route limit) are checked and the user's upload slot and
the declared bytes are reserved in the ``UploadBudget`` (``[displays] max_uploads_per_user``,
``max_spool_bytes``); then ``authorize`` checks the token's generation (revocation) and the role
in the store. Only then is a spool file opened and reading resumed (with ``Expect:
100-continue``, only then is ``100 Continue`` sent). The bytes that came in the same socket read
as the headers (at most one read, 64 KiB) wait in memory meanwhile; nothing is written.

A refusal (401, 403, 413 over the route's limit, 429 over a budget, 503) is answered at once,
without waiting for the body, with ``Connection: close``; the upload's slot and bytes are freed
and its spool file, if any, removed. To let a client that is still sending read the answer, the
connection is half-closed and what still arrives is read and dropped for at most ``LINGER_S`` or
``LINGER_BYTES`` (HTTP's "lingering close"), then closed; with ``Expect: 100-continue`` nothing of
the body was sent at all. A chunked body is cut as soon as it passes the limit or the budget.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime, ISSLTransport, ITCPTransport
from twisted.internet.threads import deferToThread
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http_headers import Headers

from synctv.api.errors import write_error
from synctv.api.spool import FLUSH_BYTES, Spool
from synctv.compat.twisted import request_line
from synctv.core.errors import (
    BadRequest,
    DomainError,
    PayloadTooLarge,
    RateLimited,
    Unauthorized,
    Unavailable,
)
from synctv.site import SynctvRequest, SynctvSite

__all__ = ["FLUSH_BYTES", "Spool", "UploadBudget", "UploadPolicy", "UploadRequest", "UploadRoute", "UploadTicket"]

LINGER_S = 2.0  # after a refusal, what the client still sends is read and dropped this long at most
LINGER_BYTES = 1 << 20  # ... and at most this much
DEFAULT_MAX_UPLOADS_PER_USER = 2
DEFAULT_MAX_SPOOL_BYTES = 8 << 30
log = Logger()


@attrs.frozen
class UploadRoute:
    """``method path`` takes a raw body of at most ``limit`` bytes; ``content_types`` are accepted
    Content-Type prefixes (a request without Content-Type is accepted too; files are checked later)."""

    method: bytes
    path: bytes
    limit: int
    content_types: tuple[str, ...] = ()


class UploadTicket:
    """One admitted upload's share of the ``UploadBudget``: its user's slot and its reserved bytes."""

    def __init__(self, budget: UploadBudget, user_id: str, reserved: int) -> None:
        self.budget = budget
        self.user_id = user_id
        self.reserved = reserved
        self.released = False

    def grow(self, n: int) -> bool:
        """Reserve ``n`` more bytes (a chunked body as it arrives); False when the spool is full."""
        if self.released:
            return False
        if self.budget.reserved + n > self.budget.max_spool_bytes:
            return False
        self.budget.reserved += n
        self.reserved += n
        return True

    def release(self) -> None:
        """Give the slot and the bytes back; idempotent."""
        if self.released:
            return
        self.released = True
        self.budget.reserved -= self.reserved
        count = self.budget.by_user.get(self.user_id, 0) - 1
        if count > 0:
            self.budget.by_user[self.user_id] = count
        else:
            self.budget.by_user.pop(self.user_id, None)


class UploadBudget:
    """The bounds on uploads in flight on this node: at most ``max_per_user`` per user, and at most
    ``max_spool_bytes`` reserved by all of them (an upload reserves its declared length, a chunked
    one what has arrived). A request holds its ``UploadTicket`` until it ends."""

    def __init__(self, max_per_user: int = DEFAULT_MAX_UPLOADS_PER_USER,
                 max_spool_bytes: int = DEFAULT_MAX_SPOOL_BYTES) -> None:
        self.max_per_user = max_per_user
        self.max_spool_bytes = max_spool_bytes
        self.by_user: dict[str, int] = {}
        self.reserved = 0

    def admit(self, user_id: str, declared: int | None) -> UploadTicket:
        """A ticket for one more upload of ``user_id``; PayloadTooLarge or RateLimited otherwise."""
        if declared is not None and declared > self.max_spool_bytes:
            raise PayloadTooLarge(f"the upload ({declared} bytes) is larger than this server's upload space "
                                  f"([displays] max_spool_bytes, {self.max_spool_bytes} bytes)")
        if self.by_user.get(user_id, 0) >= self.max_per_user:
            raise RateLimited(f"you have {self.max_per_user} uploads in progress, the most at once "
                              "([displays] max_uploads_per_user); send this one when one of them has finished",
                              detail={"limit": "max_uploads_per_user", "max": self.max_per_user})
        need = declared or 0
        if self.reserved + need > self.max_spool_bytes:
            raise RateLimited("the server's upload space is taken by uploads in progress ([displays] "
                              "max_spool_bytes); try again when they have finished",
                              detail={"limit": "max_spool_bytes", "max": self.max_spool_bytes})
        self.by_user[user_id] = self.by_user.get(user_id, 0) + 1
        self.reserved += need
        return UploadTicket(self, user_id, need)

    def in_flight(self, user_id: str) -> int:
        return self.by_user.get(user_id, 0)


class UploadPolicy:
    """Which requests are uploads, and who may send them (see the module docstring).

    ``check_token(token)`` checks a bearer token's signature and expiry without I/O and returns its
    claims (with ``user_id``); ``authorize(token)`` fires once the store agrees (generation, role)
    or fails with a DomainError. ``timer`` paces the lingering close of refused uploads.
    """

    def __init__(
        self, routes: Sequence[UploadRoute], *, spool_path: Callable[[], Path],
        check_token: Callable[[str], Any], authorize: Callable[[str], Deferred[Any]],
        budget: UploadBudget | None = None, timer: IReactorTime | None = None,
        run_in_thread: Callable[..., Deferred[Any]] = deferToThread,
    ) -> None:
        self.routes = {(route.method, route.path): route for route in routes}
        self.spool_path = spool_path
        self.check_token = check_token
        self.authorize = authorize
        self.budget = budget if budget is not None else UploadBudget()
        if timer is None:
            from twisted.internet import reactor as timer
        self.timer: IReactorTime = timer
        self.run_in_thread = run_in_thread

    def route_for(self, method: bytes | None, uri: bytes | None) -> UploadRoute | None:
        if method is None or uri is None:
            return None
        return self.routes.get((method.upper(), uri.split(b"?", 1)[0]))

    def precheck(self, route: UploadRoute, headers: Headers, length: int | None) -> tuple[str, str]:
        """``(user_id, token)`` of an upload worth checking in the store; raises the DomainError to
        answer at once (no token, a bad or expired one, a wrong Content-Type, too large)."""
        values = headers.getRawHeaders(b"authorization") or []
        scheme, _, token = (values[0].decode("latin-1") if values else "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("uploads need 'Authorization: Bearer TOKEN' (POST /api/auth/login)")
        claims = self.check_token(token.strip())
        ctype = ((headers.getRawHeaders(b"content-type") or [b""])[0]).decode("latin-1").strip().lower()
        if ctype and route.content_types and not ctype.startswith(route.content_types):
            accepted = " or ".join(route.content_types)
            raise BadRequest(f"this upload takes {accepted} bodies, not {ctype[:60]}", field="content_type")
        if length is not None and length > route.limit:
            raise PayloadTooLarge(f"the upload ({length} bytes) is over this server's limit of {route.limit} bytes")
        return str(claims.user_id), token.strip()


class UploadRequest(SynctvRequest):
    """``SynctvRequest`` that spools the bodies of the site's upload routes (``site.uploads``),
    judging each upload before its body is read (see the module docstring).

    Phases of an upload: ``checking`` (reading paused while the store is asked), ``spooling``,
    ``refused`` (answered; lingering until the connection closes)."""

    upload: UploadRoute | None = None
    spool: Spool | None = None
    phase = ""
    _ticket: UploadTicket | None = None
    _length: int | None = None
    _expect_continue = False
    _body_complete = False
    _process_wanted = False
    _spool_done = False
    _refusal: DomainError | None = None
    _answer_due = False
    _linger_call: IDelayedCall | None = None
    _lingered = 0
    _lost = False

    def _policy(self) -> UploadPolicy | None:
        return getattr(getattr(self.channel, "site", None), "uploads", None)

    # -- the headers are in: judge the upload -------------------------------------------------------

    def gotLength(self, length: int | None) -> None:
        policy = self._policy()
        route = None
        if policy is not None:
            command, path, _ = request_line(self.channel)
            route = policy.route_for(command, path)
        if route is None:
            super().gotLength(length)
            return
        self.upload = route
        self.synctv_route = route.path.decode("ascii")
        self.body_bytes = 0
        self.content = io.BytesIO()
        self._length = length
        self._held: list[bytes] = []
        self._expect_continue = self._take_expect_continue()
        self.channel.transport.pauseProducing()  # not a byte more until the upload is judged
        try:
            user_id, token = policy.precheck(route, self.requestHeaders, length)
            self._ticket = policy.budget.admit(user_id, length)
        except DomainError as error:
            self._refuse(error)
            return
        ticket = self._ticket
        self.notifyFinish().addBoth(lambda _: ticket.release())
        self.phase = "checking"
        maybeDeferred(policy.authorize, token).addCallbacks(self._authorized, self._not_authorized)

    def _take_expect_continue(self) -> bool:
        """Whether the client waits for ``100 Continue``; twisted.web would send it right after
        ``gotLength``, so the header is taken away and the answer sent once the upload is allowed."""
        expect = self.requestHeaders.getRawHeaders(b"expect") or []
        if not expect or expect[0].strip().lower() != b"100-continue":
            return False
        self.requestHeaders.removeHeader(b"expect")
        return request_line(self.channel)[2] == b"HTTP/1.1"

    def _authorized(self, _: Any) -> None:
        if self.phase != "checking" or self._lost:
            return
        policy = self._policy()
        assert policy is not None
        transport = self.channel.transport
        self.spool = Spool(policy.spool_path(), policy.run_in_thread,
                           transport.pauseProducing, transport.resumeProducing)
        self.content = self.spool
        self.phase = "spooling"
        held, self._held = self._held, []
        for chunk in held:
            self.spool.write(chunk)
        if self._body_complete:
            self.spool.body_complete = True
            if self._process_wanted:
                self.process()
            return
        if self._expect_continue:
            transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if not self.spool.paused:
            transport.resumeProducing()

    def _not_authorized(self, failure: Failure) -> None:
        error = failure.value
        if not isinstance(error, DomainError):
            log.failure("checking an upload's token failed", failure)
            error = Unavailable("the server could not check this upload's token; try again")
        if self.phase == "checking" and not self._lost:
            self._refuse(error)

    # -- the body ---------------------------------------------------------------------------------

    def handleContentChunk(self, data: bytes) -> None:
        if self.upload is None:
            super().handleContentChunk(data)
            return
        self.body_bytes += len(data)
        if self.phase == "refused":
            self._lingered += len(data)
            if self._lingered > LINGER_BYTES and self._linger_call is not None:
                self._linger_call.reset(0)
            return
        if self.body_bytes > self.upload.limit:
            self._refuse(PayloadTooLarge(f"the upload is over this server's limit of {self.upload.limit} bytes"))
            return
        if self._length is None and self._ticket is not None and not self._ticket.grow(len(data)):
            budget = self._ticket.budget
            self._refuse(RateLimited("the server's upload space is taken by uploads in progress ([displays] "
                                     "max_spool_bytes); try again when they have finished",
                                     detail={"limit": "max_spool_bytes", "max": budget.max_spool_bytes}))
            return
        if self.phase == "checking":
            self._held.append(data)
            self.channel.transport.pauseProducing()
            return
        assert self.spool is not None
        self.spool.write(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        self._body_complete = True
        if self.spool is not None:
            self.spool.body_complete = True
        super().requestReceived(command, path, version)

    def process(self) -> None:
        if self.upload is None:
            super().process()
            return
        if self.phase == "refused":
            if self._answer_due:
                self._answer()
            else:
                self._end_linger()
            return
        if self.phase == "checking":
            self._process_wanted = True
            return
        spool = self.spool
        if spool is None or self._spool_done:
            super().process()
            return
        self.notifyFinish().addBoth(lambda _: spool.discard())

        def ready(_: object) -> None:
            self._spool_done = True
            self.process()

        def failed(failure: Failure) -> None:
            error = failure.value
            if not isinstance(error, DomainError):
                error = Unavailable("the upload failed")
            self._refuse(error)

        spool.finish().addCallbacks(ready, failed)

    # -- refusing ---------------------------------------------------------------------------------

    def _drop_spool(self) -> None:
        if self.spool is not None:
            self.spool.discard()
            self.spool = None
        self.content = io.BytesIO()

    def _refuse(self, error: DomainError) -> None:
        """Answer ``error`` now and free what the upload held (see the module docstring)."""
        if self.phase == "refused":
            return
        self.phase = "refused"
        self._held = []
        self._drop_spool()
        if self._ticket is not None:
            self._ticket.release()
        log.info("upload to {route} refused ({code}): {message}", route=self.synctv_route, code=error.code,
                 message=error.message)
        if self._lost:
            return
        self._refusal = error
        if not self._body_complete and self._length == 0:
            self._answer_due = True  # twisted.web calls process() right after gotLength
            return
        self._answer()

    def _answer(self) -> None:
        self._answer_due = False
        error = self._refusal
        assert error is not None
        channel = self.channel
        if not self._body_complete:  # twisted.web has not filled in the request line yet
            method, uri, version = request_line(channel)
            self.method, self.uri, self.clientproto = method or b"", uri or b"", version or b"HTTP/1.1"
            self.path = self.uri.split(b"?", 1)[0]
        site = channel.site
        self.site = site
        self.started = time.monotonic()
        if isinstance(site, SynctvSite):
            site.request_started(self)
        self.setHeader(b"Connection", b"close")
        channel.persistent = False
        body = write_error(self, error.code, error.message, field=error.field, detail=error.detail)
        self.setHeader(b"Content-Length", str(len(body)).encode("ascii"))
        self.write(body)
        if self._body_complete:
            self.finish()
            return
        # The client may still be sending: half-close so it can read the answer, drop what it still
        # sends for a while, then close. Never finish() here: twisted.web is inside its parser.
        transport = channel.transport
        policy = self._policy()
        assert policy is not None
        linger = 0.0
        if ITCPTransport.providedBy(transport) and not ISSLTransport.providedBy(transport):
            transport.loseWriteConnection()
            linger = LINGER_S
        self._linger_call = policy.timer.callLater(linger, self._end_linger)
        transport.resumeProducing()

    def _end_linger(self) -> None:
        if self._linger_call is not None and self._linger_call.active():
            self._linger_call.cancel()
        self._linger_call = None
        if not self.finished and not self._lost:
            self.finish()

    def connectionLost(self, reason: Failure) -> None:
        self._lost = True
        if self._linger_call is not None and self._linger_call.active():
            self._linger_call.cancel()
        self._linger_call = None
        if self.spool is not None:
            self.spool.discard()
        if self._ticket is not None:
            self._ticket.release()
        super().connectionLost(reason)
