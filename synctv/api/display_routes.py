"""HTTP routes of LAN synchronized displays (docs/displays.md, docs/api.md).

``ROUTES`` is served by the ``SynctvAPI`` that ``synctv.site.build_site`` makes (so OpenAPI and
the route tests see them). Handlers reach the display subsystem through ``api.displays`` (a
``synctv.displays.subsystem.DisplayRuntime``, given to the API); without it they answer 503. Authentication per route: ``user`` (a bearer user token), ``user_or_display``
(a user token or a display token), ``optional`` (a token is used when sent: triggers), ``none``.
"""

from __future__ import annotations

import functools
import pathlib
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import urlsplit

import attrs
from twisted.web import static
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource

from synctv.api import display_schema as ds
from synctv.api import schema as s
from synctv.api.app import Call, RouteTable, SynctvAPI, bearer_token, read_json_body, render_json
from synctv.api.errors import JSON_CONTENT_TYPE
from synctv.api.openapi import QueryParam, RouteDoc
from synctv.core import auth, permissions
from synctv.core.errors import BadRequest, NotFound, Unavailable
from synctv.core.models import User
from synctv.displays.actions import TriggerSource
from synctv.store.interface import UNSET

Handler = Callable[..., Coroutine[Any, Any, Any]]
ROUTES = RouteTable("displays")
IMMUTABLE = b"public, max-age=31536000, immutable"
DEFAULT_IDLE_IMAGE = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="1920" height="1080" viewBox="0 0 1920 1080">'
    b'<rect width="1920" height="1080" fill="#000"/></svg>'
)
FORCE = QueryParam("force", "1 bypasses the cooldown (site admins, or sources in [triggers] lan_networks)",
                   "1")


@attrs.frozen
class Caller:
    """Who calls a ``user_or_display`` route: a user, or a screen (its display and room)."""

    user: User | None = None
    display: Any = None
    room: Any = None


def _runtime(api: SynctvAPI) -> Any:
    runtime = getattr(api, "displays", None)
    if runtime is None:
        raise Unavailable("displays are not set up on this server")
    return runtime


async def _optional_user(api: SynctvAPI, request: IRequest) -> User | None:
    if request.getHeader(b"authorization") is None:
        return None
    return await api.actions.authenticate(bearer_token(request))


def route(
    method: str, path: str, summary: str, *, auth_mode: str = "user", **options: Any
) -> Callable[[Handler], Handler]:
    """Declare a route in ``ROUTES`` like ``RouteTable.route``, with this module's auth modes;
    a handler may return a dict (JSON), bytes (Content-Type set by it) or a twisted.web resource."""
    doc = RouteDoc(method=method, path=path, summary=summary, auth=auth_mode not in ("none", "optional"),
                   **options)

    def decorate(f: Handler) -> Handler:
        @functools.wraps(f)
        async def handler(api: SynctvAPI, request: IRequest, **params: str) -> Any:
            request.synctv_route = doc.path
            actor: Any = None
            if auth_mode == "user":
                actor = await api.actions.authenticate(bearer_token(request))
            elif auth_mode == "optional":
                actor = await _optional_user(api, request)
            elif auth_mode == "user_or_display":
                token = bearer_token(request)
                if auth.is_display_token(token):
                    display, room = await _runtime(api).displays.authenticate_display(token)
                    actor = Caller(display=display, room=room)
                else:
                    actor = Caller(user=await api.actions.authenticate(token))
            body = doc.body.parse(read_json_body(request)) if doc.body is not None else {}
            result = await f(_runtime(api), Call(request, actor, body), **params)
            if IResource.providedBy(result):
                return result
            if isinstance(result, bytes):
                request.setResponseCode(doc.status)
                return result
            return render_json(request, result, doc.status)

        ROUTES.add(doc, handler)
        return f

    return decorate


# -- displays ------------------------------------------------------------------------------------

@route("GET", "/api/displays", "Screens of the display rooms you manage", response=ds.DISPLAYS)
async def list_displays(rt: Any, call: Call) -> Any:
    displays = await rt.displays.list_displays(call.actor)
    return {"displays": [rt.displays.display_json(d) for d in displays]}


@route("POST", "/api/displays", "Add a screen to a display room (manage_room)", body=ds.DISPLAY_CREATE,
       response=ds.ONE_DISPLAY, status=201, errors=(403, 409),
       description="The answer's public_id makes the screen's page /display/{public_id}.")
async def create_display(rt: Any, call: Call) -> Any:
    display = await rt.displays.create_display(call.actor, call.body["name"], call.body["room"])
    return {"display": rt.displays.display_json(display)}


@route("GET", "/api/displays/{display}", "A screen (manage_room)", response=ds.ONE_DISPLAY, errors=(403,))
async def get_display(rt: Any, call: Call, display: str) -> Any:
    return {"display": rt.displays.display_json(await rt.displays.get_display(call.actor, display))}


@route("PATCH", "/api/displays/{display}", "Rename, move or re-address a screen (manage_room)",
       body=ds.DISPLAY_PATCH, response=ds.ONE_DISPLAY, errors=(403, 409))
async def update_display(rt: Any, call: Call, display: str) -> Any:
    b = call.body
    updated = await rt.displays.update_display(
        call.actor, display, name=b.get("name", UNSET), room=b.get("room", UNSET),
        new_public_id=b.get("new_public_id", False),
    )
    return {"display": rt.displays.display_json(updated)}


@route("DELETE", "/api/displays/{display}", "Remove a screen (manage_room)", response=s.DELETED,
       errors=(403,))
async def delete_display(rt: Any, call: Call, display: str) -> Any:
    return {"deleted": await rt.displays.delete_display(call.actor, display)}


def _ws_url(rt: Any, room_id: str) -> str:
    path = f"/ws/rooms/{room_id}"
    if not rt.public_url:
        return path
    parts = urlsplit(rt.public_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}{path}"


@route("POST", "/api/displays/{public_id}/session", "A screen's session: a display token and where to listen",
       auth_mode="none", response=ds.SESSION,
       description="For the page /display/{public_id}. The token opens /ws/rooms/{room} read-only and "
                   "GET /api/videos; call again for a new one when it expires or is refused.")
async def display_session(rt: Any, call: Call, public_id: str) -> Any:
    session = await rt.displays.open_session(public_id)
    return {
        "token": session.token, "expires_at": session.expires_at, "room_id": session.room.id,
        "room": session.room.to_json(), "display": rt.displays.display_json(session.display),
        "ws_url": _ws_url(rt, session.room.id), "idle_image_url": rt.base_url + "/admin/idle-image",
        "videos_url": rt.base_url + "/api/videos", "state": session.state.to_json(),
        "server_time_ms": rt.displays.clock(),
    }


@route("GET", "/display/{public_id}", "A screen's page (web/display.html)", auth_mode="none",
       content_type="text/html", errors=(503,))
async def display_page(rt: Any, call: Call, public_id: str) -> Any:
    if await rt.displays.store.get_display_by_public_id(public_id) is None:
        raise NotFound("no display has this address; check the URL in the admin UI")
    page = pathlib.Path(rt.web_dir) / "display.html"
    if not page.is_file():
        raise Unavailable("the display page is not installed (web/display.html)")
    call.request.setHeader(b"Cache-Control", b"no-cache")
    return static.File(str(page), defaultType="text/html; charset=utf-8")


# -- events --------------------------------------------------------------------------------------

@route("GET", "/api/events", "Display events of the rooms you manage, with their UDP port status",
       response=ds.EVENTS)
async def list_events(rt: Any, call: Call) -> Any:
    return {"events": [rt.displays.event_json(e) for e in await rt.displays.list_events(call.actor)]}


@route("POST", "/api/events", "Create a display event (manage_room)", body=ds.EVENT_CREATE,
       response=ds.ONE_EVENT, status=201, errors=(403, 409),
       description="media is a media item of the room, or an uploaded video's id (the room then gets an "
                   "upload item for it). A UDP port is bound at once; status tells whether it could be.")
async def create_event(rt: Any, call: Call) -> Any:
    b = call.body
    event = await rt.displays.create_event(
        call.actor, name=b["name"], room=b["room"], media=b["media"], udp_port=b.get("udp_port"),
        udp_payload=b.get("udp_payload"), allowed_sources=b["allowed_sources"], cooldown_s=b["cooldown_s"],
        lead_ms=b["lead_ms"],
    )
    return {"event": rt.displays.event_json(event)}


@route("GET", "/api/events/{event}", "A display event (manage_room)", response=ds.ONE_EVENT, errors=(403,))
async def get_event(rt: Any, call: Call, event: str) -> Any:
    return {"event": rt.displays.event_json(await rt.displays.get_event(call.actor, event))}


@route("PATCH", "/api/events/{event}", "Change a display event (manage_room)", body=ds.EVENT_PATCH,
       response=ds.ONE_EVENT, errors=(403, 409))
async def update_event(rt: Any, call: Call, event: str) -> Any:
    return {"event": rt.displays.event_json(await rt.displays.update_event(call.actor, event, call.body))}


@route("DELETE", "/api/events/{event}", "Delete a display event (manage_room)", response=s.DELETED,
       errors=(403,))
async def delete_event(rt: Any, call: Call, event: str) -> Any:
    return {"deleted": await rt.displays.delete_event(call.actor, event)}


def _force(request: IRequest) -> bool:
    values = request.args.get(b"force") or []
    if not values:
        return False
    value = values[-1].strip().lower()
    if value not in (b"0", b"1", b"true", b"false"):
        raise BadRequest("force must be 1 or 0", field="force")
    return value in (b"1", b"true")


async def _trigger(rt: Any, call: Call, ref: str, by_name: bool) -> Any:
    host = str(getattr(call.request.getClientAddress(), "host", ""))
    admin = call.actor is not None and permissions.is_site_admin(call.actor.role)
    source = TriggerSource(kind="http", host=host, admin=admin)
    try:
        result = await rt.displays.trigger(ref, by_name=by_name, source=source, force=_force(call.request))
    except BaseException as e:
        rt.metrics.count_trigger("http", e)
        raise
    rt.metrics.count_trigger("http", None)
    return result.to_json()


_TRIGGER_DOC = dict(
    auth_mode="optional", response=ds.TRIGGERED, errors=(403, 409, 429), query=(FORCE,),
    description="Schedules the event's media on every screen of its room at now + lead_ms. No account is "
                "needed; a cooldown answers 429 with Retry-After. force=1 needs a site admin's token or a "
                "source inside [triggers] lan_networks (the TCP peer address; X-Forwarded-For is ignored).",
)


@route("GET", "/trigger/{event_id}", "Trigger a display event", **_TRIGGER_DOC)
async def trigger_get(rt: Any, call: Call, event_id: str) -> Any:
    return await _trigger(rt, call, event_id, by_name=False)


@route("POST", "/trigger/{event_id}", "Trigger a display event", **_TRIGGER_DOC)
async def trigger_post(rt: Any, call: Call, event_id: str) -> Any:
    return await _trigger(rt, call, event_id, by_name=False)


@route("GET", "/trigger_by_name/{name}", "Trigger a display event by its name", **_TRIGGER_DOC)
async def trigger_by_name_get(rt: Any, call: Call, name: str) -> Any:
    return await _trigger(rt, call, name, by_name=True)


@route("POST", "/trigger_by_name/{name}", "Trigger a display event by its name", **_TRIGGER_DOC)
async def trigger_by_name_post(rt: Any, call: Call, name: str) -> Any:
    return await _trigger(rt, call, name, by_name=True)


# -- videos --------------------------------------------------------------------------------------

@route("GET", "/api/videos", "Uploaded videos; for a display token, those its screen should cache",
       auth_mode="user_or_display", response=ds.VIDEOS)
async def list_videos(rt: Any, call: Call) -> Any:
    room_id = call.actor.room.id if call.actor.display is not None else None
    listed = await rt.videos.list_videos(room_id)
    return {"videos": [rt.videos.to_json(video, media_ids) for video, media_ids in listed]}


def _query(request: IRequest, name: bytes) -> str | None:
    values = request.args.get(name) or []
    return values[-1].decode("utf-8", "replace") if values else None


async def _spooled(rt: Any, request: IRequest) -> tuple[pathlib.Path, int]:
    """The upload's file and size: the Spool's, or (a site without UploadRequest) the small body."""
    from synctv.api.uploads import Spool  # not at import time: uploads imports the Site, which imports us

    content = request.content
    if isinstance(content, Spool):
        return content.claim(), content.size
    data = content.read() if content is not None else b""
    path = rt.videos.new_spool_path()
    await rt.videos.write_file(path, data)
    return path, len(data)


@route("POST", "/api/videos", "Upload a video (site admins): the raw file is the body", response=ds.ONE_VIDEO,
       status=201, errors=(403, 413),
       query=(QueryParam("title", "the video's title (default: the file name)", "Intro"),
              QueryParam("filename", "the file's name, for its title and container", "intro.mp4")),
       description="Send the file as the request body (not a form), with its Content-Type; at most "
                   "[displays] max_video_bytes. ffprobe reads its duration and container.")
async def upload_video(rt: Any, call: Call) -> Any:
    path, size = await _spooled(rt, call.request)
    video = await rt.videos.add(
        call.actor, path, size, title=_query(call.request, b"title"),
        filename=_query(call.request, b"filename"),
        content_type=(call.request.getHeader(b"content-type") or b"").decode("latin-1") or None,
    )
    return {"video": rt.videos.to_json(video)}


@route("PATCH", "/api/videos/{video}", "Rename a video (site admins)", body=ds.VIDEO_PATCH,
       response=ds.ONE_VIDEO, errors=(403,))
async def rename_video(rt: Any, call: Call, video: str) -> Any:
    return {"video": rt.videos.to_json(await rt.videos.rename(call.actor, video, call.body["title"]))}


@route("DELETE", "/api/videos/{video}", "Delete a video no media item plays (site admins)",
       response=s.DELETED, errors=(403, 409))
async def delete_video(rt: Any, call: Call, video: str) -> Any:
    return {"deleted": await rt.videos.delete(call.actor, video)}


@route("GET", "/api/videos/{video}/file", "A video's bytes (Range requests honoured)", auth_mode="none",
       content_type="video/*",
       description="The address is a capability: the video id is random and only listed to users and "
                   "screens.")
async def video_file(rt: Any, call: Call, video: str) -> Any:
    found = await rt.videos.get(video)
    path = rt.videos.file_path(found)
    if not await rt.videos.exists(path):
        raise NotFound("this video's file is not stored on this server")
    call.request.setHeader(b"Cache-Control", IMMUTABLE)
    call.request.setHeader(b"X-Content-Type-Options", b"nosniff")
    return static.File(str(path), defaultType=found.content_type)


# -- the idle image ------------------------------------------------------------------------------

@route("GET", "/admin/idle-image", "What screens show when nothing plays", auth_mode="none",
       content_type="image/*",
       description="The uploaded image, or a black 1920x1080 SVG when none was uploaded.")
async def get_idle_image(rt: Any, call: Call) -> Any:
    call.request.setHeader(b"Cache-Control", b"no-cache")
    call.request.setHeader(b"X-Content-Type-Options", b"nosniff")
    image = rt.videos.idle_image()
    if image is None:
        call.request.setHeader(b"Content-Type", b"image/svg+xml")
        return DEFAULT_IDLE_IMAGE
    return static.File(str(rt.videos.idle_image_path), defaultType=image.content_type)


@route("PUT", "/admin/idle-image", "Replace the idle image (site admins): the raw image is the body",
       response=ds.IDLE_IMAGE, errors=(403, 413),
       description="PNG, JPEG, GIF, WebP or AVIF, at most [displays] max_image_bytes.")
async def put_idle_image(rt: Any, call: Call) -> Any:
    path, size = await _spooled(rt, call.request)
    image = await rt.videos.set_idle_image(call.actor, path, size)
    call.request.setHeader(b"Content-Type", JSON_CONTENT_TYPE)
    return attrs.asdict(image)

