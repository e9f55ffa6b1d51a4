"""One guarded way into a room (issue 9, part 2): membership is read, and room references are
resolved, in one place (``synctv.actions.Actions``) and the store; every other module asks
``Actions.access``/``access_media``/``access_by_grant``/``may``/``find_room``."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "synctv"
# the one way in (synctv.actions.base) and the use-cases on rooms and members, after ``access``
ALLOWED = {PACKAGE / "actions" / "base.py", PACKAGE / "actions" / "people.py"}
GUARDED_CALLS = {"get_member", "get_room_by_name", "list_members"}


def _calls(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    return [(node.lineno, node.func.attr) for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in GUARDED_CALLS and not _is_actions_method(node)]


def _is_actions_method(node: ast.Call) -> bool:
    """``actions.list_members(actor, room)`` is the use-case (it authorizes); the store's is not."""
    value = node.func.value  # type: ignore[attr-defined]
    return (isinstance(value, ast.Attribute) and value.attr == "actions") or (
        isinstance(value, ast.Name) and value.id == "actions")


def test_membership_and_room_lookups_happen_only_in_actions_and_the_store():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path in ALLOWED or (PACKAGE / "store") in path.parents:
            continue
        offenders += [f"{path.relative_to(PACKAGE.parent)}:{line} {name}" for line, name in _calls(path)]
    assert offenders == [], "authorize through Actions.access, not by reading the store: " + ", ".join(offenders)


def test_the_scan_sees_a_membership_read(tmp_path):
    """The scan is not vacuous: a module reading a membership from the store is reported."""
    module = tmp_path / "door.py"
    module.write_text("async def door(store, room, user):\n    return await store.get_member(room, user)\n")
    assert _calls(module) == [(2, "get_member")]
    module.write_text("async def ok(api, a, r):\n    return await api.actions.list_members(a, r)\n")
    assert _calls(module) == []
