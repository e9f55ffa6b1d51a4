"""Where the ``synctv`` command keeps login tokens.

One JSON file, ``$XDG_CONFIG_HOME/synctv/tokens.json`` (``~/.config/synctv/tokens.json`` when the
variable is unset or not absolute), mode 0600 in a 0700 folder, keyed by the normalized server URL::

    {"http://127.0.0.1:8080": {"token": "...", "user": "root", "expires_at": 1763712000000}}

Writes are atomic: a temporary file in the same folder is written, flushed to disk and renamed
over the old one, so a crash never leaves half a file. ``SYNCTV_TOKEN`` in the environment wins
over anything stored (``resolve_token``).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from synctv.cli.client import CLIError

TOKEN_ENV = "SYNCTV_TOKEN"


def config_dir(env: Mapping[str, str]) -> Path:
    """The synctv folder under the XDG config home."""
    base = env.get("XDG_CONFIG_HOME", "")
    root = Path(base) if base and os.path.isabs(base) else Path(env.get("HOME") or Path.home()) / ".config"
    return root / "synctv"


class TokenStore:
    """Tokens per server URL in one JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> TokenStore:
        return cls(config_dir(env) / "tokens.json")

    def load(self) -> dict[str, dict[str, Any]]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise CLIError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
            raise CLIError(f"{self.path} is not a synctv token file; delete it and run `synctv login USER`")
        return data

    def get(self, server: str) -> str | None:
        token = self.load().get(server, {}).get("token")
        return token if isinstance(token, str) and token else None

    def put(self, server: str, token: str, *, user: str | None = None, expires_at: Any = None) -> None:
        data = self.load()
        data[server] = {"token": token, "user": user, "expires_at": expires_at}
        self._write(data)

    def remove(self, server: str) -> bool:
        """Forget the token for ``server``; False when there was none."""
        data = self.load()
        if server not in data:
            return False
        del data[server]
        self._write(data)
        return True

    def _write(self, data: Mapping[str, Any]) -> None:
        folder = self.path.parent
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tokens-", suffix=".tmp", dir=folder)  # mode 0600
        except OSError as exc:
            raise CLIError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(data, out, indent=2, sort_keys=True)
                out.write("\n")
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except OSError as exc:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise CLIError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable; not every platform can open a folder, which is fine."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def resolve_token(server: str, env: Mapping[str, str], store: TokenStore) -> tuple[str | None, str | None]:
    """``(token, source)``: ``SYNCTV_TOKEN`` first, then the stored token for ``server``."""
    token = env.get(TOKEN_ENV, "").strip()
    if token:
        return token, TOKEN_ENV
    stored = store.get(server)
    return (stored, str(store.path)) if stored else (None, None)
