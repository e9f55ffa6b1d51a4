"""Emby and Jellyfin (the MediaBrowser family): what they share, with a :class:`Dialect` for where
they differ (``synctv.providers.emby``, ``synctv.providers.jellyfin``).

The calls (``../shared/providers-api.md`` sections 2 and 3):

- ``POST {base}/Users/AuthenticateByName {Username, Pw}`` with the client's authorization header
  -> ``AccessToken``, ``User.Id``;
- libraries: the user's views; a folder's children; a series' or season's episodes
  (``/Shows/{id}/Episodes``); one item (``BaseItemDto``: ``Id, Name, Type, IsFolder,
  RunTimeTicks`` (100 ns), ``SeriesName, IndexNumber, ParentIndexNumber, ImageTags``);
- ``POST {base}/Items/{id}/PlaybackInfo?UserId=`` with a DeviceProfile -> ``MediaSources[0]``:
  ``Container, SupportsDirectStream, TranscodingUrl, TranscodingSubProtocol, MediaStreams``.

How an item plays (:func:`playback_infos`): the direct stream (``/Videos/{id}/stream.{container}
?Static=true``) as ``direct`` and ``proxy``, in the source's container; the server's HLS
transcode (``TranscodingUrl``) as ``hls`` through the proxy, for clients that cannot play the
container; text subtitles as WebVTT (``.../Subtitles/{index}/Stream.vtt``; the server converts).
The token never rides in a URL synctv hands out: ``api_key``/``ApiKey`` is removed from the
server's URLs and sent as a header (``Dialect.token_headers``), and ``hidden_params`` tells the
proxy to remove it from URLs found inside the server's playlists too.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

import attrs

from synctv.core.errors import BadRequest, NotFound
from synctv.core.models import MediaItem, Subtitle
from synctv.providers.base import PlaybackInfo
from synctv.providers.calls import (
    ApiAnswer,
    ApiCall,
    CredentialsRejected,
    MalformedAnswer,
    Reader,
    UpstreamRefused,
    body_reason,
    json_call,
    parse_json,
    without_params,
)
from synctv.providers.catalog import BrowseEntry, Connection, ItemDescription, Resolved
from synctv.providers.client import ApiClient

CLIENT = "synctv"
DEVICE = "synctv"
VERSION = "0.1.0"
TOKEN_PARAMS = ("api_key", "ApiKey")
TICKS_PER_SECOND = 10_000_000
FIELDS = "MediaSources,ParentId,Container,RunTimeTicks,SeriesName,SeriesId,IndexNumber,ParentIndexNumber,ImageTags"
ITEM_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
KINDS = {
    "Movie": "video", "Video": "video", "MusicVideo": "video", "Trailer": "video", "Episode": "episode",
    "Series": "series", "Season": "season", "Audio": "audio", "AudioBook": "audio",
    "CollectionFolder": "folder", "Folder": "folder", "BoxSet": "folder", "UserView": "folder",
    "MusicAlbum": "folder", "MusicArtist": "folder", "Playlist": "folder",
}
PLAYABLE = frozenset({"video", "episode", "audio"})
CONTAINER_FORMATS = {"mp4": "mp4", "m4v": "mp4", "mov": "mp4", "mkv": "mkv", "matroska": "mkv", "webm": "webm",
                     "ts": "ts", "mpegts": "ts", "flv": "flv", "mp3": "mp3", "m4a": "m4a", "ogg": "ogg",
                     "flac": "flac", "avi": "avi"}
DEVICE_PROFILE: dict[str, Any] = {
    "Name": "synctv",
    "MaxStreamingBitrate": 120_000_000,
    "MaxStaticBitrate": 120_000_000,
    "MusicStreamingTranscodingBitrate": 320_000,
    "DirectPlayProfiles": [
        {"Type": "Video", "Container": "mp4,m4v,mkv,webm,mov",
         "VideoCodec": "h264,hevc,vp8,vp9,av1", "AudioCodec": "aac,mp3,opus,vorbis,flac,ac3,eac3"},
        {"Type": "Audio", "Container": "mp3,m4a,flac,ogg,opus,wav,aac"},
    ],
    "TranscodingProfiles": [
        {"Type": "Video", "Container": "ts", "Protocol": "hls", "Context": "Streaming", "VideoCodec": "h264",
         "AudioCodec": "aac,mp3", "MaxAudioChannels": "2", "BreakOnNonKeyFrames": True},
        {"Type": "Audio", "Container": "mp3", "Protocol": "http", "Context": "Streaming", "AudioCodec": "mp3"},
    ],
    "ContainerProfiles": [],
    "CodecProfiles": [],
    # text subtitles as files, never burnt in (without this, Emby transcodes to burn them in)
    "SubtitleProfiles": [{"Format": fmt, "Method": "External"} for fmt in ("vtt", "srt", "subrip", "ass", "ssa")],
}


@attrs.frozen
class Dialect:
    """Where Emby and Jellyfin differ."""

    kind: str
    prefix: str  # "/emby" (Emby's API base) or "" (Jellyfin, no /emby since 12.0)
    scheme: str  # the authorization header's scheme: "Emby" | "MediaBrowser"
    token_header: str  # "X-Emby-Token" | "Authorization" (with the MediaBrowser scheme)
    stream_params: tuple[str, str, str]  # names of (static, media source id, play session id)
    views_path: str  # "/Users/{user}/Views" | "/UserViews?userId={user}"
    has_direct_stream_url: bool

    def base(self, server: str) -> str:
        return server + self.prefix

    def authorization(self, device_id: str, token: str | None = None) -> str:
        fields = [("Client", CLIENT), ("Device", DEVICE), ("DeviceId", device_id), ("Version", VERSION)]
        if token is not None:
            fields.append(("Token", token))
        return f"{self.scheme} " + ", ".join(f'{k}="{quote(v, safe="")}"' for k, v in fields)

    def token_headers(self, session: Mapping[str, Any]) -> dict[str, str]:
        token = str(session["token"])
        if self.token_header == "Authorization":
            return {"Authorization": self.authorization(str(session.get("device_id") or DEVICE), token)}
        return {self.token_header: token}


def new_device_id() -> str:
    return uuid.uuid4().hex


def check(answer: ApiAnswer, what: str, secrets: tuple[str, ...] = ()) -> ApiAnswer:
    """``answer`` if it is a success; 401 is CredentialsRejected, 404 NotFound, else UpstreamRefused."""
    if answer.status in (200, 204):
        return answer
    reason = body_reason(answer, secrets)
    if answer.status == 401:
        raise CredentialsRejected(f"the {what} refused the account: {reason or 'HTTP 401'}", reason=reason or "HTTP 401")
    if answer.status == 404:
        raise NotFound(f"the {what.split()[0]} server has no such item" + (f": {reason}" if reason else ""))
    raise UpstreamRefused(f"the {what} answered HTTP {answer.status}" + (f": {reason}" if reason else ""),
                          detail={"upstream_status": answer.status})


def login_call(dialect: Dialect, server: str, username: str, password: str, device_id: str) -> ApiCall:
    return json_call("POST", f"{dialect.base(server)}/Users/AuthenticateByName", f"{dialect.kind} login",
                     {"Username": username, "Pw": password},
                     {"Authorization": dialect.authorization(device_id)})


def parse_login(dialect: Dialect, answer: ApiAnswer, device_id: str) -> dict[str, Any]:
    """The session of an ``AuthenticationResult``: token, upstream user id and name, device id."""
    what = f"{dialect.kind} login"
    top = Reader(parse_json(check(answer, what), what), what)
    token = top.text("AccessToken")
    user = top.need_obj("User")
    user_id = user.text("Id")
    if not token or not ITEM_ID.match(user_id) or any(c in token for c in '\r\n"'):
        raise MalformedAnswer(f"the {what} answer has no usable token or user id")
    return {"token": token, "user_id": user_id, "username": user.text("Name", ""), "device_id": device_id}


def _get(dialect: Dialect, conn: Connection, path: str, what: str, params: Mapping[str, str] | None = None) -> ApiCall:
    url = dialect.base(conn.server) + path
    if params:
        url += ("&" if "?" in url else "?") + urlencode(dict(params))
    return ApiCall("GET", url, f"{dialect.kind} {what}", dialect.token_headers(conn.session))


def check_item_id(value: Any, field: str = "provider_data.item") -> str:
    if not isinstance(value, str) or not ITEM_ID.match(value):
        raise BadRequest(f"{field}: an item id as browse lists it", field=field)
    return value


def seconds(ticks: float | None) -> float | None:
    return None if ticks is None or ticks <= 0 else round(ticks / TICKS_PER_SECOND, 3)


@attrs.frozen
class LibraryItem:
    id: str
    name: str
    type: str
    is_folder: bool
    duration: float | None
    series_name: str | None
    series_id: str | None
    season: int | None
    episode: int | None
    has_image: bool

    @property
    def kind(self) -> str:
        return KINDS.get(self.type, "folder" if self.is_folder else "video")

    @property
    def playable(self) -> bool:
        return not self.is_folder and self.kind in PLAYABLE

    @property
    def title(self) -> str:
        if self.type == "Episode" and self.series_name:
            numbers = ""
            if self.season is not None and self.episode is not None:
                numbers = f" S{self.season:02d}E{self.episode:02d}"
            return f"{self.series_name}{numbers} {self.name}".strip()[:256]
        return self.name[:256] or self.id


def _library_item(reader: Reader) -> LibraryItem:
    item_id = reader.text("Id")
    if not ITEM_ID.match(item_id):
        raise MalformedAnswer(f"the {reader.what} answer has an unusable item id")
    tags = reader.obj("ImageTags", optional=True)
    season, episode = reader.value.get("ParentIndexNumber"), reader.value.get("IndexNumber")
    return LibraryItem(
        id=item_id, name=reader.text("Name", ""), type=reader.text("Type", ""), is_folder=reader.flag("IsFolder"),
        duration=seconds(reader.opt_number("RunTimeTicks")), series_name=reader.opt_text("SeriesName"),
        series_id=reader.opt_text("SeriesId"),
        season=season if isinstance(season, int) and not isinstance(season, bool) else None,
        episode=episode if isinstance(episode, int) and not isinstance(episode, bool) else None,
        has_image=tags is not None and isinstance(tags.value.get("Primary"), str),
    )


def parse_item(answer: ApiAnswer, what: str, secrets: tuple[str, ...] = ()) -> LibraryItem:
    return _library_item(Reader(parse_json(check(answer, what, secrets), what), what))


def parse_items(answer: ApiAnswer, what: str, secrets: tuple[str, ...] = ()) -> list[LibraryItem]:
    """``{Items: [...]}`` (or a bare list, as some routes answer)."""
    value = parse_json(check(answer, what, secrets), what)
    if isinstance(value, list):
        value = {"Items": value}
    return [_library_item(r) for r in Reader(value, what).objs("Items")]


def entry_of(item: LibraryItem) -> BrowseEntry:
    return BrowseEntry(id=item.id, title=item.title, kind=item.kind, playable=item.playable, duration=item.duration,
                       has_thumbnail=item.has_image)


def container_format(container: str | None) -> str:
    for part in (container or "").lower().split(","):
        if part.strip() in CONTAINER_FORMATS:
            return CONTAINER_FORMATS[part.strip()]
    return "unknown"


def playback_info_call(dialect: Dialect, conn: Connection, item_id: str) -> ApiCall:
    user = str(conn.session["user_id"])
    body = {"UserId": user, "DeviceProfile": DEVICE_PROFILE, "MaxStreamingBitrate": DEVICE_PROFILE["MaxStreamingBitrate"],
            "EnableDirectPlay": True, "EnableDirectStream": True, "EnableTranscoding": True,
            "AllowVideoStreamCopy": True, "AllowAudioStreamCopy": True, "AutoOpenLiveStream": True, "IsPlayback": True}
    url = f"{dialect.base(conn.server)}/Items/{quote(item_id, safe='')}/PlaybackInfo?{urlencode({'UserId': user})}"
    return json_call("POST", url, f"{dialect.kind} PlaybackInfo", body, dialect.token_headers(conn.session))


def _absolute(dialect: Dialect, server: str, url: str) -> str:
    if url.startswith(("http://", "https://")):
        return url
    return dialect.base(server) + ("" if url.startswith("/") else "/") + url


def playback_infos(dialect: Dialect, conn: Connection, item_id: str, audio: bool, answer: ApiAnswer) -> Resolved:
    """Every way the PlaybackInfo ``answer`` plays the item (see the module docstring)."""
    what = f"{dialect.kind} PlaybackInfo"
    top = Reader(parse_json(check(answer, what, conn.secrets()), what), what)
    sources = top.objs("MediaSources")
    if not sources:
        error = top.opt_text("ErrorCode")
        raise UpstreamRefused(f"the {dialect.kind} server offers no way to play this item"
                              + (f" ({error})" if error else ""))
    source = sources[0]
    source_id = source.text("Id")
    session_id = top.text("PlaySessionId", "")
    container = source.text("Container", "")
    headers = dialect.token_headers(conn.session)
    hidden = frozenset(TOKEN_PARAMS)
    subtitles = _subtitles(dialect, conn, item_id, source_id, source, headers)
    metadata = {"container": container, "size": source.opt_number("Size"), "bitrate": source.opt_number("Bitrate")}
    infos: list[PlaybackInfo] = []
    if source.flag("SupportsDirectStream") or source.flag("SupportsDirectPlay"):
        if dialect.has_direct_stream_url and source.opt_text("DirectStreamUrl"):
            url = _absolute(dialect, conn.server, source.text("DirectStreamUrl"))
        else:
            static, source_param, session_param = dialect.stream_params
            ext = f".{container.split(',')[0]}" if container and re.fullmatch(r"[a-z0-9,]{1,40}", container) else ""
            query = {static: "true", source_param: source_id}
            if session_id:
                query[session_param] = session_id
            url = (f"{dialect.base(conn.server)}/{'Audio' if audio else 'Videos'}/{quote(item_id, safe='')}/stream"
                   f"{ext}?{urlencode(query)}")
        url = without_params(url, TOKEN_PARAMS)
        fmt = container_format(container)
        for mode in ("direct", "proxy"):
            infos.append(PlaybackInfo(mode=mode, url=url, format=fmt, headers=headers, subtitles=subtitles,
                                      metadata=metadata, signer="proxy" if mode == "proxy" else None,
                                      hidden_params=hidden))
    transcoding = source.opt_text("TranscodingUrl")
    if source.flag("SupportsTranscoding", True) and transcoding:
        url = without_params(_absolute(dialect, conn.server, transcoding), TOKEN_PARAMS)
        if source.text("TranscodingSubProtocol", "hls").lower() == "hls":
            infos.append(PlaybackInfo(mode="hls", url=url, format="hls", headers=headers, subtitles=subtitles,
                                      metadata={**metadata, "transcoding": True}, signer="proxy",
                                      hidden_params=hidden))
        elif not infos:
            fmt = container_format(source.text("TranscodingContainer", ""))
            infos.append(PlaybackInfo(mode="proxy", url=url, format=fmt, headers=headers, subtitles=subtitles,
                                      metadata={**metadata, "transcoding": True}, signer="proxy",
                                      hidden_params=hidden))
    if not infos:
        raise UpstreamRefused(f"the {dialect.kind} server can neither stream nor transcode this item")
    return Resolved(tuple(infos), None, {"play_session_id": session_id})


def _subtitles(dialect: Dialect, conn: Connection, item_id: str, source_id: str, source: Reader,
               headers: Mapping[str, str]) -> tuple[Subtitle, ...]:
    found = []
    for stream in source.objs("MediaStreams"):
        if stream.text("Type", "") != "Subtitle" or not stream.flag("IsTextSubtitleStream"):
            continue
        index = stream.value.get("Index")
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            continue
        name = (stream.opt_text("DisplayTitle") or stream.opt_text("Language") or f"Subtitle {index}")[:64]
        delivery = stream.opt_text("DeliveryUrl")
        if stream.flag("IsExternalUrl") and delivery and delivery.startswith(("http://", "https://")):
            fmt = "srt" if delivery.lower().split("?")[0].endswith(".srt") else "vtt"
            found.append(Subtitle(name=name, url=delivery, format=fmt, headers={}))
            continue
        url = (f"{dialect.base(conn.server)}/Videos/{quote(item_id, safe='')}/{quote(source_id, safe='')}"
               f"/Subtitles/{index}/Stream.vtt")
        found.append(Subtitle(name=name, url=url, format="vtt", headers=dict(headers)))
    return tuple(found[:32])


class MediaBrowserBackend:
    """The Emby/Jellyfin backend of ``synctv.providers.catalog.CatalogProvider``."""

    needs_account = True

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.kind = dialect.kind

    async def login(self, http: ApiClient, server: str, username: str, credentials: Mapping[str, Any],
                    session: Mapping[str, Any]) -> dict[str, Any]:
        device_id = str(session.get("device_id") or credentials.get("device_id") or new_device_id())
        if "password" not in credentials:
            raise BadRequest(f"a {self.kind} account needs its password", field="password")
        answer = await http.send(login_call(self.dialect, server, username, str(credentials["password"]), device_id))
        return parse_login(self.dialect, answer, device_id)

    def _user_path(self, conn: Connection, item_id: str | None = None) -> tuple[str, dict[str, str]]:
        """The path and query of the user's view of an item (or of the user's items)."""
        user = str(conn.session["user_id"])
        if self.dialect.kind == "emby":
            return f"/Users/{quote(user, safe='')}/Items" + (f"/{quote(item_id, safe='')}" if item_id else ""), {}
        return "/Items" + (f"/{quote(item_id, safe='')}" if item_id else ""), {"userId": user}

    async def item(self, conn: Connection, item_id: str) -> LibraryItem:
        path, query = self._user_path(conn, item_id)
        answer = await conn.http.send(_get(self.dialect, conn, path, "item", {**query, "Fields": FIELDS}))
        return parse_item(answer, f"{self.kind} item", conn.secrets())

    async def _listing(self, conn: Connection, parent_id: str) -> list[LibraryItem]:
        """A folder's (or series', season's) direct children, by name."""
        path, query = self._user_path(conn)
        params = {**query, "ParentId": parent_id, "Fields": FIELDS, "SortBy": "SortName", "SortOrder": "Ascending"}
        answer = await conn.http.send(_get(self.dialect, conn, path, "items", params))
        return parse_items(answer, f"{self.kind} items", conn.secrets())

    async def _playable_children(self, conn: Connection, parent: LibraryItem) -> list[LibraryItem]:
        """What importing ``parent`` adds: a series' or season's episodes in order, else its playable children."""
        if parent.type in ("Series", "Season"):
            series = parent.id if parent.type == "Series" else parent.series_id
            if series is None or not ITEM_ID.match(series):
                raise MalformedAnswer(f"the {self.kind} season names no series")
            query = {"UserId": str(conn.session["user_id"]), "Fields": FIELDS}
            if parent.type == "Season":
                query["SeasonId"] = parent.id
            path = f"/Shows/{quote(series, safe='')}/Episodes"
            answer = await conn.http.send(_get(self.dialect, conn, path, "episodes", query))
            return parse_items(answer, f"{self.kind} episodes", conn.secrets())
        return await self._listing(conn, parent.id)

    async def browse(self, conn: Connection, path: str) -> list[BrowseEntry]:
        if path in ("", "/"):
            views = self.dialect.views_path.format(user=quote(str(conn.session["user_id"]), safe=""))
            answer = await conn.http.send(_get(self.dialect, conn, views, "views"))
            return [entry_of(i) for i in parse_items(answer, f"{self.kind} views", conn.secrets())]
        return [entry_of(i) for i in await self._listing(conn, check_item_id(path.strip("/"), "path"))]

    def _description(self, conn: Connection, item: LibraryItem) -> ItemDescription:
        return ItemDescription(url=self.page_url(conn.server, item.id), title=item.title, duration=item.duration,
                               provider_data={"item": item.id, "type": item.kind})

    def page_url(self, server: str, item_id: str) -> str:
        """The item's page in the server's web app (what ``MediaItem.url`` shows; no secret)."""
        if self.kind == "emby":
            return f"{server}/web/index.html#!/item?id={quote(item_id, safe='')}"
        return f"{server}/web/#/details?id={quote(item_id, safe='')}"

    async def describe(self, conn: Connection, url: str, provider_data: Mapping[str, Any]) -> ItemDescription:
        item = await self.item(conn, check_item_id(provider_data.get("item")))
        if not item.playable:
            raise BadRequest(f"{item.title[:100]!r} is a {item.kind}: import it (POST /api/rooms/{{room}}/media/import)",
                             field="provider_data.item")
        return self._description(conn, item)

    async def children(self, conn: Connection, url: str, provider_data: Mapping[str, Any]) -> list[ItemDescription]:
        parent = await self.item(conn, check_item_id(provider_data.get("item")))
        if parent.playable:
            raise BadRequest(f"{parent.title[:100]!r} is a {parent.kind}, not a folder, season or series; add it "
                             "with POST /api/rooms/{room}/media", field="provider_data.item")
        return [self._description(conn, i) for i in await self._playable_children(conn, parent) if i.playable]

    async def resolve(self, conn: Connection, item: MediaItem, now_ms: int) -> Resolved:
        item_id = check_item_id(item.provider_data.get("item"))
        answer = await conn.http.send(playback_info_call(self.dialect, conn, item_id))
        audio = item.provider_data.get("type") == "audio"
        resolved = playback_infos(self.dialect, conn, item_id, audio, answer)
        return attrs.evolve(resolved, expires_at=None)

    async def thumbnail(self, conn: Connection, item_ref: str) -> ApiCall | None:
        item_id = check_item_id(item_ref, "item")
        return _get(self.dialect, conn, f"/Items/{quote(item_id, safe='')}/Images/Primary", "image",
                    {"maxWidth": "480", "quality": "90"})
