"""Who is connecting: the token of a WebSocket upgrade and the ``Principal`` it grants in a room.

Checked before the upgrade (docs/realtime.md, "Connecting"): the token (401), the room (404),
membership (403; site admins need none). The caller turns a refusal into the HTTP answer.

Display tokens (a screen of a ``display`` room, issue 4) plug in through
``ConnectionAuthorizer.display_authenticator``: a callable taking ``(token, room_ref)`` and
firing with a read-only ``Principal`` or None when the token is not a display token.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
from twisted.internet.defer import Deferred

from synctv.actions import Actions
from synctv.core import permissions
from synctv.core.errors import Unauthorized
from synctv.core.models import Member, Room, User
from synctv.core.permissions import Permission

SUBPROTOCOL = "synctv.v1"
BEARER_PREFIX = "bearer."
HOW_TO_CONNECT = (
    "send a token from POST /api/auth/login as 'Authorization: Bearer TOKEN', as the subprotocol "
    "'bearer.TOKEN' beside 'synctv.v1', or as ?token=TOKEN"
)


@attrs.frozen
class Principal:
    """An authorized connection's identity in one room.

    ``user`` is who acts (for a display, the display's stand-in user, set by issue 4).
    ``read_only`` principals (displays) receive everything and may send only ``time``,
    ``observe``, ``unobserve`` and ``telemetry``.
    """

    user: User
    room: Room
    member: Member | None
    read_only: bool = False
    display_id: str | None = None

    def may(self, needed: Permission) -> bool:
        if self.read_only:
            return False
        granted = permissions.effective_permissions(
            self.user.role, self.member.permissions if self.member else None
        )
        return needed in granted

    def welcome_fields(self) -> dict[str, Any]:
        return {
            "user": {"id": self.user.id, "name": self.user.name, "role": self.user.role},
            "room": self.room.to_json(),
            "member": self.member.to_json() if self.member else None,
        }


def token_from_request(
    headers: Mapping[str, str], protocols: Sequence[str], params: Mapping[str, Sequence[str]]
) -> str:
    """The token from ``Authorization: Bearer``, a ``bearer.TOKEN`` subprotocol or ``?token=``.

    ``headers`` has lower-case names (as autobahn gives them). Raises Unauthorized when none is given
    or the Authorization header is not a bearer one.
    """
    header = headers.get("authorization")
    if header is not None:
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("the Authorization header must be 'Bearer TOKEN'; " + HOW_TO_CONNECT)
        return token.strip()
    for protocol in protocols:
        if protocol.startswith(BEARER_PREFIX) and len(protocol) > len(BEARER_PREFIX):
            return protocol[len(BEARER_PREFIX):]
    tokens = params.get("token") or []
    if tokens and tokens[0]:
        return tokens[0]
    raise Unauthorized("no token; " + HOW_TO_CONNECT)


def choose_subprotocol(protocols: Sequence[str]) -> str | None:
    """``synctv.v1`` when offered; never echo a ``bearer.`` entry (it is a secret)."""
    return SUBPROTOCOL if SUBPROTOCOL in protocols else None


DisplayAuthenticator = Callable[[str, str], Deferred[Principal | None]]


class ConnectionAuthorizer:
    """Turns (token, room reference) into a Principal, or raises the refusal."""

    def __init__(self, actions: Actions, display_authenticator: DisplayAuthenticator | None = None) -> None:
        self.actions = actions
        self.display_authenticator = display_authenticator

    async def authorize(self, token: str, room_ref: str) -> Principal:
        if self.display_authenticator is not None:
            display = await self.display_authenticator(token, room_ref)
            if display is not None:
                return display
        user = await self.actions.authenticate(token)
        view = await self.actions.access(
            user, room_ref, to="connect (POST /api/rooms/{room}/join, with the room password if it has one)")
        return Principal(user=user, room=view.room, member=view.member)
