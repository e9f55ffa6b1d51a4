"""The three sync figures of DESIGN.md "Measuring sync", from what the pages recorded.

Pure arithmetic over the records bench/displays.py collects on the machine's true clock:
clock drift (currentTime against the expected position, every animation frame), frame drift
(requestVideoFrameCallback mediaTime against the expected position at expectedDisplayTime) and
frame agreement (the share of frames every page showed on the same refresh).
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from typing import Any

import attrs

FPS = 30
SETTLE_S = 1.0  # figures count from this long after the start
END_MARGIN_S = 0.5  # ... to this long before the end


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) by linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


@attrs.frozen
class Spread:
    """Percentiles of the absolute values and the signed mean, in ms."""

    n: int
    p50: float
    p95: float
    p99: float
    mean: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        size = [abs(v) for v in values]
        mean = statistics.fmean(values) if values else math.nan
        return cls(len(values), percentile(size, 0.5), percentile(size, 0.95), percentile(size, 0.99), mean)


@attrs.frozen
class PageFigures:
    skew_ms: float
    clock: Spread
    frame: Spread
    offset_error_ms: float | None  # the page's clock-sync offset plus its skew: its sync error
    play_latency_ms: float | None
    seeks: int


@attrs.frozen
class Figures:
    variant: str
    pages: list[PageFigures]
    clock: Spread
    frame: Spread
    agreement: float
    frames_compared: int
    refresh_ms: float


def expected_at(state: dict[str, Any], t_ms: float, duration_s: float) -> float:
    """The state's expected position (seconds) at server time ``t_ms``, within [0, duration]."""
    position = float(state["position"])
    if state.get("playing") and t_ms > state["at_ms"]:
        position += (t_ms - state["at_ms"]) / 1000 * float(state.get("rate", 1.0))
    return min(max(position, 0.0), duration_s)


def analyse(
    variant: str,
    state: dict[str, Any],
    duration_s: float,
    records: Sequence[dict[str, Any]],
    skews: Sequence[float],
    statuses: Sequence[dict[str, Any]],
) -> Figures:
    """The three figures from the pages' records (true-clock times in ms) and the started state."""
    begin = state["at_ms"] + SETTLE_S * 1000
    end = state["at_ms"] + (duration_s - END_MARGIN_S) * 1000 / float(state.get("rate", 1.0))
    pages: list[PageFigures] = []
    all_clock: list[float] = []
    all_frame: list[float] = []
    shown: list[dict[int, float]] = []  # per page: frame index -> true expectedDisplayTime
    intervals: list[float] = []
    for record, skew, status in zip(records, skews, statuses, strict=True):
        raf, frames = record["raf"], record["frames"]
        clock = []
        stamps = []
        for i in range(0, len(raf), 5):
            t, current, paused, _rate, stamp = raf[i : i + 5]
            stamps.append(stamp)
            if begin <= t <= end and not paused:
                clock.append((current - expected_at(state, t, duration_s)) * 1000)
        intervals += [b - a for a, b in itertools.pairwise(stamps) if 0 < b - a < 50]
        frame = []
        first_shown: dict[int, float] = {}
        for i in range(0, len(frames), 4):
            edt, media_time, _presented, _now = frames[i : i + 4]
            if begin <= edt <= end:
                frame.append((media_time - expected_at(state, edt, duration_s)) * 1000)
                first_shown.setdefault(round(media_time * FPS), edt)
        shown.append(first_shown)
        all_clock += clock
        all_frame += frame
        offset = status.get("offsetMs")
        pages.append(
            PageFigures(
                skew_ms=skew,
                clock=Spread.of(clock),
                frame=Spread.of(frame),
                offset_error_ms=None if offset is None else offset + skew,
                play_latency_ms=status.get("playLatencyMs"),
                seeks=int(status.get("counters", {}).get("seeks", 0)),
            )
        )
    refresh = statistics.median(intervals) if intervals else 1000 / 60
    common = set(shown[0]).intersection(*shown[1:]) if shown else set()
    same = sum(1 for k in common if max(s[k] for s in shown) - min(s[k] for s in shown) < refresh / 2)
    agreement = same / len(common) if common else math.nan
    return Figures(
        variant, pages, Spread.of(all_clock), Spread.of(all_frame), agreement, len(common), refresh
    )


# -- one run -------------------------------------------------------------------------------------
