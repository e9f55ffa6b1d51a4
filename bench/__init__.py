"""Benchmarks: each module prints its figures (and ratios against a peer where one exists).

``python -m bench --quick`` runs every benchmark's quick mode, as CI's ``tox -e bench`` does.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


def run_main(main: Callable[[list[str]], int], doc: str | None) -> None:
    """``python -m bench.NAME [options]``: ``-h``/``--help`` prints the module's docstring (its
    options) instead of starting a run that takes minutes; otherwise exit with ``main``'s status."""
    argv = sys.argv[1:]
    if "-h" in argv or "--help" in argv:
        print((doc or "").strip())
        raise SystemExit(0)
    raise SystemExit(main(argv))


def option(argv: list[str], name: str, default: Any, kind: Callable[[str], Any] = str,
           minimum: float | None = None) -> Any:
    """The value after ``name`` in ``argv`` as ``kind`` (``default`` without ``name``); a missing
    value, one ``kind`` refuses or one below ``minimum`` ends the run with exit status 2 and a line
    saying which option and why, before anything starts."""
    if name not in argv:
        return default
    index = argv.index(name)
    if index + 1 >= len(argv) or argv[index + 1].startswith("--"):
        _usage(f"{name} needs a value")
    try:
        value = kind(argv[index + 1])
    except ValueError:
        _usage(f"{name}: {argv[index + 1]!r} is not a{'n' if kind is int else ''} {getattr(kind, '__name__', 'value')}")
    if minimum is not None and value < minimum:
        _usage(f"{name} must be at least {minimum:g}, not {value}")
    return value


def _usage(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr)
    raise SystemExit(2)
