"""First start: the token secret and the root user, done synchronously before the reactor runs.

Both are idempotent and safe when several nodes start at once against one PostgreSQL: the secret
is inserted only if absent (then read back), and root is created only while no user exists (a
node that loses the race simply finds the user there).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import attrs
from twisted.logger import Logger

from synctv.core import auth
from synctv.store import DatabaseURL

log = Logger()

SECRET_KEY = "token_secret"


@attrs.frozen
class Bootstrap:
    secret: str
    root_password_file: Path | None  # set when this start created root


def _connect(url: DatabaseURL) -> Any:
    if url.dialect == "sqlite":
        import sqlite3

        conn = sqlite3.connect(url.path, timeout=10)
        conn.execute("PRAGMA foreign_keys=ON")
        return conn
    import psycopg2

    return psycopg2.connect(url.dsn)


def _sql(url: DatabaseURL, text: str) -> str:
    return text if url.dialect == "sqlite" else text.replace("?", "%s")


def write_secret_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by the owner only (created 0600, replaced atomically)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    os.replace(tmp, path)


def bootstrap(url: DatabaseURL, data_dir: Path, now_ms: int) -> Bootstrap:
    """Ensure the token secret and the root user exist; return the secret."""
    conn = _connect(url)
    try:
        cur = conn.cursor()
        insert = "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING"
        cur.execute(_sql(url, insert), (SECRET_KEY, auth.new_secret()))
        cur.execute(_sql(url, "SELECT value FROM settings WHERE key = ?"), (SECRET_KEY,))
        secret = cur.fetchone()[0]
        conn.commit()

        created: Path | None = None
        cur.execute("SELECT COUNT(*) FROM users")
        if cur.fetchone()[0] == 0:
            password = auth.new_password()
            cur.execute(
                _sql(
                    url,
                    "INSERT INTO users (id, name, role, password_hash, token_generation, created_at)"
                    " VALUES (?, 'root', 'root', ?, 0, ?) ON CONFLICT (name) DO NOTHING",
                ),
                (auth.new_id(), auth.hash_password(password), now_ms),
            )
            if cur.rowcount == 1:
                created = data_dir / "root-password"
                write_secret_file(created, password)
            conn.commit()
    finally:
        conn.close()
    if created is not None:
        log.warn(
            "created user root; its password is in {path} (readable by this user only)",
            path=str(created),
        )
    return Bootstrap(secret=secret, root_password_file=created)
