"""Jellyfin: the MediaBrowser dialect without ``/emby``, and quick connect.

Where Jellyfin differs from Emby (``../shared/providers-api.md`` section 3): no ``/emby`` base
(removed in 12.0); the authorization scheme is ``MediaBrowser`` and the token goes in it
(``Authorization: MediaBrowser ..., Token="..."`` works whatever ``EnableLegacyAuthorization``
says, unlike ``X-Emby-Token`` and ``api_key``); there is no ``DirectStreamUrl``, so the stream URL
is built (``/Videos/{id}/stream.{container}?static=true&mediaSourceId=``); items are
``/Items?userId=``; views are ``/UserViews?userId=``.

Quick connect (an account linked without a password): ``GET /QuickConnect/Enabled`` (false: a
400 saying so), ``POST /QuickConnect/Initiate`` -> ``{Secret, Code}``; the account is ``pending``
until the user approves the code in Jellyfin; then ``GET /QuickConnect/Connect?secret=`` says
``Authenticated`` and ``POST /Users/AuthenticateWithQuickConnect {Secret}`` gives the token.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from synctv.core.errors import BadRequest, NotFound
from synctv.providers.calls import (
    ApiAnswer,
    ApiCall,
    CredentialsRejected,
    MalformedAnswer,
    Reader,
    json_call,
    parse_json,
)
from synctv.providers.client import ApiClient
from synctv.providers.mediabrowser import Dialect, MediaBrowserBackend, check, new_device_id, parse_login

JELLYFIN = Dialect(
    kind="jellyfin", prefix="", scheme="MediaBrowser", token_header="Authorization",
    stream_params=("static", "mediaSourceId", "playSessionId"), views_path="/UserViews?userId={user}",
    has_direct_stream_url=False,
)


def quick_connect_enabled_call(server: str) -> ApiCall:
    return ApiCall("GET", f"{server}/QuickConnect/Enabled", "jellyfin quick connect")


def parse_enabled(answer: ApiAnswer) -> bool:
    value = parse_json(check(answer, "jellyfin quick connect"), "jellyfin quick connect")
    if not isinstance(value, bool):
        raise MalformedAnswer("the jellyfin quick connect answer is not true or false")
    return value


def initiate_call(server: str, device_id: str) -> ApiCall:
    return ApiCall("POST", f"{server}/QuickConnect/Initiate", "jellyfin quick connect",
                   {"Authorization": JELLYFIN.authorization(device_id)})


def connect_call(server: str, secret: str, device_id: str) -> ApiCall:
    return ApiCall("GET", f"{server}/QuickConnect/Connect?{urlencode({'secret': secret})}", "jellyfin quick connect",
                   {"Authorization": JELLYFIN.authorization(device_id)})


def parse_quick_connect(answer: ApiAnswer) -> Reader:
    what = "jellyfin quick connect"
    return Reader(parse_json(check(answer, what), what), what)


def authenticate_call(server: str, secret: str, device_id: str) -> ApiCall:
    return json_call("POST", f"{server}/Users/AuthenticateWithQuickConnect", "jellyfin login", {"Secret": secret},
                     {"Authorization": JELLYFIN.authorization(device_id)})


class JellyfinBackend(MediaBrowserBackend):
    def __init__(self) -> None:
        super().__init__(JELLYFIN)

    async def login(self, http: ApiClient, server: str, username: str, credentials: Mapping[str, Any],
                    session: Mapping[str, Any]) -> dict[str, Any]:
        if "password" in credentials:
            return await super().login(http, server, username, credentials, session)
        device_id = str(session.get("device_id") or credentials.get("device_id") or new_device_id())
        secret = credentials.get("quick_connect_secret")
        if not isinstance(secret, str):
            if not parse_enabled(await http.send(quick_connect_enabled_call(server))):
                raise BadRequest("quick connect is disabled on this Jellyfin server: give the password",
                                 field="password")
            started = parse_quick_connect(await http.send(initiate_call(server, device_id)))
            return {"status": "pending", "quick_connect_secret": started.text("Secret"),
                    "quick_connect_code": started.text("Code"), "device_id": device_id}
        try:
            state = parse_quick_connect(await http.send(connect_call(server, secret, device_id)))
        except NotFound:
            raise CredentialsRejected("the quick connect code expired",
                                      reason="the quick connect code expired; link the account again") from None
        if not state.flag("Authenticated"):
            return {"status": "pending", "device_id": device_id}
        return parse_login(JELLYFIN, await http.send(authenticate_call(server, secret, device_id)), device_id)
