"""Provider routes (docs/providers.md): a user's own provider accounts, browsing them, importing a
folder, season or series into a room, and provider images.

``ROUTES`` is served by the ``SynctvAPI`` that ``synctv.site.build_site`` makes. They reach the
accounts through ``api.accounts`` (``synctv.providers.accounts.ProviderAccounts``); without it the
account routes answer 503 after the usual 401 checks. Adding a single provider item is the core
route ``POST /api/rooms/{room}/media`` (``Actions.add_media`` asks the catalog provider).

Image routes (``.../thumbnail``) accept the bearer token in ``Authorization`` or as ``?token=``
(an ``<img>`` cannot send headers); they answer only JPEG, PNG, WebP, GIF or AVIF, with
``X-Content-Type-Options: nosniff`` and a ``Content-Security-Policy`` that forbids everything, so a
hostile upstream cannot make this origin serve a page.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import attrs
from twisted.web.iweb import IRequest

from synctv.api import schema as s
from synctv.api.app import Call, RouteTable, SynctvAPI, bearer_token
from synctv.api.openapi import QueryParam
from synctv.core.accounts import KINDS, STATUSES
from synctv.core.errors import BadRequest, NotFound, Unauthorized, Unavailable
from synctv.core.models import User
from synctv.providers.accounts import MAX_SECRET, ProviderAccounts
from synctv.providers.catalog import BROWSE_KINDS, BrowseEntry

ROUTES = RouteTable("accounts")
ACCOUNT = s.Schema(name="ProviderAccount", fields={
    "id": s.ID, "kind": s.Enum(values=KINDS), "server": s.Str(max_len=2048), "username": s.Str(max_len=256),
    "status": s.Enum(values=STATUSES), "share_direct": s.Bool(), "created_at": s.TIME_MS,
})
ACCOUNT_CREATE = s.Schema(name="ProviderAccountCreate", fields={
    "kind": s.Enum(values=KINDS),
    "server": s.Str(min_len=1, max_len=2048, optional=True, description="the server's URL (Alist, Emby, Jellyfin)"),
    "username": s.Str(max_len=256, optional=True),
    "password": s.Str(max_len=MAX_SECRET, optional=True,
                      description="never returned or logged; Jellyfin without it: quick connect"),
    "cookie": s.Str(min_len=1, max_len=MAX_SECRET, optional=True, description="Bilibili: the browser cookie"),
    "share_direct": s.Bool(default=False, description="let other members' native players (headers=1) get the "
                                                      "upstream URL with this account's credential"),
})
ACCOUNT_PATCH = s.Schema(name="ProviderAccountPatch", fields={"share_direct": s.Bool()})
ONE_ACCOUNT = s.Schema(fields={
    "account": ACCOUNT,
    "quick_connect": s.Schema(optional=True, fields={"code": s.Str(max_len=64)},
                              description="Jellyfin: approve this code in Jellyfin; the account is pending"),
})
ACCOUNTS = s.Schema(fields={"accounts": s.List(of=ACCOUNT, max_items=s.MANY)})
BROWSE_ITEM = s.Schema(name="BrowseItem", fields={
    "id": s.Str(max_len=4096), "title": s.Str(max_len=256), "kind": s.Enum(values=BROWSE_KINDS),
    "playable": s.Bool(), "duration": s.Num(minimum=0.0, optional=True),
    "thumbnail": s.Str(max_len=8192, optional=True, description="this server's URL of its image"),
})
BROWSE = s.Schema(fields={"account": ACCOUNT, "path": s.Str(max_len=4096),
                          "items": s.List(of=BROWSE_ITEM, max_items=s.MANY)})
IMPORT = s.Schema(name="MediaImport", fields={
    "provider": s.Str(min_len=1, max_len=32, pattern=r"^[a-z][a-z0-9_]*$"),
    "provider_data": attrs.evolve(s.SETTINGS, default={}, description="{account, item}: a folder, season or series"),
    "url": attrs.evolve(s.URL, optional=True, description="bilibili: a video page URL (every part is added)"),
})
_IMAGE_DESCRIPTION = ("The bearer token may also be given as ?token= (for <img>). Only raster images (JPEG, PNG, "
                      "WebP, GIF, AVIF) are relayed, with nosniff and a CSP that forbids everything.")


def _accounts(api: SynctvAPI) -> ProviderAccounts:
    accounts = getattr(api, "accounts", None)
    if accounts is None:
        raise Unavailable("provider accounts are not enabled on this server")
    return accounts


def _arg(request: IRequest, name: str, default: str = "", max_len: int = 4096) -> str:
    values = request.args.get(name.encode("ascii")) or []
    if not values:
        return default
    try:
        value = values[0].decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(f"{name} is not valid UTF-8", field=name) from None
    if len(value) > max_len or "\x00" in value:
        raise BadRequest(f"{name} must be at most {max_len} characters, without NUL", field=name)
    return value


def _entry(account_id: str, entry: BrowseEntry) -> dict[str, Any]:
    body: dict[str, Any] = {"id": entry.id, "title": entry.title, "kind": entry.kind, "playable": entry.playable}
    if entry.duration is not None:
        body["duration"] = entry.duration
    if entry.has_thumbnail:
        body["thumbnail"] = f"/api/me/accounts/{quote(account_id, safe='')}/thumbnail?item={quote(entry.id, safe='')}"
    return body


async def _image_actor(api: SynctvAPI, request: IRequest) -> User:
    if request.getHeader(b"authorization") is not None:
        return await api.actions.authenticate(bearer_token(request))
    token = _arg(request, "token")
    if not token:
        raise Unauthorized("send 'Authorization: Bearer TOKEN' or ?token=TOKEN")
    return await api.actions.authenticate(token)


def _image(request: IRequest, image: tuple[str, bytes]) -> bytes:
    content_type, body = image
    request.setHeader(b"Content-Type", content_type.encode("ascii"))
    request.setHeader(b"X-Content-Type-Options", b"nosniff")
    request.setHeader(b"Content-Security-Policy", b"default-src 'none'; sandbox")
    request.setHeader(b"Cache-Control", b"private, max-age=3600")
    return body


@ROUTES.route("GET", "/api/me/accounts", "Your provider accounts", response=ACCOUNTS, errors=(503,))
async def list_accounts(api: SynctvAPI, call: Call) -> Any:
    return {"accounts": [a.to_json() for a in await _accounts(api).list(call.actor)]}


@ROUTES.route("POST", "/api/me/accounts", "Link a provider account (logs in upstream first)", body=ACCOUNT_CREATE,
              response=ONE_ACCOUNT, status=201, errors=(400, 403, 502, 503, 504),
              description="A refused login is 400 with the upstream's reason (detail.upstream_reason). The "
                          "password or cookie is stored encrypted and never returned.")
async def create_account(api: SynctvAPI, call: Call) -> Any:
    b = call.body
    linked = await _accounts(api).link(
        call.actor, kind=b["kind"], server=b.get("server"), username=b.get("username"), password=b.get("password"),
        cookie=b.get("cookie"), share_direct=b["share_direct"])
    answer: dict[str, Any] = {"account": linked.account.to_json()}
    if linked.quick_connect_code is not None:
        answer["quick_connect"] = {"code": linked.quick_connect_code}
    return answer


@ROUTES.route("GET", "/api/me/accounts/{account}", "One of your provider accounts", response=ONE_ACCOUNT,
              errors=(503,))
async def get_account(api: SynctvAPI, call: Call, account: str) -> Any:
    return {"account": (await _accounts(api).get(call.actor, account)).to_json()}


@ROUTES.route("PATCH", "/api/me/accounts/{account}", "Change an account's share_direct", body=ACCOUNT_PATCH,
              response=ONE_ACCOUNT, errors=(503,))
async def update_account(api: SynctvAPI, call: Call, account: str) -> Any:
    updated = await _accounts(api).update(call.actor, account, share_direct=call.body["share_direct"])
    return {"account": updated.to_json()}


@ROUTES.route("DELETE", "/api/me/accounts/{account}", "Unlink a provider account", response=s.DELETED,
              errors=(503,), description="Items added with it then answer 404 on playback, saying why.")
async def delete_account(api: SynctvAPI, call: Call, account: str) -> Any:
    return {"deleted": await _accounts(api).remove(call.actor, account)}


@ROUTES.route("GET", "/api/me/accounts/{account}/browse", "Browse a provider account", response=BROWSE,
              errors=(400, 502, 503, 504),
              query=(QueryParam("path", "Alist: a folder path; Emby/Jellyfin: an item id; empty: the top", "/"),),
              description="Alist lists folders, videos and audio; Emby/Jellyfin list the libraries at the top, "
                          "then a library's, series' or season's items.")
async def browse(api: SynctvAPI, call: Call, account: str) -> Any:
    path = _arg(call.request, "path")
    found, entries = await _accounts(api).browse(call.actor, account, path)
    return {"account": found.to_json(), "path": path, "items": [_entry(found.id, e) for e in entries]}


@ROUTES.route("GET", "/api/me/accounts/{account}/thumbnail", "An image from one of your accounts", auth=False,
              errors=(401, 404, 502, 503), content_type="image/jpeg", description=_IMAGE_DESCRIPTION,
              query=(QueryParam("item", "the item as browse lists it"), QueryParam("token", "the bearer token")))
async def account_thumbnail(api: SynctvAPI, call: Call, account: str) -> Any:
    actor = await _image_actor(api, call.request)
    await _accounts(api).get(actor, account)  # an unknown account is 404 before anything else
    item = _arg(call.request, "item")
    if not item:
        raise BadRequest("item is required", field="item")
    return _image(call.request, await _accounts(api).thumbnail(actor, account, item))


@ROUTES.route("POST", "/api/rooms/{room}/media/import", "Add every playable item of a folder, season or series",
              body=IMPORT, response=s.MEDIA_LIST, status=201, errors=(400, 403, 502, 503, 504),
              description="With your own account (provider_data.account); in the provider's order.")
async def import_media(api: SynctvAPI, call: Call, room: str) -> Any:
    b = call.body
    items = await api.actions.import_media(call.actor, room, provider=b["provider"], url=b.get("url", ""),
                                           provider_data=b["provider_data"])
    return {"media": [m.to_json() for m in items]}


@ROUTES.route("GET", "/api/rooms/{room}/media/{media}/thumbnail", "A provider item's image (members)", auth=False,
              errors=(401, 403, 404, 502), content_type="image/jpeg", description=_IMAGE_DESCRIPTION,
              query=(QueryParam("token", "the bearer token"),))
async def media_thumbnail(api: SynctvAPI, call: Call, room: str, media: str) -> Any:
    actor = await _image_actor(api, call.request)
    _, item = await api.actions.access_media(actor, room, media, to="see its media")
    catalog = api.actions.providers.catalog(item.provider)
    if catalog is None:
        raise NotFound(f"{item.provider} items have no image here")
    return _image(call.request, await catalog.thumbnail(item))
