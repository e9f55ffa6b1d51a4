"""A tiny stand-in HTTP server for the CLI's own behaviours (parsing, output, error mapping, tokens).

It answers canned, contract-shaped JSON (docs/api.md) and records every request. The real server
is exercised end to end elsewhere; this only checks what the client sends and how it reacts.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = tuple[int, Any]  # (status, JSON body) -- a bytes body is sent as is


@dataclass
class Recorded:
    method: str
    path: str  # raw, still percent-encoded
    headers: dict[str, str]
    body: Any


class StubServer:
    """Routes ``(method, raw path)`` to a queue of answers; the last answer repeats."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[Answer | Callable[[Recorded], Answer]]] = {}
        self.requests: list[Recorded] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                rec = Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                stub.requests.append(rec)
                queue = stub.routes.get((self.command, self.path))
                if not queue:
                    status, answer = 404, error("not_found", f"no stub for {self.command} {self.path}")
                else:
                    item = queue.pop(0) if len(queue) > 1 else queue[0]
                    status, answer = item(rec) if callable(item) else item
                data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def on(self, method: str, path: str, *answers: Answer | Callable[[Recorded], Answer]) -> None:
        self.routes[(method, path)] = list(answers)


def error(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def state(version: int, **fields: Any) -> dict[str, Any]:
    base = {"media_id": "m1", "playing": False, "ended": False, "position": 0.0, "rate": 1.0,
            "at_ms": 1_763_712_000_000, "version": version}
    return {**base, **fields}


ROOM = {"id": "r1", "name": "movie night", "kind": "watch", "has_password": False, "settings": {},
        "creator_id": "u1", "created_at": 1_763_712_000_000}
MEMBER = {"room_id": "r1", "user_id": "u1", "user_name": "root", "role": "creator",
          "permissions": ["control_playback", "manage_media", "chat"], "joined_at": 1_763_712_000_000}
USER = {"id": "u1", "name": "root", "role": "root", "created_at": 1_763_712_000_000}
