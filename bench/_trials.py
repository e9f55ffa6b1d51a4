"""Trials that hold still: alternate two sides, check each run's health, refuse unhealthy ratios.

A benchmark that compares synctv with a peer (nginx, nginx-rtmp) on a shared machine cannot trust
one run of each: the peer may have run while another process took a core. So it runs *rounds*:
each round measures both sides, one after the other, the order swapped every round (A B, B A,
A B, ...), so a slow drift of the machine's load falls on both sides alike. Each run reports its
figures and its *problems* (a publisher behind real time, gaps, a load generator at its CPU bound,
wrong bytes...): a run with a problem is unhealthy, and its round gives no ratio.

:func:`alternate` runs rounds until ``rounds`` healthy ones were measured or ``max_rounds`` were
tried. :func:`compare` gives, per figure, each side's median and spread over its healthy runs and
the median of the per-round ratios (paired rounds cancel the load drift); with fewer healthy
rounds than asked it gives no ratio and says why. :func:`format_comparison` prints that.

Also here: the load average (noted with every run), CPU seconds of processes from ``/proc``, and
CPU pinning (``taskset``-style, through ``os.sched_setaffinity``) that keeps the load clients'
CPU off the cores the servers are measured on. Pure of Twisted; used by bench/proxy.py,
bench/live.py and bench/live_relay.py, tested in tests/bench/test_trials.py.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


# -- the machine ------------------------------------------------------------------------------

def loadavg() -> tuple[float, float, float]:
    """The 1, 5 and 15 minute load averages."""
    one, five, fifteen = os.getloadavg()
    return one, five, fifteen


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU seconds used so far by ``pids`` (their own threads; gone pids count 0)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / TICK


def sched_times(pids: Sequence[int]) -> tuple[float, float]:
    """Seconds the main threads of ``pids`` (synctv's reactor thread, an nginx worker) ran on a CPU
    and waited for one while runnable, from ``/proc/<pid>/task/<pid>/schedstat``; (0, 0) where the
    kernel keeps no such figures. Helper threads (a thread pool) are left out: their waits overlap."""
    ran = waited = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()
        except OSError:
            continue
        ran += int(fields[0])
        waited += int(fields[1])
    return ran / 1e9, waited / 1e9


class Starvation:
    """How long the measured processes waited for a CPU while runnable, over a window: a server
    that waited for a core a large share of the window measured the machine's other load."""

    def __init__(self, pids: Sequence[int]) -> None:
        self.pids = list(pids)
        self._start = sched_times(self.pids)

    def share(self, wall_s: float) -> float:
        """Seconds waited since construction over ``wall_s``."""
        waited = sched_times(self.pids)[1] - self._start[1]
        return waited / wall_s if wall_s > 0 else 0.0


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (from /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(parents.get(p, []))
    return out


@dataclass(frozen=True)
class Pinning:
    """Which CPUs the servers and the load clients run on; ``None``: not pinned (one CPU, or asked).

    With two or more CPUs the servers get the first and the load the rest, so the load clients'
    CPU never counts in, nor competes on, the core a server is measured on.
    """

    servers: frozenset[int] | None
    load: frozenset[int] | None

    @classmethod
    def split(cls, cpus: Sequence[int] | None = None, enabled: bool = True) -> Pinning:
        available = sorted(cpus if cpus is not None else os.sched_getaffinity(0))
        if not enabled or len(available) < 2:
            return cls(None, None)
        return cls(frozenset(available[:1]), frozenset(available[1:]))

    def describe(self) -> str:
        if self.servers is None:
            return "not pinned"
        return f"servers on CPU {_cpus(self.servers)}, load clients on CPU {_cpus(self.load or ())}"

    def pin_servers(self, pid: int) -> None:
        _pin(pid, self.servers)

    def pin_load(self, pid: int) -> None:
        _pin(pid, self.load)

    def load_preexec(self, nice: int = 0) -> Callable[[], None] | None:
        """A ``preexec_fn`` pinning a child to the load CPUs and adding ``nice`` (when allowed);
        ``None`` when there is nothing to do."""
        return _preexec(self.load, nice)

    def server_preexec(self, nice: int = 0) -> Callable[[], None] | None:
        return _preexec(self.servers, nice)


def _preexec(cpus: frozenset[int] | None, nice: int) -> Callable[[], None] | None:
    if cpus is None and not nice:
        return None

    def run() -> None:
        if cpus is not None:
            os.sched_setaffinity(0, cpus)
        if nice:
            try:
                os.nice(nice)
            except OSError:  # not allowed to raise priority: run as is
                pass

    return run


def _cpus(cpus: frozenset[int] | Sequence[int]) -> str:
    return ",".join(str(c) for c in sorted(cpus))


def _pin(pid: int, cpus: frozenset[int] | None) -> None:
    if cpus is None:
        return
    for tid in _threads(pid):
        try:
            os.sched_setaffinity(tid, cpus)
        except OSError:  # gone
            pass


def _threads(pid: int) -> list[int]:
    try:
        return [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return [pid]


# -- runs and rounds --------------------------------------------------------------------------

@dataclass
class Run:
    """One measurement of one side: figures by name, problems that make it unhealthy, load average."""

    side: str
    round: int
    figures: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    load: tuple[float, float, float] = (0.0, 0.0, 0.0)
    notes: dict[str, float] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return not self.problems


Measure = Callable[[int], Run]


def alternate(sides: dict[str, Measure], rounds: int = 3, max_rounds: int | None = None,
              report: Callable[[Run], None] | None = None) -> list[dict[str, Run]]:
    """Measure every side once per round, the order swapped each round, until ``rounds`` rounds had
    all sides healthy or ``max_rounds`` (default ``rounds + 2``) were run. A measure that raises
    gives an unhealthy run saying so. ``report`` sees each run as it ends."""
    if rounds < 1:
        raise ValueError("at least one round")
    max_rounds = max(rounds, max_rounds if max_rounds is not None else rounds + 2)
    names = list(sides)
    out: list[dict[str, Run]] = []
    healthy = 0
    for r in range(max_rounds):
        if healthy >= rounds:
            break
        order = names if r % 2 == 0 else names[::-1]
        runs: dict[str, Run] = {}
        for name in order:
            before = loadavg()
            try:
                run = sides[name](r)
            except Exception as e:  # a failed run is an unhealthy one, with its reason
                run = Run(name, r, problems=[f"failed: {type(e).__name__}: {e}"])
            run.side, run.round = name, r
            if run.load == (0.0, 0.0, 0.0):
                run.load = before
            runs[name] = run
            if report is not None:
                report(run)
        out.append({name: runs[name] for name in names})
        healthy += all(run.healthy for run in runs.values())
    return out


# -- summaries --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Spread:
    """Median, minimum and maximum of some values, and the spread ``(max - min) / median``."""

    median: float
    low: float
    high: float
    count: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        if not values:
            raise ValueError("no values")
        return cls(statistics.median(values), min(values), max(values), len(values))

    @property
    def relative(self) -> float:
        return (self.high - self.low) / self.median if self.median else float("inf")


@dataclass(frozen=True)
class Comparison:
    """One figure, side ``a`` against side ``b``: each side's spread over healthy runs and the ratio
    ``a / b`` over healthy rounds, or ``refused`` saying why no ratio is given."""

    figure: str
    a: Spread | None
    b: Spread | None
    ratio: Spread | None
    refused: str | None


def compare(rounds: Sequence[dict[str, Run]], figure: str, a: str, b: str, need: int = 3) -> Comparison:
    """See :class:`Comparison`. A round counts when both runs are healthy and have the figure."""
    good = [r for r in rounds if r[a].healthy and r[b].healthy
            and figure in r[a].figures and figure in r[b].figures]
    a_values = [r[a].figures[figure] for r in rounds if r[a].healthy and figure in r[a].figures]
    b_values = [r[b].figures[figure] for r in rounds if r[b].healthy and figure in r[b].figures]
    spread_a = Spread.of(a_values) if a_values else None
    spread_b = Spread.of(b_values) if b_values else None
    if len(good) < need:
        why = [f"{len(good)} of {len(rounds)} rounds healthy on both sides, {need} needed"]
        for r in rounds:
            for side in (a, b):
                for problem in r[side].problems:
                    why.append(f"round {r[side].round + 1} {side}: {problem}")
        return Comparison(figure, spread_a, spread_b, None, "; ".join(why))
    ratios = [r[a].figures[figure] / r[b].figures[figure] for r in good if r[b].figures[figure]]
    if len(ratios) < need:
        return Comparison(figure, spread_a, spread_b, None, f"{b}'s {figure} was 0 in a healthy round")
    return Comparison(figure, spread_a, spread_b, Spread.of(ratios), None)


def _value(s: Spread | None, digits: int) -> str:
    if s is None:
        return "n/a"
    return f"{s.median:.{digits}f} ({s.low:.{digits}f}-{s.high:.{digits}f})"


def format_comparison(c: Comparison, a: str, b: str, digits: int = 0, prefix: str = "") -> list[str]:
    """Lines: ``<figure>: a median (min-max), b median (min-max), ratio a/b median (min-max)`` or
    the refusal."""
    line = f"{prefix}{c.figure}: {a} {_value(c.a, digits)}, {b} {_value(c.b, digits)}"
    if c.ratio is None:
        return [f"{line}; ratio {a}/{b}: REFUSED ({c.refused})"]
    return [f"{line}; ratio {a}/{b} {c.ratio.median:.2f} ({c.ratio.low:.2f}-{c.ratio.high:.2f}, "
            f"{c.ratio.count} rounds)"]


def format_run(run: Run, keys: Sequence[str] | None = None, digits: int = 1) -> str:
    """One line per run: side, round, its figures, the load average, healthy or its problems."""
    figures = ", ".join(f"{k} {run.figures[k]:.{digits}f}" for k in (keys or run.figures) if k in run.figures)
    notes = "".join(f", {k} {v:.2f}" for k, v in run.notes.items())
    state = "healthy" if run.healthy else "UNHEALTHY: " + "; ".join(run.problems)
    return (f"round {run.round + 1} {run.side}: {figures}{notes}; load average "
            f"{run.load[0]:.2f}/{run.load[1]:.2f}/{run.load[2]:.2f}; {state}")


def bound(problems: list[str], value: float, limit: float, what: str, unit: str = "") -> None:
    """Add a problem when ``value`` exceeds ``limit`` (a health check)."""
    if value > limit:
        problems.append(f"{what} {value:.2f}{unit} > {limit:g}{unit}")
