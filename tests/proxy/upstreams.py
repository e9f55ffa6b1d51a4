"""Real upstreams on loopback for the proxy tests: nginx (from apt) serving generated files, and a
small twisted.web server for the cases nginx cannot play (no Range support, a gate that holds
answers, failures, huge headers)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.web import resource, server

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


#: What a hostile member's upstream serves: a page whose script would run on synctv's origin.
HOSTILE_PAGE = (b"<!doctype html><html><body><script>fetch('/api/auth/me')</script>"
                b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(document.domain)'/></body></html>")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pattern(size: int, seed: int = 0) -> bytes:
    """``size`` bytes in which every aligned 8-byte word names its own offset (mismatches show where)."""
    words = (size + 7) // 8
    raw = b"".join(((i * 8) ^ (seed << 40)).to_bytes(8, "big") for i in range(words))
    return raw[:size]


class Nginx:
    """``nginx`` serving ``root`` on 127.0.0.1:``port`` (ETag and Last-Modified from the files)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.root = workdir / "root"
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def write(self, name: str, data: bytes, mtime: float | None = None) -> Path:
        """Write a file atomically; ``mtime`` sets its Last-Modified (and so its ETag)."""
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_bytes(data)
        if mtime is not None:
            os.utime(tmp, (mtime, mtime))
        os.replace(tmp, path)
        return path

    def start(self) -> None:
        temp = self.workdir / "temp"
        temp.mkdir(exist_ok=True)
        user = "user root;" if os.geteuid() == 0 else ""
        conf = self.workdir / "nginx.conf"
        conf.write_text(f"""
{user}
worker_processes 1;
daemon off;
pid {self.workdir}/nginx.pid;
error_log {self.workdir}/error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    types {{ video/mp4 mp4; application/vnd.apple.mpegurl m3u8; video/mp2t ts; text/vtt vtt; }}
    default_type application/octet-stream;
    sendfile on;
    server {{
        listen 127.0.0.1:{self.port};
        root {self.root};
        location /private/ {{ if ($http_referer != "https://allowed.example/") {{ return 403; }} }}
    }}
}}
""")
        self.proc = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(self.workdir)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited: {self.proc.stderr.read().decode(errors='replace')}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("nginx did not start listening")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class SpecialUpstream(resource.Resource):
    """A twisted.web upstream with named behaviours (one per path), counting requests per path.

    - ``/norange/<n>``: ignores Range, always 200 with ``n`` pattern bytes;
    - ``/gated/<n>``: honours ``Range``, but holds every answer until ``release()``;
    - ``/status/<code>``: answers that status;
    - ``/hang``: sends headers (206) and then nothing;
    - ``/bigheaders``: a header section of 200 KiB;
    - ``/reset/<n>``: announces ``n`` bytes, sends half, drops the connection;
    - ``/typed/range/<name>?type=T`` and ``/typed/norange/<name>?type=T``: :data:`HOSTILE_PAGE`
      with ``Content-Type: T`` (none when ``type`` is absent), honouring Range or not;
    - ``/redirect/<name>?to=URL``: 302 to ``URL``.
    """

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter[str] = Counter()
        self.gate: defer.Deferred[None] = defer.Deferred()
        self.arrived: defer.Deferred[None] = defer.Deferred()
        self.lost: defer.Deferred[None] = defer.Deferred()
        self.requests: list[dict[str, Any]] = []

    def release(self) -> None:
        if not self.gate.called:
            self.gate.callback(None)

    def render(self, request: Any) -> Any:
        path = request.path.decode()
        self.counts[path] += 1
        self.requests.append({"path": path, "range": request.getHeader(b"range"),
                              "headers": dict(request.requestHeaders.getAllRawHeaders())})
        parts = path.strip("/").split("/")
        kind, arg = parts[0], parts[1] if len(parts) > 1 else ""
        if kind == "norange":
            body = pattern(int(arg))
            request.setHeader(b"Content-Type", b"video/mp4")
            request.setHeader(b"Content-Length", str(len(body)).encode())
            return body
        if kind == "gated":
            if not self.arrived.called:
                self.arrived.callback(None)
            request.notifyFinish().addErrback(lambda _: None if self.lost.called else self.lost.callback(None))
            self.gate.addCallback(lambda _: self._ranged(request, pattern(int(arg))))
            return server.NOT_DONE_YET
        if kind == "status":
            request.setResponseCode(int(arg))
            return b"nope"
        if kind == "hang":
            first, _, last = (request.getHeader(b"range") or b"bytes=0-99").decode()[6:].partition("-")
            request.setResponseCode(206)
            request.setHeader(b"Content-Range", f"bytes {first}-{last}/10000000".encode())
            request.setHeader(b"Content-Length", str(int(last) - int(first) + 1).encode())
            request.write(b"")
            return server.NOT_DONE_YET
        if kind == "bigheaders":
            for i in range(200):
                request.setHeader(f"X-Filler-{i}".encode(), b"x" * 1000)
            return b"ok"
        if kind == "typed":
            mime = request.args.get(b"type", [None])[0]
            if mime is not None:
                request.setHeader(b"Content-Type", mime)
            else:
                request.defaultContentType = None  # twisted.web would say text/html
            if arg == "range":
                self._ranged(request, HOSTILE_PAGE, content_type=mime)
                return server.NOT_DONE_YET
            request.setHeader(b"Content-Length", str(len(HOSTILE_PAGE)).encode())
            return HOSTILE_PAGE
        if kind == "redirect":
            request.setResponseCode(302)
            request.setHeader(b"Location", request.args[b"to"][0])
            return b""
        if kind == "reset":
            n = int(arg)
            request.setResponseCode(206)
            request.setHeader(b"Content-Range", f"bytes 0-{n - 1}/{n}".encode())
            request.setHeader(b"Content-Length", str(n).encode())
            request.write(pattern(n)[: n // 2])
            request.channel.transport.abortConnection()
            return server.NOT_DONE_YET
        request.setResponseCode(404)
        return b"no such behaviour"

    def _ranged(self, request: Any, body: bytes, content_type: bytes | None = None) -> None:
        value = (request.getHeader(b"range") or b"").decode()
        first, _, last = value.removeprefix("bytes=").partition("-")
        lo = int(first) if first else 0
        hi = min(int(last), len(body) - 1) if last else len(body) - 1
        request.setResponseCode(206)
        request.setHeader(b"Content-Range", f"bytes {lo}-{hi}/{len(body)}".encode())
        request.setHeader(b"ETag", b'"gated-1"')
        if content_type is not None:
            request.setHeader(b"Content-Type", content_type)
        chunk = body[lo:hi + 1]
        request.setHeader(b"Content-Length", str(len(chunk)).encode())
        if not request._disconnected:
            request.write(chunk)
            request.finish()
