"""Fixtures of the proxy tests: real upstreams on loopback and an in-process synctv Site with the
media proxy, over a real SQLite store. The reactor is imported inside fixtures only."""

from __future__ import annotations

import http.client
import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred

from synctv.config import ProxyConfig
from synctv.core.clock import ManualClock
from synctv.proxy.gateway import open_media_proxy
from synctv.proxy.proxy_urls import ProxyLinks
from synctv.site import build_site
from synctv.store import DatabaseURL, open_store
from synctv.store.migrate import migrate
from tests.api.api_support import SECRET, WEB_DIR, Served, World, make_actions
from tests.integration.conftest import cli, start_server  # noqa: F401 -- the real-process fixtures
from tests.tools import require_tools

from .upstreams import Nginx, SpecialUpstream

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)
SLICE = 64 * 1024  # small slices, so ranges span several of them in small files


@pytest.fixture(scope="module")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    require_tools("nginx")
    server = Nginx(tmp_path_factory.mktemp("nginx"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def special() -> Iterator[Any]:
    """The twisted.web upstream (``.resource`` has the behaviours, ``.url(path)``)."""
    from twisted.internet import reactor
    from twisted.web import server

    upstream = SpecialUpstream()
    port = reactor.listenTCP(0, server.Site(upstream), interface="127.0.0.1")

    class Handle:
        resource = upstream

        @staticmethod
        def url(path: str) -> str:
            return f"http://127.0.0.1:{port.getHost().port}{path}"

    yield Handle
    upstream.release()
    pytest_twisted.blockon(port.stopListening())


class ProxyWorld(World):
    """A World (tests/api) whose Site runs the media proxy; ``proxy`` is the MediaProxy."""

    proxy: Any = None

    async def item(self, url: str, headers: dict[str, str] | None = None, subtitles: list[Any] | None = None,
                   who: str = "alice") -> tuple[dict[str, Any], dict[str, Any]]:
        """A room (made once) with a media item at ``url``; returns (room, media)."""
        if "room" not in self.extra:
            self.extra["room"] = await self.room(owner=who)
        room = self.extra["room"]
        media = await self.media(room, who=who, url=url, headers=headers or {}, subtitles=subtitles or [])
        return room, media

    async def proxy_url(self, room: dict[str, Any], media: dict[str, Any], who: str = "alice",
                        query: str = "modes=proxy") -> str:
        r = await self.client.get(f"/api/rooms/{room['id']}/media/{media['id']}/playback?{query}",
                                  token=self.tokens[who])
        assert r.status == 200, r.raw
        [info] = [i for i in r.json["infos"] if i["mode"] == "proxy"]
        assert info["url"].startswith("/api/") and info["headers"] == {}
        return info["url"]

    async def fetch(self, url: str, headers: dict[str, str] | None = None, method: str = "GET") -> Any:
        return await self.client.request(method, url, headers=headers)

    async def raw(self, url: str, headers: dict[str, str] | None = None, method: str = "GET") -> Any:
        """The same with http.client in a thread: every header as sent, Content-Length included."""
        from twisted.internet.threads import deferToThread

        return await deferToThread(raw_request, self.served.base, method, url, headers or {})


def raw_request(base: str, method: str, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request(method, path, headers=headers)
        response = conn.getresponse()
        body = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body
    finally:
        conn.close()


@pytest.fixture
def make_world(tmp_path: Path) -> Iterator[Any]:
    """``await make_world(**proxy_config)`` -> a ProxyWorld; ``restart(world)`` makes a new proxy and
    Site over the same store and data directory (the file cache survives it)."""
    worlds: list[ProxyWorld] = []
    url = DatabaseURL.sqlite_file(tmp_path / "synctv.db")
    migrate(url)
    store = pytest_twisted.blockon(open_store(url))
    clock = ManualClock()
    links = ProxyLinks(SECRET)
    actions = make_actions(store, clock, signers={"proxy": links})

    async def make(revalidate_s: float | None = None, **config: Any) -> ProxyWorld:
        from twisted.internet import reactor

        settings = {"slice_size": SLICE, "cache": "memory", "cache_bytes": 64 << 20,
                    "allow_networks": LOOPBACK, **config}
        proxy = await open_media_proxy(ProxyConfig(**settings), data_dir=tmp_path / "data", links=links,
                                       actions=actions, reactor=reactor, revalidate_s=revalidate_s)
        served = Served(build_site(actions, web_dir=WEB_DIR, proxy=proxy))
        world = ProxyWorld(store=store, clock=clock, actions=actions, site=served.site, client=served.client,
                           bus=actions.bus)
        world.served, world.proxy = served, proxy
        if worlds:
            world.users, world.tokens, world.extra = worlds[0].users, worlds[0].tokens, worlds[0].extra
        else:
            await world.add_user("root", "root")
            for name in ("alice", "bob", "carol"):
                await world.add_user(name)
        worlds.append(world)
        return world

    async def stop(world: ProxyWorld) -> None:
        if world.served is not None:
            await world.served.stop()
            world.served = None
            await world.proxy.close()

    make.stop = stop  # type: ignore[attr-defined]
    yield make

    async def teardown() -> None:
        for world in worlds:
            await stop(world)
        await store.close()

    pytest_twisted.blockon(Deferred.fromCoroutine(teardown()))
