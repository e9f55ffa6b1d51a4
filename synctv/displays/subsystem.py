"""The display subsystem assembled: use-cases, UDP trigger ports, the end-of-video worker, and
their hooks into the Site (routes, upload spooling), the providers and the bus.

``synctv.tap`` builds one ``DisplayRuntime`` once the store is open, before the Site, and gives it
to ``build_site`` (its routes' use-cases, and ``uploads``, the policy the Site's requests spool
bodies by); as a child service it ``start``s, and ``stop`` releases the ports and timers before the
store closes. Every hook it connects is given to ``DisplayActions`` at construction.

Which display rooms the end-of-show worker follows: with ``follow_all=False`` (the server:
``synctv.tap``) only the display rooms with a screen (a connection) on this node, as the
per-node scheduler reports them each tick through ``follow`` (docs/workers.md); a show that no
screen watches is ended by the first node that gets a screen in its room (the worker plans from
the stored state, and an end already past is written at once). With ``follow_all=True`` (the default, for
tests without a connection runtime) every display room is followed from the start.

Across nodes (several synctv processes on one PostgreSQL database) the ``displays`` bus channel
carries ``{"type": "eventsChanged"}`` (every node rebinds its UDP ports) and, when following all,
``{"type": "displayRoom", "room_id"}`` (every node's worker follows that room). Videos and the idle image are
files in each node's data directory: give the nodes a shared one, or upload to each.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread
from twisted.logger import Logger

from synctv.actions import Actions
from synctv.api.uploads import UploadBudget, UploadPolicy, UploadRoute
from synctv.bus import Message
from synctv.config import DisplaysConfig, TriggerConfig
from synctv.core import auth, permissions
from synctv.core.displays import DisplayEvent
from synctv.core.errors import Forbidden
from synctv.displays.actions import DisplayActions, TriggerResult, TriggerSource
from synctv.displays.videos import VideoActions
from synctv.providers.upload import UploadProvider
from synctv.triggers.udp import TriggerMetrics, UdpTriggerPorts
from synctv.workers.ended import EndedWorker

EVENTS_CHANNEL = "displays"
VIDEO_TYPES = ("video/", "application/octet-stream")
IMAGE_TYPES = ("image/", "application/octet-stream")


class DisplayRuntime(Service):
    """See the module docstring. ``presence(display_id)`` tells a screen's online status and
    telemetry (the realtime runtime's ``display_status``). As a Twisted ``Service``,
    ``startService`` begins ``start()`` (its Deferred is ``ready``) and ``stopService`` runs
    ``stop()``."""

    log = Logger()

    def __init__(
        self, *, actions: Actions, secret: str, data_dir: Path, web_dir: Path, reactor: Any,
        triggers: TriggerConfig = TriggerConfig(), limits: DisplaysConfig = DisplaysConfig(),
        public_url: str | None = None, registry: CollectorRegistry | None = None, ffprobe: str = "ffprobe",
        run_in_thread: Any = deferToThread, presence: Any = None, timer: Any = None, follow_all: bool = True,
    ) -> None:
        """``triggers`` and ``limits`` are the ``[triggers]`` and ``[displays]`` config sections;
        ``reactor`` binds the UDP ports; ``timer`` (default: ``reactor``) paces their retries and the
        lingering close of refused uploads."""
        self.actions = actions
        self.follow_all = follow_all
        self._kinds: dict[str, str] = {}  # active room -> kind (a room's kind never changes)
        self.store = actions.store
        self.bus = actions.bus
        self.clock = actions.clock
        self.web_dir = Path(web_dir)
        self.public_url = public_url
        self.base_url = public_url.rstrip("/") if public_url else ""
        self.videos = VideoActions(store=self.store, clock=self.clock, data_dir=data_dir,
                                   base_url=self.base_url, ffprobe=ffprobe, run_in_thread=run_in_thread)
        self.metrics = TriggerMetrics(registry)
        self.ports = UdpTriggerPorts(load_events=self.store.list_events, fire=self._fire_udp, reactor=reactor,
                                     clock=self.clock, interface=triggers.udp_bind, allowed=triggers.udp_ports,
                                     timer=timer, metrics=self.metrics)
        self.worker = EndedWorker(store=self.store, bus=self.bus, clock=self.clock, reactor=reactor,
                                  duration_of=self._duration_of, on_room_deleted=self._room_deleted)
        self.displays = DisplayActions(
            actions=actions, secret=secret, videos=self.videos, lan_networks=triggers.lan_networks,
            udp_ports=triggers.udp_ports, port_status=self.ports.status, events_changed=self._events_changed,
            watch_room=self._watch,
            presence=None if presence is None else (lambda display_id: presence(display_id) or {"online": False}),
        )
        self.ready: Deferred[None] | None = None
        if "upload" not in actions.providers:
            actions.providers.register(UploadProvider(self.store, self.base_url))
        self.uploads = UploadPolicy(
            [UploadRoute(b"POST", b"/api/videos", limits.max_video_bytes, VIDEO_TYPES),
             UploadRoute(b"PUT", b"/admin/idle-image", limits.max_image_bytes, IMAGE_TYPES)],
            spool_path=self.videos.new_spool_path,
            check_token=lambda token: auth.read_token(secret, token, self.clock()),
            authorize=self._authorize_upload,
            budget=UploadBudget(limits.max_uploads_per_user, limits.max_spool_bytes),
            timer=timer if timer is not None else reactor, run_in_thread=run_in_thread,
        )
        self._unsubscribe: Any = None

    def startService(self) -> None:
        super().startService()
        self.ready = Deferred.fromCoroutine(self.start())

    def stopService(self) -> Deferred[None]:
        super().stopService()
        return Deferred.fromCoroutine(self.stop())

    async def start(self) -> None:
        await self.videos.prepare()
        self._unsubscribe = self.bus.subscribe(EVENTS_CHANNEL, self._message)
        await self.ports.reconcile()
        if self.follow_all:
            for room in await self.store.list_rooms():
                if room.kind == "display":
                    self.worker.watch(room.id)

    async def follow(self, active: Any) -> None:
        """Follow exactly the display rooms among ``active`` (this node's rooms with a
        connection): the scheduler's display step (``synctv.workers.scheduler``)."""
        active = set(active)
        for room_id in self.worker.watching() - active:
            self.worker.unwatch(room_id)
        self._kinds = {room_id: kind for room_id, kind in self._kinds.items() if room_id in active}
        for room_id in sorted(active - self.worker.watching()):
            if room_id not in self._kinds:
                room = await self.store.get_room(room_id)
                if room is None:
                    continue
                self._kinds[room_id] = room.kind
            if self._kinds[room_id] == "display" and room_id in active:
                self.worker.watch(room_id)

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        await self.ports.stop()
        await self.worker.stop()

    # -- the realtime seam ------------------------------------------------------------------------

    def display_authenticator(self, token: str, room_ref: str) -> Deferred[Any]:
        """``ConnectionAuthorizer(display_authenticator=...)``: a read-only Principal for a display
        token, None for any other token."""
        return Deferred.fromCoroutine(self.displays.display_principal(token, room_ref))

    # -- wiring -------------------------------------------------------------------------------------

    def _publish(self, message: Message) -> None:
        try:
            self.bus.publish(EVENTS_CHANNEL, message)
        except Exception:
            self.log.failure("publishing {message_type} failed", message_type=message.get("type"))

    def _events_changed(self) -> Deferred[None]:
        self._publish({"type": "eventsChanged"})
        return self.ports.reconcile()

    def _message(self, message: Message) -> None:
        kind = message.get("type")
        if kind in ("eventsChanged", "busGap"):
            self.ports.reconcile()
        elif kind == "displayRoom" and self.follow_all and isinstance(message.get("room_id"), str):
            if message["room_id"] not in self.worker.watching():
                self.worker.watch(message["room_id"])

    def _watch(self, room_id: str) -> None:
        if self.follow_all and room_id not in self.worker.watching():
            self.worker.watch(room_id)
            self._publish({"type": "displayRoom", "room_id": room_id})

    def _room_deleted(self, room_id: str) -> None:
        self.ports.reconcile()  # its events went with it

    def _duration_of(self, room_id: str, media_id: str) -> Deferred[float | None]:
        return Deferred.fromCoroutine(self.displays.duration_of(room_id, media_id))

    def _authorize_upload(self, token: str) -> Deferred[Any]:
        """Before an upload's body is read: the token is current (not revoked) and its user a site
        admin (both upload routes are for site admins)."""
        return Deferred.fromCoroutine(self._upload_actor(token))

    async def _upload_actor(self, token: str) -> Any:
        user = await self.actions.authenticate(token)
        if not permissions.is_site_admin(user.role):
            raise Forbidden("uploads need a site admin; ask one to upload the file")
        return user

    def _fire_udp(self, event: DisplayEvent, host: str) -> Deferred[TriggerResult]:
        source = TriggerSource(kind="udp", host=host)
        return Deferred.fromCoroutine(self.displays.trigger(event.id, by_name=False, source=source))
