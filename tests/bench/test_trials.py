"""bench/_trials.py: alternation, health, refusal of unhealthy ratios, CPU accounting and pinning."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from bench._trials import (
    Pinning,
    Run,
    Spread,
    Starvation,
    alternate,
    bound,
    compare,
    cpu_seconds,
    format_comparison,
    format_run,
    loadavg,
    process_tree,
    sched_times,
)


def side(values: dict[int, float], problems: dict[int, list[str]] | None = None, calls: list[str] | None = None,
         name: str = ""):
    def measure(r: int) -> Run:
        if calls is not None:
            calls.append(name)
        return Run(name, r, {"mbs": values[r]}, list((problems or {}).get(r, [])))
    return measure


def test_sides_alternate_their_order_every_round() -> None:
    calls: list[str] = []
    rounds = alternate({"synctv": side({0: 1, 1: 1, 2: 1}, calls=calls, name="synctv"),
                        "nginx": side({0: 1, 1: 1, 2: 1}, calls=calls, name="nginx")}, rounds=3)
    assert calls == ["synctv", "nginx", "nginx", "synctv", "synctv", "nginx"]
    assert [list(r) for r in rounds] == [["synctv", "nginx"]] * 3
    assert [r["nginx"].round for r in rounds] == [0, 1, 2]


def test_median_spread_and_paired_ratio() -> None:
    rounds = alternate({"a": side({0: 90, 1: 110, 2: 100}), "b": side({0: 100, 1: 100, 2: 200})}, rounds=3)
    c = compare(rounds, "mbs", "a", "b")
    assert c.refused is None
    assert (c.a.median, c.a.low, c.a.high) == (100, 90, 110)
    assert c.a.relative == pytest.approx(0.2)
    assert c.b.median == 100
    assert c.ratio.median == pytest.approx(0.9)  # rounds' ratios 0.9, 1.1, 0.5
    assert (c.ratio.low, c.ratio.high) == (pytest.approx(0.5), pytest.approx(1.1))
    line = format_comparison(c, "a", "b")[0]
    assert "a 100 (90-110), b 100 (100-200); ratio a/b 0.90 (0.50-1.10, 3 rounds)" in line


def test_an_unhealthy_round_is_retried_and_left_out_of_the_ratio() -> None:
    rounds = alternate({"a": side({0: 1, 1: 1, 2: 1, 3: 1}),
                        "b": side({0: 100, 1: 2, 2: 2, 3: 2}, {0: ["publisher 12.00 s behind"]})}, rounds=3)
    assert len(rounds) == 4  # one more round replaced the unhealthy one
    c = compare(rounds, "mbs", "a", "b")
    assert c.refused is None and c.ratio.median == 0.5 and c.ratio.count == 3
    assert c.b.median == 2  # the unhealthy run's 100 is not in the side's figures either


def test_the_ratio_is_refused_with_the_reasons_when_too_few_rounds_were_healthy() -> None:
    rounds = alternate({"a": side({i: 1 for i in range(5)}, {1: ["bytes wrong"]}),
                        "b": side({i: 2 for i in range(5)}, {0: ["gaps 5000"], 2: ["gaps 12"], 3: ["x"]})},
                       rounds=3, max_rounds=5)
    assert len(rounds) == 5
    c = compare(rounds, "mbs", "a", "b")
    assert c.ratio is None
    assert c.refused.startswith("1 of 5 rounds healthy on both sides, 3 needed")
    for reason in ("round 1 b: gaps 5000", "round 2 a: bytes wrong", "round 3 b: gaps 12"):
        assert reason in c.refused
    line = format_comparison(c, "a", "b")[0]
    assert "REFUSED" in line and "ratio a/b 0" not in line


def test_a_measure_that_raises_is_an_unhealthy_run_saying_why() -> None:
    def broken(r: int) -> Run:
        raise ConnectionError("closed in the body")

    seen: list[Run] = []
    rounds = alternate({"a": side({0: 1}), "b": broken}, rounds=1, max_rounds=1, report=seen.append)
    assert [r.side for r in seen] == ["a", "b"]
    assert rounds[0]["b"].problems == ["failed: ConnectionError: closed in the body"]
    assert compare(rounds, "mbs", "a", "b", need=1).ratio is None


def test_runs_note_the_load_average_and_bounds_make_problems() -> None:
    rounds = alternate({"a": side({0: 1.5})}, rounds=1)
    run = rounds[0]["a"]
    assert run.load != (0.0, 0.0, 0.0) or loadavg() == (0.0, 0.0, 0.0)
    problems: list[str] = []
    bound(problems, 0.5, 0.9, "load client CPU")
    bound(problems, 0.97, 0.9, "load client CPU", " cores")
    assert problems == ["load client CPU 0.97 cores > 0.9 cores"]
    run.problems = problems
    assert "UNHEALTHY: load client CPU 0.97 cores > 0.9 cores" in format_run(run)
    assert "load average" in format_run(run)


def test_spread_needs_values() -> None:
    with pytest.raises(ValueError):
        Spread.of([])
    assert Spread.of([3.0]).relative == 0


def test_cpu_seconds_counts_a_busy_child_and_its_tree() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time\nt=time.process_time()\n"
                              "while time.process_time() - t < 0.3: pass\nprint('done', flush=True)\n"
                              "time.sleep(30)"], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "done"
        assert cpu_seconds([child.pid]) >= 0.25
        assert child.pid in process_tree(os.getpid())
        assert cpu_seconds([2**22 + 7]) == 0  # no such pid
    finally:
        child.kill()
        child.wait()


def test_pinning_splits_servers_from_load_and_pins_a_process() -> None:
    assert Pinning.split([0]).servers is None
    assert Pinning.split([0, 1], enabled=False).describe() == "not pinned"
    pin = Pinning.split([3, 1, 2])
    assert pin.servers == {1} and pin.load == {2, 3}
    assert pin.describe() == "servers on CPU 1, load clients on CPU 2,3"
    mine = sorted(os.sched_getaffinity(0))
    if len(mine) < 2:
        pytest.skip("one CPU: nothing to pin apart")
    pin = Pinning.split(mine)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], preexec_fn=pin.load_preexec())
    try:
        deadline = time.monotonic() + 10
        while os.sched_getaffinity(child.pid) != set(pin.load) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert os.sched_getaffinity(child.pid) == set(pin.load)
        pin.pin_servers(child.pid)
        assert os.sched_getaffinity(child.pid) == set(pin.servers)
    finally:
        child.kill()
        child.wait()


def test_starvation_is_the_share_of_a_window_spent_waiting_for_a_cpu() -> None:
    mine = sched_times([os.getpid()])
    if mine == (0.0, 0.0):
        pytest.skip("no schedstat on this kernel")
    starving = Starvation([os.getpid()])
    t0 = time.process_time()
    while time.process_time() - t0 < 0.2:
        pass
    share = starving.share(1.0)
    assert 0 <= share < 10
    ran, waited = sched_times([os.getpid()])
    assert ran >= mine[0] + 0.15 and waited >= mine[1]
