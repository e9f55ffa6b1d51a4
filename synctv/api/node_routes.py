"""The nodes' internal door (docs/live.md "Several nodes"): a live stream relayed to another node.

``GET /api/internal/live/{room}/{media}/live.flv`` answers the HTTP-FLV of a stream *ingested on
this node* (an RTMP publish, or this node's live proxy) to another node of the cluster, which
fans it out to its own viewers (``synctv.live.service.LiveHub``: one such request per stream
per node, whatever its viewer count).

Who may call it, checked in this order, each before anything is looked up:

1. when ``[server] node_networks`` is set, the TCP source must lie in them and the request must
   not have come through a proxy (no ``Forwarded``/``X-Forwarded-For``/...): else 403;
2. ``Authorization: SynctvNode EXP NODE SIG`` must be a current signature of this method and
   path under the nodes' shared secret (``synctv.core.node_auth``: one HMAC): else 401, the same
   answer whatever was wrong.

Only then is the stream looked up; a stream that is not live *here* (not published, or itself a
relay, so relays never chain or loop) is a 404. A stranger thus learns nothing about which rooms
or streams exist, and cannot make this node do more than one HMAC. The door is not a member's
route and reads no membership: the asking node checked its own viewer (``Actions``) before it
asked. An operator may also block ``/api/internal/`` at the load balancer.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import TimeoutError

from synctv.api.app import Call, RouteTable, SynctvAPI
from synctv.api.live_routes import READY_TIMEOUT_S, _hub, _viewer_headers, _watch
from synctv.api.metrics import source_may_scrape
from synctv.core import node_auth
from synctv.core.errors import Forbidden, NotFound, Unauthorized, Unavailable
from synctv.live.live_urls import RELAY_ROUTE

ROUTES = RouteTable("node")


@ROUTES.route("GET", RELAY_ROUTE, "A live stream for another node (node-signed)", auth=False,
             content_type="video/x-flv", errors=(401, 403, 503),
             description="Internal: the nodes' relay of a stream ingested on this node. Needs "
                         "'Authorization: SynctvNode EXP NODE SIG' signed with the nodes' shared secret, and a "
                         "source in [server] node_networks when that is set.")
async def relay_flv(api: SynctvAPI, call: Call, room: str, media: str) -> Any:
    request = call.request
    hub = _hub(api)
    if hub.node_networks and not source_may_scrape(request, hub.node_networks):
        raise Forbidden("this door is for the nodes of the cluster ([server] node_networks)")
    header = request.getHeader(b"authorization")
    node = node_auth.verify(hub.node_key, header.decode("latin-1") if header is not None else None,
                            request.method.decode("ascii", "replace"), request.path.decode("latin-1"), hub.clock())
    if node is None:
        raise Unauthorized("this door is for the nodes of the cluster")
    stream = hub.relay_source(room, media)
    if stream is None:
        raise NotFound("the stream is not live on this node")
    try:
        ready = await stream.wait_ready().addTimeout(READY_TIMEOUT_S, api.reactor)
    except TimeoutError:
        raise Unavailable("the stream has not sent a keyframe yet; try again") from None
    if not ready:
        raise NotFound("the stream is not live on this node")
    hub.log.info("node {node} relays {room_id}/{media_id}", node=node, room_id=room, media_id=media)
    _viewer_headers(request, b"video/x-flv", b"no-store")
    return await _watch(stream, request, hub)
