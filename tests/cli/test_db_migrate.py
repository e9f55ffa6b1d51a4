"""`synctv db migrate --db URL`: runs locally with the store's migrations, no server involved."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from synctv.cli.main import main


def test_migrate_sqlite_reports_progress_then_summary(tmp_path: Path, config_home: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A fresh SQLite file gets every migration: progress lines on stderr, one summary on stdout;
    a second run applies nothing and says the database is up to date."""
    db = tmp_path / "synctv.db"
    assert main(["db", "migrate", "--db", f"sqlite:///{db}"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("applied ") and captured.out.count("\n") == 1
    assert "0001" in captured.err
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0] > 0

    assert main(["db", "migrate", "--db", f"sqlite:///{db}", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"database": f"sqlite:///{db}", "applied": []}


def test_migrate_bad_url_is_a_usage_error(config_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An unsupported --db URL exits 2 with the store's one-line explanation."""
    assert main(["db", "migrate", "--db", "mysql://localhost/x"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("synctv: --db: ")


def test_migrate_failure_is_one_line_exit_1(tmp_path: Path, config_home: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """A database that cannot be opened (a folder where the file should be) exits 1 with one line."""
    folder = tmp_path / "is-a-dir.db"
    folder.mkdir()
    assert main(["db", "migrate", "--db", f"sqlite:///{folder}"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("synctv: migration failed")
