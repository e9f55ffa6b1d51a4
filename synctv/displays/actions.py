"""The display use-cases (docs/displays.md): screens, their sessions, events and triggers.

Like ``synctv.actions.Actions`` this only orchestrates: load from the store, ask synctv.core
(schedule, triggers, permissions) what to do, persist, announce on the bus. Screens and events
belong to a room of kind ``display``; managing them needs ``manage_room`` in that room (site
admins hold it everywhere); giving an event a UDP port needs a site admin and a port inside
``[triggers] udp_ports`` (``synctv.core.triggers.check_udp_port``). Triggering needs no account: a show controller has none. The
cooldown is claimed by compare-and-set on ``last_triggered_at``, the start by compare-and-set on
the playback version, so racing triggers (on one node or several) give exactly one winner.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger

from synctv.actions import Actions
from synctv.bus import room_channel
from synctv.core import auth, permissions
from synctv.core.displays import (
    DEFAULT_COOLDOWN_S,
    Display,
    DisplayEvent,
    check_payload,
    display_stand_in,
    parse_networks,
    upload_url,
    video_id_of,
)
from synctv.core.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    RateLimited,
    Unauthorized,
    Unavailable,
)
from synctv.core.models import MediaItem, PlaybackState, Room, User
from synctv.core.permissions import Permission
from synctv.core.schedule import DEFAULT_LEAD_MS, cooldown_remaining, retry_after_s, scheduled_start
from synctv.core.triggers import DEFAULT_PORT_RANGES, PortRanges, check_udp_port, host_in, source_allowed
from synctv.displays.videos import VideoActions
from synctv.store.interface import UNSET

CLAIM_RETRIES = 5
SCHEDULE_RETRIES = 8
PUBLIC_ID_BYTES = 18  # 144 random bits: /display/{public_id} is a capability
MANAGE = "manage its displays and events"


@attrs.frozen
class TriggerSource:
    """Who asks: ``kind`` udp | http | cli, the peer address, and whether a site admin's token came."""

    kind: str
    host: str
    admin: bool = False


@attrs.frozen
class TriggerResult:
    event: DisplayEvent
    state: PlaybackState
    now_ms: int

    def to_json(self) -> dict[str, Any]:
        return {
            "event": self.event.to_json(),
            "state": self.state.to_json(),
            "at_ms": self.state.at_ms,
            "starts_in_ms": max(0, self.state.at_ms - self.now_ms),
        }


@attrs.frozen
class DisplaySession:
    token: str
    expires_at: int
    display: Display
    room: Room
    state: PlaybackState


def _show(ref: str) -> str:
    return repr(ref[:64] + ("..." if len(ref) > 64 else ""))


def _no_status(display_id: str) -> dict[str, Any] | None:
    return None


def _no_port_status(event: DisplayEvent) -> dict[str, Any]:
    return {"udp": "off" if event.udp_port is None else "unknown"}


def _nothing() -> Deferred[None]:
    return succeed(None)


class DisplayActions:
    log = Logger()

    def __init__(
        self, *, actions: Actions, secret: str, videos: VideoActions, lan_networks: Sequence[Any] = (),
        udp_ports: PortRanges = DEFAULT_PORT_RANGES,
        presence: Callable[[str], dict[str, Any] | None] | None = None,
        port_status: Callable[[DisplayEvent], dict[str, Any]] = _no_port_status,
        events_changed: Callable[[], Deferred[None]] = _nothing,
        watch_room: Callable[[str], None] = lambda room_id: None,
    ) -> None:
        """The last four are what the subsystem (``synctv.displays.subsystem``) connects, given at
        construction: ``presence`` a screen's online status and telemetry (realtime),
        ``port_status`` an event's UDP port state, ``events_changed`` rebinds the UDP ports on every
        node, ``watch_room`` has this node's end-of-video worker follow a room."""
        self.actions = actions
        self.store = actions.store
        self.clock = actions.clock
        self.bus = actions.bus
        self.videos = videos
        self.lan_networks = tuple(lan_networks)
        self.udp_ports = udp_ports
        self._secret = secret
        self.presence = presence if presence is not None else _no_status
        self.port_status = port_status
        self.events_changed = events_changed
        self.watch_room = watch_room

    # -- helpers --------------------------------------------------------------------------------

    async def _managed_room(self, actor: User, ref: str, field: str | None = None) -> Room:
        """The display room ``ref`` if ``actor`` may manage its displays and events (``Actions.access``)."""
        view = await self.actions.access(actor, ref, to=MANAGE, needs=Permission.manage_room, kind="display",
                                         field=field)
        return view.room

    async def _state(self, room_id: str) -> PlaybackState:
        state = await self.store.get_playback(room_id)
        return state if state is not None else PlaybackState()

    def _publish_state(self, room_id: str, state: PlaybackState) -> None:
        try:
            self.bus.publish(room_channel(room_id),
                             {"type": "playbackState", "room_id": room_id, "state": state.to_json()})
        except Exception:
            self.log.failure("publishing the playback state of room {room_id} failed", room_id=room_id)

    # -- displays -------------------------------------------------------------------------------

    def display_json(self, display: Display) -> dict[str, Any]:
        body = display.to_json()
        body["status"] = self.presence(display.id) or {"online": None}
        return body

    async def _display(self, actor: User, ref: str) -> tuple[Display, Room]:
        display = await self.store.get_display(ref) or await self.store.get_display_by_name(ref)
        if display is None:
            raise NotFound(f"no display {_show(ref)}")
        room = await self.store.get_room(display.room_id)
        if room is None:
            raise NotFound(f"no display {_show(ref)}")
        await self._managed_room(actor, room.id)
        return display, room

    async def list_displays(self, actor: User) -> list[Display]:
        allowed: dict[str, bool] = {}
        listed = []
        for display in await self.store.list_displays():
            if display.room_id not in allowed:
                allowed[display.room_id] = await self.actions.may(actor, display.room_id, Permission.manage_room)
            if allowed[display.room_id]:
                listed.append(display)
        return listed

    async def create_display(self, actor: User, name: str, room_ref: str) -> Display:
        room = await self._managed_room(actor, room_ref, field="room")
        if await self.store.get_display_by_name(name) is not None:
            raise Conflict(f"a display named {_show(name)} exists", field="name")
        display = Display(id=auth.new_id(), name=name, public_id=secrets.token_urlsafe(PUBLIC_ID_BYTES),
                          room_id=room.id, created_at=self.clock())
        created = await self.store.create_display(display)
        self.watch_room(room.id)
        self.log.info("{actor} added display {display_name} to room {room_name}", actor=actor.name,
                      display_name=name, room_name=room.name)
        return created

    async def get_display(self, actor: User, ref: str) -> Display:
        return (await self._display(actor, ref))[0]

    async def update_display(
        self, actor: User, ref: str, *, name: str = UNSET, room: str = UNSET, new_public_id: bool = False
    ) -> Display:
        """Rename, move to another display room, or give a new public id (old pages stop working)."""
        display, _ = await self._display(actor, ref)
        changes: dict[str, Any] = {}
        if name is not UNSET and name != display.name:
            changes["name"] = name
        if room is not UNSET:
            target = await self._managed_room(actor, room, field="room")
            if target.id != display.room_id:
                changes["room_id"] = target.id
                self.watch_room(target.id)
        if new_public_id:
            changes["public_id"] = secrets.token_urlsafe(PUBLIC_ID_BYTES)
        if not changes:
            return display
        updated = await self.store.update_display(display.id, **changes)
        if updated is None:
            raise NotFound(f"no display {_show(ref)}")
        return updated

    async def delete_display(self, actor: User, ref: str) -> str:
        display, _ = await self._display(actor, ref)
        if not await self.store.delete_display(display.id):
            raise NotFound(f"no display {_show(ref)}")
        self.log.info("{actor} deleted display {display_name}", actor=actor.name, display_name=display.name)
        return display.id

    # -- screens: sessions and their tokens -----------------------------------------------------

    async def open_session(self, public_id: str) -> DisplaySession:
        """What a display page gets for its ``public_id``: a display token and where to listen."""
        display = await self.store.get_display_by_public_id(public_id)
        if display is None:
            raise NotFound("no display has this address; check the URL in the admin UI")
        room = await self.store.get_room(display.room_id)
        if room is None:
            raise NotFound("no display has this address; check the URL in the admin UI")
        token, expires = auth.issue_display_token(self._secret, display.id, self.clock())
        self.watch_room(room.id)
        return DisplaySession(token, expires, display, room, await self._state(room.id))

    async def authenticate_display(self, token: str) -> tuple[Display, Room]:
        claims = auth.read_display_token(self._secret, token, self.clock())
        display = await self.store.get_display(claims.display_id)
        room = None if display is None else await self.store.get_room(display.room_id)
        if display is None or room is None:
            raise Unauthorized("this display was deleted; open its page again from the admin UI")
        return display, room

    async def display_principal(self, token: str, room_ref: str) -> Any:
        """The realtime seam (``synctv.realtime.auth.ConnectionAuthorizer.display_authenticator``):
        a read-only Principal for a display token, None for any other token."""
        if not auth.is_display_token(token):
            return None
        from synctv.realtime.auth import Principal

        display, room = await self.authenticate_display(token)
        if room_ref not in (room.id, room.name):
            raise Forbidden("a display token only opens its own display room")
        return Principal(user=display_stand_in(display), room=room, member=None, read_only=True, display_id=display.id)

    # -- events ---------------------------------------------------------------------------------

    def event_json(self, event: DisplayEvent) -> dict[str, Any]:
        body = event.to_json()
        body["status"] = self.port_status(event)
        return body

    async def _event(self, actor: User, ref: str) -> tuple[DisplayEvent, Room]:
        event = await self.store.get_event(ref) or await self.store.get_event_by_name(ref)
        if event is None:
            raise NotFound(f"no event {_show(ref)}")
        room = await self.store.get_room(event.room_id)
        if room is None:
            raise NotFound(f"no event {_show(ref)}")
        await self._managed_room(actor, room.id)
        return event, room

    async def _event_media(self, actor: User, room: Room, ref: str) -> MediaItem:
        """A media item of ``room`` named by its id, or by an uploaded video's id (then the room's
        item playing that video, created if it has none)."""
        item = await self.store.get_media(room.id, ref)
        if item is not None:
            return item
        video = await self.store.get_video(ref)
        if video is None:
            raise NotFound(f"no media item or uploaded video {_show(ref)} in room {_show(room.name)}",
                           field="media")
        for existing in await self.store.list_media(room.id):
            if existing.provider == "upload" and video_id_of(existing.url) == video.id:
                return existing
        return await self.actions.add_media(actor, room.id, url=upload_url(video.id), title=video.title,
                                            provider="upload", duration=video.duration)

    @staticmethod
    def _udp(port: int | None, payload: str | None) -> tuple[int | None, str | None]:
        if (port is None) != (payload is None):
            raise BadRequest("give udp_port and udp_payload together (or neither)",
                             field="udp_payload" if payload is None else "udp_port")
        if port is not None and not 1 <= port <= 65535:
            raise BadRequest("udp_port must be within 1..65535", field="udp_port")
        return port, None if payload is None else check_payload(payload)

    async def list_events(self, actor: User) -> list[DisplayEvent]:
        allowed: dict[str, bool] = {}
        listed = []
        for event in await self.store.list_events():
            if event.room_id not in allowed:
                allowed[event.room_id] = await self.actions.may(actor, event.room_id, Permission.manage_room)
            if allowed[event.room_id]:
                listed.append(event)
        return listed

    async def create_event(
        self, actor: User, *, name: str, room: str, media: str, udp_port: int | None = None,
        udp_payload: str | None = None, allowed_sources: Sequence[str] = (),
        cooldown_s: float = DEFAULT_COOLDOWN_S, lead_ms: int = DEFAULT_LEAD_MS,
    ) -> DisplayEvent:
        target = await self._managed_room(actor, room, field="room")
        udp_port, udp_payload = self._udp(udp_port, udp_payload)
        check_udp_port(udp_port, None, site_admin=permissions.is_site_admin(actor.role), allowed=self.udp_ports)
        parse_networks(allowed_sources)
        if await self.store.get_event_by_name(name) is not None:
            raise Conflict(f"an event named {_show(name)} exists", field="name")
        item = await self._event_media(actor, target, media)
        event = DisplayEvent(
            id=auth.new_id(), name=name, room_id=target.id, media_id=item.id, udp_port=udp_port,
            udp_payload=udp_payload, allowed_sources=tuple(allowed_sources), cooldown_s=float(cooldown_s),
            lead_ms=int(lead_ms), created_at=self.clock(),
        )
        created = await self.store.create_event(event)
        self.watch_room(target.id)
        self.log.info("{actor} created event {event_name} in room {room_name} (udp {udp_port})",
                      actor=actor.name, event_name=name, room_name=target.name, udp_port=udp_port)
        await self.events_changed()
        return created

    async def get_event(self, actor: User, ref: str) -> DisplayEvent:
        return (await self._event(actor, ref))[0]

    async def update_event(self, actor: User, ref: str, changes: Mapping[str, Any]) -> DisplayEvent:
        """``changes`` holds any of name, room, media, udp_port, udp_payload, allowed_sources,
        cooldown_s, lead_ms; a new room needs a media item of that room."""
        event, room = await self._event(actor, ref)
        fields: dict[str, Any] = {}
        if "name" in changes and changes["name"] != event.name:
            fields["name"] = changes["name"]
        if "room" in changes:
            room = await self._managed_room(actor, changes["room"], field="room")
            if room.id != event.room_id:
                if "media" not in changes:
                    raise BadRequest("moving an event to another room needs a media item of that room",
                                     field="media")
                fields["room_id"] = room.id
        port = changes.get("udp_port", event.udp_port)
        payload = changes.get("udp_payload", event.udp_payload)
        if "udp_port" in changes or "udp_payload" in changes:
            fields["udp_port"], fields["udp_payload"] = self._udp(port, payload)
            check_udp_port(fields["udp_port"], event.udp_port, site_admin=permissions.is_site_admin(actor.role),
                           allowed=self.udp_ports)
        if "media" in changes:
            fields["media_id"] = (await self._event_media(actor, room, changes["media"])).id
        if "allowed_sources" in changes:
            parse_networks(changes["allowed_sources"])
            fields["allowed_sources"] = tuple(changes["allowed_sources"])
        for key, convert in (("cooldown_s", float), ("lead_ms", int)):
            if key in changes:
                fields[key] = convert(changes[key])
        if not fields:
            return event
        updated = await self.store.update_event(event.id, **fields)
        if updated is None:
            raise NotFound(f"no event {_show(ref)}")
        self.watch_room(updated.room_id)
        await self.events_changed()
        return updated

    async def delete_event(self, actor: User, ref: str) -> str:
        event, _ = await self._event(actor, ref)
        if not await self.store.delete_event(event.id):
            raise NotFound(f"no event {_show(ref)}")
        self.log.info("{actor} deleted event {event_name}", actor=actor.name, event_name=event.name)
        await self.events_changed()
        return event.id

    # -- triggers -------------------------------------------------------------------------------

    async def trigger(
        self, ref: str, *, by_name: bool, source: TriggerSource, force: bool = False
    ) -> TriggerResult:
        """Start the event's media on every screen of its room at ``now + lead_ms``.

        Refusals: NotFound (no such event), Forbidden (a source the event does not allow, or
        ``force`` without a site admin's token or a source inside ``[triggers] lan_networks``),
        Conflict (its media item was removed), RateLimited (cooldown; ``detail.retry_after``).
        """
        event = await (self.store.get_event_by_name(ref) if by_name else self.store.get_event(ref))
        if event is None:
            raise NotFound(f"no event {_show(ref)}")
        if not source.admin and not source_allowed(source.host, event.networks()):
            raise Forbidden(f"{source.host} is not among the sources allowed to trigger {_show(event.name)}")
        if force and not (source.admin or host_in(source.host, self.lan_networks)):
            raise Forbidden("force=1 needs a site admin's token or a source inside [triggers] lan_networks")
        item = None if event.media_id is None else await self.store.get_media(event.room_id, event.media_id)
        if item is None:
            raise Conflict(f"the media item of event {_show(event.name)} was removed; give it another "
                           "(PATCH /api/events/{event} with media)", field="media")
        event = await self._claim(event, force)
        state = await self._schedule(event, item)
        now = self.clock()
        self.log.info(
            "event {event_name} triggered ({kind} from {host}{forced}): room {room_id} starts {media_id} "
            "at {at_ms}", event_name=event.name, kind=source.kind, host=source.host,
            forced=", forced" if force else "", room_id=event.room_id, media_id=item.id, at_ms=state.at_ms,
        )
        return TriggerResult(event, state, now)

    async def _claim(self, event: DisplayEvent, force: bool) -> DisplayEvent:
        """Record the trigger time if the cooldown allows it; of racing triggers exactly one wins."""
        for _ in range(CLAIM_RETRIES):
            now = self.clock()
            remaining = cooldown_remaining(event.last_triggered_at, event.cooldown_s, now)
            if remaining > 0 and not force:
                raise RateLimited(
                    f"event {_show(event.name)} is cooling down; try again in {remaining / 1000:.1f}s",
                    detail={"retry_after": retry_after_s(remaining), "retry_after_ms": remaining},
                )
            if await self.store.claim_event_trigger(event.id, event.last_triggered_at, now):
                return attrs.evolve(event, last_triggered_at=now)
            fresh = await self.store.get_event(event.id)
            if fresh is None:
                raise NotFound(f"no event {_show(event.name)}")
            event = fresh
        raise RateLimited(f"event {_show(event.name)} is being triggered by others right now",
                          detail={"retry_after": 1, "retry_after_ms": 1000})

    async def _schedule(self, event: DisplayEvent, item: MediaItem) -> PlaybackState:
        for _ in range(SCHEDULE_RETRIES):
            state = await self._state(event.room_id)
            new = scheduled_start(state, item.id, self.clock(), event.lead_ms, event.id)
            if await self.store.set_playback(event.room_id, new, state.version):
                self.watch_room(event.room_id)
                self._publish_state(event.room_id, new)
                return new
        raise Unavailable("the room's playback kept changing while the event was being scheduled; try again")

    # -- for the end-of-video worker ------------------------------------------------------------

    async def duration_of(self, room_id: str, media_id: str) -> float | None:
        """A media item's duration; for an uploaded video without one, the video's probed duration."""
        item = await self.store.get_media(room_id, media_id)
        if item is None:
            return None
        if item.duration is not None:
            return item.duration
        video_id = video_id_of(item.url) if item.provider == "upload" else None
        return None if video_id is None else await self.videos.duration_of(video_id)
