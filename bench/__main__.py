"""Run benchmarks: ``python -m bench [--quick] [NAME ...]``, or ``python -m bench NAME [options]``.

Every module in bench/ with a ``main(argv) -> int`` is a benchmark. ``--quick`` is passed on to
each one run. Any other option goes to the benchmark, so it needs exactly one NAME
(``python -m bench live --no-pin`` is ``python -m bench.live --no-pin``); options with several
names, or a name that is no benchmark, are refused with exit status 2 before anything runs,
so an option is never dropped without a word.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def benchmark_names() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if not m.name.startswith("_"))


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    first_option = next((i for i, a in enumerate(argv) if a.startswith("-") and a != "--quick"), len(argv))
    wanted = [a for a in argv[:first_option] if a != "--quick"]
    options = argv[first_option:]
    known = benchmark_names()
    unknown = [name for name in wanted if name not in known]
    if unknown:
        print(f"bench: no benchmark {unknown[0]!r}; there are: {', '.join(known)}", file=sys.stderr)
        return 2
    if options and len(wanted) != 1:
        print(f"bench: options ({' '.join(options)}) go to one benchmark: python -m bench NAME {' '.join(options)}",
              file=sys.stderr)
        return 2
    status = 0
    for name in known:
        if wanted and name not in wanted:
            continue
        module = importlib.import_module(f"bench.{name}")
        if not hasattr(module, "main"):
            continue
        print(f"== bench/{name}.py{' (quick)' if quick else ''}", flush=True)
        status |= module.main((["--quick"] if quick else []) + [a for a in options if a != "--quick"])
    return status


if __name__ == "__main__":
    from bench import run_main

    run_main(main, __doc__)
