"""``synctv display|event|video ...``: LAN synchronized displays from the command line (docs/displays.md).

Verbs register into ``synctv.cli.main``'s table (main imports this module at its end).
"""

from __future__ import annotations

import argparse
import io
import os
import urllib.parse
from collections.abc import Mapping
from typing import Any

from synctv.cli import output
from synctv.cli.client import ApiError, CLIError, Unreachable, api_path
from synctv.cli.main import GROUP_HELP, Context, _compact, _created, _finite, _pick, arg, command
from synctv.cli.upload import human, upload_file

GROUP_HELP.update({
    "display": "screens of display rooms", "event": "display events and their triggers",
    "video": "videos uploaded for displays",
})


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 1..65535, not {value}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return value


# -- plain renderers -----------------------------------------------------------------------------

def render_display_added(data: Mapping[str, Any]) -> str:
    """``ID PUBLIC_ID``, so ``read ID PUBLIC_ID <<< "$(synctv display add ...)"`` works."""
    return f"{data.get('id', '')} {data.get('public_id', '')}"


def render_displays(data: Mapping[str, Any]) -> str:
    return output.table(data.get("displays", []), [
        ("ID", lambda d: d.get("id")), ("NAME", lambda d: d.get("name")),
        ("ROOM", lambda d: d.get("room_id")), ("PAGE", lambda d: d.get("page")),
    ], empty="no displays")


def _udp(event: Mapping[str, Any]) -> str | None:
    if event.get("udp_port") is None:
        return None
    status = (event.get("status") or {}).get("udp", "?")
    error = (event.get("status") or {}).get("error")
    return f"{event['udp_port']} {event.get('udp_payload')!r} ({status}{': ' + error if error else ''})"


def render_events(data: Mapping[str, Any]) -> str:
    return output.table(data.get("events", []), [
        ("ID", lambda e: e.get("id")), ("NAME", lambda e: e.get("name")),
        ("ROOM", lambda e: e.get("room_id")), ("MEDIA", lambda e: e.get("media_id")),
        ("COOLDOWN", lambda e: output.number(e.get("cooldown_s")) + "s"),
        ("LEAD", lambda e: f"{e.get('lead_ms')}ms"), ("UDP", _udp),
    ], empty="no events")


def render_triggered(data: Mapping[str, Any]) -> str:
    event = data.get("event") or {}
    starts = data.get("starts_in_ms")
    seconds = output.number(starts / 1000) if isinstance(starts, (int, float)) else "?"
    return (f"event {event.get('name')} starts in {seconds}s "
            f"(at {output.format_ms(data.get('at_ms'), clock=True)} server time)")


def render_videos(data: Mapping[str, Any]) -> str:
    return output.table(data.get("videos", []), [
        ("ID", lambda v: v.get("id")), ("TITLE", lambda v: v.get("title")),
        ("DURATION", lambda v: None if v.get("duration") is None else output.number(v["duration"]) + "s"),
        ("SIZE", lambda v: human(v["size"]) if isinstance(v.get("size"), int) else None),
        ("FORMAT", lambda v: v.get("format")),
    ], empty="no videos")


# -- verbs ---------------------------------------------------------------------------------------

@command("display add", "add a screen to a display room; prints its id and public id", arg("name"),
         arg("--room", required=True, help="the display room's id or name"), plain=render_display_added)
def display_add(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    answer = ctx.client.post("/api/displays", {"name": args.name, "room": args.room})
    return {**_created(answer, "display"), "public_id": _pick(answer, "display", "public_id")}


@command("display list", "screens of the display rooms you manage", plain=render_displays)
def display_list(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    return ctx.client.get("/api/displays")


@command("display remove", "remove a screen", arg("display", help="id or name"), plain=output.render_deleted)
def display_remove(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    return ctx.client.delete(api_path("displays", args.display))


@command("event add", "create a display event; prints its id", arg("name"),
         arg("--room", required=True, help="the display room's id or name"),
         arg("--media", required=True, metavar="ID",
             help="a media item of the room, or an uploaded video's id"),
         arg("--udp-port", type=_port, metavar="N",
             help="UDP port to listen on (site admins; inside [triggers] udp_ports, default 5000-5999)"),
         arg("--udp-payload", metavar="TEXT"),
         arg("--cooldown", type=_finite, metavar="S",
             help="seconds before it may fire again (default 5; 0 turns it off)"),
         arg("--lead-ms", type=_non_negative_int, metavar="N",
             help="ms from trigger to start (default 5000)"),
         arg("--allow", action="append", metavar="CIDR", help="a source allowed to trigger it (repeatable)"),
         plain=output.render_id)
def event_add(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    body = _compact(name=args.name, room=args.room, media=args.media, udp_port=args.udp_port,
                    udp_payload=args.udp_payload, cooldown_s=args.cooldown, lead_ms=args.lead_ms,
                    allowed_sources=args.allow)
    return _created(ctx.client.post("/api/events", body), "event")


@command("event list", "display events, with their UDP port status", plain=render_events)
def event_list(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    return ctx.client.get("/api/events")


@command("event remove", "delete a display event", arg("event", help="id or name"),
         plain=output.render_deleted)
def event_remove(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    return ctx.client.delete(api_path("events", args.event))


@command("event trigger", "start an event's show now (+ its lead time)", arg("name"),
         arg("--force", action="store_true", help="ignore the cooldown (site admins)"),
         plain=render_triggered)
def event_trigger(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    path = "/trigger_by_name/" + urllib.parse.quote(args.name, safe="")
    return ctx.client.post(path + ("?force=1" if args.force else ""))


@command("video upload", "upload a video file (progress on stderr); prints its id", arg("file"),
         arg("--title"), plain=output.render_id)
def video_upload(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    query = {"filename": args.file.replace("\\", "/").rsplit("/", 1)[-1]}
    if args.title:
        query["title"] = args.title
    try:
        answer = upload_file(ctx.client, args.file, query, ctx.stderr)
    except Unreachable as cut:
        raise _refusal(ctx, query, cut) from None
    return _created(answer, "video")


def _refusal(ctx: Context, query: Mapping[str, str], cut: Unreachable) -> CLIError:
    """Why an upload was cut off mid-body. The server judges an upload before its body and then
    stops reading, so a large file's sender sees only a closed connection; an empty upload with the
    same token is judged the same way and shows the answer (a site admin's is refused as empty and
    nothing is kept). When that passes, the file is most likely over the server's size limit."""
    try:
        upload_file(ctx.client, os.devnull, dict(query), io.StringIO())
    except ApiError as refusal:
        if refusal.status != 400:
            return refusal
        return CLIError(f"{cut}; the server stopped reading the upload: the file may be over its size "
                           "limit ([displays] max_video_bytes)")
    except CLIError:
        return cut
    return cut


@command("video list", "uploaded videos", plain=render_videos)
def video_list(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    return ctx.client.get("/api/videos")


@command("video remove", "delete a video no media item plays", arg("video", help="video id"),
         plain=output.render_deleted)
def video_remove(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    return ctx.client.delete(api_path("videos", args.video))
