"""Run benchmarks: ``python -m bench [--quick] [NAME ...]``.

Every module in bench/ with a ``main(argv) -> int`` is a benchmark; ``--quick`` is passed on.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    wanted = [a for a in argv if not a.startswith("-")]
    names = sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if not m.name.startswith("_"))
    status = 0
    for name in names:
        if wanted and name not in wanted:
            continue
        module = importlib.import_module(f"bench.{name}")
        if not hasattr(module, "main"):
            continue
        print(f"== bench/{name}.py{' (quick)' if quick else ''}", flush=True)
        status |= module.main(["--quick"] if quick else [])
    return status


if __name__ == "__main__":
    from bench import run_main

    run_main(main, __doc__)
