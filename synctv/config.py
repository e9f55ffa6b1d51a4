"""Typed configuration: a TOML file (every key optional) overlaid by command-line options.

``load_config`` returns a frozen ``Config`` or raises ``ConfigError`` whose message is one line a
person can act on (which file, which key, what is accepted). Nothing here starts anything.
"""

from __future__ import annotations

import ipaddress
import os
import tempfile
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from synctv.core.realtime import RealtimeConfig
from synctv.core.throttle import ThrottleConfig
from synctv.core.triggers import DEFAULT_PORT_RANGES, PRIVATE_NETWORKS, PortRanges
from synctv.live.rtmp import limits as rtmp

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


#: ``[server] metrics_networks``: sources that may scrape /metrics without a token (loopback).
DEFAULT_METRICS_NETWORKS: tuple[Network, ...] = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


class ConfigError(Exception):
    """A bad configuration value; ``str(err)`` is one line for the operator."""


@attrs.frozen
class ProxyConfig:
    slice_size: int = 1 << 20
    cache: str = "memory"  # memory | file
    cache_bytes: int = 256 << 20
    allow_networks: tuple[Network, ...] = ()


@attrs.frozen
class TriggerConfig:
    """``[triggers]`` (docs/displays.md): who may force, which UDP ports events may bind, and where."""

    lan_networks: tuple[Network, ...] = tuple(ipaddress.ip_network(n) for n in PRIVATE_NETWORKS)
    udp_ports: PortRanges = DEFAULT_PORT_RANGES
    udp_bind: str = "0.0.0.0"


@attrs.frozen
class LiveConfig:
    """``[live]`` (docs/live.md)."""

    segment_s: float = 2.0
    playlist_len: int = 6
    idle_s: float = 30.0
    gop_cache_bytes: int = 8 << 20
    viewer_buffer_bytes: int = 4 << 20
    hls_store: str = "memory"  # memory | file (<data>/live/hls)
    hls_max_bytes: int = 64 << 20  # per stream
    link_ttl_s: float = 6 * 3600.0
    pull_idle_s: float = 10.0
    rtmp_public_url: str | None = None
    flush_ms: int = 40  # FLV fan-out: publisher reads coalesce for up to this long (0: write each read)
    # The RTMP door (synctv/live/rtmp/limits.py): bytes one connection may make us hold, connections
    # at once, and the time a connection has to finish the handshake and an authorized publish.
    max_buffer_bytes: int = rtmp.MAX_BUFFER_BYTES
    max_connections: int = rtmp.MAX_CONNECTIONS
    max_connections_per_address: int = rtmp.MAX_CONNECTIONS_PER_ADDRESS
    publish_timeout_s: float = rtmp.PUBLISH_TIMEOUT_S


@attrs.frozen
class DisplaysConfig:
    """``[displays]`` (docs/displays.md): upload limits."""

    max_video_bytes: int = 4 << 30
    max_image_bytes: int = 32 << 20
    max_uploads_per_user: int = 2  # uploads of one user receiving at once
    max_spool_bytes: int = 8 << 30  # bytes of all uploads on their way in (<data>/videos/.incoming)


@attrs.frozen
class ProvidersConfig:
    """``[providers]`` (docs/providers.md): where the account-secret key is, and Bilibili's API bases."""

    key_file: str | None = None  # default <data>/provider-key
    bilibili_api: str = "https://api.bilibili.com"
    bilibili_live_api: str = "https://api.live.bilibili.com"
    enabled: tuple[str, ...] = ("alist", "emby", "jellyfin", "bilibili")


@attrs.frozen
class WorkersConfig:
    """``[workers]`` (docs/workers.md, docs/operations.md): the per-node scheduler, the duration
    probe and the leader election."""

    tick_s: float = 1.0  # how often the scheduler looks at this node's active rooms
    probe: bool = True  # probe items of active rooms that have no duration
    probe_concurrency: int = 4  # probes in flight on this node
    probe_timeout_s: float = 30.0  # one probe's reads, all together
    probe_lease_s: float = 120.0  # how long a claimed item is this node's (a dead node's claim expires)
    probe_backoff_s: float = 30.0  # first retry after a failure; doubles per failure
    probe_max_backoff_s: float = 3600.0
    leader_s: float = 15.0  # leader election and cluster-once jobs interval


def _check_workers(workers: WorkersConfig) -> None:
    if not 0.05 <= workers.tick_s <= 60:
        raise ConfigError("[workers] tick_s must be between 0.05 and 60 seconds")
    if not 1 <= workers.probe_concurrency <= 64:
        raise ConfigError("[workers] probe_concurrency must be between 1 and 64")
    if not 1 <= workers.probe_timeout_s <= 600:
        raise ConfigError("[workers] probe_timeout_s must be between 1 and 600 seconds")
    if not workers.probe_timeout_s < workers.probe_lease_s <= 86400:
        raise ConfigError("[workers] probe_lease_s must be longer than probe_timeout_s and at most a day")
    if not 0.1 <= workers.probe_backoff_s <= workers.probe_max_backoff_s <= 7 * 86400:
        raise ConfigError("[workers] probe_backoff_s must be at least 0.1 s and at most probe_max_backoff_s "
                          "(at most a week)")
    if not 0.2 <= workers.leader_s <= 600:
        raise ConfigError("[workers] leader_s must be between 0.2 and 600 seconds")


@attrs.frozen
class WebRTCConfig:
    """``[webrtc]``: ICE servers for the room page's voice, sent to members in the WebSocket
    ``welcome`` (docs/realtime.md). Each is an RTCIceServer ``{urls: [...], username?, credential?}``;
    none is needed on a LAN."""

    ice_servers: tuple[dict[str, Any], ...] = ()


ICE_SCHEMES = ("stun:", "stuns:", "turn:", "turns:")
MAX_ICE_SERVERS = 16


def _ice_servers(value: Any, where: str) -> tuple[dict[str, Any], ...]:
    """``ice_servers``: a list of URLs ("stun:host:3478") or of tables {urls, username, credential}."""
    how = f'{where} must be a list of "stun:HOST:PORT" / "turn:HOST:PORT" URLs or of {{urls, username, credential}} tables'
    if not isinstance(value, list) or len(value) > MAX_ICE_SERVERS:
        raise ConfigError(how + f" (at most {MAX_ICE_SERVERS})")
    servers = []
    for entry in value:
        table = {"urls": entry} if isinstance(entry, str) else entry
        if not isinstance(table, dict) or set(table) - {"urls", "username", "credential"}:
            raise ConfigError(how)
        urls = table.get("urls")
        urls = [urls] if isinstance(urls, str) else urls
        if not isinstance(urls, list) or not urls or not all(isinstance(u, str) for u in urls):
            raise ConfigError(how)
        for url in urls:
            if not url.startswith(ICE_SCHEMES) or len(url) > 512 or any(ch.isspace() for ch in url):
                raise ConfigError(f"{where}: {url[:80]!r} is not a STUN or TURN URL such as stun:stun.example.org:3478")
        server: dict[str, Any] = {"urls": list(urls)}
        for key in ("username", "credential"):
            if key in table:
                if not isinstance(table[key], str):
                    raise ConfigError(f"{where}: {key} must be a string")
                server[key] = table[key]
        if any(u.startswith(("turn:", "turns:")) for u in urls) and not ("username" in server and "credential" in server):
            raise ConfigError(f"{where}: a TURN server needs username and credential")
        servers.append(server)
    return tuple(servers)


@attrs.frozen
class Config:
    data: Path
    http: str = "tcp:8080"
    rtmp: str = "tcp:1935"
    db: str = ""  # a database URL; empty means sqlite:///<data>/synctv.db
    public_url: str | None = None
    metrics_networks: tuple[Network, ...] = DEFAULT_METRICS_NETWORKS
    # Several nodes (docs/live.md "Several nodes"): this node's address for the others, and the
    # networks the others call from (empty: any source holding a valid node signature).
    node_url: str | None = None
    node_networks: tuple[Network, ...] = ()
    # "log" (the server's log), "off", or a file (relative: under data); synctv.access_log
    access_log: str = "log"
    proxy: ProxyConfig = ProxyConfig()
    triggers: TriggerConfig = TriggerConfig()
    live: LiveConfig = LiveConfig()
    realtime: RealtimeConfig = attrs.field(factory=RealtimeConfig)
    displays: DisplaysConfig = DisplaysConfig()
    auth: ThrottleConfig = attrs.field(factory=ThrottleConfig)
    webrtc: WebRTCConfig = WebRTCConfig()
    providers: ProvidersConfig = ProvidersConfig()
    workers: WorkersConfig = WorkersConfig()

    @property
    def database_url(self) -> str:
        return self.db or f"sqlite:///{self.data / 'synctv.db'}"

    @property
    def access_log_target(self) -> str | Path:
        """``"log"``, ``"off"``, or the access log file's absolute path."""
        if self.access_log in ("log", "off"):
            return self.access_log
        return self.data / Path(self.access_log).expanduser()

    @property
    def provider_key_file(self) -> Path:
        key_file = self.providers.key_file
        return Path(key_file).expanduser().absolute() if key_file else self.data / "provider-key"


# section -> key -> (type check, description of what is accepted)
_SCHEMA: dict[str, dict[str, str]] = {
    "server": {"data": "str", "http": "str", "rtmp": "str", "db": "str", "public_url": "str",
               "metrics_networks": "networks", "node_url": "str", "node_networks": "networks", "access_log": "str"},
    "proxy": {"slice_size": "int", "cache": "str", "cache_bytes": "int", "allow_networks": "networks"},
    "triggers": {"lan_networks": "networks", "udp_ports": "str", "udp_bind": "str"},
    "displays": {"max_video_bytes": "int", "max_image_bytes": "int", "max_uploads_per_user": "int",
                 "max_spool_bytes": "int"},
    "providers": {"key_file": "str", "bilibili_api": "str", "bilibili_live_api": "str", "enabled": "strs"},
    "live": {
        "segment_s": "num", "playlist_len": "int", "idle_s": "num", "gop_cache_bytes": "int",
        "viewer_buffer_bytes": "int", "hls_store": "str", "hls_max_bytes": "int", "link_ttl_s": "num",
        "pull_idle_s": "num", "rtmp_public_url": "str", "flush_ms": "int", "max_buffer_bytes": "int",
        "max_connections": "int", "max_connections_per_address": "int", "publish_timeout_s": "num",
    },
    "auth": {
        "max_failures": "int", "max_failures_per_address": "int", "failure_window_s": "num",
        "hash_threads": "int", "hash_queue": "int",
    },
    "realtime": {
        "max_frame_bytes": "int", "messages_per_s": "num", "messages_burst": "int",
        "max_connections_per_room": "int", "max_connections_per_user": "int", "idle_s": "num",
        "ping_s": "num", "send_buffer_bytes": "int",
    },
    "webrtc": {"ice_servers": "ice_servers"},
    "workers": {
        "tick_s": "num", "probe": "bool", "probe_concurrency": "int", "probe_timeout_s": "num",
        "probe_lease_s": "num", "probe_backoff_s": "num", "probe_max_backoff_s": "num", "leader_s": "num",
    },
}


def _where(source: str, section: str, key: str) -> str:
    return f"{source}: [{section}] {key}"


def _check_type(value: Any, kind: str, where: str) -> Any:
    if kind == "str":
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, not {type(value).__name__}")
        if "\x00" in value:  # no path, URL or endpoint holds one; open() and mkdir() would raise ValueError
            raise ConfigError(f"{where} holds a NUL character")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, not {value!r}")
        return value
    if kind == "num":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, not {value!r}")
        return float(value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, not {value!r}")
        return value
    if kind == "strs":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f'{where} must be a list of strings such as ["alist", "emby"]')
        return tuple(value)
    if kind == "networks":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f'{where} must be a list of CIDR strings such as ["192.168.0.0/16"]')
        networks = []
        for text in value:
            try:
                networks.append(ipaddress.ip_network(text, strict=False))
            except ValueError:
                raise ConfigError(f"{where}: {text!r} is not a network such as 192.168.0.0/16") from None
        return tuple(networks)
    if kind == "ice_servers":
        return _ice_servers(value, where)
    raise AssertionError(kind)


def read_config_file(path: Path) -> dict[str, dict[str, Any]]:
    """Parse and type-check a TOML config file; unknown sections or keys are errors."""
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from None
    values: dict[str, dict[str, Any]] = {}
    for section, table in raw.items():
        if section not in _SCHEMA:
            raise ConfigError(
                f"{path}: unknown section [{section}]; known sections: {', '.join(_SCHEMA)}"
            )
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: {section} must be a table ([{section}])")
        for key, value in table.items():
            if key not in _SCHEMA[section]:
                raise ConfigError(
                    f"{path}: unknown key [{section}] {key}; known keys: {', '.join(_SCHEMA[section])}"
                )
            kind = _SCHEMA[section][key]
            values.setdefault(section, {})[key] = _check_type(value, kind, _where(str(path), section, key))
    return values


def _check_endpoint(description: str, what: str) -> None:
    from twisted.internet import endpoints, reactor

    try:
        endpoints.serverFromString(reactor, description)
    except Exception as e:  # the endpoint parsers raise many kinds
        raise ConfigError(
            f"{what} {description!r} is not a usable endpoint ({e}); use e.g. tcp:8080, "
            f"tcp:port=8080:interface=127.0.0.1 or ssl:8443:privateKey=key.pem:certKey=cert.pem"
        ) from None


def _check_data_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as e:
        raise ConfigError(f"data directory {path} is not writable: {e.strerror or e}") from None


def _check_access_log(target: str | Path) -> None:
    if isinstance(target, str):
        return
    if not target.parent.is_dir():
        raise ConfigError(f'[server] access_log: the folder {target.parent} does not exist; create it, or say "log" '
                          'or "off"')
    try:
        with open(target, "ab"):
            pass
    except OSError as e:
        raise ConfigError(f"[server] access_log: cannot append to {target}: {e.strerror or e}") from None


def _check_realtime(rt: RealtimeConfig) -> None:
    if not 1024 <= rt.max_frame_bytes <= 16 << 20:
        raise ConfigError("[realtime] max_frame_bytes must be between 1024 and 16777216")
    if not 0 < rt.messages_per_s <= 10_000:
        raise ConfigError("[realtime] messages_per_s must be above 0 and at most 10000")
    if not 1 <= rt.messages_burst <= 100_000:
        raise ConfigError("[realtime] messages_burst must be between 1 and 100000")
    if rt.max_connections_per_room < 1 or rt.max_connections_per_user < 1:
        raise ConfigError("[realtime] max_connections_per_room and max_connections_per_user must be at least 1")
    if not 1 <= rt.ping_s <= 3600 or not 2 <= rt.idle_s <= 3600:
        raise ConfigError("[realtime] ping_s must be within 1-3600 and idle_s within 2-3600 seconds")
    if rt.idle_s <= rt.ping_s:
        raise ConfigError("[realtime] idle_s must be longer than ping_s (a live client answers every ping)")
    if rt.send_buffer_bytes < 4096:
        raise ConfigError("[realtime] send_buffer_bytes must be at least 4096")


def _check_auth(auth: ThrottleConfig) -> None:
    if not 1 <= auth.max_failures <= 1000 or not 1 <= auth.max_failures_per_address <= 100_000:
        raise ConfigError("[auth] max_failures must be within 1-1000 and max_failures_per_address within 1-100000")
    if not 1 <= auth.failure_window_s <= 24 * 3600:
        raise ConfigError("[auth] failure_window_s must be between 1 second and 1 day")
    if not 1 <= auth.hash_threads <= 64 or not 1 <= auth.hash_queue <= 10_000:
        raise ConfigError("[auth] hash_threads must be within 1-64 and hash_queue within 1-10000")


def _check_live(live: LiveConfig) -> None:
    if live.hls_store not in ("memory", "file"):
        raise ConfigError(f'[live] hls_store must be "memory" or "file", not {live.hls_store!r}')
    if not 64 << 10 <= live.gop_cache_bytes <= 1 << 30:
        raise ConfigError("[live] gop_cache_bytes must be between 65536 and 1073741824")
    if not 64 << 10 <= live.viewer_buffer_bytes <= 1 << 30:
        raise ConfigError("[live] viewer_buffer_bytes must be between 65536 and 1073741824")
    if not 1 << 20 <= live.hls_max_bytes <= 16 << 30:
        raise ConfigError("[live] hls_max_bytes must be between 1048576 and 17179869184")
    if not 60 <= live.link_ttl_s <= 30 * 24 * 3600:
        raise ConfigError("[live] link_ttl_s must be between 60 seconds and 30 days")
    if not 0 <= live.flush_ms <= 500:
        raise ConfigError("[live] flush_ms must be between 0 and 500")
    if not 1 <= live.pull_idle_s <= 3600:
        raise ConfigError("[live] pull_idle_s must be between 1 and 3600 seconds")
    if not 1 << 20 <= live.max_buffer_bytes <= 1 << 30:
        raise ConfigError("[live] max_buffer_bytes must be between 1048576 (1 MiB) and 1073741824 (1 GiB)")
    if not 1 <= live.max_connections <= 100_000:
        raise ConfigError("[live] max_connections must be between 1 and 100000")
    if not 1 <= live.max_connections_per_address <= 100_000:
        raise ConfigError("[live] max_connections_per_address must be between 1 and 100000")
    if not 1 <= live.publish_timeout_s <= 300:
        raise ConfigError("[live] publish_timeout_s must be between 1 and 300 seconds")
    if live.rtmp_public_url is not None and not live.rtmp_public_url.startswith(("rtmp://", "rtmps://")):
        raise ConfigError(f"[live] rtmp_public_url {live.rtmp_public_url!r} must start with rtmp:// or rtmps://")


def _triggers(values: Mapping[str, Any]) -> TriggerConfig:
    values = dict(values)
    if "udp_ports" in values:
        try:
            values["udp_ports"] = PortRanges.parse(values["udp_ports"])
        except ValueError as e:
            raise ConfigError(f'[triggers] udp_ports: {e}; write ports and ranges such as "5000-5999,7000" '
                              '("" allows none)') from None
    if "udp_bind" in values:
        try:
            values["udp_bind"] = str(ipaddress.ip_address(values["udp_bind"].strip()))
        except ValueError:
            raise ConfigError(f"[triggers] udp_bind {values['udp_bind'][:60]!r} is not an IP address such as "
                              '"0.0.0.0", "127.0.0.1" or "::"') from None
    return TriggerConfig(**values)


def _check_displays(displays: DisplaysConfig) -> None:
    if not 1 <= displays.max_video_bytes <= 1 << 40 or not 1 <= displays.max_image_bytes <= 1 << 30:
        raise ConfigError("[displays] max_video_bytes must be 1 byte to 1 TiB, max_image_bytes 1 byte to 1 GiB")
    if not 1 <= displays.max_uploads_per_user <= 100:
        raise ConfigError("[displays] max_uploads_per_user must be between 1 and 100")
    largest = max(displays.max_video_bytes, displays.max_image_bytes)
    if not largest <= displays.max_spool_bytes <= 1 << 44:
        raise ConfigError(f"[displays] max_spool_bytes must be at least the largest upload allowed ({largest}, "
                          "max_video_bytes or max_image_bytes) and at most 16 TiB")


def _check_node_url(url: str | None) -> None:
    if url is None:
        return
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises on a bad port
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or parts.query \
            or parts.fragment or parts.username or parts.password:
        raise ConfigError(f"[server] node_url {url[:80]!r} must be this node's own http:// or https:// base URL "
                          "as the other nodes reach it, e.g. http://10.0.0.5:8080")


def _check_providers(providers: ProvidersConfig) -> None:
    from synctv.core.accounts import KINDS

    for key in ("bilibili_api", "bilibili_live_api"):
        value = getattr(providers, key)
        if not value.startswith(("http://", "https://")) or "?" in value or "#" in value:
            raise ConfigError(f"[providers] {key} {value!r} must be an http:// or https:// base URL")
    unknown = sorted(set(providers.enabled) - set(KINDS))
    if unknown:
        raise ConfigError(f"[providers] enabled: unknown provider {unknown[0]!r}; known: {', '.join(KINDS)}")


def load_config(file: str | os.PathLike[str] | None, options: Mapping[str, Any]) -> Config:
    """Build the Config from the file (if any) and ``options`` (server keys; None = not given).

    Options win over the file. Checks every value: endpoints parse, the data directory is
    writable, the database URL has a known form, sizes are positive.
    """
    sections = read_config_file(Path(file)) if file else {}
    server = dict(sections.get("server", {}))
    for key in ("data", "http", "rtmp", "db", "public_url"):
        if options.get(key) is not None:
            server[key] = options[key]
    data = Path(server.get("data", "./synctv-data")).expanduser().absolute()
    proxy = ProxyConfig(**sections.get("proxy", {}))
    live = LiveConfig(**sections.get("live", {}))
    realtime = RealtimeConfig(**sections.get("realtime", {}))
    displays = DisplaysConfig(**sections.get("displays", {}))
    auth = ThrottleConfig(**sections.get("auth", {}))
    providers = ProvidersConfig(**sections.get("providers", {}))
    config = Config(
        data=data,
        http=server.get("http", "tcp:8080"),
        rtmp=server.get("rtmp", "tcp:1935"),
        db=server.get("db", ""),
        public_url=server.get("public_url"),
        metrics_networks=server.get("metrics_networks", DEFAULT_METRICS_NETWORKS),
        node_url=server.get("node_url"),
        node_networks=server.get("node_networks", ()),
        access_log=server.get("access_log", "log"),
        proxy=proxy,
        triggers=_triggers(sections.get("triggers", {})),
        live=live,
        realtime=realtime,
        displays=displays,
        auth=auth,
        webrtc=WebRTCConfig(**sections.get("webrtc", {})),
        providers=providers,
        workers=WorkersConfig(**sections.get("workers", {})),
    )
    _check_providers(providers)
    _check_workers(config.workers)
    if proxy.cache not in ("memory", "file"):
        raise ConfigError(f'[proxy] cache must be "memory" or "file", not {proxy.cache!r}')
    if not 4096 <= proxy.slice_size <= 64 << 20:
        raise ConfigError("[proxy] slice_size must be between 4096 and 67108864 bytes")
    if proxy.cache_bytes < proxy.slice_size:
        raise ConfigError("[proxy] cache_bytes must be at least one slice_size")
    if not 0.5 <= live.segment_s <= 30:
        raise ConfigError("[live] segment_s must be between 0.5 and 30 seconds")
    if not 2 <= live.playlist_len <= 100:
        raise ConfigError("[live] playlist_len must be between 2 and 100")
    if live.idle_s < 0:
        raise ConfigError("[live] idle_s must not be negative")
    _check_live(live)
    _check_realtime(realtime)
    _check_auth(auth)
    _check_displays(displays)
    if config.public_url is not None and not config.public_url.startswith(("http://", "https://")):
        raise ConfigError(f"public_url {config.public_url!r} must start with http:// or https://")
    _check_node_url(config.node_url)
    _check_endpoint(config.http, "http endpoint")
    _check_endpoint(config.rtmp, "rtmp endpoint")
    from synctv.store import parse_database_url

    try:
        parse_database_url(config.database_url)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    _check_data_dir(config.data)
    _check_access_log(config.access_log_target)
    return config
