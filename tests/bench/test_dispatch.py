"""``python -m bench``: names pick benchmarks, ``--quick`` goes to each, any other option goes to
the one benchmark named -- and what it cannot place (an unknown name, options for several
benchmarks) is refused before anything runs, instead of being dropped."""

from __future__ import annotations

import types
from typing import Any

import pytest

import bench.__main__ as dispatch


@pytest.fixture
def ran(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[str]]]:
    calls: list[tuple[str, list[str]]] = []

    def fake_import(name: str) -> Any:
        short = name.removeprefix("bench.")
        return types.SimpleNamespace(main=lambda argv: calls.append((short, list(argv))) or 0)

    monkeypatch.setattr(dispatch.importlib, "import_module", fake_import)
    return calls


def test_options_go_to_the_one_benchmark_named(ran):
    assert dispatch.main(["live", "--no-pin", "--baseline", "/tmp/base"]) == 0
    assert ran == [("live", ["--no-pin", "--baseline", "/tmp/base"])]


def test_quick_goes_to_every_benchmark_named(ran):
    assert dispatch.main(["--quick", "rooms", "workers"]) == 0
    assert ran == [("rooms", ["--quick"]), ("workers", ["--quick"])]
    ran.clear()
    assert dispatch.main(["live", "--quick", "--viewers", "30"]) == 0
    assert ran == [("live", ["--quick", "--viewers", "30"])]


def test_without_a_name_every_benchmark_runs(ran):
    assert dispatch.main([]) == 0
    assert [name for name, _ in ran] == dispatch.benchmark_names()


@pytest.mark.parametrize("argv", [["live", "/tmp/base"], ["nosuch"], ["--no-pin"], ["live", "proxy", "--no-pin"]])
def test_what_cannot_be_placed_is_refused_before_anything_runs(ran, argv, capsys):
    assert dispatch.main(argv) == 2
    assert ran == []
    err = capsys.readouterr().err
    assert err.startswith("bench: ") and ("no benchmark" in err or "go to one benchmark" in err)


def test_an_option_value_is_parsed_or_refused_before_anything_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """``bench.option``: the value after the name as the type asked for, the default without the
    name; a missing value, a wrong type or one below the minimum exits 2 naming the option (it used
    to be a traceback from ``int()``, or an IndexError for a trailing ``--rounds``)."""
    from bench import option

    assert option(["--rounds", "5"], "--rounds", 3, int, 1) == 5
    assert option(["--quick"], "--rounds", 3, int, 1) == 3
    assert option(["--read-every-ms", "0"], "--read-every-ms", 50.0, float, 0) == 0.0
    assert option(["--baseline", "/tmp/b"], "--baseline", None) == "/tmp/b"
    for argv, said in ((["--rounds"], "--rounds needs a value"),
                       (["--rounds", "--quick"], "--rounds needs a value"),
                       (["--rounds", "x"], "--rounds: 'x' is not an int"),
                       (["--rounds", "0"], "--rounds must be at least 1, not 0"),
                       (["--measure", "1.5s"], "--measure: '1.5s' is not a float")):
        kind = float if argv[0] == "--measure" else int
        with pytest.raises(SystemExit) as ended:
            option(argv, argv[0], None, kind, 1)
        assert ended.value.code == 2
        assert said in capsys.readouterr().err


def test_the_live_benchmarks_refuse_a_bad_option_before_starting_anything(capsys: pytest.CaptureFixture[str]) -> None:
    from bench import live, live_relay

    for main, argv in ((live.main, ["--viewers", "many"]), (live.main, ["--read-every-ms", "-1"]),
                       (live_relay.main, ["--rounds"])):
        with pytest.raises(SystemExit) as ended:
            main(argv)
        assert ended.value.code == 2
        assert capsys.readouterr().err.startswith("bench: ")
