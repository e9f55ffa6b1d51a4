"""No private name of a dependency is used outside synctv/compat (the house rule): every
``x._name`` in the package names something synctv itself defines, except the few stdlib names
listed here, and no ``_private`` module or name is imported from a dependency. A name that
synctv/compat reads from a dependency (``channel._command``) is flagged outside compat on any
receiver but ``self``/``cls``, even where synctv happens to define the same name for its own."""

from __future__ import annotations

import ast
import importlib.metadata
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "synctv"
COMPAT = PACKAGE / "compat"
#: the standard library's, not a dependency's (namedtuple's public API; argparse types in annotations)
STDLIB = frozenset({"_replace", "_asdict", "_fields", "_make", "_SubParsersAction", "_MutuallyExclusiveGroup"})


def _sources() -> list[tuple[Path, ast.Module]]:
    return [(p, ast.parse(p.read_text(), str(p))) for p in sorted(PACKAGE.rglob("*.py"))]


def _defined(trees: list[tuple[Path, ast.Module]]) -> set[str]:
    """Every name synctv defines: functions, classes, class attributes, assigned attributes."""
    names: set[str] = set()
    for _, tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    for sub in ast.walk(target):
                        if isinstance(sub, ast.Name):
                            names.add(sub.id)
                        elif isinstance(sub, ast.Attribute):
                            names.add(sub.attr)
    return names


def _private(name: object) -> bool:
    return isinstance(name, str) and name.startswith("_") and not name.startswith("__")


def _own(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id in ("self", "cls")


def _compat_reads(trees: list[tuple[Path, ast.Module]]) -> set[str]:
    """The private names synctv/compat reads from dependencies' objects (not its own ``self._x``)."""
    names: set[str] = set()
    for path, tree in trees:
        if COMPAT not in path.parents:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _private(node.attr) and not _own(node.value):
                names.add(node.attr)
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                  and node.func.id in ("getattr", "setattr", "hasattr") and len(node.args) >= 2
                  and isinstance(node.args[1], ast.Constant) and _private(node.args[1].value)):
                names.add(node.args[1].value)
    return names


def private_uses(trees: list[tuple[Path, ast.Module]]) -> list[str]:
    dependency = _compat_reads(trees)
    defined = _defined([(path, tree) for path, tree in trees if COMPAT not in path.parents]) - dependency
    found = []
    for path, tree in trees:
        if COMPAT in path.parents:
            continue
        where = path.relative_to(PACKAGE.parent)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _private(node.attr):
                if node.attr in dependency and _own(node.value):
                    continue  # synctv's own attribute of the same name, on its own object
                if node.attr not in defined and node.attr not in STDLIB:
                    found.append(f"{where}:{node.lineno}: .{node.attr}")
            elif isinstance(node, ast.ImportFrom) and node.module and not node.module.startswith("synctv"):
                parts = node.module.split(".")
                private = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
                if any(p.startswith("_") and not p.startswith("__") for p in parts) or private:
                    found.append(f"{where}:{node.lineno}: from {node.module} import {private or '...'}")
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                  and node.func.id in ("getattr", "setattr", "hasattr") and len(node.args) >= 2
                  and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)
                  and node.args[1].value.startswith("_") and node.args[1].value not in defined):
                found.append(f"{where}:{node.lineno}: {node.func.id}(..., {node.args[1].value!r})")
    return found


def test_no_private_name_of_a_dependency_outside_compat() -> None:
    assert private_uses(_sources()) == []


def test_the_check_finds_each_kind_of_private_use(tmp_path: Path) -> None:
    """The scan is not vacuous: each form it must catch is caught, our own names are not."""
    code = (
        "from twisted.web._newclient import HEADER\n"
        "from twisted.web.client import _HTTP11ClientFactory\n"
        "class Mine:\n"
        "    _ours = 1\n"
        "    def f(self, transport, channel):\n"
        "        self._ours, self._mine = transport._tempDataBuffer, getattr(channel, '_command', None)\n"
        "        return self._mine, parts._replace(path='/')\n"
        "class Session:\n"
        "    def __init__(self, channel):\n"
        "        self._command = channel._command\n"  # the same name as HTTPChannel's: ours on self only
    )
    compat = "def request_line(channel):\n    return channel._command, channel._path\n"
    path = PACKAGE / "example.py"  # as if it were in the package (never written)
    found = private_uses([(path, ast.parse(code)), (COMPAT / "example.py", ast.parse(compat))])
    assert sorted(f.split(": ", 1)[1] for f in found) == sorted([
        "from twisted.web._newclient import ...",
        "from twisted.web.client import ['_HTTP11ClientFactory']",
        "._tempDataBuffer",
        "getattr(..., '_command')",
        "._command",
    ]), found


def _bounds() -> dict[str, tuple[str, str]]:
    setup_cfg = (PACKAGE.parent / "setup.cfg").read_text()
    found = re.findall(r"^\s+(twisted|autobahn|txpostgres)(?:\[\w+\])?>=([\d.]+),<([\d.]+)\s*$", setup_cfg, re.M)
    return {name: (low, high) for name, low, high in found}


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def test_the_installed_dependencies_are_inside_the_bounds_compat_was_tested_on() -> None:
    """setup.cfg bounds each dependency whose private names synctv/compat uses, and the installed
    versions are inside them (a newer one must pass tests/compat before its bound is raised)."""
    bounds = _bounds()
    assert set(bounds) == {"twisted", "autobahn", "txpostgres"}, bounds
    for name, (low, high) in bounds.items():
        installed = _version(importlib.metadata.version(name))
        assert _version(low) <= installed < _version(high), (name, installed, low, high)
