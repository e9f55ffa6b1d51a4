"""Fixtures of the provider tests: the fake upstreams of ``fakes/`` on loopback, and a served
synctv Site with the catalog providers, provider accounts, the media proxy and the WebSocket
endpoint (with the danmaku feed), over a real SQLite store, on real server time.

``[proxy] allow_networks`` admits 127.0.0.0/8 (as an operator would for a LAN Alist); without it
the address guard refuses the fakes (a test checks that). The reactor is imported inside
fixtures only.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import pytest_twisted
from twisted.internet.defer import Deferred
from twisted.logger import globalLogPublisher

from synctv.bus import InProcessBus
from synctv.config import Config, ProvidersConfig, ProxyConfig
from synctv.core.clock import ServerClock
from synctv.core.realtime import RealtimeLimits
from synctv.providers import default_providers
from synctv.providers.node import Catalog, build_catalog
from synctv.proxy.gateway import open_media_proxy
from synctv.proxy.proxy_urls import ProxyLinks
from synctv.realtime.connections import ConnectionRuntime
from synctv.realtime.resource import build_realtime, new_runtime
from synctv.site import build_site
from synctv.store import DatabaseURL, open_store
from synctv.store.migrate import migrate
from tests.api.api_support import PROVIDER_KEY, SECRET, WEB_DIR, Response, Served, World, make_actions
from tests.providers.fakes import FakeAlist, FakeBilibili, FakeMediaBrowser, listen, make_media
from tests.realtime.wsclient import WSClient, connect, room_path

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)


class SteppableClock(ServerClock):
    """Real server time that a test can move ahead (``advance``), with the fakes' clocks."""

    def __init__(self) -> None:
        super().__init__()
        self.offset_ms = 0

    def __call__(self) -> int:
        return super().__call__() + self.offset_ms

    def advance(self, ms: int) -> None:
        self.offset_ms += ms
LIMITS = RealtimeLimits(messages_per_s=1000.0, messages_burst=1000)


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_media(tmp_path_factory.mktemp("provider-media"))


@attrs.define
class Fakes:
    alist: FakeAlist
    emby: FakeMediaBrowser
    jellyfin: FakeMediaBrowser
    bilibili: FakeBilibili

    def all(self) -> list[Any]:
        return [self.alist, self.emby, self.jellyfin, self.bilibili]


@pytest.fixture
def fakes(media: dict[str, Path]) -> Iterator[Fakes]:
    from twisted.internet import reactor

    found = Fakes(FakeAlist(media), FakeMediaBrowser(media, "emby"), FakeMediaBrowser(media, "jellyfin"),
                  FakeBilibili(media))
    ports = [listen(reactor, fake) for fake in found.all()]
    yield found
    for port in ports:
        pytest_twisted.blockon(port.stopListening())


@attrs.define
class ProviderWorld(World):
    """A World (tests/api) with providers: ``catalog``, ``proxy``, ``runtime``, ``fakes``, ``log``."""

    catalog: Catalog | None = None
    proxy: Any = None
    runtime: ConnectionRuntime | None = None
    fakes: Fakes | None = None
    log_lines: list[str] = attrs.field(factory=list)
    answers: list[bytes] = attrs.field(factory=list)  # every API answer body the helpers saw

    async def call(self, method: str, path: str, who: str = "alice", body: Any = None, **kw: Any) -> Response:
        r = await self.client.request(method, path, json_body=body, token=self.tokens.get(who), **kw)
        self.answers.append(r.raw)
        return r

    async def fetch(self, url: str, headers: dict[str, str] | None = None) -> Response:
        """GET a URL from a PlaybackInfo: a path on this server, or an absolute upstream URL."""
        if url.startswith("/"):
            return await self.client.request("GET", url, headers=headers)
        import treq

        response = await treq.get(url, headers=headers or {})
        return Response(response.code, response.headers, await response.content())

    async def link(self, kind: str, who: str = "alice", **body: Any) -> dict[str, Any]:
        defaults = self.credentials(kind)
        r = await self.call("POST", "/api/me/accounts", who, {"kind": kind, **defaults, **body})
        assert r.status == 201, r.raw
        return r.json["account"]

    def credentials(self, kind: str) -> dict[str, Any]:
        assert self.fakes is not None
        if kind == "alist":
            return {"server": self.fakes.alist.base, "username": "alice", "password": "alist-pass"}
        if kind in ("emby", "jellyfin"):
            return {"server": getattr(self.fakes, kind).base, "username": "alice", "password": "mb-pass"}
        return {"cookie": self.fakes.bilibili.sessdata}

    async def add(self, room: dict[str, Any], body: dict[str, Any], who: str = "alice") -> dict[str, Any]:
        r = await self.call("POST", f"/api/rooms/{room['id']}/media", who, body)
        assert r.status == 201, r.raw
        return r.json["media"]

    async def playback(self, room: dict[str, Any], media: dict[str, Any], who: str = "alice",
                       query: str = "") -> Response:
        return await self.call("GET", f"/api/rooms/{room['id']}/media/{media['id']}/playback{query}", who)

    async def ws(self, who: str, room: str) -> WSClient:
        from twisted.internet import reactor

        client = await connect(reactor, self.served.port.getHost().port, room_path(room, None),
                               headers={"Authorization": f"Bearer {self.tokens[who]}"})
        assert isinstance(client, WSClient), client
        assert (await client.next())["type"] == "welcome"
        self.extra.setdefault("ws", []).append(client)
        return client


@pytest.fixture
def pw(tmp_path: Path, fakes: Fakes) -> Iterator[ProviderWorld]:
    """The served world; ``pw.fakes`` are its upstreams; ``pw.log_lines`` every log line it wrote."""
    from twisted.internet import reactor

    url = DatabaseURL.sqlite_file(tmp_path / "synctv.db")
    migrate(url)
    store = pytest_twisted.blockon(open_store(url))
    clock = SteppableClock()
    for fake in fakes.all():
        fake.now = lambda: clock() / 1000.0
    config = Config(data=tmp_path / "data", proxy=ProxyConfig(allow_networks=LOOPBACK, slice_size=4096),
                    providers=ProvidersConfig(bilibili_api=fakes.bilibili.base, bilibili_live_api=fakes.bilibili.base))
    catalog = build_catalog(config, store=store, clock=clock, reactor=reactor, key=PROVIDER_KEY)
    links = ProxyLinks(SECRET)
    bus = InProcessBus()
    actions = make_actions(store, clock, bus, providers=default_providers(*catalog.providers),
                           signers={"proxy": links})
    proxy = pytest_twisted.blockon(Deferred.fromCoroutine(open_media_proxy(
        config.proxy, data_dir=config.data, links=links, actions=actions, reactor=reactor, revalidate_s=None)))
    site = build_site(actions, web_dir=WEB_DIR, proxy=proxy, accounts=catalog.accounts)
    runtime = new_runtime(actions=actions, limits=LIMITS, scheduler=reactor, feeds=(catalog.danmaku,))
    _, ws = build_realtime(actions, LIMITS, reactor=reactor, runtime=runtime, close_handshake_timeout_s=3.0)
    site.mount_ws(ws)
    runtime.start()
    served = Served(site)
    world = ProviderWorld(store=store, clock=clock, actions=actions, site=served.site, client=served.client, bus=bus,
                          catalog=catalog, proxy=proxy, runtime=runtime, fakes=fakes)
    world.served = served

    def observe(event: dict[str, Any]) -> None:
        from twisted.logger import formatEvent

        text = formatEvent(event)
        if event.get("log_failure") is not None:
            text += "\n" + event["log_failure"].getTraceback()
        world.log_lines.append(text)

    globalLogPublisher.addObserver(observe)

    async def populate() -> None:
        await world.add_user("root", "root")
        for name in ("alice", "bob", "carol"):
            await world.add_user(name)

    pytest_twisted.blockon(Deferred.fromCoroutine(populate()))
    yield world
    globalLogPublisher.removeObserver(observe)

    async def teardown() -> None:
        for client in world.extra.get("ws", []):
            if client.transport is not None and client.transport.connected:
                client.transport.abortConnection()
        await runtime.close_all(timeout_s=2.0)
        await served.stop()
        await proxy.close()
        await catalog.http.close()
        await store.close()

    pytest_twisted.blockon(Deferred.fromCoroutine(teardown()))
