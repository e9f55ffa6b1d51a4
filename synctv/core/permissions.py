"""Who may do what: site roles, room roles and room permissions.

Pure logic. Site roles: ``root`` > ``admin`` > ``user``; site admins may do anything in any room.
Room roles: ``creator``, ``admin``, ``member``, ``guest``; each starts with a default permission
set that a room admin may change per member.
"""

from __future__ import annotations

import enum

from synctv.core.errors import BadRequest, Forbidden

SITE_ROLES = ("root", "admin", "user")
ROOM_ROLES = ("creator", "admin", "member", "guest")


class Permission(enum.IntFlag):
    """Room permissions, stored as a bitmask; names are part of the public contract."""

    control_playback = 1
    manage_media = 2
    chat = 4
    manage_members = 8
    manage_live = 16
    manage_room = 32

    @classmethod
    def all(cls) -> Permission:
        flags = cls(0)
        for p in cls:
            flags |= p
        return flags

    @classmethod
    def from_names(cls, names: list[str], field: str = "permissions") -> Permission:
        flags = cls(0)
        for name in names:
            try:
                flags |= cls[name]
            except KeyError:
                raise BadRequest(
                    f"unknown permission {name!r}; known: {', '.join(p.name for p in cls)}",
                    field=field,
                ) from None
        return flags

    def names(self) -> list[str]:
        return [p.name for p in Permission if p in self]


DEFAULT_PERMISSIONS: dict[str, Permission] = {
    "creator": Permission.all(),
    "admin": Permission.all(),
    "member": Permission.control_playback | Permission.manage_media | Permission.chat,
    "guest": Permission.chat,
}


def is_site_admin(site_role: str) -> bool:
    return site_role in ("root", "admin")


def require_site_admin(site_role: str) -> None:
    if not is_site_admin(site_role):
        raise Forbidden("this needs a site admin")


def effective_permissions(site_role: str, member_permissions: Permission | None) -> Permission:
    """A site admin holds every permission; otherwise the member's own, or none for a non-member."""
    if is_site_admin(site_role):
        return Permission.all()
    return member_permissions if member_permissions is not None else Permission(0)


def may_enter(site_role: str, member_permissions: Permission | None) -> bool:
    """Whether someone may be in a room at all: a member (``member_permissions`` is not None),
    or a site admin, who is a member of every room."""
    return member_permissions is not None or is_site_admin(site_role)


def require(
    site_role: str, member_permissions: Permission | None, needed: Permission, what: str
) -> None:
    if needed not in effective_permissions(site_role, member_permissions):
        if member_permissions is None and not is_site_admin(site_role):
            raise Forbidden(f"join the room first to {what}")
        raise Forbidden(f"you lack the {needed.name} permission needed to {what}")
