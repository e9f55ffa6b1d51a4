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
    """The browser files: ``web/`` beside the package in a checkout or editable install,
    ``<prefix>/share/synctv/web`` in a normal install."""
    beside = Path(__file__).resolve().parent.parent / "web"
    if beside.is_dir():
        return beside
    return Path(sys.prefix) / "share" / "synctv" / "web"


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
        self.store: Any = None
        self.site: Any = None
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
        actions = Actions(
            store=self.store,
            clock=ServerClock(),
            secret=self.secret,
            bus=InProcessBus(),
            providers=default_providers(),
        )
        self.site = build_site(actions, web_dir=web_dir())
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

    def _start_failed(self, failure: Any) -> None:
        from twisted.internet import reactor

        log.failure("synctv could not start; stopping", failure)
        self.ready.errback(failure)
        reactor.stop()

    async def _stop(self) -> None:
        from twisted.internet import reactor

        if self.http_port is not None:
            await self.http_port.stopListening()
        if self.site is not None:
            await self.site.wait_idle(reactor, DRAIN_S)
        await super().stopService()
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
