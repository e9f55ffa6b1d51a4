"""web/js/phase.js (the phase lock's pure rules) and its use by the DriftController, in Chromium.

The rules are called directly over sweeps of inputs; the controller runs against the FakeVideo of
test_display_drift_js.py, with the page's real requestAnimationFrame grid.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.web.conftest import OFFLINE
from tests.web.test_display_drift_js import FAKE_VIDEO

REFRESH = 1000 / 60


@pytest.fixture
def page(open_page: Any) -> Any:
    page = open_page(OFFLINE, skew_ms=-1500)
    page.evaluate(FAKE_VIDEO)
    return page


def test_fit_grid_recovers_interval_and_phase_through_missing_frames(page: Any) -> None:
    """Stamps on a 60 Hz grid rounded to 0.1 ms, a third of them missing (a busy page), give the
    interval to a few µs and a refresh instant on the grid; a 50 Hz grid likewise; one stamp or a
    throttled page (1 s apart) give no grid."""
    r = page.evaluate("""async () => {
      const p = await import("/js/phase.js");
      const grid = (period, origin, count) => {
        const stamps = [];
        for (let i = 0; i < count; i++) if (i % 3 !== 1) stamps.push(Math.round((origin + i * period) * 10) / 10);
        return stamps;
      };
      const g60 = p.fitGrid(grid(1000 / 60, 5003.21, 40));
      const g50 = p.fitGrid(grid(20, 777.7, 40));
      return { g60, g50, phase60: p.mod(g60.anchorMs - 5003.21, 1000 / 60), phase50: p.mod(g50.anchorMs - 777.7, 20),
               one: p.fitGrid([5]), throttled: p.fitGrid([0, 1000, 2000]) };
    }""")
    assert r["g60"]["refreshMs"] == pytest.approx(REFRESH, abs=0.005)
    assert r["g50"]["refreshMs"] == pytest.approx(20, abs=0.005)
    assert min(r["phase60"], REFRESH - r["phase60"]) < 0.1
    assert min(r["phase50"], 20 - r["phase50"]) < 0.1
    assert r["one"] is None and r["throttled"] is None


def test_phase_shift_puts_boundaries_mid_way_within_the_budget(page: Any) -> None:
    """For every phase of the grid against the frame boundaries: the shift is within +-maxMs, the
    shifted phase is R/2 when the budget allows, and otherwise as far from a refresh as it allows;
    the shift never moves a boundary closer to a refresh than it was."""
    r = page.evaluate("""async () => {
      const p = await import("/js/phase.js");
      const R = 1000 / 60;
      const rows = [];
      for (let phase = 0; phase < R; phase += 0.25) {
        for (const max of [0, 2, 4, 9]) rows.push({ phase, max, shift: p.phaseShift(phase, R, max) });
      }
      return { rows, wrap: [p.wrap(9, R), p.wrap(-9, R), p.wrap(3, R)], mod: p.mod(-1, R),
               mean: p.meanPhase([R - 0.5, 0.5, R - 0.25, 0.25], R), none: p.meanPhase([], R) };
    }""")
    dist = lambda phase: min(phase % REFRESH, REFRESH - phase % REFRESH)  # noqa: E731 -- to a refresh
    for row in r["rows"]:
        phase, cap, shift = row["phase"], row["max"], row["shift"]
        assert abs(shift) <= cap + 1e-9, row
        after = dist(phase + shift)
        assert after == pytest.approx(min(REFRESH / 2, dist(phase) + cap), abs=1e-6), row
        assert after >= dist(phase) - 1e-9, row
    assert r["wrap"] == pytest.approx([9 - REFRESH, REFRESH - 9, 3])
    assert r["mod"] == pytest.approx(REFRESH - 1)
    assert min(r["mean"], REFRESH - r["mean"]) < 1e-6  # the circular mean of phases around 0
    assert r["none"] != r["none"]  # NaN


def test_scheduled_start_runs_the_clock_at_the_planned_shift(page: Any) -> None:
    """With the lock, the controller samples the animation-frame grid while it prepares, plans a
    shift within +-phaseMaxMs from where that grid falls against the start's frame boundary, and
    calls play() the shift before the instant -- never earlier. A grid sampled independently after
    the start puts the boundary where the controller predicted. While playing, the correction
    steers to the shift: the clock at the shift keeps the base rate, past it the rate moves."""
    r = page.evaluate("""async () => {
      const { video, controller, serverNow, next, state } = await makeFake({ controller: { phaseLock: true, phaseMaxMs: 4 } });
      const p = await import("/js/phase.js");
      const s = state({ at_ms: serverNow() + 500 });
      controller.setState(s);
      await next("start");
      const playCall = video.calls.find((c) => c[0] === "play")[2];
      const playedAt = performance.timeOrigin + playCall + 12345;  // as server time
      const shift = controller.phaseShiftMs;
      const phase = { ...controller.phase };
      const onPlan = (extraMs) => {  // the fake at the timeline plus the shift (plus extraMs)
        video._pos = controller.expected() + (shift + extraMs) / 1000; video._t0 = performance.now();
        controller._starting = null; controller.correcting = false; controller._step(null);
        return video.playbackRate;
      };
      const atPlan = onPlan(0);
      const pastPlan = onPlan(3);
      // an independent look at the grid, after the start
      const stamps = await new Promise((resolve) => {
        const seen = [];
        const tick = (t) => { seen.push(t); if (seen.length < 20) requestAnimationFrame(tick); else resolve(seen); };
        requestAnimationFrame(tick);
      });
      const grid = p.fitGrid(stamps);
      const boundaryPerf = s.at_ms - 12345 - performance.timeOrigin;
      const seen = p.boundaryPhase(grid, boundaryPerf);
      return { shift, phase, planned: p.phaseShift(phase.gridMs, phase.refreshMs, 4), seen, grid,
               early: s.at_ms - playedAt, atPlan, pastPlan };
    }""")
    assert abs(r["shift"]) <= 4
    assert r["shift"] == pytest.approx(r["planned"]) and r["phase"]["shiftMs"] == r["shift"]
    assert r["phase"]["refreshMs"] == pytest.approx(r["grid"]["refreshMs"], abs=0.05)
    gap = abs(r["seen"] - r["phase"]["gridMs"]) % r["grid"]["refreshMs"]
    assert min(gap, r["grid"]["refreshMs"] - gap) < 1.0, (r["seen"], r["phase"])
    assert r["early"] <= r["shift"] + 0.5, "play() came before its planned instant"
    assert r["atPlan"] == 1
    assert r["pastPlan"] < 1


def test_phase_lock_off_by_default_and_query_options(page: Any) -> None:
    """The lock is off by default (it did not raise frame agreement under load: docs/benchmarks.md,
    "Displays"): no shift is planned; `phase=1` turns it on, `phase=0` off, `phase_max_ms` sets
    the budget; the anchors' presets never lock."""
    r = page.evaluate("""async () => {
      const { controller, serverNow, next, state } = await makeFake();
      controller.setState(state({ at_ms: serverNow() + 200 }));
      await next("start");
      const e = await import("/js/engine.js");
      const q = (s) => e.optionsFromQuery(new URLSearchParams(s));
      const d = await import("/js/drift.js");
      return { shift: controller.phaseShiftMs, phase: controller.phase, off: q("phase=0"), on: q("phase=1"),
               budget: q("phase_max_ms=2.5"),
               presets: d.PRESETS, lock: d.DEFAULT_OPTIONS.phaseLock };
    }""")
    assert r["shift"] == 0 and r["phase"] is None
    assert r["off"]["phaseLock"] is False and r["on"]["phaseLock"] is True and r["budget"]["phaseMaxMs"] == 2.5
    assert r["lock"] is False
    assert all(r["presets"][name]["phaseLock"] is False for name in ("syncplayer", "jellyfin", "plain"))


def test_refresh_side_is_the_first_refresh_at_or_after_the_boundary(page: Any) -> None:
    """The re-join check's rule (phase.js refreshSide): a frame shown up to a refresh after its
    boundary is where it belongs; shown early (past the margin), or more than a refresh late, it
    is a refresh off. Figures from a real failing show: pages at +4.4 and -12.2 ms."""
    r = page.evaluate("""async () => {
      const p = await import("/js/phase.js");
      const R = 1000 / 60;
      return [4.4, 2.1, 1.9, 0, -12.2, -16.6, -18.6, -18.7, -30].map((d) => p.refreshSide(d, R, 2));
    }""")
    assert r == ["early", "early", "ok", "ok", "ok", "ok", "ok", "late", "late"]


def test_rejoin_check_rejoins_a_page_a_refresh_off_at_most_twice(page: Any) -> None:
    """With ``rejoin``, once per start (15 presented frames, the clock settled) a page whose frames
    sit a refresh early re-joins (pause, seek, a scheduled resume), at most ``rejoinMax`` times
    per timeline (a new show has a new budget); a page on the right refresh is left alone, and
    without the option nothing is checked. ``rejoin=1`` in the query turns it on, ``rejoin_max``
    sets the budget; the page's status keeps each re-join's reason (``rejoinLog``)."""
    r = page.evaluate("""async () => {
      const run = async (options, offsetMs) => {
        const { video, controller, serverNow, next, state } = await makeFake({ controller: options });
        const rejoins = [];
        controller.addEventListener("rejoin", (e) => rejoins.push(e.detail));
        // frames shown offsetMs from their place on the timeline, the clock exactly on it
        const frames = (n) => {
          for (let i = 0; i < n && controller.mode === "playing"; i++) {
            video._pos = controller.expected(); video._t0 = performance.now(); video._rate = 1;
            controller._starting = null;
            const perf = performance.now();
            controller._step({ expectedDisplayTime: perf + 8,
                               mediaTime: controller.expected(serverNow() + 8) + offsetMs / 1000 });
          }
        };
        controller.setState(state({ at_ms: serverNow() + 150 }));
        await next("start");
        for (let start = 0; start < 4; start++) {
          frames(30);
          if (controller.mode === "playing") break;
          await next("start");
        }
        const result = { rejoins: [...rejoins], counters: { ...controller.counters }, side: controller.lastSide,
                         mode: controller.mode, log: controller.rejoinLog.map((e) => ({ ...e })) };
        if (options.rejoin) {  // a new show (a scheduled start) has a new budget
          controller.setState(state({ at_ms: serverNow() + 150, position: 10 }));
          await next("start");
          frames(30);
          result.nextShow = rejoins.length - result.rejoins.length;
        }
        return result;
      };
      const e = await import("/js/engine.js");
      return {
        early: await run({ rejoin: true }, 4.4),
        right: await run({ rejoin: true }, -12.2),
        off: await run({}, 4.4),
        query: [e.optionsFromQuery(new URLSearchParams("rejoin=1")).rejoin,
                e.optionsFromQuery(new URLSearchParams("rejoin=0")).rejoin,
                e.optionsFromQuery(new URLSearchParams("rejoin_max=4")).rejoinMax],
      };
    }""")
    early = r["early"]
    assert [j["side"] for j in early["rejoins"]] == ["early", "early"], early
    assert all(abs(j["frameDriftMs"] - 4.4) < 1 for j in early["rejoins"])
    assert early["counters"]["rejoins"] == 2 and early["counters"]["joins"] == 2
    assert early["side"]["side"] == "early" and early["side"]["rejoins"] == 2 and early["mode"] == "playing"
    assert early["nextShow"] == 1  # the next show may re-join again
    assert r["right"]["rejoins"] == [] and r["right"]["side"]["side"] == "ok"
    assert r["off"]["rejoins"] == [] and r["off"]["counters"]["rejoins"] == 0 and r["off"]["side"] is None
    assert [(e["side"], e["frames"]) for e in early["log"]] == [("early", 15), ("early", 15)], early["log"]
    assert all(abs(e["frameDriftMs"] - 4.4) < 1 for e in early["log"])
    assert r["right"]["log"] == [] and r["off"]["log"] == []
    assert r["query"] == [True, False, 4]
