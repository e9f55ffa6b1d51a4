"""The use-cases of docs/api.md, shared by the HTTP API and (later) the realtime sessions.

``Actions`` only orchestrates: load from the store, ask synctv.core who may do what and what the
next state is, persist, announce on the bus. Every public method returns a Deferred (they are
``async def`` wrapped by ``deferred``) and signals refusals with synctv.core.errors.

Decisions taken here where docs/api.md is silent:

- site roles: admins (and root) may create users and admins; nobody may create a second root,
  delete root or change root's role; only root may change root's password; nobody may delete
  themselves. A user may read and change (password only) their own account.
- joining: a room password is needed unless the caller is the room's creator or a site admin;
  joining again is idempotent and keeps the member's role and permissions.
- members: the creator cannot be removed, demoted or have permissions changed; nobody can be made
  ``creator``. Changing a role without naming permissions resets them to the role's defaults.
- ``{room}`` / ``{user}`` references are tried as an id first, then as a name.

The one way into a room: every route, WebSocket connection, proxy URL and live URL that acts in
a room goes through ``access`` (or ``access_media``): the room by id or name (404 first), then
membership (site admins are members of every room) and the permission the use needs (403).

Password guesses (login, room passwords) are throttled by ``synctv.core.throttle`` before any
hashing, and hashing runs on ``synctv.passwords.PasswordHasher``'s own bounded pool.

Catalog providers (Alist, Emby, Jellyfin, Bilibili: ``ProviderRegistry.catalog``) say themselves
what an item is -- title, duration, where it plays -- with the adding member's own account;
``import_media`` adds every playable child of a folder, season or series.

Media secrets: header values of an item (cookies, tokens for the upstream) are shown only to
members with ``manage_media`` (``MediaView``), and a ``direct`` PlaybackInfo that carries header
values goes only to such members whose client declared ``headers=1``; everyone else plays
through the proxy, which sends the headers itself.

Layout: ``base`` (views, construction, the one way in, sign-in), ``people`` (users, rooms,
members) and ``media`` (media, playback, the wait, the workers' use-cases, PlaybackResults);
``Actions`` is their sum and the one name callers construct.
"""

from __future__ import annotations

from synctv.actions.base import LobbyRoom, LoginResult, MediaView, RoomView, Viewer, deferred, title_from_url
from synctv.actions.media import MediaActions
from synctv.actions.people import PeopleActions

__all__ = ["Actions", "LobbyRoom", "LoginResult", "MediaView", "RoomView", "Viewer", "deferred", "title_from_url"]


class Actions(PeopleActions, MediaActions):
    """Every use-case (the package docstring); one per server process, shared by all doors."""
