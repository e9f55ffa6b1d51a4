"""``synctv watch ROOM``: print a room's playback state, then every change, until Ctrl-C.

The one command that keeps a connection open: it speaks the realtime protocol (WebSocket
``/ws/rooms/{room}``, docs/realtime.md) through ``synctv.realtime.client``. Twisted is imported
inside ``watch_room`` only, so every other command still starts without it.

Output: one line per state (``playback_line``), or with ``--json`` one JSON object per line (the
state's fields, as ``playback show --json`` prints them). With ``danmaku`` it also observes
``chat`` and prints each danmaku as it arrives (``danmaku  1.10s  bilibili: text``; with
``--json`` ``{"danmaku": {...}}``), e.g. a Bilibili video's comments as the room plays it. A state equal to the last one printed
(a re-send after a reconnection) is not printed again. Ctrl-C (or SIGTERM) ends it with status 0.
A refused connection (401/403 -> 4, 404 -> 5, 429 -> 1), a refused TCP connection (3) or a
connection lost for good after ``retries`` reconnection attempts (3) ends it with one line.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TextIO

from synctv.cli import output
from synctv.cli.client import EXIT_AUTH, EXIT_NOT_FOUND, ApiClient, CLIError, Unreachable

RETRIES = 5
_STATE_SKIP = ("type", "id")


class _ClosedByServer(CLIError):
    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def state_of(message: Mapping[str, Any]) -> dict[str, Any]:
    """A ``playbackState`` frame without its ``type`` and ``id``: the state as the HTTP API shows it."""
    return {k: v for k, v in message.items() if k not in _STATE_SKIP}


def _reason(f: Any) -> str:
    from twisted.internet import error

    if f.check(error.ConnectionRefusedError):
        return "connection refused"
    if f.check(error.DNSLookupError):
        return "unknown host"
    if f.check(error.TimeoutError, error.TCPTimedOutError):
        return "no answer"
    return " ".join(f.getErrorMessage().split())


def danmaku_line(message: Mapping[str, Any]) -> str:
    sender = (message.get("from") or {}).get("user_name") or "?"
    return f"danmaku  {output.number(message.get('at'))}s  {sender}: {message.get('text')}"


def watch_room(client: ApiClient, room: str, *, json_mode: bool, out: TextIO, retries: int = RETRIES,
               danmaku: bool = False) -> None:
    """Run until interrupted; raises ``CLIError`` (one line, an exit code) when it cannot go on."""
    from twisted.internet import reactor

    from synctv.realtime.client import ConnectionLost, Refused, connect

    last: list[dict[str, Any]] = []
    failure: list[CLIError] = []

    def show(message: Mapping[str, Any]) -> None:
        if danmaku and message.get("type") == "danmaku":
            fields = {k: v for k, v in message.items() if k != "type"}
            write(json.dumps({"danmaku": fields}, ensure_ascii=False) if json_mode else danmaku_line(message))
            return
        if message.get("type") != "playbackState":
            return
        state = state_of(message)
        if last and last[0] == state:
            return
        last[:] = [state]
        write(json.dumps(state, ensure_ascii=False) if json_mode else output.playback_line(state))

    def write(line: str) -> None:
        try:
            out.write(line + "\n")
            out.flush()
        except BrokenPipeError:
            stop(None)

    def stop(error: CLIError | None) -> None:
        if error is not None and not failure:
            failure.append(error)
        if reactor.running:
            reactor.stop()

    def refused(exc: Refused) -> CLIError:
        body = json.dumps({"error": {"code": exc.code, "message": exc.message}}).encode()
        return client._api_error(exc.status, exc.message, body, auth=True)

    def connected(rt: Any) -> None:
        rt.on_message(show)
        for resource in ("playbackState", "chat") if danmaku else ("playbackState",):
            rt.observe(resource).addErrback(
                lambda f: stop(CLIError(f"cannot observe: {f.getErrorMessage()}"))
            )
        rt.when_closed().addCallback(closed)

    def closed(info: Any) -> None:
        if info.code == 4000:
            stop(_ClosedByServer(f"the room {room} was deleted", EXIT_NOT_FOUND))
        elif info.code == 4001:
            stop(_ClosedByServer(f"removed from the room {room}, or the token was revoked", EXIT_AUTH))
        elif isinstance(info.code, int) and 400 <= info.code < 600:  # an upgrade refused while reconnecting
            stop(refused(Refused(info.code, "", info.reason)))
        else:
            reason = info.reason or f"close code {info.code}"
            stop(
                Unreachable(
                    f"lost the connection to {client.server} ({reason}); gave up after {retries} retries"
                )
            )

    def failed(f: Any) -> None:
        if f.check(Refused):
            stop(refused(f.value))
        elif f.check(ConnectionLost):
            stop(Unreachable(f"{client.server} closed the connection: {f.getErrorMessage()}"))
        else:
            stop(
                Unreachable(
                    f"cannot reach {client.server}: {_reason(f)}; is the server running? "
                    "(set --server or SYNCTV_SERVER)"
                )
            )

    d = connect(client.server, room, client.token, reconnect=retries > 0, max_retries=retries)
    d.addCallbacks(connected, failed)
    reactor.run()
    if failure:
        raise failure[0]
