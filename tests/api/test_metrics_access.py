"""Who may read /metrics, over real sockets: a source inside ``[server] metrics_networks`` (default
loopback), or a site admin's token; everyone else gets 401/403 JSON. A second loopback address
(127.0.0.2) plays the outside caller. No room id is ever a label."""

from __future__ import annotations

import http.client
import ipaddress
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread

from synctv.api.app import SynctvAPI
from synctv.api.metrics import HttpMetrics
from synctv.bus import InProcessBus
from synctv.config import DEFAULT_METRICS_NETWORKS, ConfigError, load_config
from synctv.core.clock import ManualClock
from synctv.site import SiteRoot, StaticFiles, SynctvSite
from tests.api.api_support import WEB_DIR, Served, World, make_actions

ONLY_127_0_0_1 = (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("::1/128"))


@pytest.fixture
def narrow(store: Any) -> Iterator[World]:
    """A Site whose metrics_networks admit 127.0.0.1 only, with users root, admin and alice."""
    actions = make_actions(store, ManualClock(), InProcessBus())
    api = SynctvAPI(actions, metrics=HttpMetrics(scrape_networks=ONLY_127_0_0_1))
    site = SynctvSite(SiteRoot(api.resource(), StaticFiles(str(WEB_DIR))), api, max_body_bytes=1 << 20)
    served = Served(site)
    world = World(store=store, clock=actions.clock, actions=actions, site=site, client=served.client,
                  bus=actions.bus)
    world.served = served

    async def populate() -> None:
        for name, role in (("root", "root"), ("admin", "admin"), ("alice", "user")):
            await world.add_user(name, role)

    pytest_twisted.blockon(Deferred.fromCoroutine(populate()))
    yield world
    pytest_twisted.blockon(Deferred.fromCoroutine(served.stop()))


def scrape(port: int, source: str, headers: dict[str, str]) -> tuple[int, str, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
    try:
        conn.request("GET", "/metrics", headers=headers)
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type") or "", response.read()
    finally:
        conn.close()


async def scrape_as(world: World, source: str, token: str | None = None, **headers: str) -> tuple[int, str, bytes]:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return await deferToThread(scrape, world.served.port.getHost().port, source, headers)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest_twisted.ensureDeferred
async def test_a_source_outside_metrics_networks_needs_a_site_admin_token(narrow):
    """From 127.0.0.2 (not in the networks): no token 401, a member's token 403, a bad token 401,
    admin's and root's tokens 200. From 127.0.0.1: 200 without a token, unless the request came
    through a reverse proxy (a forwarding header): then 401."""
    world = narrow
    status, ctype, body = await scrape_as(world, "127.0.0.2")
    assert (status, json.loads(body)["error"]["code"]) == (401, "unauthorized")
    assert "metrics_networks" in json.loads(body)["error"]["message"] and ctype.startswith("application/json")
    status, _, body = await scrape_as(world, "127.0.0.2", world.tokens["alice"])
    assert (status, json.loads(body)["error"]["code"]) == (403, "forbidden")
    status, _, body = await scrape_as(world, "127.0.0.2", "not-a-token")
    assert (status, json.loads(body)["error"]["code"]) == (401, "unauthorized")
    for who in ("admin", "root"):
        status, ctype, body = await scrape_as(world, "127.0.0.2", world.tokens[who])
        assert (status, ctype.split(";")[0]) == (200, "text/plain") and b"synctv_http_requests_total" in body
    status, _, body = await scrape_as(world, "127.0.0.1")
    assert status == 200 and b"synctv_http_requests_total" in body
    for header in ("X-Forwarded-For", "Forwarded", "X-Real-IP"):
        status, _, _ = await scrape_as(world, "127.0.0.1", **{header: "203.0.113.9"})
        assert status == 401, header
    status, _, _ = await scrape_as(world, "127.0.0.1", world.tokens["admin"], **{"X-Forwarded-For": "203.0.113.9"})
    assert status == 200


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest_twisted.ensureDeferred
async def test_loopback_scrapes_by_default(world):
    """The default networks are loopback: 127.0.0.1 and 127.0.0.2 both read /metrics tokenless."""
    assert world.site.api.metrics.scrape_networks == DEFAULT_METRICS_NETWORKS
    for source in ("127.0.0.1", "127.0.0.2"):
        status, _, body = await scrape_as(world, source)
        assert status == 200 and b"synctv_rooms" in body


def test_metrics_networks_is_a_server_config_key(tmp_path: Path):
    """[server] metrics_networks reads a list of networks; loopback when absent; bad values are a
    one-line error naming the key."""
    config = tmp_path / "synctv.toml"
    config.write_text('[server]\nmetrics_networks = ["10.0.0.0/8", "fd00::/8"]\n')
    assert load_config(config, {"data": str(tmp_path / "data")}).metrics_networks == (
        ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8"))
    assert load_config(None, {"data": str(tmp_path / "data")}).metrics_networks == (
        ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
    config.write_text('[server]\nmetrics_networks = ["everyone"]\n')
    with pytest.raises(ConfigError, match=r"\[server\] metrics_networks"):
        load_config(config, {"data": str(tmp_path / "data")})
    config.write_text('[server]\nmetrics_networks = "127.0.0.1"\n')
    with pytest.raises(ConfigError, match=r"\[server\] metrics_networks"):
        load_config(config, {"data": str(tmp_path / "data")})
