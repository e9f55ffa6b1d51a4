"""web/admin/chart.js in Chromium, offline (web/ served by Playwright's router, no server): the
y-axis scale rule and what the drift chart paints on its canvas, read back pixel by pixel."""

from __future__ import annotations

from typing import Any

from tests.web.conftest import OFFLINE

DRAW = """
async ([series, scale]) => {
  const { DriftChart } = await import("/admin/chart.js");
  document.body.style.margin = "0";
  const canvas = document.createElement("canvas");
  canvas.style.cssText = "display:block;width:400px;height:200px";
  document.body.append(canvas);
  const chart = new DriftChart(canvas, { windowMs: 300000 });
  chart.scale = scale;
  const now = 1_000_000_000;
  chart.set(series.map((s) => ({ ...s, points: s.points.map(([ago, drift]) => ({ t: now - ago, drift })) })), now);
  // plot geometry of chart.js: left 62, right 14, top 12, bottom 26 (CSS px; devicePixelRatio 1 here)
  const ctx = canvas.getContext("2d");
  window.pixel = (x, y) => Array.from(ctx.getImageData(x, y, 1, 1).data);
  window.plot = { left: 62, top: 12, width: 400 - 62 - 14, height: 200 - 12 - 26 };
  return window.devicePixelRatio;
}
"""


def _y(drift: float, range_ms: float) -> int:
    """The canvas row of ``drift`` in the 400x200 chart with a symmetric ``range_ms``."""
    top, height = 12, 200 - 12 - 26
    return round(top + (1 - (drift + range_ms) / (2 * range_ms)) * height)


def _x(ago_ms: float) -> int:
    left, width = 62, 400 - 62 - 14
    return round(left + (1 - ago_ms / 300000) * width)


def test_y_scale_keeps_the_frame_band_in_view_or_fits_the_data(open_page: Any) -> None:
    """The default scale never shows less than ±25 ms (so the ±16.7 ms band is always in view) and
    grows in round steps with at most 4 ticks a side; the "fit" scale zooms to small drifts."""
    page = open_page(OFFLINE)
    scales = page.evaluate("""async () => {
      const { yScale } = await import("/admin/chart.js");
      return [yScale(0), yScale(3), yScale(40), yScale(100), yScale(2, 0.5), yScale(0.2, 0.5)];
    }""")
    assert scales == [
        {"range": 30, "step": 10}, {"range": 30, "step": 10}, {"range": 60, "step": 20},
        {"range": 150, "step": 50}, {"range": 3, "step": 1}, {"range": 0.6, "step": 0.2},
    ]
    assert page.page_errors == []


def test_chart_paints_the_band_and_a_line_per_screen_with_gaps(open_page: Any) -> None:
    """The ±1 frame band is shaded and the space outside it is not; a screen's line is drawn in its
    colour where it has samples, and a gap longer than 4 s between samples leaves no line."""
    page = open_page(OFFLINE)
    red = [[ago, 0.0] for ago in range(200000, 150000, -1000)] + [[ago, 0.0] for ago in range(60000, -1, -1000)]
    assert page.evaluate(DRAW, [[{"name": "left", "color": "#ff0000", "points": red}], "frame"]) == 1
    rng = 30  # no sample beyond ±25 ms: the default ±30 ms scale
    inside_band = page.evaluate("([x, y]) => pixel(x, y)", [_x(250000), _y(13, rng)])
    outside_band = page.evaluate("([x, y]) => pixel(x, y)", [_x(250000), _y(24, rng)])
    assert inside_band[3] > 0, inside_band  # shaded
    assert outside_band[3] == 0, outside_band  # nothing painted beyond the band (no grid line at 24)
    on_line = page.evaluate("([x, y]) => pixel(x, y)", [_x(30000), _y(0, rng)])
    assert on_line[0] > 200 and on_line[1] < 80 and on_line[2] < 80, on_line
    in_gap = page.evaluate("([x, y]) => pixel(x, y)", [_x(100000), _y(0, rng)])
    assert not (in_gap[0] > 200 and in_gap[1] < 80), in_gap  # the zero grid line, not the screen's colour
    assert page.page_errors == []


def test_chart_scales_out_for_a_large_drift(open_page: Any) -> None:
    """A screen 100 ms off widens the axis (±150 ms) so its line stays on the canvas, where the
    default ±30 ms axis would have clipped it."""
    page = open_page(OFFLINE)
    blue = [[ago, 100.0] for ago in range(20000, -1, -1000)]
    page.evaluate(DRAW, [[{"name": "far", "color": "#0000ff", "points": blue}], "frame"])
    at = page.evaluate("([x, y]) => pixel(x, y)", [_x(10000), _y(100, 150)])
    assert at[2] > 200 and at[0] < 80, at
    assert page.page_errors == []
