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
LEVEL_S = 5.0  # the window of PageFigures.frame_levels


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
    rejoins: int = 0  # re-joins by the re-join check (web/js/drift.js, option rejoin), this page's life
    # signed frame drift (p5, p50, p95): which refresh the page shows each frame on
    frame_signed: tuple[float, float, float] = (math.nan, math.nan, math.nan)
    # where the refresh grid falls against the frame boundaries: the median of (a frame's
    # expectedDisplayTime minus its boundary on the timeline) modulo the refresh, in [0, refresh)
    grid_phase_ms: float = math.nan
    # the median signed frame drift in each LEVEL_S window of the show: when a page changed refresh
    frame_levels: tuple[float, ...] = ()
    phase_shift_ms: float | None = None  # the page's planned media-clock offset (phase lock), if any
    planned_phase_ms: float | None = None  # the grid phase the page planned from (animation frames)
    presented_phase_ms: float | None = None  # ... and the one it saw presented (frame callbacks)


@attrs.frozen
class Figures:
    variant: str
    pages: list[PageFigures]
    clock: Spread
    frame: Spread
    agreement: float
    frames_compared: int
    refresh_ms: float

    @property
    def split(self) -> float:
        """How many refreshes apart the pages' median signed frame drifts are (0: together; 1:
        a page one refresh off, the phase case; 2 or more: a page a whole frame or more late)."""
        medians = [p.frame_signed[1] for p in self.pages if not math.isnan(p.frame_signed[1])]
        return round((max(medians) - min(medians)) / self.refresh_ms) if medians else math.nan


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
    signed: list[list[float]] = []
    raf_stamps: list[list[float]] = []
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
        raf_stamps.append(stamps)
        frame = []
        windows: dict[int, list[float]] = {}
        first_shown: dict[int, float] = {}
        for i in range(0, len(frames), 4):
            edt, media_time, _presented, _now = frames[i : i + 4]
            if begin <= edt <= end:
                frame.append((media_time - expected_at(state, edt, duration_s)) * 1000)
                windows.setdefault(int((edt - begin) // (LEVEL_S * 1000)), []).append(frame[-1])
                first_shown.setdefault(round(media_time * FPS), edt)
        shown.append(first_shown)
        signed.append(frame)
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
                rejoins=int(status.get("counters", {}).get("rejoins", 0)),
                frame_levels=tuple(statistics.median(windows[k]) for k in sorted(windows)),
                phase_shift_ms=(status.get("phase") or {}).get("shiftMs"),
                planned_phase_ms=(status.get("phase") or {}).get("gridMs"),
                presented_phase_ms=(status.get("phase") or {}).get("framesMs"),
            )
        )
    refresh = refine_refresh(statistics.median(intervals), raf_stamps) if intervals else 1000 / 60
    pages = [
        attrs.evolve(
            page,
            frame_signed=tuple(percentile(values, q) for q in (0.05, 0.5, 0.95)),
            grid_phase_ms=grid_phase(state, refresh, records[i]["frames"]),
        )
        for i, (page, values) in enumerate(zip(pages, signed, strict=True))
    ]
    common = set(shown[0]).intersection(*shown[1:]) if shown else set()
    same = sum(1 for k in common if max(s[k] for s in shown) - min(s[k] for s in shown) < refresh / 2)
    agreement = same / len(common) if common else math.nan
    return Figures(
        variant, pages, Spread.of(all_clock), Spread.of(all_frame), agreement, len(common), refresh
    )


def refine_refresh(rough_ms: float, stamps: Sequence[Sequence[float]]) -> float:
    """The refresh interval to a few µs: ``rough_ms`` (a median of animation-frame intervals, which
    are rounded to 0.1 ms) refined by a least-squares fit of the pages' animation-frame times
    against their refresh counts, over spans growing as fast as the estimate allows."""
    refresh = rough_ms
    for page in stamps:
        if len(page) < 3:
            continue
        horizon = 1000.0
        while True:
            first = page[0]
            points = [(round((t - first) / refresh), t - first) for t in page if t - first <= horizon]
            n = [p[0] for p in points]
            if len(set(n)) < 2:
                break
            mean_n, mean_t = statistics.fmean(n), statistics.fmean(p[1] for p in points)
            refresh = sum((a - mean_n) * (b - mean_t) for a, b in points) / sum((a - mean_n) ** 2 for a in n)
            if horizon >= page[-1] - first:
                break
            horizon *= 4
        break  # one page's grid is enough (the pages share it)
    return refresh


def grid_phase(state: dict[str, Any], refresh_ms: float, frames: Sequence[float]) -> float:
    """Where a page's refresh grid falls against the show's frame boundaries: the circular mean
    of ``(expectedDisplayTime - boundary) mod refresh`` over its frames, in [0, refresh), where a
    frame's boundary is the server time its first instant is due (at_ms + index / FPS, at rate 1)."""
    rate = float(state.get("rate", 1.0)) or 1.0
    angles = []
    for i in range(0, len(frames), 4):
        edt, media_time = frames[i], frames[i + 1]
        boundary = state["at_ms"] + (media_time - float(state["position"])) / rate * 1000
        angles.append(((edt - boundary) % refresh_ms) / refresh_ms * 2 * math.pi)
    if not angles:
        return math.nan
    mean = math.atan2(sum(map(math.sin, angles)), sum(map(math.cos, angles)))
    return (mean / (2 * math.pi) * refresh_ms) % refresh_ms


# -- one run -------------------------------------------------------------------------------------
