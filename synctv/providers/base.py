"""What a provider is: it checks a media item's URL and turns the item into playable addresses.

A client describes what it can play with a ``ClientProfile`` (query parameters of
``GET /api/rooms/{room}/media/{media}/playback``); a provider answers with a ``PlaybackResult``
listing every ``PlaybackInfo`` that fits the profile, best first. An empty list is a valid
answer: nothing this server offers fits that client (say, a browser that cannot send the
headers a direct URL needs, before the proxy exists).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import attrs
from twisted.internet.defer import Deferred

from synctv.core.errors import BadRequest
from synctv.core.models import MediaItem, Subtitle

KNOWN_MODES = frozenset({"direct", "proxy", "hls", "flv"})
_TOKEN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,31}$")
_MAX_ITEMS = 32


def _text(value: str | bytes) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return "\ufffd"
    return value


def _token_set(values: Sequence[str | bytes], field: str) -> frozenset[str]:
    items: list[str] = []
    for value in values:
        items.extend(part.strip().lower() for part in _text(value).split(","))
    if not items or any(not item for item in items):
        raise BadRequest(f"{field} must be a comma-separated list of names, none empty", field=field)
    if len(items) > _MAX_ITEMS:
        raise BadRequest(f"{field} may name at most {_MAX_ITEMS} values", field=field)
    for item in items:
        if not _TOKEN.match(item):
            raise BadRequest(f"{field}: {item[:40]!r} is not a valid name", field=field)
    return frozenset(items)


@attrs.frozen
class ClientProfile:
    """What a client can play. ``None`` means "not said": anything goes for that aspect."""

    modes: frozenset[str] | None = None
    formats: frozenset[str] | None = None
    can_send_headers: bool | None = None

    @classmethod
    def from_query(cls, args: Mapping[Any, Sequence[str | bytes]]) -> ClientProfile:
        """Parse ``modes=direct,proxy``, ``formats=mp4,hls`` and ``headers=0|1``.

        ``args`` is a query mapping as twisted.web gives it (bytes keys and values) or with
        str keys; a repeated parameter adds to the list. Other parameters are ignored.
        Raises BadRequest naming the parameter for a bad value.
        """
        query = {_text(key): value for key, value in args.items()}
        modes = formats = None
        can_send_headers = None
        if "modes" in query:
            modes = _token_set(query["modes"], "modes")
            unknown = sorted(modes - KNOWN_MODES)
            if unknown:
                raise BadRequest(
                    f"unknown mode {unknown[0][:40]!r}; known: {', '.join(sorted(KNOWN_MODES))}",
                    field="modes",
                )
        if "formats" in query:
            formats = _token_set(query["formats"], "formats")
        if "headers" in query:
            values = {_text(v).strip() for v in query["headers"]}
            if len(values) != 1 or not values <= {"0", "1"}:
                raise BadRequest("headers must be 0 or 1", field="headers")
            can_send_headers = values == {"1"}
        return cls(modes=modes, formats=formats, can_send_headers=can_send_headers)

    def accepts_mode(self, mode: str) -> bool:
        return self.modes is None or mode in self.modes

    def accepts_format(self, fmt: str) -> bool:
        """A format the server could not determine (``unknown``) is never excluded."""
        return self.formats is None or fmt == "unknown" or fmt in self.formats

    def accepts_headers(self, headers: Mapping[str, str]) -> bool:
        return not headers or self.can_send_headers is not False


@attrs.frozen
class PlaybackInfo:
    """One way to play a media item: ``url`` in ``mode``, sending ``headers``.

    ``signer`` (never sent to clients) names who turns this info into what a viewer gets: a
    provider's ``proxy`` infos name the *upstream* (``signer="proxy"``, ``synctv.proxy.proxy_urls``),
    live infos name a route of this server (``signer="live"``, ``synctv.live.live_urls``); the
    signer binds the URL to the viewer and an expiry. ``Actions.playback_results`` applies it,
    and drops the info when that signer is not running on this server.

    ``hidden_params`` (never sent either) names query parameters that carry an upstream
    credential (Emby's ``api_key``): the proxy removes them from every URL it finds in the
    upstream's playlists before it puts such a URL in a signed link, and authenticates with
    ``headers`` instead. ``document`` is a manifest the provider made itself (a DASH MPD of
    Bilibili's separate video and audio tracks): the proxy serves it, with its ``BaseURL``s
    turned into signed links, instead of fetching ``url``.
    """

    mode: str
    url: str
    format: str
    headers: Mapping[str, str] = attrs.field(factory=dict)
    subtitles: tuple[Subtitle, ...] = ()
    expires_at: int | None = None  # server-time ms after which ``url`` stops working
    metadata: Mapping[str, Any] = attrs.field(factory=dict)
    signer: str | None = None
    hidden_params: frozenset[str] = frozenset()
    document: str | None = attrs.field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "url": self.url,
            "format": self.format,
            "headers": dict(self.headers),
            "subtitles": [s.to_json() for s in self.subtitles],
            "expires_at": self.expires_at,
            "metadata": dict(self.metadata),
        }


@attrs.frozen
class PlaybackResult:
    media_id: str
    provider: str
    infos: tuple[PlaybackInfo, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "media_id": self.media_id,
            "provider": self.provider,
            "infos": [info.to_json() for info in self.infos],
        }


class UrlSigner(Protocol):
    """Turns a provider's PlaybackInfo into the signed, expiring one a viewer receives."""

    def sign_info(self, info: PlaybackInfo, *, room_id: str, media_id: str, user_id: str,
                  now_ms: int) -> PlaybackInfo: ...


class Provider(Protocol):
    name: str

    def validate(self, url: str, provider_data: Mapping[str, Any]) -> None:
        """Raise BadRequest (field ``url`` or ``provider_data``) if the item cannot work."""

    def playback(self, media: MediaItem, profile: ClientProfile, now_ms: int) -> Deferred[PlaybackResult]:
        """Every way to play ``media`` that fits ``profile``, best first."""


@attrs.frozen
class ItemDescription:
    """What a catalog provider says about an item it adds; ``provider_data`` is stored with it."""

    url: str
    title: str
    provider_data: Mapping[str, Any]
    duration: float | None = None
    subtitles: tuple[Subtitle, ...] = ()


@runtime_checkable
class CatalogProvider(Protocol):
    """A provider whose items come from a library (Alist, Emby, Jellyfin, Bilibili): it says
    itself what an item is (title, duration, where it plays) from ``provider_data`` (or a URL),
    with the adding user's own account, and lists the playable children of a folder, season or
    series for ``POST /api/rooms/{room}/media/import``."""

    name: str

    def describe(self, actor: Any, url: str, provider_data: Mapping[str, Any]) -> Deferred[ItemDescription]: ...

    def children(self, actor: Any, url: str, provider_data: Mapping[str, Any]) -> Deferred[list[ItemDescription]]: ...

    def thumbnail(self, media: MediaItem) -> Deferred[tuple[str, bytes]]:
        """The item's image from the provider: ``(content_type, bytes)``."""


class ProviderRegistry:
    """Providers by name; the API's ``provider`` field names one."""

    def __init__(self, providers: Iterable[Provider] = ()) -> None:
        self._providers: dict[str, Provider] = {}
        for provider in providers:
            self.register(provider)

    def register(self, provider: Provider) -> None:
        if provider.name in self._providers:
            raise ValueError(f"a provider named {provider.name!r} is already registered")
        self._providers[provider.name] = provider

    def get(self, name: str) -> Provider | None:
        return self._providers.get(name)

    def require(self, name: str, field: str = "provider") -> Provider:
        """The provider called ``name``, or BadRequest naming ``field``."""
        provider = self._providers.get(name)
        if provider is None:
            raise BadRequest(
                f"unknown provider {name[:40]!r}; this server has: {', '.join(self.names())}",
                field=field,
            )
        return provider

    def catalog(self, name: str) -> CatalogProvider | None:
        """The provider ``name`` when it is a catalog provider (it describes its own items)."""
        provider = self._providers.get(name)
        return provider if isinstance(provider, CatalogProvider) else None

    def names(self) -> list[str]:
        return sorted(self._providers)

    def __contains__(self, name: object) -> bool:
        return name in self._providers
