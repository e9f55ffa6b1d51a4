"""Measuring helpers of bench/realtime.py: CPU and memory of a process and the ``send()`` floor
(py-spy profiles are ``bench._profile``'s)."""

from __future__ import annotations

import os
import resource
import socket
import statistics
from pathlib import Path


def cpu_ms(pid: int) -> float:
    """User + system CPU time of ``pid`` so far, in ms (/proc/<pid>/stat)."""
    return sum(cpu_split_ms(pid))


def cpu_split_ms(pid: int) -> tuple[float, float]:
    """(user, system) CPU time of ``pid`` so far, in ms (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = 1000.0 / os.sysconf("SC_CLK_TCK")
    return int(fields[11]) * tick, int(fields[12]) * tick


def send_floor_us(n: int = 2000, frame_size: int = 200, rounds: int = 5) -> float:
    """The CPU of one ``send()`` of a small frame on a loopback TCP socket, in µs: the median over
    ``rounds`` of a bare Python loop over ``n`` connected sockets (the peers read between rounds).
    No server can write a change to a connection for less; it is most of a fan-out's cost."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(n)
    pairs = []
    try:
        for _ in range(n):
            client = socket.create_connection(listener.getsockname())
            server, _ = listener.accept()
            server.setblocking(False)
            server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pairs.append((client, server))
        frame = b"\x81\x7e" + (frame_size - 4).to_bytes(2, "big") + b"x" * (frame_size - 4)
        figures = []
        for _ in range(rounds):
            before = resource.getrusage(resource.RUSAGE_SELF)
            for _, server in pairs:
                server.send(frame)
            after = resource.getrusage(resource.RUSAGE_SELF)
            used = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
            figures.append(used / n * 1e6)
            for client, _ in pairs:
                client.recv(65536)
        return statistics.median(figures)
    finally:
        for client, server in pairs:
            client.close()
            server.close()
        listener.close()


def rss_kib(pid: int) -> int:
    """VmRSS of ``pid`` in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")
