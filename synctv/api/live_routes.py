"""Live routes (docs/live.md): stream keys, HTTP-FLV, HLS and stream info of live media items.

``ROUTES`` is served by the ``SynctvAPI`` that ``synctv.site.build_site`` makes (and so is in
the OpenAPI document). They reach the live side through ``api.live`` (a ``LiveHub``, given to
the API); without it they answer 503 after the usual 401/403/404 checks.

Viewer routes (``live.flv``, ``hls/index.m3u8``, ``hls/segment.ts``) take either a bearer token of
a room member or the ``exp``/``sig`` of a signed URL from the item's PlaybackInfo, so players
that cannot send headers play those URLs as they are; with neither they answer 401.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from twisted.internet import tcp
from twisted.internet.defer import CancelledError, TimeoutError
from twisted.web.iweb import IRequest

from synctv.api import schema as s
from synctv.api.app import Call, RouteTable, SynctvAPI, bearer_token
from synctv.api.openapi import QueryParam
from synctv.core.errors import BadRequest, NotFound, Unauthorized, Unavailable
from synctv.core.models import MediaItem, User
from synctv.core.permissions import Permission
from synctv.live.fanout import FLVViewer, http_chunk
from synctv.live.service import LIVE_PROVIDERS, LiveHub
from synctv.live.streams import LiveStream
from synctv.socket_writes import write_now

ROUTES = RouteTable("live")
_HOST = re.compile(r"^[A-Za-z0-9.:\[\]-]{1,255}$")
ITEM = "/api/rooms/{room}/media/{media}"
READY_TIMEOUT_S = 15.0  # a new FLV viewer waits this long for the stream's first keyframe
FIRST_SEGMENT_TIMEOUT_S = 20.0  # a playlist request waits this long for the first segment
PLAYLIST_TYPE = b"application/vnd.apple.mpegurl"
SEGMENT_CACHE = b"max-age=3600, immutable"  # a segment URL never names other bytes

STREAM_KEY = s.Schema(name="StreamKey", fields={
    "rtmp_url": s.Str(max_len=4096, description="OBS: Server"),
    "stream_key": s.Str(max_len=256, description="OBS: Stream Key"),
    "publish_url": s.Str(max_len=4096, description="rtmp_url/stream_key, for ffmpeg"),
    "created_at": s.TIME_MS,
    "issued": s.Bool(description="true when this call made a new key"),
})
STREAM_INFO = s.JsonObject(max_bytes=1 << 20, description="state, codecs, size, fps, bitrate, uptime, viewers, ...")


class RequestSink:
    """A twisted.web request as an FLV viewer's sink. The first write goes through the request (it
    sends the headers); later ones straight to a plain TCP transport (``synctv.socket_writes.write_now``), framed
    as a chunk when the response is chunked (HTTP/1.1)."""

    def __init__(self, request: IRequest) -> None:
        self.request = request
        self._transport: Any = None
        self._chunked = False

    def write(self, data: bytes) -> None:
        transport = self._transport
        if transport is not None:
            write_now(transport, http_chunk(data) if self._chunked else data)
            return
        self.request.write(data)
        channel = getattr(self.request, "channel", None)
        transport = getattr(channel, "transport", None)
        if self.request.method != b"HEAD" and self.request.startedWriting and type(transport) is tcp.Server:
            self._transport = transport  # HTTP/1.x on plain TCP (not TLS, not an HTTP/2 stream)
            self._chunked = bool(getattr(self.request, "chunked", False))

    def finish(self) -> None:
        """Nothing: the route handler returns when the viewer is done, and Klein finishes."""

    def abort(self) -> None:
        channel = getattr(self.request, "channel", None)
        if channel is not None and channel.transport is not None:
            channel.transport.abortConnection()

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        self.request.registerProducer(producer, streaming)

    def unregisterProducer(self) -> None:
        if getattr(self.request, "channel", None) is not None and self.request.producer is not None:
            self.request.unregisterProducer()


def _hub(api: SynctvAPI) -> LiveHub:
    hub = getattr(api, "live", None)
    if hub is None:
        raise Unavailable("live streaming is not running on this server")
    return hub


def _live_item(item: MediaItem) -> MediaItem:
    if item.provider not in LIVE_PROVIDERS:
        raise NotFound("this media item is not a live stream", field="media")
    return item


async def _member_item(api: SynctvAPI, actor: User, room_ref: str, media_id: str,
                       needed: Permission | None = None, what: str = "watch") -> MediaItem:
    _, item = await api.actions.access_media(actor, room_ref, media_id, to=what, needs=needed)
    return _live_item(item)


def _has_signature(request: IRequest) -> bool:
    return bool(request.args.get(b"sig") or request.args.get(b"exp"))


async def _viewer_item(api: SynctvAPI, request: IRequest, room_ref: str, media_id: str) -> tuple[MediaItem, str]:
    """The live item a viewer may play and who they are: a member's bearer token, or a valid
    signature naming a user who may still watch (``Actions.access_by_grant``)."""
    if request.getHeader(b"authorization") is not None:
        actor = await api.actions.authenticate(bearer_token(request))
        return await _member_item(api, actor, room_ref, media_id), actor.id
    if not _has_signature(request):
        raise Unauthorized("send 'Authorization: Bearer TOKEN' or use the signed URL from the item's playback "
                           "endpoint (GET .../playback)")
    room, item = await api.actions.find_media(room_ref, media_id)
    _live_item(item)
    hub = _hub(api)
    user_id = hub.links.verify(room.id, item.id, request.args, hub.clock())
    if user_id is None:
        raise Unauthorized("the signed URL is invalid or has expired; get a new one from the playback endpoint")
    await api.actions.access_by_grant(user_id, room, to="watch")
    return item, user_id


def _viewer_headers(request: IRequest, content_type: bytes, cache: bytes) -> None:
    request.setHeader(b"Content-Type", content_type)
    request.setHeader(b"Cache-Control", cache)
    request.setHeader(b"Access-Control-Allow-Origin", b"*")
    # the bytes come from a publisher: the browser must believe the type and never run them as a page
    request.setHeader(b"X-Content-Type-Options", b"nosniff")
    request.setHeader(b"Content-Security-Policy", b"sandbox")


def _client(request: IRequest) -> str:
    address = request.getClientAddress()
    agent = request.getHeader(b"user-agent") or b""
    return f"{getattr(address, 'host', '?')} {hash(agent) & 0xFFFF:04x}"


# -- stream keys --------------------------------------------------------------------------------

@ROUTES.route("POST", f"{ITEM}/stream-key", "The item's RTMP URL and stream key (manage_live)",
             response=STREAM_KEY, errors=(403, 409, 503),
             query=(QueryParam("rotate", "1 to replace the key (a publish using the old one stops)", "1"),),
             description="Issues a key the first time; later calls show the same key unless rotate=1. "
                         "Publish to publish_url (rtmp_url/stream_key). Only rtmp items take a key.")
async def issue_stream_key(api: SynctvAPI, call: Call, room: str, media: str) -> Any:
    item = await _member_item(api, call.actor, room, media, Permission.manage_live, "manage live streams")
    hub = _hub(api)
    rotate = call.request.args.get(b"rotate", [b"0"])[0] in (b"1", b"true")
    key, issued = await hub.stream_key(item, rotate=rotate)
    host = call.request.getRequestHostname().decode("ascii", "replace")
    rtmp_url = hub.rtmp_url(host if _HOST.match(host) else None)
    return {"rtmp_url": rtmp_url, "stream_key": key.key, "publish_url": f"{rtmp_url}/{key.key}",
            "created_at": key.created_at, "issued": issued}


@ROUTES.route("DELETE", f"{ITEM}/stream-key", "Revoke the item's stream key (manage_live)",
             response=s.REVOKED, errors=(403, 503),
             description="A publish using the key stops; revoked is false when the item had no key.")
async def revoke_stream_key(api: SynctvAPI, call: Call, room: str, media: str) -> Any:
    item = await _member_item(api, call.actor, room, media, Permission.manage_live, "manage live streams")
    return {"revoked": await _hub(api).revoke_key(item)}


@ROUTES.route("GET", f"{ITEM}/stream", "Stream info of a live item", response=STREAM_INFO, errors=(403, 503),
             description="state (live, ended, offline), codecs, width, height, fps, bitrate, uptime, viewers, "
                         "dropped, HLS state, the live proxy's upstream, and the node holding the publisher.")
async def stream_info(api: SynctvAPI, call: Call, room: str, media: str) -> Any:
    item = await _member_item(api, call.actor, room, media)
    return await _hub(api).info(item)


# -- viewers ------------------------------------------------------------------------------------

@ROUTES.route("GET", f"{ITEM}/live.flv", "The live stream as HTTP-FLV", auth=False, content_type="video/x-flv",
             errors=(401, 403, 503),
             description="Starts at the last keyframe, then follows live; ends when the publisher stops. "
                         "A bearer token of a member, or the signed URL from the playback endpoint.")
async def live_flv(api: SynctvAPI, call: Call, room: str, media: str) -> Any:
    request = call.request
    item, _ = await _viewer_item(api, request, room, media)
    hub = _hub(api)
    stream = await hub.stream_for_viewing(item)
    if not stream.publishing:
        raise NotFound("the stream is not live")
    try:
        ready = await stream.wait_ready().addTimeout(READY_TIMEOUT_S, api.reactor)
    except TimeoutError:
        raise Unavailable("the stream has not sent a keyframe yet; try again") from None
    if not ready:
        raise NotFound("the stream is not live")
    _viewer_headers(request, b"video/x-flv", b"no-store")
    return await _watch(stream, request, hub)


async def _watch(stream: LiveStream, request: IRequest, hub: LiveHub) -> bytes:
    settings = hub.registry.settings
    viewer = FLVViewer(RequestSink(request), max_buffer=settings.viewer_buffer_bytes,
                       max_skips=settings.max_viewer_skips)
    request.notifyFinish().addErrback(lambda _: viewer.stopProducing())
    stream.attach(viewer)
    try:
        await viewer.done
    except CancelledError:  # the viewer went away; Klein cancels the handler
        viewer.stopProducing()
        raise
    return b""


def _sequence(request: IRequest) -> int:
    raw = request.args.get(b"seq", [b""])[0]
    if not raw.isdigit() or len(raw) > 19:
        raise BadRequest("seq must be a segment number from the playlist", field="seq")
    return int(raw)


@ROUTES.route("GET", f"{ITEM}/hls/index.m3u8", "The live stream's HLS playlist", auth=False,
             content_type="application/vnd.apple.mpegurl", errors=(401, 403, 503),
             description="A live playlist (EXT-X-ENDLIST once the publisher stopped). The first request of a "
                         "stream that just started waits for its first segment.")
async def hls_playlist(api: SynctvAPI, call: Call, room: str, media: str) -> Any:
    request = call.request
    item, user_id = await _viewer_item(api, request, room, media)
    hub = _hub(api)
    stream = await hub.stream_for_viewing(item)
    hls = stream.hls
    if hls is None:
        raise NotFound("this stream has no HLS")
    hls.touch(_client(request))
    if not hls.segments and stream.publishing:
        try:
            await hls.wait_for_segment().addTimeout(FIRST_SEGMENT_TIMEOUT_S, api.reactor)
        except TimeoutError:
            raise Unavailable("the stream has no HLS segment yet; try again") from None
    if not hls.segments:
        raise NotFound("the stream is not live")
    query = hub.links.query_of(request.args)
    if not query:  # a bearer token: sign the segments for that user
        query = urlencode(hub.links.sign(item.room_id, item.id, user_id, hub.clock()))
    body = hls.playlist(lambda sequence: f"segment.ts?seq={sequence}&{query}")
    _viewer_headers(request, PLAYLIST_TYPE, b"no-cache")
    return body.encode("utf-8")


@ROUTES.route("GET", f"{ITEM}/hls/segment.ts", "One HLS segment (named by the playlist)", auth=False,
             content_type="video/mp2t", errors=(400, 401, 403, 503),
             query=(QueryParam("seq", "the segment number", "17000000000"),))
async def hls_segment(api: SynctvAPI, call: Call, room: str, media: str) -> Any:
    request = call.request
    item, _ = await _viewer_item(api, request, room, media)
    sequence = _sequence(request)
    stream = _hub(api).registry.get(item.room_id, item.id)
    data = await stream.hls.segment(sequence) if stream is not None and stream.hls is not None else None
    if data is None:
        raise NotFound("no such segment (it may have left the playlist)")
    _viewer_headers(request, b"video/mp2t", SEGMENT_CACHE)
    request.setHeader(b"Content-Length", str(len(data)).encode("ascii"))
    return data
