"""A running Site with the WebSocket endpoint mounted, on 127.0.0.1 over a real SQLite store, with
users root, admin, alice, bob and carol (tokens in ``rt.world.tokens``).

Its Actions sign proxy and live URLs (as a server does; the proxy and live routes themselves are
not running) and know the ``rtmp`` and ``live`` providers.

``rt`` uses the default limits (except a large message burst: the ManualClock never refills the
bucket); ``rt_factory(**limits)`` builds one with other limits. The reactor is imported inside
fixtures only.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import pytest_twisted
from twisted.internet.defer import Deferred

from synctv.bus import InProcessBus
from synctv.core.clock import ManualClock
from synctv.core.realtime import RealtimeLimits
from synctv.live.live_urls import LiveLinks
from synctv.providers import LivePullProvider, RTMPProvider, default_providers
from synctv.proxy.proxy_urls import ProxyLinks
from synctv.realtime.connections import ConnectionRuntime
from synctv.realtime.resource import build_realtime
from synctv.site import build_site
from synctv.store import DatabaseURL, open_store
from synctv.store.migrate import migrate
from tests.api.api_support import SECRET, WEB_DIR, Served, World, make_actions
from tests.realtime.wsclient import Refused, WSClient, connect, room_path

TEST_LIMITS = RealtimeLimits(messages_per_s=1000.0, messages_burst=1000)


@attrs.define
class RT:
    """The served site, its runtime and helpers to open WebSockets as a named user."""

    world: World
    runtime: ConnectionRuntime
    served: Served
    reactor: Any
    clients: list[WSClient] = attrs.field(factory=list)

    @property
    def port(self) -> int:
        return self.served.port.getHost().port

    async def connect(self, room: str, *, token: str | None = None, how: str = "header",
                      protocols: list[str] | None = None, path: str | None = None) -> WSClient | Refused:
        headers: dict[str, str] = {}
        protocols = list(protocols or [])
        query_token = None
        if token is not None:
            if how == "header":
                headers["Authorization"] = f"Bearer {token}"
            elif how == "protocol":
                protocols = ["synctv.v1", f"bearer.{token}", *protocols]
            else:
                query_token = token
        result = await connect(self.reactor, self.port, path or room_path(room, query_token),
                               headers=headers, protocols=protocols)
        if isinstance(result, WSClient):
            self.clients.append(result)
        return result

    async def ws(self, who: str, room: str, **kw: Any) -> WSClient:
        """An open connection of ``who`` to ``room`` whose ``welcome`` was read (``client.welcome``)."""
        client = await self.connect(room, token=self.world.tokens[who], **kw)
        assert isinstance(client, WSClient), client
        welcome = await client.next()
        assert welcome["type"] == "welcome", welcome
        client.welcome = welcome  # type: ignore[attr-defined]
        return client

    async def observe(self, client: WSClient, resource: str, rid: Any = None, **extra: Any) -> dict[str, Any]:
        return await client.request({"type": "observe", "id": rid or f"o-{resource}", "resource": resource, **extra})

    async def stop(self) -> None:
        await self.runtime.close_all(timeout_s=2.0)
        for client in self.clients:
            if client.transport is not None and client.transport.connected:
                client.transport.abortConnection()
        await self.served.stop()


def _sqlite_url(directory: Path) -> DatabaseURL:
    directory.mkdir(parents=True, exist_ok=True)
    url = DatabaseURL.sqlite_file(directory / "synctv.db")
    migrate(url)
    return url


@pytest.fixture
def rt_factory(tmp_path: Path) -> Iterator[Callable[..., Coroutine[Any, Any, RT]]]:
    """``await rt_factory(**limits)`` inside a test: another served site with those limits."""
    from twisted.internet import reactor

    made: list[RT] = []
    stores: list[Any] = []

    async def make(**limits: Any) -> RT:
        store = await open_store(_sqlite_url(tmp_path / f"db{len(stores)}"))
        stores.append(store)
        clock = ManualClock()
        bus = InProcessBus()
        providers = default_providers(RTMPProvider(), LivePullProvider())
        actions = make_actions(store, clock, bus, providers=providers,
                               signers={"proxy": ProxyLinks(SECRET), "live": LiveLinks(SECRET)})
        site = build_site(actions, web_dir=WEB_DIR)
        runtime, ws = build_realtime(actions, attrs.evolve(TEST_LIMITS, **limits), reactor=reactor,
                                     close_handshake_timeout_s=3.0)
        site.mount_ws(ws)
        runtime.start()
        served = Served(site)
        world = World(store=store, clock=clock, actions=actions, site=served.site, client=served.client, bus=bus)
        world.served = served

        await world.add_user("root", "root")
        await world.add_user("admin", "admin")
        for name in ("alice", "bob", "carol"):
            await world.add_user(name)
        rt = RT(world=world, runtime=runtime, served=served, reactor=reactor)
        made.append(rt)
        return rt

    yield make
    for rt in made:
        pytest_twisted.blockon(Deferred.fromCoroutine(rt.stop()))
    for store in stores:
        pytest_twisted.blockon(store.close())


@pytest.fixture
def rt(rt_factory: Callable[..., Coroutine[Any, Any, RT]]) -> RT:
    return pytest_twisted.blockon(Deferred.fromCoroutine(rt_factory()))
