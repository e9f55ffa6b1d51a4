"""Media providers: turn a media item into addresses a client can play (see providers.base)."""

from __future__ import annotations

from synctv.providers.base import (
    ClientProfile,
    PlaybackInfo,
    PlaybackResult,
    Provider,
    ProviderRegistry,
)
from synctv.providers.direct import DirectProvider
from synctv.providers.live import LivePullProvider, RTMPProvider  # registered by synctv.live.node

__all__ = [
    "ClientProfile",
    "DirectProvider",
    "LivePullProvider",
    "PlaybackInfo",
    "PlaybackResult",
    "Provider",
    "ProviderRegistry",
    "RTMPProvider",
    "default_providers",
]


def default_providers(*more: Provider) -> ProviderRegistry:
    """The providers every server has, and ``more`` (the live and upload providers, made with
    the subsystems they read from)."""
    return ProviderRegistry([DirectProvider(), *more])
