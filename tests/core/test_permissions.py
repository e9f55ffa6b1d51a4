"""synctv.core.permissions: room permission flags, defaults per role, site admins. Pure."""

from __future__ import annotations

import pytest

from synctv.core.errors import BadRequest, Forbidden
from synctv.core.permissions import (
    DEFAULT_PERMISSIONS,
    Permission,
    effective_permissions,
    is_site_admin,
    require,
    require_site_admin,
)


def test_names_are_the_public_contract_and_round_trip():
    """The six permission names of docs/api.md, in order; from_names(names()) is the identity."""
    assert Permission.all().names() == [
        "control_playback", "manage_media", "chat", "manage_members", "manage_live", "manage_room"]
    for flags in (Permission(0), Permission.chat | Permission.manage_room, Permission.all()):
        assert Permission.from_names(flags.names()) == flags


def test_unknown_permission_name_is_a_bad_request_naming_the_field():
    """from_names refuses a name it does not know, with the field it was given."""
    with pytest.raises(BadRequest) as caught:
        Permission.from_names(["chat", "fly"], field="permissions")
    assert caught.value.field == "permissions" and "fly" in caught.value.message


def test_default_permissions_per_role():
    """creator/admin hold all; member plays, manages media and chats; guest only chats."""
    assert DEFAULT_PERMISSIONS["creator"] == DEFAULT_PERMISSIONS["admin"] == Permission.all()
    assert DEFAULT_PERMISSIONS["member"].names() == ["control_playback", "manage_media", "chat"]
    assert DEFAULT_PERMISSIONS["guest"].names() == ["chat"]


def test_site_admins_hold_everything_everywhere():
    """root and admin hold every permission in any room, member or not; users only their own."""
    for role in ("root", "admin"):
        assert is_site_admin(role)
        assert effective_permissions(role, None) == Permission.all()
        require(role, None, Permission.manage_room, "change the room")
        require_site_admin(role)
    assert not is_site_admin("user")
    assert effective_permissions("user", None) == Permission(0)
    assert effective_permissions("user", Permission.chat) == Permission.chat


def test_require_explains_what_is_missing():
    """A non-member is told to join; a member is told which permission is lacking."""
    with pytest.raises(Forbidden) as caught:
        require("user", None, Permission.chat, "chat")
    assert "join the room first" in caught.value.message
    with pytest.raises(Forbidden) as caught:
        require("user", Permission.chat, Permission.control_playback, "control playback")
    assert "control_playback" in caught.value.message
    require("user", DEFAULT_PERMISSIONS["member"], Permission.manage_media, "add media")
    with pytest.raises(Forbidden):
        require_site_admin("user")
