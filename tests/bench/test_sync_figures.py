"""bench/_sync_figures.py's arithmetic on synthetic records: the refresh interval refined from
rounded animation-frame times, the grid phase against the frame boundaries, frame agreement and
the split between pages, and what ``--repeat`` prints from them."""

from __future__ import annotations

import math
from typing import Any

import pytest

from bench._displays_report import passes, print_dump, print_runs
from bench._sync_figures import FPS, analyse, refine_refresh

REFRESH = 1000 / 60
AT_MS = 1_000_000.0


def page_records(phase_ms: float, late_refreshes: int, seconds: float = 6.0) -> dict[str, Any]:
    """One page's records: animation frames on the grid (rounded to 0.1 ms like Chromium's),
    and each 30 fps frame first presented at the first refresh ``phase_ms`` after its boundary
    (grid phase = phase_ms), ``late_refreshes`` later; the clock on the timeline."""
    first_refresh = AT_MS - 1000 + phase_ms  # a refresh phase_ms after a boundary (at_ms - 1 s)
    raf, frames = [], []
    n = 0
    while True:
        t = first_refresh + n * REFRESH
        if t > AT_MS + seconds * 1000:
            break
        if t >= AT_MS:
            raf += [t, (t - AT_MS) / 1000, 0, 1.0, round(t, 1)]
        n += 1
    for k in range(int(seconds * FPS)):
        boundary = AT_MS + k * 1000 / FPS
        refreshes = math.ceil((boundary - first_refresh) / REFRESH - 1e-9)
        edt = first_refresh + (refreshes + late_refreshes) * REFRESH
        frames += [edt, k / FPS, k, edt - REFRESH]
    return {"raf": raf, "frames": frames}


STATE = {"position": 0.0, "at_ms": AT_MS, "playing": True, "rate": 1.0}


def figures_of(pages: list[dict[str, Any]]) -> Any:
    statuses = [{"offsetMs": 0.0, "phase": {"gridMs": 5.0, "shiftMs": 3.0, "framesMs": 5.1}}] * len(pages)
    return analyse("synctv", STATE, 6.0, pages, [0.0] * len(pages), statuses)


def test_refresh_is_refined_from_rounded_stamps() -> None:
    """Chromium's stamps are rounded to 0.1 ms, so their median interval is 16.7 ms; headless
    Chromium's true interval is 16.666 ms, which over a minute moves the grid by 2.4 ms."""
    stamps = [round(1000 + i * 16.666, 1) for i in range(3600) if i % 5 != 2]
    assert refine_refresh(16.7, [stamps]) == pytest.approx(16.666, abs=0.0005)


def test_pages_together_agree_and_report_their_phase() -> None:
    figures = figures_of([page_records(6.0, 0) for _ in range(3)])
    assert figures.refresh_ms == pytest.approx(REFRESH, abs=0.001)
    assert figures.agreement == 1.0 and figures.split == 0
    for page in figures.pages:
        assert page.grid_phase_ms == pytest.approx(6.0, abs=0.05)
        assert page.frame_signed[1] == pytest.approx(-6.0, abs=0.05)
        assert page.phase_shift_ms == 3.0 and page.planned_phase_ms == 5.0 and page.presented_phase_ms == 5.1
        assert all(level == pytest.approx(-6.0, abs=0.05) for level in page.frame_levels)
    assert passes(figures)


def test_a_page_one_refresh_late_splits_the_show(capsys: pytest.CaptureFixture[str]) -> None:
    """A page showing every frame one refresh after the others: agreement 0, split 1; two
    refreshes (a whole frame): split 2. --repeat's table counts the runs that pass."""
    one = figures_of([page_records(6.0, 0), page_records(6.0, 1), page_records(6.0, 0)])
    two = figures_of([page_records(6.0, 0), page_records(6.0, 2)])
    assert one.agreement == 0.0 and one.split == 1 and not passes(one)
    assert two.split == 2
    assert one.pages[1].frame_signed[1] == pytest.approx(-6.0 - REFRESH, abs=0.05)
    together = figures_of([page_records(6.0, 0)] * 2)
    print_dump(one)
    print_runs([(1, 1.0, 2.0, together, "synctv"), (2, 2.0, 3.0, one, "synctv"), (2, 2.0, 3.0, None, "nolock")],
               ["synctv", "nolock"])
    out = capsys.readouterr().out
    assert "synctv: 1 of 2 runs met all three goals" in out
    assert "nolock: 0 of 1 runs met all three goals" in out
    assert "could not run" in out and "median signed frame drift per 5 s" in out
