"""Provider accounts: a user's link to their own Alist, Emby, Jellyfin or Bilibili account. Pure.

A :class:`ProviderAccount` belongs to one user. What it holds in the clear: the kind, the server's
base URL, the upstream user name, a status and whether its owner lets ``direct`` PlaybackInfo
(the upstream URL itself, with the account's credential) go to other members' native players
(``share_direct``). Its secrets -- the password or cookie it logs in with (``credentials``) and
the upstream session (token, upstream user id) -- are sealed blobs (``synctv.providers.secrets``)
that this module never opens, and that ``to_json`` never shows.

``status``: ``ok``; ``pending`` (a Jellyfin quick-connect code waits for approval);
``login_failed`` (the upstream refused the stored credentials; link the account again).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import attrs

from synctv.core.errors import BadRequest

KINDS = ("alist", "emby", "jellyfin", "bilibili")
STATUSES = ("ok", "pending", "login_failed")
SERVER_KINDS = frozenset({"alist", "emby", "jellyfin"})  # bilibili has one public API, from config
_BAD_CHARS = re.compile(r"[\x00-\x20\x7f]")


@attrs.frozen
class ProviderAccount:
    id: str
    user_id: str
    kind: str
    server: str
    username: str
    credentials: str = attrs.field(repr=False)  # sealed: {"password"} or {"cookie"} or {"quick_connect"}
    session: str = attrs.field(repr=False, default="")  # sealed: the upstream session, "" before login
    status: str = "ok"
    share_direct: bool = False
    created_at: int = 0
    updated_at: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "kind": self.kind, "server": self.server, "username": self.username,
            "status": self.status, "share_direct": self.share_direct, "created_at": self.created_at,
        }


def normalize_server(kind: str, url: str | None) -> str:
    """The base URL of ``kind``'s server: http(s), a host, no credentials, query or fragment, no
    trailing slash (and no trailing ``/emby`` for Emby: synctv adds it). BadRequest (``server``)."""
    if kind not in SERVER_KINDS:
        if url:
            raise BadRequest(f"a {kind} account takes no server", field="server")
        return ""
    if not url:
        raise BadRequest(f"a {kind} account needs the server's URL, such as http://host:8096", field="server")
    if _BAD_CHARS.search(url):
        raise BadRequest("server must not contain spaces or control characters", field="server")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a bad port
    except ValueError:
        raise BadRequest("server is not a valid URL", field="server") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise BadRequest("server must be an http:// or https:// URL with a host", field="server")
    if parts.username is not None or parts.password is not None:
        raise BadRequest("put the user name and password in their own fields, not in the server URL",
                         field="server")
    if parts.query or parts.fragment:
        raise BadRequest("server must not have a query or fragment", field="server")
    path = parts.path.rstrip("/")
    if kind == "emby" and path.lower().endswith("/emby"):
        path = path[: -len("/emby")]
    return urlunsplit((parts.scheme.lower(), parts.netloc, path, "", ""))
