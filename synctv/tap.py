"""twistd entry point: ``twistd -n synctv [--config FILE] [--data DIR] [--http EP] [--rtmp EP] [--db URL]``.

Startup order, all before the reactor serves anyone:
1. options + config file -> ``Config`` (bad values: one line on stderr, exit status 1);
2. database migrations and the first-start bootstrap (token secret, root user), synchronously;
3. the listening ports are bound in ``privilegedStartService`` (a port in use: one line, exit 1);
4. when the reactor runs, the store opens and the Site starts answering.
Shutdown reverses it: stop listening, let in-flight requests finish (up to ``DRAIN_S``), close
the database.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from twisted.application import service
from twisted.internet import defer, endpoints
from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python import usage

from synctv.config import Config, ConfigError, load_config

log = Logger()

DRAIN_S = 5.0


def web_dir() -> Path:
    """The browser files: ``synctv/web`` (package data) in an installed wheel, else ``web/`` of
    the checkout the package runs from (a checkout or an editable install; see build_web.py)."""
    package = Path(__file__).resolve().parent
    installed = package / "web"
    return installed if installed.is_dir() else package.parent / "web"


def _fail(message: str) -> None:
    """Stop the start with one line on the real stderr (twistd may have redirected sys.stderr to
    its log by now, so the line goes to the log as well, where a daemon's operator looks)."""
    stream = sys.__stderr__ or sys.stderr
    if sys.stderr is not stream:
        log.error("synctv: {message}", message=message)
    stream.write(f"synctv: {message}\n")
    stream.flush()
    raise SystemExit(1)


class Options(usage.Options):
    synopsis = "[--config FILE] [--data DIR] [--http ENDPOINT] [--rtmp ENDPOINT] [--db URL]"
    longdesc = (
        "Watch-together rooms, LAN synchronized displays and live streams on one reactor. "
        "Options override the TOML config file. See README.md and docs/operations.md."
    )
    optParameters = [
        ["config", "c", None, "TOML config file (every key optional)"],
        ["data", "d", None, "data directory [default: ./synctv-data]"],
        ["http", None, None, "HTTP + WebSocket endpoint [default: tcp:8080]"],
        ["rtmp", None, None, "RTMP endpoint [default: tcp:1935]"],
        ["db", None, None, "database URL [default: sqlite:///<data>/synctv.db]"],
    ]

    config: Config

    def postOptions(self) -> None:
        try:
            self.config = load_config(self["config"], self)
        except ConfigError as e:
            _fail(str(e))


class _ReadyGate(Factory):
    """Holds the listening port until the Site is ready, then hands every connection to it.

    Binding early lets a port in use fail the start with a clear message (and lets twistd bind
    privileged ports before dropping privileges); connections arriving in the few milliseconds
    before the database is open are closed, and clients retry.
    """

    noisy = False  # the Site logs its own start

    def __init__(self) -> None:
        self.site: Factory | None = None

    def buildProtocol(self, addr: Any) -> Protocol | None:
        return self.site.buildProtocol(addr) if self.site is not None else None

    def doStart(self) -> None:
        if self.site is not None:
            self.site.doStart()

    def doStop(self) -> None:
        if self.site is not None:
            self.site.doStop()


class SynctvService(service.MultiService):
    """The whole server: database, HTTP Site (API, WebSocket, web files); later RTMP and workers."""

    def __init__(self, config: Config, secret: str) -> None:
        super().__init__()
        self.config = config
        self.secret = secret
        self.http_gate = _ReadyGate()
        self.http_port: IListeningPort | None = None
        self.rtmp_gate = _ReadyGate()
        self.rtmp_port: IListeningPort | None = None
        self.live: Any = None  # synctv.live.service.LiveHub
        self.proxy: Any = None  # synctv.proxy.gateway.MediaProxy
        self.store: Any = None
        self.bus: Any = None
        self.site: Any = None
        self.realtime: Any = None  # synctv.realtime.runtime.ConnectionRuntime
        self.displays: Any = None  # synctv.displays.runtime.DisplayRuntime
        self.ready: defer.Deferred[None] = defer.Deferred()

    def _listen(self, description: str, factory: Factory, what: str) -> IListeningPort:
        from twisted.internet import reactor

        d = endpoints.serverFromString(reactor, description).listen(factory)
        result: list[Any] = []
        d.addBoth(result.append)
        if not result:  # an endpoint that cannot bind synchronously
            d.addErrback(lambda f: log.failure("cannot listen on {what}", f, what=what))
            raise RuntimeError(f"{what} endpoint {description} did not bind synchronously")
        if isinstance(result[0], Exception) or hasattr(result[0], "getErrorMessage"):
            message = result[0].getErrorMessage() if hasattr(result[0], "getErrorMessage") else result[0]
            _fail(f"cannot listen for {what} on {description}: {message}")
        return result[0]

    def privilegedStartService(self) -> None:
        self.http_port = self._listen(self.config.http, self.http_gate, "HTTP")
        self.rtmp_port = self._listen(self.config.rtmp, self.rtmp_gate, "RTMP")
        super().privilegedStartService()

    def startService(self) -> None:
        super().startService()
        d = defer.ensureDeferred(self._open())
        d.addCallbacks(self.ready.callback, self._start_failed)

    async def _open(self) -> None:
        from synctv.actions import Actions
        from synctv.bus import InProcessBus
        from synctv.core.clock import ServerClock
        from synctv.providers import default_providers
        from synctv.site import build_site
        from synctv.store import open_store, parse_database_url

        url = parse_database_url(self.config.database_url)
        self.store = await open_store(url)
        if url.dialect == "postgres":  # several nodes may share the database: LISTEN/NOTIFY
            from synctv.bus_postgres import PostgresBus

            self.bus = PostgresBus(url.dsn)
            await self.bus.start()
        else:
            self.bus = InProcessBus()
        providers = default_providers()
        self._start_live(providers)
        actions = Actions(
            store=self.store,
            clock=ServerClock(),
            secret=self.secret,
            bus=self.bus,
            providers=providers,
        )
        self.site = build_site(actions, web_dir=web_dir(), live=self.live)
        await self._open_proxy(actions)
        await self._open_displays(actions)
        self._mount_realtime(actions)
        self.http_gate.site = self.site
        self.site.doStart()
        assert self.http_port is not None
        address = self.http_port.getHost()
        log.info(
            "synctv serving HTTP on {host}:{port}, database {db}, data {data}",
            host=getattr(address, "host", "?"),
            port=getattr(address, "port", "?"),
            db=url.redacted(),
            data=str(self.config.data),
        )

    async def _open_proxy(self, actions: Any) -> None:
        """The media proxy (slice cache under <data>/cache when [proxy] cache = "file")."""
        from twisted.internet import reactor

        from synctv.proxy.gateway import open_media_proxy

        self.proxy = await open_media_proxy(self.config.proxy, data_dir=self.config.data, secret=self.secret,
                                            reactor=reactor, public_url=self.config.public_url)
        self.proxy.attach(actions)
        actions.proxy_links = self.proxy.links  # PlaybackInfo then offers signed proxy URLs
        self.site.api.proxy = self.proxy

    async def _open_displays(self, actions: Any) -> None:
        """Display screens, events, UDP trigger ports, uploads and the end-of-video worker."""
        from twisted.internet import reactor

        from synctv.displays.runtime import DisplayRuntime

        self.displays = DisplayRuntime(
            actions=actions, secret=self.secret, data_dir=self.config.data, web_dir=web_dir(), reactor=reactor,
            lan_networks=self.config.triggers.lan_networks, public_url=self.config.public_url,
            max_video_bytes=self.config.displays.max_video_bytes,
            max_image_bytes=self.config.displays.max_image_bytes, registry=self.site.api.metrics.registry,
        )
        self.displays.attach(self.site)
        await self.displays.start()

    def _mount_realtime(self, actions: Any) -> None:
        """The WebSocket endpoint /ws/rooms/{room} in the Site, and its connection runtime."""
        import attrs
        from twisted.internet import reactor

        from synctv.core.realtime import RealtimeLimits
        from synctv.realtime.resource import build_realtime

        limits = RealtimeLimits(**attrs.asdict(self.config.realtime))
        displays = self.displays.display_authenticator if self.displays is not None else None
        self.realtime, ws = build_realtime(actions, limits, reactor=reactor, display_authenticator=displays)
        self.site.mount_ws(ws)
        self.realtime.start()
        if self.displays is not None:  # a screen's online status and telemetry come from its sockets
            status = self.realtime.display_status
            self.displays.displays.presence = lambda display_id: status(display_id) or {"online": False}

    def _start_live(self, providers: Any) -> None:
        """The live hub (streams, keys, live proxy), its providers, and RTMP connections to it."""
        from twisted.internet import reactor

        from synctv.core.clock import ServerClock
        from synctv.live.node import build_live_hub, node_id, register_live_providers
        from synctv.live.rtmp.protocol import RTMPFactory

        assert self.http_port is not None and self.rtmp_port is not None
        http, rtmp = self.http_port.getHost(), self.rtmp_port.getHost()
        node_url = self.config.public_url or f"http://{getattr(http, 'host', '127.0.0.1')}:{getattr(http, 'port', 0)}"
        self.live = build_live_hub(self.config, store=self.store, clock=ServerClock(), secret=self.secret,
                                   reactor=reactor, node=node_id(getattr(http, "port", 0)), node_url=node_url)
        self.live.rtmp_port = getattr(rtmp, "port", None)
        register_live_providers(providers, self.live)
        self.live.start()
        self.rtmp_gate.site = RTMPFactory(self.live)
        log.info("synctv serving RTMP on {host}:{port}", host=getattr(rtmp, "host", "?"), port=getattr(rtmp, "port", "?"))

    def _start_failed(self, failure: Any) -> None:
        from twisted.internet import reactor

        log.failure("synctv could not start; stopping", failure)
        self.ready.errback(failure)
        reactor.stop()

    async def _stop(self) -> None:
        from twisted.internet import reactor

        if self.http_port is not None:
            await self.http_port.stopListening()
        if self.rtmp_port is not None:
            await self.rtmp_port.stopListening()
        if self.live is not None:  # publishers get an onStatus and a close; FLV viewers an end
            self.live.stop()
        if self.realtime is not None:  # WebSockets: close 1001 before the HTTP drain
            await self.realtime.close_all()
        if self.site is not None:
            await self.site.wait_idle(reactor, DRAIN_S)
        if self.proxy is not None:  # upstream connections, then pending slice cache writes
            await self.proxy.close()
        if self.displays is not None:  # UDP trigger ports and end-of-video timers
            await self.displays.stop()
        await super().stopService()
        if hasattr(self.bus, "stop"):
            await self.bus.stop()
        if self.store is not None:
            await self.store.close()
        log.info("synctv stopped")

    def stopService(self) -> defer.Deferred[None]:
        return defer.ensureDeferred(self._stop())


def makeService(options: Options) -> service.IService:
    from synctv.bootstrap import bootstrap
    from synctv.core.clock import ServerClock
    from synctv.store import parse_database_url
    from synctv.store.migrate import MigrationError, migrate

    config = options.config
    url = parse_database_url(config.database_url)
    try:
        migrate(url, progress=lambda line: log.info("{line}", line=line))
        boot = bootstrap(url, config.data, ServerClock()())
    except MigrationError as e:
        _fail(str(e))
    except Exception as e:  # a database error during bootstrap
        _fail(f"cannot prepare the database {url.redacted()}: {e}")
    return SynctvService(config, boot.secret)
