"""The access log (``synctv.access_log``, docs/operations.md "The access log") as ``[server]
access_log`` sets it: "off" writes no line; a file gets the redacted lines in buffered writes,
flushed each second and when the server stops, follows a rotated path, and survives a failing
disk without failing a request; the config refuses a path it could not write."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_twisted
from twisted.logger import formatEvent, globalLogPublisher

from synctv.access_log import AccessLogFile
from synctv.config import ConfigError, load_config
from synctv.site import SiteService, build_site
from tests.api.api_support import WEB_DIR, Served
from tests.proxy._support import until


def _served(access_log: str | Path) -> Served:
    return Served(build_site(object(), web_dir=WEB_DIR, routes=(), access_log=access_log))


async def _stop(served: Served) -> None:
    await served.stop()


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def events():
    seen: list = []
    globalLogPublisher.addObserver(seen.append)
    yield seen
    globalLogPublisher.removeObserver(seen.append)


@pytest_twisted.ensureDeferred
async def test_off_writes_no_line(events):
    served = _served("off")
    try:
        r = await served.client.get("/api/nothing?token=SECRETSECRET")
        assert r.status == 404
    finally:
        await _stop(served)
    assert not [e for e in events if "/api/nothing" in (formatEvent(e) or "")]


@pytest_twisted.ensureDeferred
async def test_the_default_is_the_servers_log(events):
    served = _served("log")
    try:
        await served.client.get("/api/nothing?token=SECRETSECRET")
    finally:
        await _stop(served)
    lines = [formatEvent(e) or "" for e in events]
    assert any('"GET /api/nothing?token=SECR... HTTP/1.1" 404' in line for line in lines), lines


@pytest_twisted.ensureDeferred
async def test_a_file_gets_redacted_lines_each_second_and_at_stop(tmp_path, events):
    from twisted.internet import reactor

    path = tmp_path / "access.log"
    served = _served(path)
    service = SiteService(served.site, reactor, drain_s=1.0)
    service.startService()
    try:
        for n in range(3):
            assert (await served.client.get(f"/api/nothing/{n}?s=SIGNATUREVALUE&x=1")).status == 404
        await until(lambda: len(_lines(path)) == 3, timeout_s=5)
        await served.client.get("/api/last")
    finally:
        await service.stopService()  # flushes and closes
        await _stop(served)
    served.site.log(object())  # a request that outlived the drain: nothing written, nothing raised
    lines = _lines(path)
    assert len(lines) == 4
    assert lines[0].startswith('"127.0.0.1" - - [') and '"GET /api/nothing/0?s=SIGN...&x=1 HTTP/1.1" 404' in lines[0]
    assert "/api/last" in lines[3]
    assert "SIGNATUREVALUE" not in path.read_text()
    assert not [e for e in events if "/api/nothing" in (formatEvent(e) or "")]  # not in the server's log too


@pytest_twisted.ensureDeferred
async def test_a_rotated_file_is_followed(tmp_path):
    path = tmp_path / "access.log"
    served = _served(path)
    sink = served.site.access_log
    assert isinstance(sink, AccessLogFile)
    try:
        await served.client.get("/api/before")
        assert _lines(path) == []  # buffered until the second's tick (none runs here: not started)
        path.rename(tmp_path / "access.log.1")  # what logrotate does
        sink.tick()  # the second's tick: the line before goes where it was, the file is opened anew
        assert path.exists()
        await served.client.get("/api/after")
        sink.tick()
        path.unlink()  # deleted by hand: opened anew too
        sink.tick()
        await served.client.get("/api/deleted")
    finally:
        sink.close()
        await _stop(served)
    assert ["/api/before" in line for line in _lines(tmp_path / "access.log.1")] == [True]
    assert ["/api/deleted" in line for line in _lines(path)] == [True]


@pytest_twisted.ensureDeferred
async def test_a_failing_disk_drops_lines_says_so_once_and_fails_no_request(events):
    served = _served(Path("/dev/full"))  # every write: ENOSPC
    sink = served.site.access_log
    try:
        for _ in range(2):
            assert (await served.client.get("/api/nothing")).status == 404
            sink.flush()
    finally:
        sink.close()
        await _stop(served)
    errors = [formatEvent(e) for e in events if "cannot write the access log" in (formatEvent(e) or "")]
    assert len(errors) == 1 and "/dev/full" in errors[0]


def _config(tmp_path: Path, value: str) -> Path:
    path = tmp_path / "synctv.toml"
    path.write_text(f'[server]\naccess_log = "{value}"\n')
    return path


@pytest.mark.parametrize(("value", "expected"), [("log", "log"), ("off", "off")])
def test_config_log_and_off(tmp_path, value, expected):
    assert load_config(_config(tmp_path, value), {"data": str(tmp_path / "d")}).access_log_target == expected
    assert load_config(None, {"data": str(tmp_path / "d")}).access_log_target == "log"


def test_config_a_relative_file_is_under_the_data_directory(tmp_path):
    config = load_config(_config(tmp_path, "access.log"), {"data": str(tmp_path / "d")})
    assert config.access_log_target == tmp_path / "d" / "access.log"
    absolute = tmp_path / "logs" / "a.log"
    absolute.parent.mkdir()
    assert load_config(_config(tmp_path, str(absolute)), {"data": str(tmp_path / "d")}).access_log_target == absolute


def test_config_refuses_a_file_it_cannot_write(tmp_path):
    with pytest.raises(ConfigError, match=r"the folder .*nowhere does not exist"):
        load_config(_config(tmp_path, str(tmp_path / "nowhere" / "a.log")), {"data": str(tmp_path / "d")})
    (tmp_path / "dir.log").mkdir()
    with pytest.raises(ConfigError, match="cannot append to"):
        load_config(_config(tmp_path, str(tmp_path / "dir.log")), {"data": str(tmp_path / "d")})
    with pytest.raises(ConfigError, match="NUL"):  # TOML can say it ("\u0000"); open() would raise ValueError
        load_config(_config(tmp_path, "a\\u0000b.log"), {"data": str(tmp_path / "d")})
