"""What bench/displays.py prints: per show, per run (``--repeat``) and in summary."""

from __future__ import annotations

import math
from collections.abc import Sequence

from bench._sync_figures import LEVEL_S, SETTLE_S, Figures

GOALS = {"clock_p95_ms": 5.0, "frame_p99_ms": 17.0, "agreement": 0.95}


def _ms(value: float | None, digits: int = 1) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def print_figures(figures: Figures) -> None:
    print(
        f"\n-- variant {figures.variant}: clock drift and frame drift in ms (|value| percentiles, "
        f"signed mean), after the first {SETTLE_S:g} s"
    )
    print(
        f"{'page':>4} {'skew':>7} {'clock p50':>9} {'p95':>6} {'p99':>6} {'mean':>6}   "
        f"{'frame p50':>9} {'p95':>6} {'p99':>6} {'mean':>6}   {'sync err':>8} {'play lat':>8} {'seeks':>5} {'rejoins':>7}"
    )
    for i, p in enumerate(figures.pages):
        print(
            f"{i:>4} {p.skew_ms:>+7.0f} {_ms(p.clock.p50, 2):>9} {_ms(p.clock.p95, 2):>6} {_ms(p.clock.p99, 2):>6} "
            f"{_ms(p.clock.mean, 2):>6}   {_ms(p.frame.p50):>9} {_ms(p.frame.p95):>6} {_ms(p.frame.p99):>6} "
            f"{_ms(p.frame.mean):>6}   {_ms(p.offset_error_ms, 2):>8} {_ms(p.play_latency_ms):>8} {p.seeks:>5} {p.rejoins:>7}"
        )
    c, f = figures.clock, figures.frame
    print(
        f" all {'':>7} {_ms(c.p50, 2):>9} {_ms(c.p95, 2):>6} {_ms(c.p99, 2):>6} {_ms(c.mean, 2):>6}   "
        f"{_ms(f.p50):>9} {_ms(f.p95):>6} {_ms(f.p99):>6} {_ms(f.mean):>6}"
    )
    print(
        f"frame agreement: {figures.agreement * 100:.1f}% of {figures.frames_compared} frames shown by every "
        f"page (refresh {figures.refresh_ms:.2f} ms)"
    )


def print_dump(figures: Figures) -> None:
    """Per page: the signed frame drift (which refresh shows each frame) and the grid's phase."""
    print(
        f"signed frame drift per page (ms; + = frames shown early) and grid phase (a frame's display "
        f"time minus its boundary, mod {figures.refresh_ms:.2f} ms):"
    )
    for i, p in enumerate(figures.pages):
        p5, p50, p95 = p.frame_signed
        print(
            f"{i:>4} {p.skew_ms:>+7.0f}  frame p5 {_ms(p5):>6}  p50 {_ms(p50):>6}  p95 {_ms(p95):>6}   "
            f"clock mean {_ms(p.clock.mean, 2):>6}   grid phase {_ms(p.grid_phase_ms):>5}   "
            f"page's view: planned {_ms(p.planned_phase_ms):>5}, presented {_ms(p.presented_phase_ms):>5}, "
            f"shift {_ms(p.phase_shift_ms):>5}"
        )
    print(f"median signed frame drift per {LEVEL_S:g} s of the show (ms), from the first {SETTLE_S:g} s:")
    for i, p in enumerate(figures.pages):
        print(f"{i:>4} " + " ".join(f"{v:>6.1f}" for v in p.frame_levels))


def print_summary(results: Sequence[Figures]) -> None:
    print("\n-- summary (goals: clock drift p95 <= 5 ms, frame drift p99 <= 17 ms, frame agreement >= 95%)")
    print(f"{'variant':<11} {'clock p95':>9} {'clock p99':>9} {'frame p99':>9} {'agreement':>9}  goals")
    for r in results:
        met = (
            r.clock.p95 <= GOALS["clock_p95_ms"],
            r.frame.p99 <= GOALS["frame_p99_ms"],
            r.agreement >= GOALS["agreement"],
        )
        marks = " ".join("ok" if m else "MISS" for m in met)
        print(
            f"{r.variant:<11} {_ms(r.clock.p95, 2):>9} {_ms(r.clock.p99, 2):>9} {_ms(r.frame.p99):>9} "
            f"{r.agreement * 100:>8.1f}%  {marks}"
        )


def passes(figures: Figures) -> bool:
    return (
        figures.clock.p95 <= GOALS["clock_p95_ms"]
        and figures.frame.p99 <= GOALS["frame_p99_ms"]
        and figures.agreement >= GOALS["agreement"]
    )


def print_runs(rows: Sequence[tuple[int, float, float, Figures | None, str]], variants: Sequence[str]) -> None:
    """One line per (run, load average before-after, figures or None: could not run, variant)."""
    print(
        f"\n-- {len({row[0] for row in rows})} runs (goals: clock drift p95 <= 5 ms, frame drift p99 "
        f"<= 17 ms, frame agreement >= 95%; split: refreshes between the pages' median frame drifts)"
    )
    print(
        f"{'run':>3} {'variant':<11} {'load':>9} {'agreement':>9} {'clock p95':>9} {'frame p99':>9} "
        f"{'split':>5}  passes"
    )
    for number, before, after, r, variant in rows:
        load = f"{before:.1f}-{after:.1f}"
        if r is None:
            print(f"{number:>3} {variant:<11} {load:>9} {'-':>9} {'-':>9} {'-':>9}  could not run")
            continue
        print(
            f"{number:>3} {variant:<11} {load:>9} {r.agreement * 100:>8.1f}% {_ms(r.clock.p95, 2):>9} "
            f"{_ms(r.frame.p99):>9} {r.split:>5}  {'yes' if passes(r) else 'no'}"
        )
    for variant in variants:
        mine = [r for _, _, _, r, v in rows if v == variant]
        passed = sum(1 for r in mine if r is not None and passes(r))
        print(f"{variant}: {passed} of {len(mine)} runs met all three goals")


