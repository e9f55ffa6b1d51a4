"""HTTP plumbing: JSON bodies, routing errors, the body limit over real TCP, keep-alive, health,
metrics, the OpenAPI document against the routes, static files, the WebSocket slot, the access
log and waiting for requests in flight."""

from __future__ import annotations

import http.client
import io
import json
import pathlib
import re

import pytest
import pytest_twisted
import treq
from twisted.internet import task
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.threads import deferToThread
from twisted.logger import formatEvent, globalLogPublisher
from twisted.web import resource, server
from twisted.web.client import FileBodyProducer
from twisted.web.iweb import UNKNOWN_LENGTH, IBodyProducer
from zope.interface import implementer

from synctv.access_log import redact_uri
from synctv.api import schema as s
from synctv.api.app import CORE_ROUTES, SynctvAPI
from synctv.core.clock import ManualClock
from synctv.site import ROUTE_TABLES, build_site
from synctv.store import open_store
from tests.api.api_support import WEB_DIR, Served, make_actions

API_MD = pathlib.Path(__file__).resolve().parents[2] / "docs" / "api.md"


# -- JSON bodies ------------------------------------------------------------------------------

@pytest.mark.parametrize("raw", [
    b"{", b"not json", b"{'name': 'x'}", b'{"name": "x",}', b"\xff\xfe\x00garbage", b'{"name": NaN}',
    b'{"name": Infinity}', b"[" * 100_000, b'{"name": ' + b"1" * 5000 + b"}",
])
@pytest_twisted.ensureDeferred
async def test_invalid_json_is_400(world, raw):
    """Malformed, non-UTF-8, NaN, absurdly nested or absurdly long-number bodies are 400s."""
    r = await world.client.request("POST", "/api/rooms", data=raw, token=world.tokens["alice"],
                                   headers={"Content-Type": "application/json"})
    assert r.status == 400
    assert r.error()["code"] == "bad_request"


@pytest.mark.parametrize("value", [[], "room", 5, None, True, [{"name": "x"}]])
@pytest_twisted.ensureDeferred
async def test_a_body_that_is_not_an_object_is_400(world, value):
    """Valid JSON that is not an object is refused."""
    r = await world.client.request("POST", "/api/rooms", data=json.dumps(value).encode(),
                                   token=world.tokens["alice"])
    assert (r.status, r.error()["code"]) == (400, "bad_request")


@pytest_twisted.ensureDeferred
async def test_content_type_does_not_matter_when_the_body_is_json(world):
    """A JSON body sent as text/plain, as a form type or with no Content-Type is accepted."""
    for n, headers in enumerate(({"Content-Type": "text/plain"},
                                 {"Content-Type": "application/x-www-form-urlencoded"}, {})):
        r = await world.client.request("POST", "/api/rooms", data=json.dumps({"name": f"room {n}"}).encode(),
                                       token=world.tokens["alice"], headers=headers)
        assert r.status == 201, r.raw


@pytest.mark.parametrize("name", ["\ud800", "a\x00b"])
@pytest_twisted.ensureDeferred
async def test_unstorable_strings_are_400(world, name):
    """Lone surrogates and NUL characters are refused before they reach the database."""
    raw = json.dumps({"name": name}).encode()  # ensure_ascii keeps the escapes
    r = await world.client.request("POST", "/api/rooms", data=raw, token=world.tokens["alice"])
    assert (r.status, r.error()["field"]) == (400, "name")


# -- routing ----------------------------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_unknown_routes_are_json_404_and_wrong_methods_405(world):
    """Routing failures use the error envelope; 405 lists the allowed methods."""
    r = await world.client.get("/api/nothing/here")
    assert (r.status, r.error()["code"]) == (404, "not_found")
    r = await world.client.delete("/api/auth/me", token=world.tokens["alice"])
    assert (r.status, r.error()["code"]) == (405, "method_not_allowed")
    assert set(r.header("Allow").split(", ")) == {"GET", "HEAD"}
    r = await world.client.get("/ws/rooms/lounge")
    assert (r.status, r.error()["code"]) == (404, "not_found")


@pytest_twisted.ensureDeferred
async def test_non_utf8_path_is_400(world):
    """A path segment that is not UTF-8 is a JSON 400 (never a traceback)."""
    port = world.served.port.getHost().port

    def fetch() -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request("GET", "/api/rooms/%FF%FE")
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    status, body = await deferToThread(fetch)
    assert status == 400
    assert json.loads(body)["error"]["code"] == "bad_request"


@pytest_twisted.ensureDeferred
async def test_head_answers_without_a_body(world):
    """HEAD on a GET route answers the status and headers only."""
    r = await world.client.request("HEAD", "/healthz")
    assert (r.status, r.raw) == (200, b"")


@pytest_twisted.ensureDeferred
async def test_an_unexpected_failure_is_a_logged_json_500(world):
    """A bug (here: the store raising something that is not a domain error) answers 500 with the
    error envelope, code internal, and logs the traceback."""
    events: list = []
    world.store.list_rooms = lambda: fail(RuntimeError("simulated bug"))
    globalLogPublisher.addObserver(events.append)
    try:
        r = await world.client.get("/api/rooms", token=world.tokens["alice"])
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert (r.status, r.error()["code"]) == (500, "internal")
    assert "simulated bug" not in r.raw.decode()
    failures = [e["log_failure"] for e in events if "log_failure" in e]
    assert any(f.check(RuntimeError) for f in failures)


# -- body limit and keep-alive over TCP -------------------------------------------------------

@implementer(IBodyProducer)
class ChunkedBody:
    """Produces ``total`` bytes with no declared length, so the client uses chunked encoding."""

    length = UNKNOWN_LENGTH

    def __init__(self, total: int) -> None:
        self.total = total

    def startProducing(self, consumer) -> Deferred[None]:
        sent = 0
        while sent < self.total:
            chunk = min(64 * 1024, self.total - sent)
            consumer.write(b" " * chunk)
            sent += chunk
        return succeed(None)

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        pass


def _counting_connections(site) -> list:
    seen = []
    original = site.buildProtocol

    def build(addr):
        seen.append(addr)
        return original(addr)

    site.buildProtocol = build
    return seen


@pytest_twisted.ensureDeferred
async def test_oversized_bodies_are_413_and_close_the_connection(world):
    """Over 1 MiB, declared (Content-Length) or not (chunked), the answer is 413 with the JSON
    error and the connection is closed; requests on a kept-alive connection reuse it until then."""
    connections = _counting_connections(world.site)
    client, token = world.client, world.tokens["alice"]
    for _ in range(3):
        assert (await client.get("/api/rooms", token=token)).status == 200
    assert len(connections) == 1  # keep-alive: one connection for all three
    big = FileBodyProducer(io.BytesIO(b" " * ((1 << 20) + 1)))
    for body in (big, ChunkedBody((1 << 20) + 1)):
        response = await treq.post(world.served.base + "/api/rooms", data=body, pool=world.served.pool,
                                   headers={"Authorization": f"Bearer {token}"}, timeout=20)
        raw = await response.content()
        assert response.code == 413
        assert json.loads(raw)["error"]["code"] == "payload_too_large"
    assert (await client.get("/api/rooms", token=token)).status == 200
    # the first 413 came on the kept-alive connection; each 413 closed its connection, so the
    # chunked request and the last GET each needed a new one
    assert len(connections) == 3
    assert await world.store.list_rooms() == []


@pytest_twisted.ensureDeferred
async def test_a_body_right_at_the_limit_is_read(world):
    """A body of exactly max_body_bytes is processed; one byte more is refused."""
    world.site.max_body_bytes = 1000
    raw = json.dumps({"name": "edge"}).encode()
    at_limit = raw + b" " * (1000 - len(raw))
    r = await world.client.request("POST", "/api/rooms", data=at_limit, token=world.tokens["alice"])
    assert r.status == 201
    port = world.served.port.getHost().port

    def post_over_limit() -> tuple[int, str | None, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request("POST", "/api/rooms", body=at_limit + b" ",
                         headers={"Authorization": f"Bearer {world.tokens['alice']}"})
            response = conn.getresponse()
            return response.status, response.getheader("Connection"), response.read()
        finally:
            conn.close()

    status, connection, body = await deferToThread(post_over_limit)
    assert (status, connection) == (413, "close")
    assert json.loads(body)["error"]["code"] == "payload_too_large"


# -- health, metrics, openapi -----------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_healthz_ok(world):
    """/healthz pings the database and answers ok (no token needed)."""
    r = await world.client.get("/healthz")
    assert (r.status, check(s.HEALTH, r.json)) == (200, {"status": "ok", "database": "ok"})


def check(schema, body):
    return schema.parse(body)


@pytest_twisted.ensureDeferred
async def test_healthz_is_503_when_the_database_is_gone(database_url):
    """With its store closed, /healthz answers 503 unavailable."""
    store = await open_store(database_url)
    served = Served(build_site(make_actions(store, ManualClock()), web_dir=WEB_DIR))
    try:
        assert (await served.client.get("/healthz")).status == 200
        await store.close()
        r = await served.client.get("/healthz")
        assert (r.status, r.error()["code"]) == (503, "unavailable")
    finally:
        await served.stop()


@pytest_twisted.ensureDeferred
async def test_metrics_count_requests_by_route_template(world):
    """/metrics is Prometheus text with requests by method, route template and status, and rooms."""
    room = await world.room()
    await world.client.get(f"/api/rooms/{room['id']}", token=world.tokens["alice"])
    await world.client.get("/api/rooms/nope", token=world.tokens["alice"])
    await world.client.get("/no-such-file.txt")
    r = await world.client.get("/metrics")
    assert r.status == 200
    assert r.header("Content-Type").startswith("text/plain")
    text = r.raw.decode()
    assert 'synctv_http_requests_total{method="GET",route="/api/rooms/{room}",status="200"} 1.0' in text
    assert 'synctv_http_requests_total{method="GET",route="/api/rooms/{room}",status="404"} 1.0' in text
    assert 'synctv_http_requests_total{method="POST",route="/api/rooms",status="201"} 1.0' in text
    assert 'synctv_http_requests_total{method="GET",route="static",status="404"} 1.0' in text
    assert "synctv_http_request_duration_seconds_bucket" in text
    assert "synctv_rooms 1.0" in text
    assert room["id"] not in text  # concrete paths never become labels


def _klein_routes(api: SynctvAPI) -> set[tuple[str, str]]:
    routes = set()
    for rule in api.app.url_map.iter_rules():
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        routes |= {(method, path) for method in rule.methods - {"HEAD", "OPTIONS"}}
    return routes


@pytest_twisted.ensureDeferred
async def test_openapi_describes_exactly_the_routes_that_exist(world):
    """Every Klein route is in /api/openapi.json and nothing else is (static files and the
    WebSocket are not Klein routes and are not described)."""
    r = await world.client.get("/api/openapi.json")
    assert r.status == 200
    doc = r.json
    assert doc["openapi"].startswith("3.1")
    documented = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    assert documented == _klein_routes(world.site.api)
    assert {(doc.method, doc.path) for table in ROUTE_TABLES for doc in table.docs} == documented


def test_docs_api_md_lists_exactly_the_routes_that_exist(world):
    """The route table of docs/api.md names the same routes as the Klein app of a server."""
    listed = set(re.findall(r"^\| `(GET|POST|PUT|PATCH|DELETE) (/[^`\s]*)`", API_MD.read_text(), re.M))
    assert listed == _klein_routes(world.site.api)


@pytest_twisted.ensureDeferred
async def test_openapi_references_resolve_and_bodies_are_described(world):
    """Each $ref names a component; each route with a body documents it, with the error schema."""
    doc = (await world.client.get("/api/openapi.json")).json
    text = json.dumps(doc)
    for name in re.findall(r'"#/components/schemas/([A-Za-z]+)"', text):
        assert name in doc["components"]["schemas"], name
    create = doc["paths"]["/api/rooms"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/RoomCreate"}
    assert set(create["responses"]) >= {"201", "400", "401", "409", "413"}
    assert doc["components"]["schemas"]["RoomCreate"]["required"] == ["name"]
    assert doc["paths"]["/healthz"]["get"]["security"] == []


# -- static files and the WebSocket slot ------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_static_files_are_served_without_listings(world):
    """/ is web/index.html; /admin/ is the admin console's index; an unknown file is 404;
    a directory without an index is 404, never a listing."""
    r = await world.client.get("/")
    assert r.status == 200
    assert r.header("Content-Type").startswith("text/html")
    assert b"synctv" in r.raw and b'href="/admin/"' in r.raw
    assert (await world.client.get("/nope.html")).status == 404
    admin = await world.client.get("/admin/")
    assert admin.status == 200 and b"synctv" in admin.raw
    listing = await world.client.get("/js/")
    assert listing.status == 404 and b"clock.js" not in listing.raw


@pytest_twisted.ensureDeferred
async def test_the_players_and_their_source_map_have_script_and_json_types(world):
    """The vendored players are JavaScript and mpegts.js's source map is JSON, never text/html
    (the system mime table has no .map)."""
    for path, kind in (("/vendor/hls.js/hls.min.js", "text/javascript"),
                       ("/vendor/mpegts.js/mpegts.js", "text/javascript"),
                       ("/vendor/mpegts.js/mpegts.js.map", "application/json")):
        r = await world.client.get(path)
        assert r.status == 200 and r.header("Content-Type").startswith(kind), (path, r.header("Content-Type"))


class HeldResource(resource.Resource):
    """A WebSocket stand-in: holds each request open until released."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.held: list = []
        self.arrived: Deferred = Deferred()

    def render_GET(self, request):
        self.held.append(request)
        self.arrived.callback(request.postpath)
        return server.NOT_DONE_YET


@pytest_twisted.ensureDeferred
async def test_ws_slot_and_wait_idle(world):
    """mount_ws serves /ws/... from the given resource (postpath rooms/{room}); wait_idle fires
    True once the request in flight ends, or False at the timeout."""
    from twisted.internet import reactor

    held = HeldResource()
    world.site.mount_ws(held)
    pending = world.client.get("/ws/rooms/lounge")
    assert await held.arrived == [b"rooms", b"lounge"]
    assert len(world.site.active_requests) == 1
    clock = task.Clock()
    timed_out = world.site.wait_idle(clock, 5)
    idle = world.site.wait_idle(reactor, 30)
    clock.advance(5)
    assert timed_out.result is False
    assert not idle.called
    request = held.held[0]
    request.write(b"bye")
    request.finish()
    assert await idle is True
    assert (await pending).raw == b"bye"
    assert await world.site.wait_idle(reactor, 1) is True


# -- the access log ---------------------------------------------------------------------------

def test_secret_query_parameters_are_cut_in_the_access_log():
    """token=, sig= and friends keep four characters in the log line; other parameters stay."""
    assert redact_uri(b"/ws/rooms/a?token=abcdefghijkl&x=1&sig=zzzzzzzz") == (
        b"/ws/rooms/a?token=abcd...&x=1&sig=zzzz...")
    assert redact_uri(b"/a?TOKEN=abcdefgh") == b"/a?TOKEN=abcd..."
    assert redact_uri(b"/a?tokens=abcdefgh&mytoken=abcdefgh") == b"/a?tokens=abcdefgh&mytoken=abcdefgh"


@pytest_twisted.ensureDeferred
async def test_the_real_access_log_line_hides_the_token(world):
    """A request with ?token= logs its access line with the token cut short."""
    events: list = []
    globalLogPublisher.addObserver(events.append)
    try:
        await world.client.get("/healthz?token=VERYSECRETTOKENVALUE")
    finally:
        globalLogPublisher.removeObserver(events.append)
    lines = [formatEvent(e) or "" for e in events]
    access = [line for line in lines if "/healthz" in line]
    assert access and "token=VERY..." in access[0]
    assert not any("VERYSECRETTOKENVALUE" in line for line in lines)


def test_importing_the_api_registers_no_routes_and_an_api_serves_the_tables_it_is_given():
    """Route modules are listed where the Site is built (``synctv.site.ROUTE_TABLES``), not
    registered by being imported: ``synctv.api.app`` alone imports none of them, and an API made
    with the core table only has no live, proxy or display route."""
    import subprocess
    import sys

    code = ("import sys, synctv.api.app; "
            "print(sorted(m for m in sys.modules if m.endswith('_routes')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
    api = SynctvAPI(object(), routes=(CORE_ROUTES,))
    paths = {rule.rule for rule in api.app.url_map.iter_rules()}
    assert "/api/rooms/<room>" in paths
    assert not any("live.flv" in p or "/proxy" in p or "display" in p for p in paths), paths
    full = {rule.rule for rule in SynctvAPI(object(), routes=ROUTE_TABLES).app.url_map.iter_rules()}
    assert "/api/rooms/<room>/media/<media>/live.flv" in full and paths < full
