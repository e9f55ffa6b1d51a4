"""The watch-together pages (docs/rooms.md): the room page and the home page's list of rooms.

``ROUTES`` is served by the ``SynctvAPI`` that ``synctv.site.build_site`` makes. ``/`` itself is
the static ``web/index.html`` (the home page); ``/room/{room}`` serves ``web/room.html`` for any
``{room}`` without looking it up: the page is the same for everyone and signs in by itself, so
the address tells a visitor nothing (the room's existence is checked by the API calls the page
makes once signed in). Handlers reach their dependencies through ``api.pages`` (``RoomPages``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from synctv.api import schema as s
from synctv.api.app import Call, RouteTable, SynctvAPI
from synctv.core.errors import Unavailable

ROUTES = RouteTable("pages")
Online = Callable[[str], list[dict[str, Any]]]


def nobody_online(room_id: str) -> list[dict[str, Any]]:
    return []


@attrs.frozen
class RoomPages:
    """What the page routes need: the ``web/`` folder, and who is online in a room as this node
    knows it (``ConnectionRuntime.online``: the presence merged from every node, for rooms that
    have a connection here; an empty list otherwise)."""

    web_dir: Path
    online: Online = nobody_online


def _pages(api: SynctvAPI) -> RoomPages:
    pages = getattr(api, "pages", None)
    if pages is None:
        raise Unavailable("the room pages are not set up on this server")
    return pages


@ROUTES.route("GET", "/room/{room}", "A watch room's page (web/room.html)", auth=False, content_type="text/html",
              errors=(503,), description="The same page for every {room} (an id or a name); it signs in and "
                                         "joins by itself.")
async def room_page(api: SynctvAPI, call: Call, room: str) -> Any:
    page = Path(_pages(api).web_dir) / "room.html"
    try:
        body = page.read_bytes()
    except OSError:
        raise Unavailable("the room page is not installed (web/room.html)") from None
    call.request.setHeader(b"Content-Type", b"text/html; charset=utf-8")
    call.request.setHeader(b"Cache-Control", b"no-cache")
    return body


@ROUTES.route("GET", "/api/lobby", "The home page's rooms: yours, then those without a password",
              response=s.LOBBY,
              description="Watch rooms you are a member of, then those anyone may join (site admins: every "
                          "watch room), at most 100; each with your membership, its playback state, the title "
                          "of what it plays and who is online (as the answering node knows it).")
async def lobby(api: SynctvAPI, call: Call) -> Any:
    pages = _pages(api)
    rooms = []
    for entry in await api.actions.lobby(call.actor):
        rooms.append({**entry.to_json(), "online": pages.online(entry.room.id)})
    return {"rooms": rooms}
