"""/metrics of the real server process: a loopback scrape works, a request that came through a
reverse proxy (a forwarding header) needs a site admin's token, and after activity in several
rooms (HTTP, WebSocket, chat, the proxy, live) no room id or name appears in the exposition."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from typing import Any

import pytest
import pytest_twisted

from synctv.realtime.client import connect

pytestmark = pytest.mark.integration


def scrape(server: Any, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(server.url + "/metrics", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


@pytest_twisted.ensureDeferred
async def test_loopback_scrapes_proxies_need_a_token_and_no_room_is_a_label(start_server: Any):
    """The scrape from loopback answers; with X-Forwarded-For it is 401 unless root's token comes
    along; after rooms saw requests, a WebSocket session with chat, a proxy request and a live
    item, the exposition names route templates only."""
    server = start_server()
    password = (server.data / "root-password").read_text().strip()
    status, body = server.request("POST", "/api/auth/login", {"name": "root", "password": password})
    assert status == 200, body
    root = body["token"]
    rooms = []
    for name in ("metrics-alpha", "metrics-beta"):
        status, created = server.request("POST", "/api/rooms", {"name": name}, token=root)
        assert status == 201, created
        room = created["room"]["id"]
        rooms.append((room, name))
        status, added = server.request("POST", f"/api/rooms/{room}/media",
                                       {"url": "http://127.0.0.1:9/nowhere.mp4", "title": "x"}, token=root)
        assert status == 201, added
        media = added["media"]["id"]
        status, state = server.request("GET", f"/api/rooms/{name}/playback-state", token=root)
        status, _ = server.request("PATCH", f"/api/rooms/{room}/playback-state",
                                   {"action": "media", "media_id": media, "version": state["version"]}, token=root)
        assert status == 200
        status, playback = server.request("GET", f"/api/rooms/{room}/media/{media}/playback?modes=proxy",
                                          token=root)
        assert status == 200, playback
        status, refused = server.request("GET", playback["infos"][0]["url"])
        assert status == 403, refused  # a loopback upstream, refused by the address guard
        status, _ = server.request("GET", f"/api/rooms/{room}/media/nope", token=root)
        assert status == 404
        status, live = server.request("POST", f"/api/rooms/{room}/media", {"provider": "rtmp", "title": "cam"},
                                      token=root)
        assert status == 201, live
        status, _ = server.request("GET", f"/api/rooms/{room}/media/{live['media']['id']}/stream", token=root)
        assert status == 200
        client = await connect(server.url, room, root)
        try:
            await client.observe("chat")
            await client.chat(f"hello {name}")
            await client.observe("playbackState")
        finally:
            await client.close()

    status, text = scrape(server)
    assert status == 200
    assert re.search(r'synctv_http_requests_total\{method="GET",route="/api/rooms/\{room\}/playback-state",'
                     r'status="200"\} 2\.0', text), text
    assert 'route="/ws/rooms/{room}"' in text and "synctv_rooms 2.0" in text
    for room, name in rooms:
        assert room not in text and name not in text
    status, refused = scrape(server, {"X-Forwarded-For": "203.0.113.7"})
    assert status == 401 and '"unauthorized"' in refused
    status, text = scrape(server, {"X-Forwarded-For": "203.0.113.7", "Authorization": f"Bearer {root}"})
    assert status == 200 and "synctv_http_requests_total" in text


def test_metrics_networks_from_the_config_file_decide_who_scrapes(start_server: Any, tmp_path: Any) -> None:
    """``[server] metrics_networks`` reaches the running server: with only 10.0.0.0/8 admitted,
    a loopback scrape without a token is refused (401) and root's token still scrapes."""
    config = tmp_path / "synctv.toml"
    config.write_text('[server]\nmetrics_networks = ["10.0.0.0/8"]\n')
    server = start_server(extra=("--config", str(config)))
    status, body = scrape(server)
    assert status == 401, body
    password = (server.data / "root-password").read_text().strip()
    status, login = server.request("POST", "/api/auth/login", {"name": "root", "password": password})
    assert status == 200, login
    status, text = scrape(server, {"Authorization": f"Bearer {login['token']}"})
    assert status == 200 and "synctv_http_requests_total" in text
