"""Direct routes (``synctv.api.app.DirectRoutes``, ``APIResource``): matched by path segments and
run without Klein, answering as a Klein route would -- the result written, domain errors as the
JSON envelope, a bug as a logged 500, the handler cancelled when the client goes away -- and
leaving every request they do not take in every respect (another method, an escaped ``/``) to
Klein, whose 405 and 404 stay what they were."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer
from twisted.internet.threads import deferToThread
from twisted.logger import globalLogPublisher

from synctv.api.app import Call, DirectRoutes, RouteTable
from synctv.api.openapi import RouteDoc
from synctv.core.errors import NotFound
from synctv.site import build_site
from tests.api.api_support import WEB_DIR, Served
from tests.proxy._support import until


def _noop(request: Any, **params: str) -> Any:
    return params


# -- matching ---------------------------------------------------------------------------------

def test_a_template_matches_its_segments_and_gives_the_parameters():
    routes = DirectRoutes([("/api/rooms/{room}/media/{media}/proxy", ("GET", "HEAD"), _noop),
                           ("/api/rooms/{room}/media/{media}/proxy/{kind}/{index}", ("GET",), _noop)])
    handler, params = routes.match(b"GET", [b"api", b"rooms", b"r1", b"media", b"m1", b"proxy"])
    assert handler is _noop and params == {"room": "r1", "media": "m1"}
    assert routes.match(b"GET", [b"api", b"rooms", b"r", b"media", b"m", b"proxy", b"segment", b"3.ts"])[1] == {
        "room": "r", "media": "m", "kind": "segment", "index": "3.ts"}
    assert routes.match(b"HEAD", [b"api", b"rooms", b"r", b"media", b"m", b"proxy"]) is not None
    assert routes.match(b"GET", [b"api", b"rooms", "é".encode(), b"media", b"m", b"proxy"])[1]["room"] == "é"


@pytest.mark.parametrize(("method", "segments"), [
    (b"POST", [b"api", b"rooms", b"r", b"media", b"m", b"proxy"]),  # a method it does not take
    (b"GET", [b"api", b"rooms", b"r", b"media", b"m", b"other"]),  # another literal
    (b"GET", [b"api", b"rooms", b"r", b"media", b"m"]),  # shorter
    (b"GET", [b"api", b"rooms", b"r", b"media", b"m", b"proxy", b""]),  # a trailing slash
    (b"GET", [b"api", b"rooms", b"", b"media", b"m", b"proxy"]),  # an empty parameter
    (b"GET", [b"api", b"rooms", b"a/b", b"media", b"m", b"proxy"]),  # %2F unquoted into a segment
    (b"GET", [b"api", b"rooms", b"\xff", b"media", b"m", b"proxy"]),  # not UTF-8
])
def test_anything_else_is_left_to_klein(method, segments):
    routes = DirectRoutes([("/api/rooms/{room}/media/{media}/proxy", ("GET", "HEAD"), _noop)])
    assert routes.match(method, segments) is None
    assert not DirectRoutes([])


# -- answering --------------------------------------------------------------------------------

class Things:
    """A table of direct routes and one Klein route, and what their handlers saw."""

    def __init__(self) -> None:
        self.table = RouteTable("things")
        self.cancelled: list[str] = []
        self.waiting: list[str] = []
        table = self.table

        def direct(path: str, name: str) -> Any:
            def decorate(f: Any) -> Any:
                f.__name__ = name
                table.add(RouteDoc(method="GET", path=path, summary=name, auth=False), f,
                          methods=("GET", "HEAD"), direct=True)
                return f
            return decorate

        @direct("/api/things/{thing}/raw", "raw")
        async def raw(api: Any, request: Any, thing: str) -> bytes:
            request.setHeader(b"Content-Type", b"text/plain")
            request.synctv_route = "/api/things/{thing}/raw"
            return f"thing {thing}".encode()

        @direct("/api/things/{thing}/missing", "missing")
        async def missing(api: Any, request: Any, thing: str) -> None:
            raise NotFound(f"no thing {thing}")

        @direct("/api/things/{thing}/bug", "bug")
        async def bug(api: Any, request: Any, thing: str) -> None:
            raise RuntimeError("simulated bug in a direct route")

        @direct("/api/things/{thing}/slow", "slow")
        async def slow(api: Any, request: Any, thing: str) -> None:
            self.waiting.append(thing)
            try:
                await defer.Deferred()
            except defer.CancelledError:
                self.cancelled.append(thing)
                raise

        @table.route("GET", "/api/things", "Klein's own", auth=False)
        async def listing(api: Any, call: Call) -> Any:
            return {"things": ["a"]}


@pytest.fixture
def things(tmp_path: Path):
    made = Things()
    served = Served(build_site(object(), web_dir=WEB_DIR, routes=(made.table,)))
    made.served = served
    yield made
    pytest_twisted.blockon(defer.Deferred.fromCoroutine(served.stop()))


@pytest_twisted.ensureDeferred
async def test_a_direct_route_answers_its_bytes_and_head_its_headers(things):
    client = things.served.client
    r = await client.get("/api/things/t%C3%A9/raw")
    assert (r.status, r.raw, r.header("Content-Type")) == (200, "thing té".encode(), "text/plain")
    r = await client.request("HEAD", "/api/things/x/raw")
    assert (r.status, r.raw) == (200, b"")
    r = await client.get("/api/things")  # the table's Klein route beside it
    assert (r.status, r.json) == (200, {"things": ["a"]})
    metrics = things.served.site.metrics.exposition().decode()
    assert 'route="/api/things/{thing}/raw"' in metrics


@pytest_twisted.ensureDeferred
async def test_failures_of_a_direct_route_are_the_usual_envelope(things):
    client = things.served.client
    r = await client.get("/api/things/x/missing")
    assert (r.status, r.error()["code"], r.error()["message"]) == (404, "not_found", "no thing x")
    events: list = []
    globalLogPublisher.addObserver(events.append)
    try:
        r = await client.get("/api/things/x/bug")
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert (r.status, r.error()["code"]) == (500, "internal")
    assert "simulated bug" not in r.raw.decode()
    assert any(e["log_failure"].check(RuntimeError) for e in events if "log_failure" in e)


@pytest_twisted.ensureDeferred
async def test_what_a_direct_route_does_not_take_gets_kleins_answer(things):
    client = things.served.client
    r = await client.post("/api/things/x/raw", {})
    assert (r.status, r.error()["code"]) == (405, "method_not_allowed")
    assert set(r.header("Allow").split(", ")) == {"GET", "HEAD"}
    r = await client.get("/api/things/a%2Fb/raw")
    assert (r.status, r.error()["code"]) == (404, "not_found")
    r = await client.get("/api/things/x/raw/")
    assert (r.status, r.error()["code"]) == (404, "not_found")  # Klein's answer to a trailing slash, as before


@pytest_twisted.ensureDeferred
async def test_a_client_that_goes_away_cancels_the_direct_route(things):
    port = things.served.port.getHost().port

    def ask_and_leave() -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET /api/things/gone/slow HTTP/1.1\r\nHost: x\r\n\r\n")
            deadline = 200
            while not things.waiting and deadline:
                time.sleep(0.01)
                deadline -= 1

    await deferToThread(ask_and_leave)
    await until(lambda: things.cancelled == ["gone"])
    assert things.served.site.active_requests == set()
