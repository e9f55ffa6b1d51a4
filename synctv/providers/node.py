"""Wiring of the catalog providers for one server process: ``[providers]`` config -> accounts,
providers and the danmaku feed.

``build_catalog`` makes the providers' API client (an address-checked ``UpstreamClient`` of its
own, with ``[proxy] allow_networks``, so API calls never queue behind media slices), the
backends named in ``[providers] enabled``, ``ProviderAccounts`` with the provider key, one
``CatalogProvider`` per backend (sharing one PlaybackInfo cache) and the ``DanmakuFeeds`` of the
realtime rooms. ``load_provider_key`` reads or makes the key file before the server starts.
"""

from __future__ import annotations

from typing import Any

import attrs

from synctv.config import Config
from synctv.core.clock import Clock
from synctv.providers.accounts import ProviderAccounts
from synctv.providers.alist import AlistBackend
from synctv.providers.bilibili import BilibiliBackend
from synctv.providers.catalog import Backend, CatalogProvider
from synctv.providers.client import ApiClient
from synctv.providers.danmaku import DanmakuFeeds
from synctv.providers.emby import EmbyBackend
from synctv.providers.jellyfin import JellyfinBackend
from synctv.providers.secrets import SecretBox, load_or_create_key
from synctv.proxy.upstream import UpstreamClient

API_ANSWER_TIMEOUT_S = 20.0
API_CONNECTIONS = 32


@attrs.frozen
class Catalog:
    accounts: ProviderAccounts
    providers: tuple[CatalogProvider, ...]
    danmaku: DanmakuFeeds
    http: ApiClient


def load_provider_key(config: Config) -> bytes:
    """The provider key (``KeyFileError`` with one line for the operator when it cannot be had)."""
    path = config.provider_key_file
    path.parent.mkdir(parents=True, exist_ok=True)
    return load_or_create_key(path)


def build_catalog(config: Config, *, store: Any, clock: Clock, reactor: Any, key: bytes,
                  http: ApiClient | None = None) -> Catalog:
    if http is None:
        http = ApiClient(UpstreamClient(reactor, allow_networks=config.proxy.allow_networks,
                                        max_connections=API_CONNECTIONS, answer_timeout_s=API_ANSWER_TIMEOUT_S,
                                        idle_timeout_s=API_ANSWER_TIMEOUT_S))
    makers: dict[str, Any] = {
        "alist": AlistBackend, "emby": EmbyBackend, "jellyfin": JellyfinBackend,
        "bilibili": lambda: BilibiliBackend(http, clock, api_base=config.providers.bilibili_api,
                                            live_base=config.providers.bilibili_live_api),
    }
    backends: dict[str, Backend] = {kind: makers[kind]() for kind in config.providers.enabled}
    accounts = ProviderAccounts(store=store, box=SecretBox(key), clock=clock, http=http, backends=backends)
    providers = tuple(CatalogProvider(backend, accounts, accounts.playback_cache) for backend in backends.values())
    sources = {kind: backend for kind, backend in backends.items() if hasattr(backend, "danmaku")}
    return Catalog(accounts, providers, DanmakuFeeds(store=store, sources=sources, clock=clock), http)
