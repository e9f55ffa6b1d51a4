"""Helpers of the API tests: a treq client for a running Site, and a World of users and tokens.

Time is a ManualClock so tokens can be expired on purpose; passwords use a cheap scrypt cost.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import attrs
import treq
from twisted.internet.defer import Deferred
from twisted.web.client import HTTPConnectionPool

from synctv.actions import Actions
from synctv.api.schema import Schema
from synctv.bus import InProcessBus
from synctv.core import auth
from synctv.core.clock import ManualClock
from synctv.core.models import User
from synctv.providers import ProviderRegistry, default_providers
from synctv.site import SynctvSite
from synctv.store.interface import Store

SECRET = "test-secret-" + "x" * 20
CHEAP_N = 2**4  # scrypt cost for tests: fast, still a real hash
PASSWORD = "correct horse"
WEB_DIR = pathlib.Path(__file__).resolve().parents[2] / "web"


@attrs.frozen
class Response:
    status: int
    headers: Any  # twisted Headers
    raw: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.raw)

    def header(self, name: str) -> str | None:
        values = self.headers.getRawHeaders(name)
        if not values:
            return None
        value = values[0]
        return value.decode("latin-1") if isinstance(value, bytes) else value

    def error(self) -> dict[str, Any]:
        """The error envelope's inner object (asserting the envelope's shape)."""
        body = self.json
        assert set(body) == {"error"}, body
        assert isinstance(body["error"]["code"], str) and isinstance(body["error"]["message"], str)
        return body["error"]


class Client:
    """HTTP to the running site; ``token`` (or ``as_=``) adds a bearer header."""

    def __init__(self, base: str, pool: HTTPConnectionPool, reactor: Any) -> None:
        self.base = base
        self.pool = pool
        self.reactor = reactor

    async def request(
        self, method: str, path: str, *, json_body: Any = None, data: bytes | None = None,
        token: str | None = None, headers: dict[str, str] | None = None,
    ) -> Response:
        all_headers = {"Accept": "application/json", **(headers or {})}
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        if json_body is not None:
            data = json.dumps(json_body).encode("utf-8")
            all_headers.setdefault("Content-Type", "application/json")
        response = await treq.request(
            method, self.base + path, data=data, headers=all_headers, pool=self.pool, reactor=self.reactor, timeout=20,
        )
        raw = await response.content()
        return Response(response.code, response.headers, raw)

    def get(self, path: str, **kw: Any) -> Deferred[Response]:
        return Deferred.fromCoroutine(self.request("GET", path, **kw))

    def post(self, path: str, body: Any = None, **kw: Any) -> Deferred[Response]:
        return Deferred.fromCoroutine(self.request("POST", path, json_body=body, **kw))

    def patch(self, path: str, body: Any = None, **kw: Any) -> Deferred[Response]:
        return Deferred.fromCoroutine(self.request("PATCH", path, json_body=body, **kw))

    def put(self, path: str, body: Any = None, **kw: Any) -> Deferred[Response]:
        return Deferred.fromCoroutine(self.request("PUT", path, json_body=body, **kw))

    def delete(self, path: str, **kw: Any) -> Deferred[Response]:
        return Deferred.fromCoroutine(self.request("DELETE", path, **kw))


@attrs.define
class World:
    """Everything a test needs: the site, its actions, a client and users with tokens."""

    store: Store
    clock: ManualClock
    actions: Actions
    site: SynctvSite
    client: Client
    bus: InProcessBus
    served: Any = None
    extra: dict[str, Any] = attrs.field(factory=dict)  # per-test scratch space
    users: dict[str, User] = attrs.field(factory=dict)
    tokens: dict[str, str] = attrs.field(factory=dict)

    async def add_user(self, name: str, role: str = "user", password: str = PASSWORD) -> User:
        user = User(
            id=auth.new_id(), name=name, role=role, password_hash=auth.hash_password(password, n=CHEAP_N),
            created_at=self.clock(),
        )
        user = await self.store.create_user(user)
        self.users[name] = user
        self.tokens[name] = self.token_for(user)
        return user

    def token_for(self, user: User, ttl_ms: int = auth.TOKEN_TTL_MS) -> str:
        return auth.issue_token(SECRET, user.id, user.token_generation, self.clock(), ttl_ms)[0]

    async def room(self, owner: str = "alice", name: str = "lounge", **body: Any) -> dict[str, Any]:
        """Create a room through the API; returns its JSON."""
        r = await self.client.post("/api/rooms", {"name": name, **body}, token=self.tokens[owner])
        assert r.status == 201, r.raw
        return r.json["room"]

    async def join(self, who: str, room: dict[str, Any], **body: Any) -> dict[str, Any]:
        r = await self.client.post(f"/api/rooms/{room['id']}/join", body, token=self.tokens[who])
        assert r.status == 200, r.raw
        return r.json["member"]

    async def media(self, room: dict[str, Any], who: str = "alice", **body: Any) -> dict[str, Any]:
        body = {"url": "https://cdn.example/films/one.mp4", **body}
        r = await self.client.post(f"/api/rooms/{room['id']}/media", body, token=self.tokens[who])
        assert r.status == 201, r.raw
        return r.json["media"]


def check_shape(schema: Schema, body: Any) -> Any:
    """Assert ``body`` matches the documented answer schema (the one OpenAPI publishes)."""
    return schema.parse(body)




class Served:
    """A site listening on 127.0.0.1:<free port> with a persistent-connection client."""

    def __init__(self, site: SynctvSite) -> None:
        from twisted.internet import reactor

        self.site = site
        self.port = reactor.listenTCP(0, site, interface="127.0.0.1")
        self.pool = HTTPConnectionPool(reactor, persistent=True)
        self.base = f"http://127.0.0.1:{self.port.getHost().port}"
        self.client = Client(self.base, self.pool, reactor)

    async def stop(self) -> None:
        await self.pool.closeCachedConnections()
        await self.port.stopListening()


def make_actions(store: Store, clock: ManualClock, bus: InProcessBus | None = None, *,
                 providers: ProviderRegistry | None = None, signers: dict[str, Any] | None = None) -> Actions:
    return Actions(store=store, clock=clock, secret=SECRET, bus=bus or InProcessBus(),
                   providers=providers or default_providers(), scrypt_n=CHEAP_N, signers=signers)


def make_accounts(store: Store, clock: ManualClock, backends: dict[str, Any] | None = None,
                  allow_networks: tuple[Any, ...] = ()) -> Any:
    """ProviderAccounts over ``store`` with a fixed test key and the proxy's address-checked client."""
    from twisted.internet import reactor

    from synctv.providers.accounts import ProviderAccounts
    from synctv.providers.client import ApiClient
    from synctv.providers.secrets import SecretBox
    from synctv.proxy.upstream import UpstreamClient

    http = ApiClient(UpstreamClient(reactor, allow_networks=allow_networks))
    return ProviderAccounts(store=store, box=SecretBox(PROVIDER_KEY), clock=clock, http=http,
                            backends=backends or {})


PROVIDER_KEY = bytes(range(32))
