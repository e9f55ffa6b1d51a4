"""Wiring of the live side for one server process: config -> ``LiveHub`` and its providers.

``build_live_hub`` makes the registry (GOP cache and viewer bounds, idle release), the HLS
segmenter and its segment store (memory, or files under ``<data>/live/hls``), the signed-link
maker, the live proxy's upstream client (the media proxy's address-checked ``UpstreamClient``)
and the hub with the RTMP door's bounds. ``live_providers`` makes the ``rtmp`` and ``live``
providers.

Several nodes: ``default_node_url`` is this node's address for the others when ``[server]
node_url`` is not set (the HTTP listener's address; a wildcard listener is named by the host
name). The relay opener (reading another node's internal door) is an address-checked
``UpstreamClient`` that admits ``[server] node_networks`` when they are set, and any address
otherwise: the node URLs it connects to come from the database, which only nodes write.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from pathlib import Path
from typing import Any

from twisted.internet.threads import deferToThread

from synctv.config import Config, Network
from synctv.core import node_auth
from synctv.core.clock import Clock
from synctv.core.models import MediaItem
from synctv.live.hls import FileSegmentStore, HLSStream, MemorySegmentStore, SegmentStore
from synctv.live.live_urls import LiveLinks
from synctv.live.pull import Opener
from synctv.live.rtmp.limits import RTMPLimits
from synctv.live.service import LiveHub, PullSettings
from synctv.live.streams import LiveSettings, StreamRegistry
from synctv.providers.live import LivePullProvider, RTMPProvider

_SAFE = re.compile(r"[^A-Za-z0-9_-]")


def node_id(http_port: int | str) -> str:
    """This process's name in publisher records: host name and HTTP port (stable across restarts)."""
    return f"{socket.gethostname()}:{http_port}"


def default_node_url(host: str, port: int) -> str:
    """``http://HOST:PORT`` of the HTTP listener (``[server] node_url`` unset)."""
    if host in ("", "0.0.0.0", "::"):
        host = socket.gethostname()
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


ANY_ADDRESS: tuple[Network, ...] = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))


def _upstream_opener(config: Config, reactor: Any, networks: tuple[Network, ...] | None = None) -> Opener | None:
    try:
        from synctv.proxy.upstream import UpstreamClient
    except ImportError:  # the media proxy is not part of this build
        return None
    return UpstreamClient(reactor, allow_networks=config.proxy.allow_networks if networks is None else networks)


def build_live_hub(
    config: Config, *, store: Any, clock: Clock, secret: str, reactor: Any, node: str, node_url: str,
    opener: Opener | None = None, rtmp_port: int | None = None, bus: Any = None,
) -> LiveHub:
    live = config.live
    hls_root = config.data / "live" / "hls"

    def segment_store(room_id: str, media_id: str) -> SegmentStore:
        if live.hls_store == "file":
            directory = Path(hls_root, _SAFE.sub("_", room_id), _SAFE.sub("_", media_id))
            return FileSegmentStore(directory, deferToThread)
        return MemorySegmentStore()

    def hls_factory(room_id: str, media_id: str) -> HLSStream:
        return HLSStream(segment_store(room_id, media_id), clock=clock, target_s=live.segment_s,
                         window=live.playlist_len, max_bytes=live.hls_max_bytes, first_sequence=clock() // 100)

    settings = LiveSettings(gop_cache_bytes=live.gop_cache_bytes, viewer_buffer_bytes=live.viewer_buffer_bytes,
                            idle_s=live.idle_s, flush_ms=live.flush_ms)
    registry = StreamRegistry(clock=clock, scheduler=reactor, settings=settings, hls_factory=hls_factory)
    links = LiveLinks(secret, ttl_ms=int(live.link_ttl_s * 1000), public_url=config.public_url)
    return LiveHub(
        store=store, clock=clock, scheduler=reactor, registry=registry, links=links, node_id=node,
        node_url=node_url, opener=opener if opener is not None else _upstream_opener(config, reactor),
        pull=PullSettings(idle_s=live.pull_idle_s), rtmp_public_url=live.rtmp_public_url, rtmp_port=rtmp_port,
        rtmp_limits=RTMPLimits(max_buffer_bytes=live.max_buffer_bytes, max_connections=live.max_connections,
                               max_connections_per_address=live.max_connections_per_address,
                               publish_timeout_s=live.publish_timeout_s),
        bus=bus, node_key=node_auth.derive_key(secret), node_networks=config.node_networks,
        relay_opener=_upstream_opener(config, reactor, config.node_networks or ANY_ADDRESS),
    )


def live_providers(hub: LiveHub) -> tuple[RTMPProvider, LivePullProvider]:
    """The ``rtmp`` and ``live`` providers, telling each item's state from ``hub``'s registry."""

    def state_of(item: MediaItem) -> str:
        stream = hub.registry.get(item.room_id, item.id)
        if stream is None:
            return "offline"
        return "live" if stream.publishing else "ended"

    return RTMPProvider(state_of), LivePullProvider(state_of)
