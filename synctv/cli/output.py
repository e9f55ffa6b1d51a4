"""How the ``synctv`` command prints answers: one JSON object with ``--json``, short text otherwise.

Plain renderers take the same dict that ``--json`` prints and return the text (no trailing
newline). Times from the server (``created_at``, ``at_ms``) are milliseconds of the server's clock,
shown in the local time zone.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

Renderer = Callable[[Mapping[str, Any]], str]
Column = tuple[str, Callable[[Mapping[str, Any]], Any]]


def emit(data: Mapping[str, Any], plain: Renderer | None, *, json_mode: bool, out: TextIO) -> None:
    """Print ``data`` as exactly one JSON object, or through ``plain`` (nothing when it is None)."""
    if json_mode:
        out.write(json.dumps(data, ensure_ascii=False) + "\n")
    elif plain is not None:
        text = plain(data)
        if text:
            out.write(text + "\n")
    out.flush()


def number(value: Any) -> str:
    """``12.3``, ``12.0``, ``1.25``: at most three decimals, at least one."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return "-"
    text = f"{value:.3f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def format_ms(ms: Any, *, clock: bool = False) -> str:
    """A server timestamp (ms) in local time: ``2025-11-21 08:04:05``, or with ``clock`` the
    time of day with milliseconds (``08:04:05.123``), prefixed by the date unless it is today."""
    if not isinstance(ms, (int, float)) or isinstance(ms, bool):
        return "-"
    seconds = ms / 1000.0
    moment = time.localtime(seconds)
    if not clock:
        return time.strftime("%Y-%m-%d %H:%M:%S", moment)
    text = time.strftime("%H:%M:%S", moment) + f".{int(ms % 1000):03d}"
    if time.strftime("%Y-%m-%d", moment) != time.strftime("%Y-%m-%d"):
        text = time.strftime("%Y-%m-%d ", moment) + text
    return text


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column], *, empty: str) -> str:
    """Left-aligned columns under a header; ``empty`` when there are no rows."""
    if not rows:
        return empty
    cells = [[header for header, _ in columns]]
    cells += [["-" if (v := get(row)) is None else str(v) for _, get in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in cells)


def playback_line(state: Mapping[str, Any]) -> str:
    """``playing  12.3s at 08:04:05.123 / rate 1.0  media <id>  v7``.

    The position is the one the server recorded at ``at_ms`` (its clock); while playing, the
    position now is ``position + (now - at_ms) / 1000 * rate`` on the server's clock. The command
    does not guess the server's clock from the local one.
    """
    version = f"v{state.get('version', '?')}"
    if state.get("media_id") is None:
        return f"no media  {version}"
    word = "ended" if state.get("ended") else "playing" if state.get("playing") else "paused"
    line = (f"{word}  {number(state.get('position'))}s at {format_ms(state.get('at_ms'), clock=True)}"
            f" / rate {number(state.get('rate'))}  media {state['media_id']}  {version}")
    if state.get("event_id"):
        line += f"  event {state['event_id']}"
    return line


def render_users(data: Mapping[str, Any]) -> str:
    return table(data.get("users", []), [
        ("ID", lambda u: u.get("id")), ("NAME", lambda u: u.get("name")),
        ("ROLE", lambda u: u.get("role")), ("CREATED", lambda u: format_ms(u.get("created_at"))),
    ], empty="no users")


def render_rooms(data: Mapping[str, Any]) -> str:
    return table(data.get("rooms", []), [
        ("ID", lambda r: r.get("id")), ("NAME", lambda r: r.get("name")), ("KIND", lambda r: r.get("kind")),
        ("PASSWORD", lambda r: "yes" if r.get("has_password") else "no"),
        ("CREATED", lambda r: format_ms(r.get("created_at"))),
    ], empty="no rooms")


def render_media_list(data: Mapping[str, Any]) -> str:
    return table(data.get("media", []), [
        ("ID", lambda m: m.get("id")), ("TITLE", lambda m: m.get("title")),
        ("PROVIDER", lambda m: m.get("provider")),
        ("DURATION", lambda m: None if m.get("duration") is None else number(m["duration"]) + "s"),
        ("URL", lambda m: m.get("url")),
    ], empty="no media")


def render_room(data: Mapping[str, Any]) -> str:
    """``room show``: the room's fields, then the caller's membership."""
    room = data.get("room") or {}
    lines = [
        f"id:        {room.get('id')}",
        f"name:      {room.get('name')}",
        f"kind:      {room.get('kind')}",
        f"password:  {'yes' if room.get('has_password') else 'no'}",
        f"creator:   {room.get('creator_id')}",
        f"created:   {format_ms(room.get('created_at'))}",
    ]
    if room.get("settings"):
        lines.append(f"settings:  {json.dumps(room['settings'], ensure_ascii=False, sort_keys=True)}")
    member = data.get("member")
    if member:
        lines.append(f"you:       {member.get('role')} ({', '.join(member.get('permissions') or []) or 'no permissions'})")
    else:
        lines.append("you:       not a member")
    return "\n".join(lines)


def render_joined(data: Mapping[str, Any]) -> str:
    room, member = data.get("room") or {}, data.get("member") or {}
    return f"joined {room.get('name')} ({room.get('id')}) as {member.get('role')}"


def render_id(data: Mapping[str, Any]) -> str:
    """Just the id, so ``ROOM=$(synctv room create x)`` works."""
    return str(data.get("id", ""))


def render_deleted(data: Mapping[str, Any]) -> str:
    return f"deleted {data.get('deleted')}"
