"""The media proxy as the server runs it: links, access checks, the slice cache, the upstream client.

:func:`open_media_proxy` builds it from ``[proxy]`` config (a memory cache, or a file cache under
``<data>/cache`` whose blocking work runs in its own thread pool); :meth:`MediaProxy.serve`
answers one proxy request; ``stats``/``purge`` back the admin API; ``close`` runs at shutdown.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool
from twisted.web.iweb import IRequest

from synctv.providers.calls import without_params
from synctv.proxy.access import MediaAccess
from synctv.proxy.cache import MemorySliceCache, SliceCache
from synctv.proxy.documents import serve_manifest, serve_webvtt
from synctv.proxy.filecache import FileSliceCache, split_runner, thread_runner
from synctv.proxy.media_types import mark_answer
from synctv.proxy.proxy_urls import KIND_ITEM, ProxyGrant, ProxyLinks, extension, parse_index
from synctv.proxy.relay import serve_playlist
from synctv.proxy.service import SliceService
from synctv.proxy.upstream import UpstreamClient

log = Logger()


class MediaProxy(Service):
    """See the module docstring. ``links`` are the ones ``actions`` signs proxy URLs with; as a
    Twisted ``Service``, stopping it closes upstream connections and flushes the file cache."""

    def __init__(
        self, *, links: ProxyLinks, actions: Any, cache: SliceCache, client: UpstreamClient,
        service: SliceService, backend: str, threadpools: list[ThreadPool] | None = None,
        access_options: dict[str, Any] | None = None,
    ) -> None:
        self.links = links
        self.cache = cache
        self.client = client
        self.service = service
        self.backend = backend
        self.access = MediaAccess(actions, links, **(access_options or {}))
        self._threadpools = threadpools or []

    def stopService(self) -> Deferred[None]:
        super().stopService()
        return Deferred.fromCoroutine(self.close())

    async def serve(self, request: IRequest, room: str, media: str, kind: str = KIND_ITEM, index: str = "0") -> None:
        """Answer a proxy request (GET or HEAD) for the item, a subtitle or a playlist URI. Every
        answer, errors included, carries ``synctv.proxy.media_types.ANSWER_HEADERS``."""
        mark_answer(request)
        grant, upstream = await self.access.resolve(room, media, kind, parse_index(index), request.args)

        def rewrite(url: str, uri_kind: str, i: int) -> str:
            url = without_params(url, upstream.hidden_params)  # a credential never goes into a link
            derived = ProxyGrant(grant.room_id, grant.media_id, grant.user_id, grant.expires_ms, uri_kind, i, url,
                                 grant.mode)
            return self.links.path_for(derived, extension(url))

        if upstream.document is not None:
            serve_manifest(request, upstream.document, rewrite)
        elif upstream.playlist:
            await serve_playlist(request, self.client, upstream.url, dict(upstream.headers), rewrite)
        elif upstream.as_webvtt:
            await serve_webvtt(request, self.client, upstream.url, dict(upstream.headers))
        else:
            await self.service.serve(request, upstream)

    def stats(self) -> dict[str, Any]:
        counters = self.service.counters
        return {
            "backend": self.backend,
            "slice_size": self.service.slice_size,
            "max_bytes": getattr(self.cache, "max_bytes", None),
            **self.cache.stats(),
            "answers": {name: counters[name] for name in ("hit", "miss", "bypass")},
            "upstream": {
                "requests": counters["upstream_requests"],
                "bytes": counters["upstream_bytes"],
                "collapsed": counters["collapsed"],
                "revalidations": counters["revalidations"],
                "purged_changed": counters["purged_changed"],
                "in_flight": len(self.service.flights),
                "connections_in_use": self.client.in_use,
            },
        }

    async def purge(self) -> None:
        await self.cache.purge_all()
        self.service.forget()
        if self.access is not None:
            self.access.forget()
        log.info("the slice cache was purged")

    async def close(self) -> None:
        await self.client.close()
        idle = getattr(self.cache, "idle", None)
        if idle is not None:
            await idle()
        close_files = getattr(self.cache, "close_files", None)
        if close_files is not None:
            close_files()
        for pool in self._threadpools:
            pool.stop()


async def open_media_proxy(
    config: Any, *, data_dir: Path, links: ProxyLinks, actions: Any, reactor: Any,
    revalidate_s: float | None = 60.0, sync_writes: bool = False,
) -> MediaProxy:
    """Build the proxy from a ``ProxyConfig`` (``slice_size``, ``cache``, ``cache_bytes``, ``allow_networks``).

    The file cache writes without fsync by default (``sync_writes``): every slice is CRC-checked
    when read, so a power loss costs a refetch, never wrong bytes, and slow fsyncs cannot pile up
    slices waiting in memory. Reads have their own thread pool, never queued behind writes.
    """
    pools: list[ThreadPool] = []
    cache: SliceCache
    if config.cache == "file":
        threadpool = ThreadPool(minthreads=1, maxthreads=2, name="synctv-slice-cache-writes")
        read_pool = ThreadPool(minthreads=1, maxthreads=4, name="synctv-slice-cache-reads")
        threadpool.start()
        read_pool.start()
        pools.extend([threadpool, read_pool])
        directory = Path(data_dir) / "cache"
        runner = split_runner(thread_runner(reactor, read_pool), thread_runner(reactor, threadpool))
        cache = await FileSliceCache.open(directory, config.cache_bytes, runner, sync_writes=sync_writes)
        stats = cache.stats()
        log.info("slice cache: {entries} slices, {bytes} bytes in {directory}", entries=stats["entries"],
                 bytes=stats["bytes"], directory=str(directory))
    else:
        cache = MemorySliceCache(config.cache_bytes, config.slice_size)
    client = UpstreamClient(reactor, allow_networks=config.allow_networks)
    service = SliceService(cache, client, slice_size=config.slice_size, revalidate_s=revalidate_s)
    return MediaProxy(links=links, actions=actions, cache=cache, client=client, service=service,
                      backend=config.cache, threadpools=pools)
