"""The wheel's browser files, built without npm: setup.py runs this as the ``build_web`` step.

Contract (docs/architecture.md, "The browser files in a wheel"):

- ``web/package-lock.json`` is the one source of the players' versions and sha512 integrity.
- A normal build copies the pages (every file under ``web/`` except ``node_modules/``,
  ``vendor/``, the npm manifests and dot-files) to ``synctv/web/`` in the build, and the files the
  pages load from each player (``PLAYERS``) to ``synctv/web/vendor/<name>/``. The player comes from
  ``web/node_modules/<name>`` when ``npm ci`` put the locked version there, otherwise it is
  downloaded from the npm registry (``npm_config_registry``, as npm reads it; default
  https://registry.npmjs.org/) and its tarball checked against the lock's sha512 before a byte of
  it is used.
- An editable build writes only the players, in place under ``web/vendor/<name>/`` (git-ignored),
  and only when ``web/node_modules`` does not hold them; the checkout serves ``web/`` as it is.
- Any failure (network, HTTP status, integrity, a file missing from the tarball) stops the build
  with one line starting ``synctv build:`` that says what to do; no partial player is left.

Standard library only (urllib, tarfile, hashlib), plus setuptools for the command itself.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from setuptools import Command
from setuptools.errors import BaseError

DEFAULT_REGISTRY = "https://registry.npmjs.org/"
REGISTRY_ENV = ("npm_config_registry", "NPM_CONFIG_REGISTRY")  # npm reads both spellings
MAX_TARBALL_BYTES = 64 * 1024 * 1024
TIMEOUT_S = 60.0
#: Top-level entries of web/ that are not pages: npm's, and what this step writes in place.
NOT_PAGES = frozenset({"node_modules", "vendor", "package.json", "package-lock.json"})
STAMP = ".integrity"  # web/vendor/<name>/.integrity: the lock integrity an in-place copy came from


@dataclass(frozen=True)
class Player:
    """An npm package whose ``files`` (paths inside the package) the pages load from
    ``/vendor/<name>/<basename>``; ``optional`` files are shipped when the package has them."""

    name: str
    files: tuple[str, ...]
    optional: tuple[str, ...] = ()


PLAYERS = (
    Player("hls.js", ("dist/hls.min.js",), ("LICENSE",)),
    Player("mpegts.js", ("dist/mpegts.js",), ("dist/mpegts.js.map", "dist/mpegts.js.LICENSE.txt", "LICENSE")),
)


class PlayerFetchError(BaseError):
    """The build cannot get a player; the message is the one line the user sees."""


@dataclass(frozen=True)
class Locked:
    name: str
    version: str
    integrity: str  # "sha512-<base64>" (an SRI string, as npm writes it)


def locked(lock_path: Path, name: str) -> Locked:
    """The version and integrity ``lock_path`` (a package-lock.json, v2 or v3) pins for ``name``."""
    try:
        entry = json.loads(lock_path.read_text())["packages"][f"node_modules/{name}"]
        return Locked(name, str(entry["version"]), str(entry["integrity"]))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise PlayerFetchError(
            f"synctv build: {lock_path} does not pin {name} (version and integrity): {e!r}; "
            f"restore web/package-lock.json from git"
        ) from None


def registry() -> str:
    for key in REGISTRY_ENV:
        value = os.environ.get(key, "").strip()
        if value:
            return value
    return DEFAULT_REGISTRY


def tarball_url(pin: Locked, base: str | None = None) -> str:
    """``<registry>/<name>/-/<basename>-<version>.tgz``, the registry's tarball address."""
    base = (base or registry()).rstrip("/")
    basename = pin.name.rsplit("/", 1)[-1]
    return f"{base}/{urllib.parse.quote(pin.name, safe='@/')}/-/{basename}-{pin.version}.tgz"


def check_integrity(data: bytes, pin: Locked, url: str) -> None:
    """Raise unless ``data`` has one of the sha512 digests in the pin's SRI string."""
    wanted = {token[len("sha512-"):] for token in pin.integrity.split() if token.startswith("sha512-")}
    if not wanted:
        raise PlayerFetchError(
            f"synctv build: web/package-lock.json has no sha512 integrity for {pin.name}; "
            f"regenerate it with `npm install --package-lock-only` in web/"
        )
    if base64.b64encode(hashlib.sha512(data).digest()).decode("ascii") not in wanted:
        raise PlayerFetchError(
            f"synctv build: {url} does not match the sha512 integrity of {pin.name} {pin.version} "
            f"in web/package-lock.json; refusing it (check npm_config_registry, or run `npm ci` in web/ "
            f"and build again)"
        )


def download(pin: Locked, base: str | None = None) -> bytes:
    """The pinned tarball from the registry, integrity checked."""
    url = tarball_url(pin, base)
    advice = (
        "check the network, set npm_config_registry to a reachable npm registry, "
        "or run `npm ci` in web/ and build again"
    )
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            data = response.read(MAX_TARBALL_BYTES + 1)
    except urllib.error.HTTPError as e:
        raise PlayerFetchError(
            f"synctv build: cannot download {pin.name} {pin.version} from {url} (HTTP {e.code}); {advice}"
        ) from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        raise PlayerFetchError(
            f"synctv build: cannot download {pin.name} {pin.version} from {url} ({reason}); {advice}"
        ) from None
    if len(data) > MAX_TARBALL_BYTES:
        raise PlayerFetchError(
            f"synctv build: {url} is larger than {MAX_TARBALL_BYTES} bytes; refusing it ({advice})"
        )
    check_integrity(data, pin, url)
    return data


def _destination(inner: str) -> str:
    return PurePosixPath(inner).name


def files_from_tarball(data: bytes, player: Player, pin: Locked) -> dict[str, bytes]:
    """``{basename: bytes}`` of the player's files in an (already verified) npm tarball."""
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for member in tar.getmembers():
                inner = "/".join(PurePosixPath(member.name).parts[1:])  # npm's one top folder: package/
                if member.isfile() and inner in (*player.files, *player.optional):
                    handle = tar.extractfile(member)
                    if handle is not None:
                        found[_destination(inner)] = handle.read()
    except (tarfile.TarError, OSError, EOFError) as e:
        raise PlayerFetchError(
            f"synctv build: the {pin.name} {pin.version} tarball does not unpack ({e}); "
            f"run `npm ci` in web/ and build again"
        ) from None
    missing = [f for f in player.files if _destination(f) not in found]
    if missing:
        raise PlayerFetchError(
            f"synctv build: the {pin.name} {pin.version} tarball has no {', '.join(missing)}; "
            f"update PLAYERS in build_web.py for this version"
        )
    return found


def files_from_node_modules(web: Path, player: Player, pin: Locked) -> dict[str, bytes] | None:
    """The player's files from ``web/node_modules/<name>`` when it holds the locked version."""
    package = web / "node_modules" / player.name
    try:
        version = json.loads((package / "package.json").read_text()).get("version")
    except (OSError, ValueError, AttributeError):
        return None
    if version != pin.version or not all((package / f).is_file() for f in player.files):
        return None
    return {
        _destination(f): (package / f).read_bytes()
        for f in (*player.files, *player.optional) if (package / f).is_file()
    }


def stale_node_modules(web: Path, player: Player, pin: Locked) -> str | None:
    """The version of ``web/node_modules/<name>`` when it is there but not the locked one."""
    try:
        version = json.loads((web / "node_modules" / player.name / "package.json").read_text()).get("version")
    except (OSError, ValueError, AttributeError):
        return None
    return None if version == pin.version else str(version)


def player_files(web: Path, player: Player, base: str | None = None) -> dict[str, bytes]:
    """The player's files: from node_modules when ``npm ci`` put the locked version there, else
    downloaded and verified."""
    pin = locked(web / "package-lock.json", player.name)
    local = files_from_node_modules(web, player, pin)
    if local is not None:
        return local
    return files_from_tarball(download(pin, base), player, pin)


def write_files(folder: Path, files: dict[str, bytes], stamp: str | None = None) -> None:
    """Replace ``folder`` with exactly ``files`` (written beside it first, then renamed in)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        for name, data in files.items():
            (staging / name).write_bytes(data)
        if stamp is not None:
            (staging / STAMP).write_text(stamp + "\n")
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def in_place_is_current(web: Path, player: Player) -> bool:
    """Whether an editable install needs nothing for ``player``: ``web/node_modules`` holds it
    (whatever its version: npm owns that folder), or ``web/vendor/<name>`` came from the lock."""
    pin = locked(web / "package-lock.json", player.name)
    if all((web / "node_modules" / player.name / f).is_file() for f in player.files):
        return True
    folder = web / "vendor" / player.name
    try:
        stamp = (folder / STAMP).read_text().strip()
    except OSError:
        return False
    return stamp == pin.integrity and all((folder / _destination(f)).is_file() for f in player.files)


def pages(web: Path) -> list[Path]:
    """Every page file under ``web/`` (relative paths), sorted."""
    found = []
    for path in sorted(web.rglob("*")):
        relative = path.relative_to(web)
        if relative.parts[0] in NOT_PAGES or any(p.startswith(".") for p in relative.parts):
            continue
        if path.is_file():
            found.append(relative)
    return found


def build_into(web: Path, target: Path, base: str | None = None) -> list[Path]:
    """A normal build: the pages and the players under ``target`` (``synctv/web`` in build_lib);
    returns the files written. ``target`` is this step's alone: a file left from an earlier build
    of a page since removed is not shipped."""
    if target.exists():
        shutil.rmtree(target)
    written = []
    for relative in pages(web):
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(web / relative, target / relative)
        written.append(target / relative)
    for player in PLAYERS:
        files = player_files(web, player, base)
        write_files(target / "vendor" / player.name, files)
        written += [target / "vendor" / player.name / name for name in files]
    return written


def build_in_place(web: Path, base: str | None = None, say: Callable[[str], object] = print) -> list[str]:
    """An editable build: fetch the players missing from ``web/node_modules`` into ``web/vendor``;
    returns the names fetched."""
    fetched = []
    for player in PLAYERS:
        pin = locked(web / "package-lock.json", player.name)
        stale = stale_node_modules(web, player, pin)
        if stale is not None:
            say(f"synctv build: web/node_modules/{player.name} is {stale}, web/package-lock.json says "
                f"{pin.version}: run `npm ci` in web/")
        if not in_place_is_current(web, player):
            say(f"synctv build: fetching {player.name} {pin.version} into web/vendor/{player.name}")
            write_files(web / "vendor" / player.name, files_from_tarball(download(pin, base), player, pin),
                        stamp=pin.integrity)
            fetched.append(player.name)
    return fetched


class BuildWeb(Command):
    """``build_web``: the browser files (see the module docstring)."""

    description = "copy web/ and the locked browser players (fetched from npm when needed)"
    user_options: list[tuple[str, str | None, str]] = []
    editable_mode = False

    def initialize_options(self) -> None:
        self.build_lib: str | None = None
        self.editable_mode = False
        self._written: list[str] = []

    def finalize_options(self) -> None:
        self.set_undefined_options("build_py", ("build_lib", "build_lib"))

    @property
    def _web(self) -> Path:
        return Path(__file__).resolve().parent / "web"

    @property
    def _target(self) -> Path:
        return Path(str(self.build_lib)) / "synctv" / "web"

    def run(self) -> None:
        if self.editable_mode:
            build_in_place(self._web, say=lambda line: self.announce(line, level=3))
        else:
            self._written = [str(p) for p in build_into(self._web, self._target)]

    def get_source_files(self) -> list[str]:
        return [str(Path("web") / p) for p in pages(self._web)] + ["web/package.json", "web/package-lock.json"]

    def get_outputs(self) -> list[str]:
        if self.editable_mode:
            return []
        required = [str(self._target / "vendor" / p.name / _destination(f)) for p in PLAYERS for f in p.files]
        return sorted({*self.get_output_mapping(), *required, *self._written})

    def get_output_mapping(self) -> dict[str, str]:
        if self.editable_mode:
            return {}
        return {str(self._target / p): str(Path("web") / p) for p in pages(self._web)}
