"""web/js/clock.js in Chromium against scripted transports (no server): the estimate's rules.

The transports answer from a simulated server clock ``window.__trueNow() + SERVER_AHEAD_MS``,
truncated to whole milliseconds like the real server's, while the page's own wall clock is
skewed; so the true offset is known exactly and every error figure is measured against it.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.web.conftest import OFFLINE

SERVER_AHEAD_MS = 123456.789

# A page-side helper: a ClockSync over a scripted transport. ``script(n)`` gives, for the n-th
# request (from 1), {out, back} delays in ms, or null for a lost reply.
HELPERS = """
window.scripted = async (script, options = {}) => {
  const { ClockSync } = await import("/js/clock.js");
  const sim = { ahead: __AHEAD__ };
  const serverNow = () => Math.floor(window.__trueNow() + sim.ahead);
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const log = { requests: 0, lost: 0, changes: 0 };
  const request = async (t0) => {
    log.requests += 1;
    const plan = script(log.requests);
    if (plan === null) return new Promise(() => {});
    if (plan.out) await sleep(plan.out);
    const t1 = serverNow();
    const t2 = serverNow();
    if (plan.back) await sleep(plan.back);
    return { t1, t2 };
  };
  const clock = new ClockSync(request, options);
  clock.addEventListener("lost", () => { log.lost += 1; });
  clock.addEventListener("change", () => { log.changes += 1; });
  const error = () => clock.serverNow() - (window.__trueNow() + sim.ahead);
  return { clock, log, error, sim };
};
""".replace("__AHEAD__", repr(SERVER_AHEAD_MS))


@pytest.fixture
def clock_page(open_page: Any) -> Any:
    page = open_page(OFFLINE, skew_ms=3000)
    page.evaluate(HELPERS)
    return page


def test_min_rtt_samples_win_over_delayed_ones(clock_page: Any) -> None:
    """Samples delayed one way (queueing) are outvoted: the estimate uses the lowest round trips.

    Of 8 samples, 5 have a one-sided delay of 25-40 ms (an offset error of 12-20 ms each); the
    estimate stays within 1 ms of the truth, while the plain mean of all offsets is far off.
    """
    result = clock_page.evaluate("""async () => {
      const plan = (n) => (n % 2 === 0 ? { out: 40 } : n % 3 === 0 ? { back: 25 } : {});
      const { clock, error, sim } = await scripted(plan, { burstSpacingMs: 5 });
      const got = await clock.burst(8);
      const offsets = clock.samples.map((s) => s.offset);
      const mean = offsets.reduce((a, b) => a + b, 0) / offsets.length;
      const trueOffset = sim.ahead - window.__skewMs;
      return { got, error: error(), meanError: mean - trueOffset, rtt: clock.rttMs, synced: clock.synced };
    }""")
    assert result["got"] == 8 and result["synced"]
    assert abs(result["error"]) < 1.0, result
    assert abs(result["meanError"]) > 5.0, result
    assert result["rtt"] < 5.0, result


def test_lost_replies_are_skipped(clock_page: Any) -> None:
    """A reply that never comes times out; the burst goes on and syncs on the samples that came."""
    result = clock_page.evaluate("""async () => {
      const { clock, log, error } = await scripted((n) => (n % 2 ? {} : null),
                                                   { burstSpacingMs: 5, timeoutMs: 50 });
      const got = await clock.burst(6);
      return { got, lost: log.lost, lostCount: clock.lostCount, error: error(), synced: clock.synced };
    }""")
    assert result["got"] == 3 and result["lost"] == 3 and result["lostCount"] == 3
    assert result["synced"]
    assert abs(result["error"]) < 1.0, result


def test_all_replies_lost_is_not_synced(clock_page: Any) -> None:
    """With every reply lost, the clock is not synced and serverNow() keeps the seeded guess."""
    result = clock_page.evaluate("""async () => {
      const { clock, log } = await scripted(() => null, { burstSpacingMs: 1, timeoutMs: 20 });
      clock.seed(1000, 400);
      const got = await clock.burst(3);
      return { got, lost: log.lost, synced: clock.synced, offset: clock.offsetMs };
    }""")
    assert result == {"got": 0, "lost": 3, "synced": False, "offset": 600}


def test_reset_follows_a_new_server_clock(clock_page: Any) -> None:
    """After reset() (a reconnect, maybe to another node) the old samples are gone: the estimate
    follows the new server's clock, and until the first new sample the old offset stays in use."""
    result = clock_page.evaluate("""async () => {
      const { clock, sim, error } = await scripted(() => ({}), { burstSpacingMs: 1 });
      await clock.burst(4);
      const before = clock.offsetMs;
      clock.reset();
      const afterReset = { offset: clock.offsetMs, synced: clock.synced, samples: clock.samples.length };
      sim.ahead += 250; // the new server runs 250 ms ahead of the old one
      await clock.burst(4);
      return { before, afterReset, after: clock.offsetMs, samples: clock.samples.length, error: error() };
    }""")
    assert result["afterReset"] == {"offset": result["before"], "synced": False, "samples": 0}
    assert result["samples"] == 4
    assert abs(result["after"] - result["before"] - 250) < 1.0, result
    assert abs(result["error"]) < 1.0, result


def test_periodic_resync_and_stop(clock_page: Any) -> None:
    """start() bursts at once, then re-syncs with small bursts; stop() ends the re-syncs."""
    result = clock_page.evaluate("""async () => {
      const { clock, log } = await scripted(() => ({}), {
        burstSize: 4, burstSpacingMs: 1, resyncIntervalMs: 30, resyncBurstSize: 2 });
      const synced = new Promise((r) => clock.addEventListener("synced", r, { once: true }));
      let syncs = 0;
      const third = new Promise((r) => clock.addEventListener("synced", () => { if (++syncs === 3) r(); }));
      clock.start();
      await synced;
      const afterFirst = log.requests;
      await third;
      clock.stop();
      const atStop = log.requests;
      await new Promise((r) => setTimeout(r, 150));
      return { afterFirst, atStop, later: log.requests };
    }""")
    assert result["afterFirst"] == 4
    assert result["atStop"] == 8  # 4 + two re-sync bursts of 2
    assert result["later"] == result["atStop"]


def test_server_times_in_whole_ms_are_centred(clock_page: Any) -> None:
    """makeSample adds half a tick to integer server times (the server truncates to the ms), so a
    zero-delay exchange has no systematic bias; fractional times are taken as they are."""
    result = clock_page.evaluate("""async () => {
      const { makeSample, estimate } = await import("/js/clock.js");
      const whole = makeSample(100.0, 1000, 1000, 100.2);
      const frac = makeSample(100.0, 1000.25, 1000.25, 100.2);
      const none = makeSample(100.0, 1000, 1000, 100.2, 0);
      const est = estimate([
        makeSample(0, 10, 10, 50), makeSample(0, 20, 20, 2), makeSample(0, 21, 21, 3),
        makeSample(0, 22, 22, 1), makeSample(0, 90, 90, 40),
      ], 3);
      return { whole, frac, none, est };
    }""")
    assert result["whole"]["offset"] == pytest.approx(900.4)
    assert result["frac"]["offset"] == pytest.approx(900.15)
    assert result["none"]["offset"] == pytest.approx(899.9)
    assert result["whole"]["rtt"] == pytest.approx(0.2)
    # the best three by round trip (1, 2, 3 ms) have offsets 22, 19.5, 20: their median is 20
    assert result["est"]["rttMs"] == pytest.approx(1.0)
    assert result["est"]["offsetMs"] == pytest.approx(20.0)
