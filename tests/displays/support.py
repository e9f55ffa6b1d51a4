"""Helpers of the display tests: a DisplayRuntime attached to a test Site, small media files."""

from __future__ import annotations

import errno
import random
import socket
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred

from synctv.actions import Actions
from synctv.config import DisplaysConfig, TriggerConfig
from synctv.core.displays import parse_networks
from synctv.core.triggers import DEFAULT_UDP_PORTS, PortRanges
from synctv.displays.subsystem import DisplayRuntime
from tests.api.api_support import SECRET, WEB_DIR


def start_displays(
    actions: Actions, data_dir: Path, registry: Any, *, lan_networks: Sequence[str] = (),
    reactor: Any = None, udp_ports: str = DEFAULT_UDP_PORTS, limits: DisplaysConfig = DisplaysConfig(),
    **options: Any,
) -> DisplayRuntime:
    """A started DisplayRuntime (give it to ``build_site(displays=...)``) (UDP ports on 127.0.0.1, inside ``udp_ports``; no
    ``lan_networks`` unless given); stop it with ``stop_displays``."""
    if reactor is None:
        from twisted.internet import reactor as global_reactor

        reactor = global_reactor
    triggers = TriggerConfig(lan_networks=parse_networks(lan_networks), udp_ports=PortRanges.parse(udp_ports),
                             udp_bind="127.0.0.1")
    runtime = DisplayRuntime(
        actions=actions, secret=SECRET, data_dir=data_dir, web_dir=WEB_DIR, reactor=reactor,
        triggers=triggers, limits=limits, registry=registry, **options,
    )
    pytest_twisted.blockon(Deferred.fromCoroutine(runtime.start()))
    return runtime


def stop_displays(runtime: DisplayRuntime) -> None:
    pytest_twisted.blockon(Deferred.fromCoroutine(runtime.stop()))


def make_video(path: Path, seconds: float = 2.0, size: str = "64x48") -> Path:
    """A small H.264 MP4 made by ffmpeg."""
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"testsrc=duration={seconds}:size={size}:rate=25",
         "-c:v", "libx264", "-pix_fmt", "yuv420p", "-y", str(path)],
        check=True, timeout=120,
    )
    return path


PNG_1x1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def free_udp_port(low: int = 5000, high: int = 5999) -> int:
    """A UDP port within ``low..high`` (by default [triggers] udp_ports' default range) that nobody
    holds on 127.0.0.1 or 0.0.0.0 right now; tried from a random start, so that tests running at
    once rarely pick the same one."""
    start = random.randrange(low, high + 1)
    for offset in range(high - low + 1):
        port = low + (start - low + offset) % (high - low + 1)
        if not udp_port_in_use(port) and not udp_port_in_use(port, "0.0.0.0"):
            return port
    raise AssertionError(f"no free UDP port in {low}-{high}")


def hold_udp_port(low: int = 5000, high: int = 5999) -> socket.socket:
    """A socket bound to 127.0.0.1 on a free port within ``low..high``: that port is in use until it
    is closed."""
    for _ in range(50):
        held = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            held.bind(("127.0.0.1", free_udp_port(low, high)))
        except OSError:  # taken between the check and the bind
            held.close()
            continue
        return held
    raise AssertionError(f"could not hold a UDP port in {low}-{high}")


def udp_port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether binding host:port fails because someone holds it."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((host, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                return True
            raise
        return False


def send_udp(port: int, payload: bytes, source: str = "127.0.0.1") -> None:
    """One datagram from ``source`` (any 127.x address on Linux) to 127.0.0.1:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((source, 0))
        s.sendto(payload, ("127.0.0.1", port))


def next_message(bus: Any, channel: str, kind: str) -> Deferred[dict[str, Any]]:
    """Fires with the next message of type ``kind`` on ``channel``."""
    d: Deferred[dict[str, Any]] = Deferred()

    def on_message(message: dict[str, Any]) -> None:
        if message.get("type") == kind and not d.called:
            unsubscribe()
            d.callback(message)

    unsubscribe = bus.subscribe(channel, on_message)
    return d


@pytest.fixture
def no_logged_failures() -> Any:
    """Fails the test if anything logged a traceback (twisted.web and Klein log errors they swallow)."""
    from twisted.logger import formatEvent, globalLogPublisher

    failures: list[str] = []

    def observe(event: dict[str, Any]) -> None:
        if "log_failure" in event:
            failures.append(formatEvent(event) + "\n" + event["log_failure"].getTraceback())

    globalLogPublisher.addObserver(observe)
    yield failures
    globalLogPublisher.removeObserver(observe)
    assert not failures, "\n\n".join(failures)
