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

import gc
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
    before the database is open are closed, and clients retry. This is the one late binding of
    the start-up, and by design: the port exists before the subsystems do, and ``open`` hands it
    the finished factory once.
    """

    noisy = False  # the Site logs its own start

    def __init__(self) -> None:
        self.site: Factory | None = None

    def open(self, factory: Factory) -> None:
        """From now on every connection goes to ``factory``."""
        assert self.site is None, "a gate opens once"
        self.site = factory

    def buildProtocol(self, addr: Any) -> Protocol | None:
        return self.site.buildProtocol(addr) if self.site is not None else None

    def doStart(self) -> None:
        if self.site is not None:
            self.site.doStart()

    def doStop(self) -> None:
        if self.site is not None:
            self.site.doStop()


class OrderedServices(service.MultiService):
    """A MultiService whose children stop one after another, the last added first, each waited
    for (MultiService stops them all at once), so a later subsystem may rely on an earlier one
    until it has stopped: the Site drains before the proxy closes, and so on."""

    def stopService(self) -> defer.Deferred[None]:
        service.Service.stopService(self)
        return defer.ensureDeferred(self._stop_children())

    async def _stop_children(self) -> None:
        for child in reversed(list(self)):
            try:
                await defer.maybeDeferred(child.stopService)
            except Exception:
                log.failure("stopping {child} failed", child=type(child).__name__)


class SynctvService(OrderedServices):
    """The whole server. Its subsystems are child services, made once the store is open, in the
    order they depend on each other and stopped in reverse (``OrderedServices``):

    workers (scheduler: probes, auto-advance, display following) -> leader election -> live hub
    (RTMP ingest) -> realtime (WebSockets) -> the Site (HTTP drain) -> media proxy -> displays
    (UDP trigger ports, end-of-video worker)

    i.e. at shutdown the workers stop first (timers cancelled, probes in flight settled, the
    leader lock released), then the ports close, publishers and FLV viewers end, WebSockets close
    with 1001, requests in flight finish (up to ``DRAIN_S``), upstream connections and the slice
    cache close, trigger ports are released; then the bus and the store close.
    """

    def __init__(self, config: Config, secret: str, provider_key: bytes | None = None) -> None:
        super().__init__()
        self.config = config
        self.secret = secret
        self.provider_key = provider_key  # seals provider accounts' secrets (synctv.providers.secrets)
        self.catalog: Any = None  # synctv.providers.node.Catalog, once serving
        self.http_gate = _ReadyGate()
        self.http_port: IListeningPort | None = None
        self.rtmp_gate = _ReadyGate()
        self.rtmp_port: IListeningPort | None = None
        self.store: Any = None
        self.bus: Any = None
        self.site: Any = None  # synctv.site.SynctvSite, once serving
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

    def child(self, name: str) -> Any:
        """A running subsystem by name (``live``, ``realtime``, ``site``, ``proxy``, ``displays``,
        ``workers``, ``leader``)."""
        return self.getServiceNamed(name)

    def _adopt(self, name: str, child: service.Service) -> None:
        child.setName(name)
        child.setServiceParent(self)  # starts it: the parent is running

    async def _open(self) -> None:
        import attrs
        from twisted.internet import reactor

        from synctv.actions import Actions
        from synctv.api.metrics import HttpMetrics
        from synctv.bus import InProcessBus
        from synctv.core.clock import ServerClock
        from synctv.core.realtime import RealtimeLimits
        from synctv.core.throttle import PasswordThrottle
        from synctv.displays.subsystem import DisplayRuntime
        from synctv.live.node import build_live_hub, default_node_url, live_providers, node_id
        from synctv.live.rtmp.protocol import RTMPFactory
        from synctv.passwords import PasswordHasher
        from synctv.providers import default_providers
        from synctv.providers.node import build_catalog, load_provider_key
        from synctv.providers.upload import UploadProvider
        from synctv.proxy.gateway import open_media_proxy
        from synctv.proxy.proxy_urls import ProxyLinks
        from synctv.realtime.resource import build_realtime, new_runtime
        from synctv.site import SiteService, build_site
        from synctv.store import open_store, parse_database_url
        from synctv.workers.node import build_workers

        config = self.config
        url = parse_database_url(config.database_url)
        self.store = await open_store(url)
        if url.dialect == "postgres":  # several nodes may share the database: LISTEN/NOTIFY
            from synctv.bus_postgres import PostgresBus

            self.bus = PostgresBus(url.dsn)
            await self.bus.start()
        else:
            self.bus = InProcessBus()
        clock = ServerClock()
        assert self.http_port is not None and self.rtmp_port is not None
        http, rtmp = self.http_port.getHost(), self.rtmp_port.getHost()
        node_url = config.node_url or default_node_url(getattr(http, "host", ""), getattr(http, "port", 0))
        live = build_live_hub(config, store=self.store, clock=clock, secret=self.secret, reactor=reactor,
                              node=node_id(getattr(http, "port", 0)), node_url=node_url,
                              rtmp_port=getattr(rtmp, "port", None), bus=self.bus)
        base_url = config.public_url.rstrip("/") if config.public_url else ""
        self.catalog = catalog = build_catalog(config, store=self.store, clock=clock, reactor=reactor,
                                               key=self.provider_key or load_provider_key(config))
        providers = default_providers(*live_providers(live), UploadProvider(self.store, base_url), *catalog.providers)
        proxy_links = ProxyLinks(self.secret, public_url=config.public_url)
        actions = Actions(
            store=self.store, clock=clock, secret=self.secret, bus=self.bus, providers=providers,
            hasher=PasswordHasher(threads=config.auth.hash_threads, queue=config.auth.hash_queue, reactor=reactor),
            throttle=PasswordThrottle(config.auth), signers={"proxy": proxy_links, "live": live.links},
        )
        proxy = await open_media_proxy(config.proxy, data_dir=config.data, links=proxy_links, actions=actions,
                                       reactor=reactor)
        limits = RealtimeLimits(**attrs.asdict(config.realtime))
        realtime = new_runtime(actions=actions, limits=limits, scheduler=reactor, feeds=(catalog.danmaku,),
                                     ice_servers=config.webrtc.ice_servers)
        metrics = HttpMetrics(scrape_networks=config.metrics_networks)
        displays = DisplayRuntime(
            actions=actions, secret=self.secret, data_dir=config.data, web_dir=web_dir(), reactor=reactor,
            triggers=config.triggers, limits=config.displays, public_url=config.public_url,
            registry=metrics.registry, presence=realtime.display_status, follow_all=False,
        )
        _, ws = build_realtime(actions, limits, reactor=reactor, runtime=realtime,
                               display_authenticator=displays.display_authenticator)
        site = build_site(actions, web_dir=web_dir(), reactor=reactor, live=live, proxy=proxy, displays=displays,
                          metrics=metrics, accounts=catalog.accounts, online=realtime.online, ws=ws,
                          access_log=config.access_log_target)
        self._adopt("displays", displays)
        await displays.ready
        self._adopt("proxy", proxy)
        self._adopt("site", SiteService(site, reactor, DRAIN_S))
        self._adopt("realtime", realtime)
        self._adopt("live", live)
        workers = build_workers(config.workers, actions=actions, realtime=realtime, displays=displays,
                                upstream=proxy.client, reactor=reactor,
                                dsn=url.dsn if url.dialect == "postgres" else None)
        self._adopt("leader", workers.leader)
        self._adopt("workers", workers.scheduler)
        self.site = site
        settle_heap()
        self.http_gate.open(site)
        self.rtmp_gate.open(RTMPFactory(live))
        log.info("synctv serving RTMP on {host}:{port}", host=getattr(rtmp, "host", "?"), port=getattr(rtmp, "port", "?"))
        log.info(
            "synctv serving HTTP on {host}:{port}, database {db}, data {data}",
            host=getattr(http, "host", "?"),
            port=getattr(http, "port", "?"),
            db=url.redacted(),
            data=str(config.data),
        )

    def _start_failed(self, failure: Any) -> None:
        from twisted.internet import reactor

        log.failure("synctv could not start; stopping", failure)
        self.ready.errback(failure)
        reactor.stop()

    async def _stop(self) -> None:
        if self.http_port is not None:
            await self.http_port.stopListening()
        if self.rtmp_port is not None:
            await self.rtmp_port.stopListening()
        await super().stopService()  # the subsystems, in reverse order
        if self.catalog is not None:
            await self.catalog.http.close()
        if hasattr(self.bus, "stop"):
            await self.bus.stop()
        if self.store is not None:
            await self.store.close()
        log.info("synctv stopped")

    def stopService(self) -> defer.Deferred[None]:
        return defer.ensureDeferred(self._stop())


GC_THRESHOLDS = (10_000, 10, 100)  # Python's defaults: (700, 10, 10)


def settle_heap() -> None:
    """Keep what the server built at start out of the garbage collector's full passes, and make
    those passes rare.

    Modules, classes, routes, the store's and the subsystems' objects live as long as the
    process; every full (generation 2) pass walked them again (52,000-89,000 objects in a serving
    process) and stopped the reactor for it: 39-71 ms, measured in the middle of proxied hits.
    ``gc.freeze`` after a last collection moves them to the permanent generation, so a full pass
    only walks what was made since. Objects frozen this way are never collected, which is what
    they would be anyway.

    The thresholds (``GC_THRESHOLDS``): a young collection every 10,000 net allocations instead of
    700, and a full pass after 100 middle ones instead of 10 (Python still waits until the objects
    promoted since the last full pass are a quarter of the old ones). With Python's defaults,
    10,000 WebSockets connecting set off 15 full passes over the growing heap of live
    connections, 29-372 ms each, 2.8-3.2 s of the 24 s it took; with these, none
    (docs/benchmarks.md, "Realtime"). Cyclic garbage waits longer to be collected, which costs
    memory only while connections that made it come and go by the thousand."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def makeService(options: Options) -> service.IService:
    from synctv.bootstrap import bootstrap
    from synctv.core.clock import ServerClock
    from synctv.providers.node import load_provider_key
    from synctv.providers.secrets import KeyFileError
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
    try:
        provider_key = load_provider_key(config)
    except (KeyFileError, OSError) as e:
        _fail(str(e))
    return SynctvService(config, boot.secret, provider_key)
