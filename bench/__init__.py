"""Benchmarks: each module prints its figures (and ratios against a peer where one exists).

``python -m bench --quick`` runs every benchmark's quick mode, as CI's ``tox -e bench`` does.
"""

from __future__ import annotations

import sys
from collections.abc import Callable


def run_main(main: Callable[[list[str]], int], doc: str | None) -> None:
    """``python -m bench.NAME [options]``: ``-h``/``--help`` prints the module's docstring (its
    options) instead of starting a run that takes minutes; otherwise exit with ``main``'s status."""
    argv = sys.argv[1:]
    if "-h" in argv or "--help" in argv:
        print((doc or "").strip())
        raise SystemExit(0)
    raise SystemExit(main(argv))
