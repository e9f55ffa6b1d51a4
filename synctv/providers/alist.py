"""Alist v3: log in, browse folders, add files and folders, play a file's ``raw_url``.

The calls (``../shared/providers-api.md`` section 1, from alist-org/alist ``server/``):

- ``POST /api/auth/login/hash {username, password: sha256(password + STATIC_SUFFIX), otp_code}``
  -> ``data.token``; the token goes in ``Authorization`` as it is, without ``Bearer``;
- ``POST /api/fs/list {path, password: "", page: 1, per_page: 0, refresh: false}`` -> ``data.content``
  (``null`` for an empty folder);
- ``POST /api/fs/get {path, password: ""}`` -> the object with ``raw_url`` and ``related`` (files of the
  folder that start with the file's base name: the subtitles, ``type`` 4).

Every answer is HTTP 200; success or failure is the envelope's ``code`` (401: the token or the
password was refused). The functions down to :class:`AlistBackend` are pure: they build an
``ApiCall`` or read an ``ApiAnswer``.

Playing: ``raw_url`` is fetched with the User-Agent that asked for it (some drivers bind the link
to it), so every PlaybackInfo names that ``User-Agent``. A link that carries an Alist ``sign``
with an expiry (``sign=...:UNIX``) expires then; a link of a cloud driver (not ``Local``, not
this Alist's own ``/d`` or ``/p`` URL) is taken to expire after ``CLOUD_LINK_TTL_MS``. Subtitles
in ``related`` become the item's subtitles (SRT is converted to WebVTT by the proxy).
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

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
    json_call,
    parse_json,
    reason_text,
)
from synctv.providers.catalog import BrowseEntry, Connection, ItemDescription, Resolved
from synctv.providers.client import ApiClient
from synctv.providers.direct import guess_format

STATIC_SUFFIX = "-https://github.com/alist-org/alist"  # model.StaticHash
TYPE_FOLDER, TYPE_VIDEO, TYPE_AUDIO, TYPE_TEXT = 1, 2, 3, 4
PLAYABLE_TYPES = {TYPE_VIDEO: "video", TYPE_AUDIO: "audio"}
SUBTITLE_FORMATS = {".srt": "srt", ".vtt": "vtt", ".ass": "ass", ".ssa": "ass"}
MAX_SUBTITLES = 8
CLOUD_LINK_TTL_MS = 14 * 60 * 1000  # SyncTV refreshes AliyundriveOpen links every 14 minutes
MAX_PATH = 4096


@attrs.frozen
class AlistObject:
    name: str
    is_dir: bool
    type: int
    raw_url: str = ""
    sign: str = ""
    thumb: str = ""
    provider: str = ""
    related: tuple[AlistObject, ...] = ()


def hash_password(password: str) -> str:
    return hashlib.sha256((password + STATIC_SUFFIX).encode("utf-8")).hexdigest()


def normalize_path(path: str | None, field: str = "path") -> str:
    """An absolute Alist path without ``.``/``..`` segments or a trailing slash (``/`` for empty)."""
    path = (path or "/").strip()
    if len(path) > MAX_PATH or any(ch in path for ch in "\x00\r\n"):
        raise BadRequest(f"{field} is not a usable Alist path", field=field)
    if not path.startswith("/"):
        path = "/" + path
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise BadRequest(f"{field} must not contain '..'", field=field)
    return "/" + "/".join(parts)


def login_call(server: str, username: str, password: str) -> ApiCall:
    return json_call("POST", f"{server}/api/auth/login/hash", "alist login",
                     {"username": username, "password": hash_password(password), "otp_code": ""})


def list_call(server: str, token: str, path: str) -> ApiCall:
    return json_call("POST", f"{server}/api/fs/list", "alist fs/list",
                     {"path": path, "password": "", "page": 1, "per_page": 0, "refresh": False},
                     {"Authorization": token})


def get_call(server: str, token: str, path: str, user_agent: str) -> ApiCall:
    return json_call("POST", f"{server}/api/fs/get", "alist fs/get", {"path": path, "password": ""},
                     {"Authorization": token, "User-Agent": user_agent})


def read_envelope(answer: ApiAnswer, what: str, secrets: tuple[str, ...] = ()) -> Reader | None:
    """``data`` of an Alist answer (None when it is null); the envelope's error codes as domain errors."""
    if answer.status != 200:
        raise UpstreamRefused(f"the {what} answered HTTP {answer.status}", detail={"upstream_status": answer.status})
    top = Reader(parse_json(answer, what), what)
    code = top.integer("code")
    message = reason_text(top.opt_text("message"), secrets)
    if code == 401:
        raise CredentialsRejected(f"the {what} refused the account: {message}", reason=message)
    if code in (400, 403) and what == "alist login":
        raise CredentialsRejected(f"the {what} refused the account: {message}", reason=message)
    if code != 200:
        if "not found" in message.lower() or "not exist" in message.lower():
            raise NotFound(f"the alist server has no such file or folder: {message}")
        raise UpstreamRefused(f"the {what} answered {code}: {message}", detail={"upstream_code": code})
    return top.obj("data", optional=True)


def parse_token(answer: ApiAnswer) -> str:
    data = read_envelope(answer, "alist login")
    if data is None:
        raise MalformedAnswer("the alist login answer has no data")
    token = data.text("token")
    if not token or any(ch in token for ch in "\r\n"):
        raise MalformedAnswer("the alist login answer's token is not usable")
    return token


def _object(reader: Reader) -> AlistObject:
    related = tuple(_object(r) for r in reader.objs("related"))
    return AlistObject(
        name=reader.text("name"), is_dir=reader.flag("is_dir"), type=reader.integer("type", 0),
        raw_url=reader.text("raw_url", ""), sign=reader.text("sign", ""), thumb=reader.text("thumb", ""),
        provider=reader.text("provider", ""), related=related,
    )


def parse_list(answer: ApiAnswer, secrets: tuple[str, ...] = ()) -> list[AlistObject]:
    """The folder's objects (an empty folder's ``content`` is ``null``)."""
    data = read_envelope(answer, "alist fs/list", secrets)
    if data is None:
        return []
    return [_object(r) for r in data.objs("content")]


def parse_object(answer: ApiAnswer, secrets: tuple[str, ...] = ()) -> AlistObject:
    data = read_envelope(answer, "alist fs/get", secrets)
    if data is None:
        raise MalformedAnswer("the alist fs/get answer has no data")
    return _object(data)


def entry_of(parent: str, obj: AlistObject) -> BrowseEntry | None:
    """A browse line for ``obj`` (folders, videos and audio; other files are left out)."""
    path = posixpath.join(parent, obj.name)
    if obj.is_dir:
        return BrowseEntry(id=path, title=obj.name, kind="folder", playable=False, has_thumbnail=False)
    kind = PLAYABLE_TYPES.get(obj.type)
    if kind is None:
        return None
    return BrowseEntry(id=path, title=obj.name, kind=kind, playable=True, has_thumbnail=bool(obj.thumb))


def link_expiry(server: str, obj: AlistObject, now_ms: int) -> int | None:
    """When ``obj.raw_url`` stops working, if it is known or assumed (module docstring)."""
    try:
        parts = urlsplit(obj.raw_url)
        signs = parse_qs(parts.query).get("sign", [])
    except ValueError:
        return now_ms + CLOUD_LINK_TTL_MS
    for sign in signs:
        _, _, expire = sign.rpartition(":")
        if expire.isdigit() and int(expire) > 0:
            return int(expire) * 1000
    own = urlsplit(server)
    if (parts.netloc == own.netloc and parts.path.startswith((own.path + "/d/", own.path + "/p/"))) \
            or obj.provider == "Local":
        return None
    return now_ms + CLOUD_LINK_TTL_MS


def subtitle_files(obj: AlistObject) -> list[tuple[AlistObject, str]]:
    """The ``related`` files that are subtitles, with their format (at most MAX_SUBTITLES)."""
    found = []
    for other in obj.related:
        fmt = SUBTITLE_FORMATS.get(posixpath.splitext(other.name)[1].lower())
        if not other.is_dir and fmt is not None:
            found.append((other, fmt))
    return found[:MAX_SUBTITLES]


def page_url(server: str, path: str) -> str:
    """The file's page in Alist's web UI (what ``MediaItem.url`` shows; no secret in it)."""
    return server + quote(path)


class AlistBackend:
    """The Alist backend of ``synctv.providers.catalog.CatalogProvider``."""

    kind = "alist"
    needs_account = True

    async def login(self, http: ApiClient, server: str, username: str, credentials: Mapping[str, Any],
                    session: Mapping[str, Any]) -> dict[str, Any]:
        password = str(credentials.get("password", ""))
        token = parse_token(await http.send(login_call(server, username, password)))
        return {"token": token}

    async def _get(self, conn: Connection, path: str) -> AlistObject:
        answer = await conn.http.send(get_call(conn.server, conn.session["token"], path, conn.http.user_agent))
        return parse_object(answer, conn.secrets())

    async def _list(self, conn: Connection, path: str) -> list[AlistObject]:
        answer = await conn.http.send(list_call(conn.server, conn.session["token"], path))
        return parse_list(answer, conn.secrets())

    async def browse(self, conn: Connection, path: str) -> list[BrowseEntry]:
        folder = normalize_path(path)
        entries = (entry_of(folder, obj) for obj in await self._list(conn, folder))
        return [e for e in entries if e is not None]

    def _item_path(self, provider_data: Mapping[str, Any]) -> str:
        item = provider_data.get("item")
        if not isinstance(item, str) or not item:
            raise BadRequest("provider_data.item: the file's path in Alist, as browse lists it",
                             field="provider_data.item")
        return normalize_path(item, "provider_data.item")

    def _description(self, conn: Connection, path: str, obj: AlistObject) -> ItemDescription:
        return ItemDescription(url=page_url(conn.server, path), title=obj.name[:256] or path,
                               provider_data={"item": path})

    async def describe(self, conn: Connection, url: str, provider_data: Mapping[str, Any]) -> ItemDescription:
        path = self._item_path(provider_data)
        obj = await self._get(conn, path)
        if obj.is_dir:
            raise BadRequest(f"{path[:200]!r} is a folder: import it (POST /api/rooms/{{room}}/media/import)",
                             field="provider_data.item")
        if obj.type not in PLAYABLE_TYPES:
            raise BadRequest(f"{path[:200]!r} is not a video or audio file", field="provider_data.item")
        return self._description(conn, path, obj)

    async def children(self, conn: Connection, url: str, provider_data: Mapping[str, Any]) -> list[ItemDescription]:
        folder = self._item_path(provider_data)
        return [self._description(conn, posixpath.join(folder, obj.name), obj)
                for obj in await self._list(conn, folder)
                if not obj.is_dir and obj.type in PLAYABLE_TYPES]

    async def resolve(self, conn: Connection, item: MediaItem, now_ms: int) -> Resolved:
        path = self._item_path(item.provider_data)
        obj = await self._get(conn, path)
        if obj.is_dir or not obj.raw_url:
            raise UpstreamRefused(f"the alist server gives no link for {path[:200]!r}")
        user_agent = {"User-Agent": conn.http.user_agent}
        subtitles = []
        for other, fmt in subtitle_files(obj):
            try:
                found = await self._get(conn, posixpath.join(posixpath.dirname(path), other.name))
            except (NotFound, UpstreamRefused, MalformedAnswer):
                continue  # a subtitle that went away does not stop the video
            if found.raw_url:
                subtitles.append(Subtitle(name=other.name[:64], url=found.raw_url, format=fmt, headers=user_agent))
        expires = link_expiry(conn.server, obj, now_ms)
        fmt = guess_format(obj.name) if guess_format(obj.name) != "unknown" else guess_format(obj.raw_url)
        metadata = {"alist_provider": obj.provider}
        common = {"url": obj.raw_url, "format": fmt, "headers": user_agent, "subtitles": tuple(subtitles),
                  "metadata": metadata, "expires_at": expires}
        infos = (PlaybackInfo(mode="direct", **common), PlaybackInfo(mode="proxy", signer="proxy", **common))
        return Resolved(infos, expires)

    async def thumbnail(self, conn: Connection, item_ref: str) -> ApiCall | None:
        obj = await self._get(conn, normalize_path(item_ref, "item"))
        if not obj.thumb:
            return None
        same_server = urlsplit(obj.thumb).netloc == urlsplit(conn.server).netloc
        headers = {"Authorization": conn.session["token"]} if same_server else {}  # never to another host
        return ApiCall("GET", obj.thumb, "alist thumbnail", headers)
