"""Packaging: the README's first command serves the site and its players from a fresh clone, the
wheel carries the pages and the locked players (fetched and verified by build_web.py when npm did
not run), the twistd plugin is found after a normal and after the developer install, the README's
commands are the ones CI runs, and the code is lint-clean."""

from __future__ import annotations

import base64
import hashlib
import http.server
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

import build_web
from synctv import site
from synctv.testing import wait_serving

ROOT = Path(__file__).resolve().parent.parent
PLAYER_URLS = ("/vendor/hls.js/hls.min.js", "/vendor/mpegts.js/mpegts.js")


def _twistd_help(env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, "-c", "from twisted.scripts.twistd import run; run()", "--help"],
        capture_output=True, text=True, env=env, cwd="/", timeout=120,
    )
    return out.stdout + out.stderr


def test_developer_install_lists_plugin() -> None:
    """The documented developer install (editable, compat mode) lets ``twistd --help`` list synctv."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    text = _twistd_help(env)
    assert re.search(r"^\s+synctv\s+Watch-together", text, re.M), text


@pytest.mark.integration
def test_wheel_install_lists_plugin(tmp_path: Path) -> None:
    """``pip install .`` ships twisted/plugins/synctv_plugin.py, the package and its SQL migrations."""
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(ROOT)],
        check=True, timeout=300, cwd=tmp_path,
    )
    assert (target / "twisted" / "plugins" / "synctv_plugin.py").is_file()
    assert not (target / "twisted" / "plugins" / "__init__.py").exists()
    assert list((target / "synctv" / "store" / "migrations" / "sqlite").glob("0001_*.sql"))
    assert list((target / "synctv" / "store" / "migrations" / "postgres").glob("0001_*.sql"))
    web = target / "synctv" / "web"
    for name in ("index.html", "display.html", "js/realtime.js", "js/clock.js", "admin/index.html",
                 "vendor/hls.js/hls.min.js", "vendor/mpegts.js/mpegts.js"):
        assert (web / name).is_file(), name
    assert not (web / "package-lock.json").exists() and not (web / "node_modules").exists()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # the installed copy must come first, ahead of the checkout's editable path
    env["PYTHONPATH"] = str(target)
    text = _twistd_help(env)
    assert re.search(r"^\s+synctv\s+Watch-together", text, re.M), text
    probe = subprocess.run(
        [sys.executable, "-c", "import synctv, synctv.tap; print(synctv.__file__); print(synctv.tap.web_dir())"],
        capture_output=True, text=True, env=env, cwd="/", check=True,
    )
    module, web_dir = probe.stdout.splitlines()
    assert module.startswith(str(target))
    assert Path(web_dir) == web  # the package data, not a checkout's web/


def test_readme_commands_are_what_ci_runs() -> None:
    """The README opens with the serve and test commands; .ci/run runs that exact test command."""
    commands = _readme_commands()
    assert len(commands) == 2, commands
    serve, test = commands
    assert serve.endswith("twistd -n synctv")
    assert test.endswith("pytest")
    ci = (ROOT / ".ci" / "run").read_text()
    assert test in ci
    assert "SYNCTV_REQUIRE_POSTGRES=1" in ci and "SYNCTV_REQUIRE_TOOLS=1" in ci


def test_ruff_clean() -> None:
    """The code passes ruff (the lint config is ruff.toml)."""
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    out = subprocess.run(
        [ruff, "check", "synctv", "tests", "twisted", "bench", "build_web.py", "setup.py"],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def _readme_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    first_block = next(b for b in readme.split("\n\n") if b.startswith("    "))
    return [line.strip() for line in first_block.splitlines()]


def _get(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status, response.headers.get("Content-Type", ""), response.read()


def _fresh_env() -> dict[str, str]:
    """This process's environment without what points Python at this checkout or its venv."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    return env


@pytest.mark.integration
@pytest.mark.slow
def test_readme_first_command_serves_site_and_players_from_a_fresh_clone(tmp_path: Path) -> None:
    """README's first command, as written, in a clone of HEAD (no node_modules, nothing built; its
    own venv and ``pip install .``, so the wheel build fetches and verifies the players): it logs
    "serving", and answers ``/`` and both players from the installed package."""
    serve = _readme_commands()[0]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    subprocess.run(["git", "checkout", "-q", "--detach", head.stdout.strip()], cwd=clone, check=True)
    for absent in ("web/node_modules", "web/vendor", ".venv", "build", "synctv/web"):
        assert not (clone / absent).exists(), absent
    # port 8080 may be taken: the same command, with listeners on free loopback ports appended
    command = f"{serve} --http tcp:0:interface=127.0.0.1 --rtmp tcp:0:interface=127.0.0.1"
    log = tmp_path / "first-run.log"
    started = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen(["bash", "-c", command], cwd=clone, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=_fresh_env(), start_new_session=True)
    try:
        url = wait_serving(proc, log, timeout=420).http_url
        print(f"first run: serving after {time.monotonic() - started:.0f} s")
        status, ctype, body = _get(url + "/")
        assert status == 200 and ctype.startswith("text/html")
        assert body == (clone / "web" / "index.html").read_bytes()
        for path in PLAYER_URLS:
            status, ctype, body = _get(url + path)
            assert status == 200 and "javascript" in ctype, (path, status, ctype)
            assert len(body) > 100_000, (path, len(body))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    # the players came from the wheel: nothing was written into the clone's web/
    assert not (clone / "web" / "vendor").exists() and not (clone / "web" / "node_modules").exists()


# -- build_web.py against a registry on loopback -------------------------------------------------

class Registry:
    """An npm registry on loopback: answers ``tarballs[path]`` (404 otherwise), records each path."""

    def __init__(self) -> None:
        self.tarballs: dict[str, bytes] = {}
        self.paths: list[str] = []
        registry = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                registry.paths.append(self.path)
                data = registry.tarballs.get(self.path)
                self.send_response(200 if data is not None else 404)
                self.send_header("Content-Length", str(len(data or b"")))
                self.end_headers()
                self.wfile.write(data or b"")

            def log_message(self, *args: object) -> None:
                return None

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def registry() -> Iterator[Registry]:
    served = Registry()
    yield served
    served.close()


def npm_tarball(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def sri(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


HLS_FILES = {"dist/hls.min.js": b"/* hls min */", "dist/hls.js": b"/* not shipped */",
             "LICENSE": b"Apache-2.0", "package.json": b'{"version": "0.0.1"}'}
MPEGTS_FILES = {"dist/mpegts.js": b"/* mpegts */", "dist/mpegts.js.map": b"{}", "src/index.js": b"//"}


def fake_web(folder: Path, tarballs: dict[str, bytes]) -> Path:
    """A web/ with two pages and a package-lock.json pinning ``tarballs`` (name -> tgz) at 0.0.1."""
    web = folder / "web"
    (web / "js").mkdir(parents=True)
    (web / "index.html").write_text("<!doctype html>")
    (web / "js" / "a.js").write_text("//")
    (web / "package.json").write_text("{}")
    lock = {"lockfileVersion": 3, "packages": {
        f"node_modules/{name}": {"version": "0.0.1", "integrity": sri(data)} for name, data in tarballs.items()
    }}
    (web / "package-lock.json").write_text(json.dumps(lock))
    return web


@pytest.fixture
def players() -> dict[str, bytes]:
    return {"hls.js": npm_tarball(HLS_FILES), "mpegts.js": npm_tarball(MPEGTS_FILES)}


def serve_players(registry: Registry, players: dict[str, bytes]) -> None:
    for name, data in players.items():
        registry.tarballs[f"/{name}/-/{name}-0.0.1.tgz"] = data


def test_build_downloads_verifies_and_ships_only_the_player_files(
    tmp_path: Path, registry: Registry, players: dict[str, bytes]
) -> None:
    web = fake_web(tmp_path, players)
    serve_players(registry, players)
    target = tmp_path / "build" / "synctv" / "web"
    (target / "js").mkdir(parents=True)
    (target / "js" / "removed-page.js").write_text("// from an earlier build")
    build_web.build_into(web, target, base=registry.url)
    assert registry.paths == ["/hls.js/-/hls.js-0.0.1.tgz", "/mpegts.js/-/mpegts.js-0.0.1.tgz"]
    shipped = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    assert shipped == ["index.html", "js/a.js", "vendor/hls.js/LICENSE", "vendor/hls.js/hls.min.js",
                       "vendor/mpegts.js/mpegts.js", "vendor/mpegts.js/mpegts.js.map"]
    assert (target / "vendor" / "hls.js" / "hls.min.js").read_bytes() == HLS_FILES["dist/hls.min.js"]


def test_the_registry_comes_from_npm_config_registry(
    tmp_path: Path, registry: Registry, players: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    web = fake_web(tmp_path, players)
    serve_players(registry, players)
    monkeypatch.delenv("NPM_CONFIG_REGISTRY", raising=False)
    monkeypatch.setenv("npm_config_registry", registry.url + "/")
    pin = build_web.locked(web / "package-lock.json", "hls.js")
    assert build_web.download(pin) == players["hls.js"]
    assert registry.paths == ["/hls.js/-/hls.js-0.0.1.tgz"]
    monkeypatch.delenv("npm_config_registry")
    assert build_web.tarball_url(pin) == "https://registry.npmjs.org/hls.js/-/hls.js-0.0.1.tgz"


def test_a_tarball_that_fails_its_integrity_stops_the_build_with_one_line(
    tmp_path: Path, registry: Registry, players: dict[str, bytes]
) -> None:
    web = fake_web(tmp_path, players)
    serve_players(registry, {**players, "mpegts.js": npm_tarball({**MPEGTS_FILES, "dist/mpegts.js": b"evil()"})})
    target = tmp_path / "build"
    with pytest.raises(build_web.PlayerFetchError) as caught:
        build_web.build_into(web, target, base=registry.url)
    message = str(caught.value)
    assert "\n" not in message and message.startswith("synctv build: ")
    assert "mpegts.js 0.0.1" in message and "sha512 integrity" in message and "npm ci" in message
    assert not (target / "vendor" / "mpegts.js").exists()


def test_a_registry_without_the_tarball_stops_the_build_with_one_line(
    tmp_path: Path, registry: Registry, players: dict[str, bytes]
) -> None:
    web = fake_web(tmp_path, players)
    with pytest.raises(build_web.PlayerFetchError) as caught:
        build_web.build_into(web, tmp_path / "build", base=registry.url)
    message = str(caught.value)
    assert "\n" not in message and message.startswith("synctv build: cannot download hls.js 0.0.1")
    assert "HTTP 404" in message and "npm_config_registry" in message


def test_the_locked_version_in_node_modules_is_used_without_the_network(
    tmp_path: Path, registry: Registry, players: dict[str, bytes]
) -> None:
    """``npm ci``'s copy is shipped when it is the locked version; a stale one is not."""
    web = fake_web(tmp_path, players)
    serve_players(registry, players)
    hls = web / "node_modules" / "hls.js"
    (hls / "dist").mkdir(parents=True)
    (hls / "dist" / "hls.min.js").write_bytes(b"/* from npm ci */")
    (hls / "package.json").write_text(json.dumps({"version": "0.0.1"}))
    target = tmp_path / "build"
    build_web.build_into(web, target, base=registry.url)
    assert registry.paths == ["/mpegts.js/-/mpegts.js-0.0.1.tgz"]
    assert (target / "vendor" / "hls.js" / "hls.min.js").read_bytes() == b"/* from npm ci */"
    assert not (target / "node_modules").exists()

    (hls / "package.json").write_text(json.dumps({"version": "0.0.0"}))
    build_web.build_into(web, target, base=registry.url)
    assert (target / "vendor" / "hls.js" / "hls.min.js").read_bytes() == HLS_FILES["dist/hls.min.js"]


def test_an_editable_build_fetches_into_web_vendor_once_and_the_site_serves_it(
    tmp_path: Path, registry: Registry, players: dict[str, bytes]
) -> None:
    web = fake_web(tmp_path, players)
    serve_players(registry, players)
    said: list[str] = []
    assert build_web.build_in_place(web, base=registry.url, say=said.append) == ["hls.js", "mpegts.js"]
    assert (web / "vendor" / "hls.js" / "hls.min.js").read_bytes() == HLS_FILES["dist/hls.min.js"]
    assert build_web.build_in_place(web, base=registry.url, say=said.append) == []
    assert len(registry.paths) == 2 and len(said) == 2
    assert _vendor_folder(web, "hls.js") == web / "vendor" / "hls.js"
    # npm ci's dist folder wins in a checkout that has one
    (web / "node_modules" / "hls.js" / "dist").mkdir(parents=True)
    assert _vendor_folder(web, "hls.js") == web / "node_modules" / "hls.js" / "dist"


def _vendor_folder(web: Path, name: str) -> Path:
    child = site.vendor_resource(web).children[name.encode()]
    return Path(child.path)


def test_the_pages_load_only_player_files_the_wheel_ships() -> None:
    """Every ``/vendor/<name>/<file>`` the pages load is a file build_web ships, for a player the
    site serves, pinned with a sha512 in web/package-lock.json."""
    shipped = {(p.name, Path(f).name) for p in build_web.PLAYERS for f in p.files}
    assert {p.name for p in build_web.PLAYERS} == set(site.VENDOR_PACKAGES)
    loaded = set()
    for page in (ROOT / "web").rglob("*"):
        if page.suffix in (".html", ".js") and "node_modules" not in page.parts and "vendor" not in page.parts:
            loaded |= set(re.findall(r"/vendor/([\w.-]+)/([\w.-]+)", page.read_text()))
    assert loaded and loaded <= shipped, loaded - shipped
    for player in build_web.PLAYERS:
        assert build_web.locked(ROOT / "web" / "package-lock.json", player.name).integrity.startswith("sha512-")


@pytest.mark.integration
def test_pip_stops_with_one_line_when_the_players_cannot_be_fetched(tmp_path: Path, registry: Registry) -> None:
    """The real build (pip, setup.py, build_web) of a checkout without node_modules, against a
    registry that has nothing: pip fails and the build's output ends with the one line."""
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "node_modules", "vendor", "build", "*.egg-info", "__pycache__", ".*cache"))
    env = {**os.environ, "npm_config_registry": registry.url}
    env.pop("NPM_CONFIG_REGISTRY", None)
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
         str(tmp_path / "wheels"), str(source)],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path,
    )
    assert out.returncode != 0
    lines = [line.strip() for line in (out.stdout + out.stderr).splitlines()
             if line.strip().startswith("error: synctv build:")]
    assert len(lines) == 1, out.stdout + out.stderr
    version = build_web.locked(ROOT / "web" / "package-lock.json", "hls.js").version
    assert f"cannot download hls.js {version}" in lines[0] and "HTTP 404" in lines[0], lines[0]
    assert registry.paths == [f"/hls.js/-/hls.js-{version}.tgz"]
