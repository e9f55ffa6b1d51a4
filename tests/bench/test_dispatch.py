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
