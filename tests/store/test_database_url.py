"""Parsing ``--db`` values into DatabaseURL, and keeping passwords out of what is shown."""

from __future__ import annotations

import os

import pytest

from synctv.store import DatabaseURL, parse_database_url


def test_sqlite_relative_path_is_resolved_against_the_current_directory(tmp_path, monkeypatch):
    """sqlite:///relative.db names a file under the working directory (an absolute path is kept)."""
    monkeypatch.chdir(tmp_path)
    url = parse_database_url("sqlite:///relative.db")
    assert url == DatabaseURL("sqlite", path=str(tmp_path / "relative.db"))
    assert parse_database_url("sqlite:///./synctv-data/synctv.db").path == str(
        tmp_path / "synctv-data" / "synctv.db"
    )


def test_sqlite_absolute_path_has_four_slashes():
    """The text after sqlite:/// is the path, so sqlite:////abs/path.db is /abs/path.db."""
    url = parse_database_url("sqlite:////var/lib/synctv/synctv.db")
    assert url.dialect == "sqlite" and url.path == "/var/lib/synctv/synctv.db"
    assert url.redacted() == "sqlite:////var/lib/synctv/synctv.db"
    assert parse_database_url(url.redacted()) == url


@pytest.mark.parametrize(
    "text",
    [
        "postgresql://user:pw@db.example:5433/synctv",
        "postgres://user:pw@db.example:5433/synctv",
    ],
)
def test_postgres_urls(text):
    """Both schemes give a libpq URI; redacted() drops the password and nothing else."""
    url = parse_database_url(text)
    assert url.dialect == "postgres"
    assert url.dsn == "postgresql://user:pw@db.example:5433/synctv"
    assert url.redacted() == "postgresql://user@db.example:5433/synctv"
    assert str(url) == url.redacted()
    assert "pw" not in repr(url)


def test_postgres_url_without_user_or_port():
    """User and port are optional (libpq defaults apply)."""
    url = parse_database_url("postgresql://localhost/synctv?sslmode=disable")
    assert url.redacted() == "postgresql://localhost/synctv"
    assert url.with_database("other").dsn == "postgresql://localhost/other?sslmode=disable"


@pytest.mark.parametrize(
    "text",
    [
        "mysql://root@localhost/x",
        "sqlite://relative.db",
        "sqlite:///",
        "sqlite:///somedir/",
        "postgresql://host:notaport/db",
        "postgresql://host",
        "synctv.db",
        "",
        "postgress://u:secret@h/db",
    ],
)
def test_bad_urls_are_one_line_value_errors(text):
    """Anything else is a ValueError with one line that names the accepted forms and no password."""
    with pytest.raises(ValueError) as caught:
        parse_database_url(text)
    message = str(caught.value)
    assert "\n" not in message
    assert "sqlite:///relative/path.db" in message and "postgresql://" in message
    assert "secret" not in message


def test_sqlite_file_helper_makes_paths_absolute(tmp_path, monkeypatch):
    """DatabaseURL.sqlite_file is the programmatic way to name a file, relative or not."""
    monkeypatch.chdir(tmp_path)
    assert DatabaseURL.sqlite_file("x.db").path == os.path.join(str(tmp_path), "x.db")
