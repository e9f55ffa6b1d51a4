"""``synctv``: the command-line client of a running synctv server (docs/cli.md, docs/api.md).

Every verb is one small function registered with ``@command("group verb", ...)``; the parser is
built from that table. Global options work before or after the verb: ``--server URL`` (default
http://127.0.0.1:8080, env SYNCTV_SERVER), ``--json`` (print exactly one JSON object) and
``--timeout S`` (default 30, env SYNCTV_TIMEOUT). This module must not import Twisted: it starts
on every invocation (``db migrate`` imports the store lazily).

Exit status:
    0  success
    1  any other failure: a server error (5xx), a bad request (400), 413, 429, an odd answer
    2  usage: a bad command line or option value
    3  the server cannot be reached: refused, unknown host, no answer within the timeout
    4  authentication or permission: HTTP 401 or 403
    5  not found: HTTP 404
    6  conflict: HTTP 409 (a taken name, or a stale playback version after one retry)
Every failure prints one line on stderr, starting with ``synctv:``.
"""

from __future__ import annotations

import argparse
import getpass
import math
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn, TextIO

from synctv.cli import output
from synctv.cli import stream as stream_output
from synctv.cli.client import (
    DEFAULT_SERVER,
    DEFAULT_TIMEOUT,
    EXIT_OK,
    ApiClient,
    CLIError,
    UsageError,
    api_path,
    normalize_server,
)
from synctv.cli.tokens import TOKEN_ENV, TokenStore, resolve_token

Handler = Callable[["Context", argparse.Namespace], dict[str, Any]]


@dataclass(frozen=True)
class Arg:
    """One ``add_argument`` call."""

    flags: tuple[str, ...]
    options: Mapping[str, Any]


def arg(*flags: str, **options: Any) -> Arg:
    return Arg(flags, options)


@dataclass(frozen=True)
class Command:
    words: tuple[str, ...]  # ("room", "create")
    help: str
    args: tuple[Arg, ...]
    handler: Handler
    plain: output.Renderer | None
    exclusive: tuple[tuple[str, ...], ...] = ()  # groups of flags of which at most one may be given


COMMANDS: dict[tuple[str, ...], Command] = {}
GROUP_HELP = {
    "user": "manage users (site admins)", "room": "create, list, join and delete rooms",
    "media": "a room's playlist", "playback": "a room's playback state", "db": "local database tasks",
    "stream": "live streams: RTMP keys and stream info",
    "cache": "the media proxy's slice cache (site admins)",
    "account": "your Alist, Emby, Jellyfin and Bilibili accounts",
}


def command(
    name: str, help: str, *args: Arg, plain: output.Renderer | None = None,
    exclusive: tuple[tuple[str, ...], ...] = (),
) -> Callable[[Handler], Handler]:
    """Register ``handler(ctx, args) -> dict`` as the verb ``name``; ``plain`` renders the dict."""

    def register(handler: Handler) -> Handler:
        words = tuple(name.split())
        COMMANDS[words] = Command(words, help, args, handler, plain, exclusive)
        return handler

    return register


@dataclass
class Context:
    """What a verb needs: the resolved server, the token store and a client, made on first use."""

    args: argparse.Namespace
    env: Mapping[str, str]
    stdin: TextIO
    stderr: TextIO
    _client: ApiClient | None = field(default=None, init=False)

    @property
    def server(self) -> str:
        return normalize_server(self.args.server or self.env.get("SYNCTV_SERVER") or DEFAULT_SERVER)

    @property
    def tokens(self) -> TokenStore:
        return TokenStore.from_env(self.env)

    @property
    def client(self) -> ApiClient:
        if self._client is None:
            server = self.server
            token, source = resolve_token(server, self.env, self.tokens)
            self._client = ApiClient(server, token, token_source=source, timeout=self.timeout)
        return self._client

    @property
    def timeout(self) -> float:
        if self.args.timeout is not None:
            return self.args.timeout
        text = self.env.get("SYNCTV_TIMEOUT")
        try:
            return DEFAULT_TIMEOUT if not text else _positive(text)
        except argparse.ArgumentTypeError as exc:
            raise UsageError(f"SYNCTV_TIMEOUT: {exc}") from None


# -- argument types --------------------------------------------------------------------------

def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def _positive(text: str) -> float:
    value = _finite(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0: {text!r}")
    return value


def _header(text: str) -> tuple[str, str]:
    """``'Name: value'`` -> ``("Name", "value")``."""
    name, sep, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not sep or not name or any(c.isspace() for c in name):
        raise argparse.ArgumentTypeError(f"expected 'Name: value', got {text!r}")
    return name, value


def _read_password(ctx: Context, given: str | None, prompt: str) -> str:
    """``--password``, else a prompt on a terminal, else one line of stdin."""
    if given is not None:
        return given
    if ctx.stdin.isatty():
        return getpass.getpass(prompt)
    line = ctx.stdin.readline()
    if not line:
        raise UsageError("no password: give --password or write it on stdin")
    return line.rstrip("\r\n")


def _pick(answer: Mapping[str, Any], *keys: str) -> Any:
    value: Any = answer
    for key in keys:
        if not isinstance(value, Mapping) or key not in value:
            raise CLIError(f"unexpected answer from the server: no {'.'.join(keys)}")
        value = value[key]
    return value


def _created(answer: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """The server's answer with the new thing's ``id`` on top: ``{"id": ..., kind: {...}, ...}``."""
    return {"id": _pick(answer, kind, "id"), **answer}


def _compact(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


# -- verbs -----------------------------------------------------------------------------------

@command("login", "log in and store a token for this server", arg("user"), arg("--password"),
         plain=lambda d: f"logged in to {d['server']} as {d['user'].get('name')} ({d['user'].get('role')})")
def login(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    password = _read_password(ctx, args.password, f"password for {args.user}: ")
    client = ApiClient(ctx.server, timeout=ctx.timeout)
    answer = client.post("/api/auth/login", {"name": args.user, "password": password}, auth=False)
    token, user = _pick(answer, "token"), answer.get("user") or {"name": args.user}
    ctx.tokens.put(ctx.server, token, user=user.get("name"), expires_at=answer.get("expires_at"))
    if ctx.env.get(TOKEN_ENV):
        print(f"synctv: note: {TOKEN_ENV} is set and overrides the stored token", file=ctx.stderr)
    return {**answer, "user": user, "server": ctx.server}


@command("logout", "forget the stored token for this server",
         arg("--revoke", action="store_true", help="first revoke every token of this user on the server"),
         plain=lambda d: ("logged out of " if d["logged_out"] else "no token was stored for ") + d["server"])
def logout(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    if args.revoke:
        ctx.client.post("/api/auth/revoke")
    return {"server": ctx.server, "logged_out": ctx.tokens.remove(ctx.server), "revoked": args.revoke}


@command("whoami", "show the logged-in user",
         plain=lambda d: f"{d['user'].get('name')} ({d['user'].get('role')}) {d['user'].get('id')}")
def whoami(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    return ctx.client.get("/api/auth/me")


@command("user add", "create a user; prints its id", arg("name"), arg("--password"),
         arg("--role", choices=("admin", "user")), plain=output.render_id)
def user_add(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    password = _read_password(ctx, args.password, f"password for the new user {args.name}: ")
    body = _compact(name=args.name, password=password, role=args.role)
    return _created(ctx.client.post("/api/users", body), "user")


@command("user list", "list users", plain=output.render_users)
def user_list(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    return ctx.client.get("/api/users")


@command("room create", "create a room; prints its id", arg("name"), arg("--password"),
         arg("--kind", choices=("watch", "display")), plain=output.render_id)
def room_create(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    body = _compact(name=args.name, password=args.password, kind=args.kind)
    return _created(ctx.client.post("/api/rooms", body), "room")


@command("room list", "list rooms", plain=output.render_rooms)
def room_list(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    return ctx.client.get("/api/rooms")


@command("room show", "show a room and your membership", arg("room", help="id or name"),
         plain=output.render_room)
def room_show(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    return ctx.client.get(api_path("rooms", args.room))


@command("room set", "change a room's settings (the others are kept); prints the room",
         arg("room", help="id or name"),
         arg("--playlist", choices=("next", "loop", "one", "stop"),
             help="what follows an item's end: next (default), loop, one (repeat), stop"),
         arg("--wait-for-all", choices=("on", "off"), help="hold playback for viewers whose player is not ready"),
         arg("--wait-s", type=_finite, metavar="S", help="how long to hold, 1 to 120 seconds"),
         plain=output.render_room)
def room_set(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    shown = ctx.client.get(api_path("rooms", args.room))
    settings = dict((shown.get("room") or {}).get("settings") or {})
    changes = _compact(playlist=args.playlist, wait_s=args.wait_s)
    if args.wait_for_all is not None:
        changes["wait_for_all"] = args.wait_for_all == "on"
    if not changes:
        raise UsageError("room set: nothing to change; give --playlist, --wait-for-all or --wait-s")
    patched = ctx.client.patch(api_path("rooms", args.room), {"settings": {**settings, **changes}})
    return {**shown, "room": patched.get("room")}


@command("room join", "become a member of a room", arg("room", help="id or name"), arg("--password"),
         plain=output.render_joined)
def room_join(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    return ctx.client.post(api_path("rooms", args.room, "join"), _compact(password=args.password))


@command("room delete", "delete a room", arg("room", help="id or name"), plain=output.render_deleted)
def room_delete(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    return ctx.client.delete(api_path("rooms", args.room))


@command("media add", "add an item to a room's playlist; prints its id", arg("room", help="id or name"),
         arg("--url", help="the media URL (bilibili: a video page, BV/av id or live room URL)"), arg("--title"),
         arg("--provider", help="direct (default), rtmp, live, alist, emby, jellyfin, bilibili"),
         arg("--account", metavar="ID", help="alist, emby, jellyfin: one of your accounts (synctv account list)"),
         arg("--item", help="alist: a file's path; emby, jellyfin: an item id (synctv account browse)"),
         arg("--header", type=_header, action="append", metavar="'NAME: VALUE'",
             help="a request header for the upstream (repeatable)"),
         plain=output.render_id)
def media_add(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    headers = dict(args.header) if args.header else None
    provider_data = _compact(account=args.account, item=args.item) or None
    body = _compact(url=args.url, title=args.title, provider=args.provider, headers=headers,
                    provider_data=provider_data)
    return _created(ctx.client.post(api_path("rooms", args.room, "media"), body), "media")


@command("media list", "a room's playlist, in order", arg("room", help="id or name"),
         plain=output.render_media_list)
def media_list(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    return ctx.client.get(api_path("rooms", args.room, "media"))


@command("media remove", "remove an item from a room's playlist", arg("room", help="id or name"),
         arg("media", help="media id"), plain=output.render_deleted)
def media_remove(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    return ctx.client.delete(api_path("rooms", args.room, "media", args.media))


@command("stream key", "an rtmp item's RTMP URL and stream key (issued on first use)",
         arg("room", help="id or name"), arg("media", help="media id"),
         arg("--rotate", action="store_true", help="replace the key; a publish with the old one stops"),
         plain=stream_output.render_stream_key)
def stream_key(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    path = api_path("rooms", args.room, "media", args.media, "stream-key")
    return ctx.client.post(path + ("?rotate=1" if args.rotate else ""))


@command("stream revoke", "revoke an rtmp item's stream key (a publish with it stops)",
         arg("room", help="id or name"), arg("media", help="media id"), plain=stream_output.render_revoked)
def stream_revoke(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    return ctx.client.delete(api_path("rooms", args.room, "media", args.media, "stream-key"))


@command("stream info", "a live item's stream: state, codecs, bitrate, viewers",
         arg("room", help="id or name"), arg("media", help="media id"), plain=stream_output.render_stream_info)
def stream_info(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    return ctx.client.get(api_path("rooms", args.room, "media", args.media, "stream"))


@command("playback show", "a room's playback state", arg("room", help="id or name"),
         plain=output.playback_line)
def playback_show(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    return ctx.client.get(api_path("rooms", args.room, "playback-state"))


@command("playback set", "change a room's playback: media, then rate, then play/pause/seek",
         arg("room", help="id or name"), arg("--media", metavar="ID", help="switch to this media (starts paused)"),
         arg("--position", type=_finite, metavar="S", help="seconds; seeks, or positions --play/--pause"),
         arg("--play", action="store_true"), arg("--pause", action="store_true"),
         arg("--rate", type=_finite, metavar="R", help="playback rate, 0.25 to 4.0"),
         plain=output.playback_line, exclusive=(("--play", "--pause"),))
def playback_set(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    steps: list[dict[str, Any]] = []
    if args.media is not None:
        steps.append({"action": "media", "media_id": args.media})
    if args.rate is not None:
        steps.append({"action": "rate", "rate": args.rate})
    if args.play or args.pause:
        steps.append(_compact(action="play" if args.play else "pause", position=args.position))
    elif args.position is not None:
        steps.append({"action": "seek", "position": args.position})
    if not steps:
        raise UsageError("playback set: nothing to change; give --media, --position, --play, --pause or --rate")
    return ctx.client.update_playback(args.room, steps)


@command("watch", "print a room's playback state, then each change, until Ctrl-C",
         arg("room", help="id or name"), arg("--retries", type=int, default=5, metavar="N",
                                             help="reconnection attempts after the connection is lost"),
         arg("--danmaku", action="store_true", help="also print danmaku as they arrive (e.g. Bilibili's)"))
def watch(ctx: Context, args: argparse.Namespace) -> Any:
    from synctv.cli.watch import watch_room  # imports Twisted, so only here

    watch_room(ctx.client, args.room, json_mode=args.json, out=sys.stdout, retries=max(0, args.retries),
               danmaku=args.danmaku)
    return None  # it printed as it went


def _cache_line(d: dict[str, Any]) -> str:
    c = d.get("cache") or {}
    head = "purged; " if d.get("purged") else ""
    return (f"{head}{c.get('backend')} cache: {c.get('entries')} slices, {c.get('bytes')} of {c.get('max_bytes')} "
            f"bytes, {c.get('hits')} hits, {c.get('misses')} misses, {c.get('evictions')} evictions")


@command("cache stats", "the media proxy's slice cache: size, hits, misses (site admins)", plain=_cache_line)
def cache_stats(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    return ctx.client.get("/api/admin/cache")


@command("cache purge", "empty the media proxy's slice cache (site admins)", plain=_cache_line)
def cache_purge(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    return ctx.client.delete("/api/admin/cache")


@command("db migrate", "apply database migrations locally (no server needed)",
         arg("--db", required=True, metavar="URL", help="sqlite:///PATH or postgresql://user@host/db"),
         plain=lambda d: (f"applied {len(d['applied'])} migration(s) to {d['database']}" if d["applied"]
                          else f"{d['database']} is up to date"))
def db_migrate(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    try:
        from synctv.store import parse_database_url
        from synctv.store.migrate import MigrationError, migrate
    except ImportError as exc:
        raise CLIError(f"db migrate is not available: {exc}") from None
    try:
        url = parse_database_url(args.db)
    except ValueError as exc:
        raise UsageError(f"--db: {exc}") from None

    def progress(line: str) -> None:
        print(line, file=ctx.stderr, flush=True)

    try:
        applied = migrate(url, progress=progress)
    except MigrationError as exc:
        raise CLIError(f"migration failed: {exc}") from None
    except Exception as exc:  # a database that does not answer, a bad file: one line, no traceback
        raise CLIError(f"migration failed: {type(exc).__name__}: {exc}") from None
    return {"database": url.redacted(), "applied": list(applied)}


# -- parser and dispatch ---------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error message (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"synctv: {message} (see `{self.prog} --help`)\n")


def _global_options(parser: argparse.ArgumentParser, *, top: bool, taken: frozenset[str] = frozenset()) -> None:
    """``--server``/``--json``/``--timeout`` on every level; below the top they default to SUPPRESS so
    a value given before the verb is not overwritten. A verb with an option of the same name
    (``account add --server``, the provider's server) takes it over: the global one then goes
    before the verb (``synctv --server URL account add ...``)."""
    default = (lambda value: value) if top else (lambda value: argparse.SUPPRESS)
    group = parser.add_argument_group("global options")
    if "--server" not in taken:
        group.add_argument("--server", metavar="URL", default=default(None),
                           help=f"server URL (default {DEFAULT_SERVER}, env SYNCTV_SERVER)")
    group.add_argument("--json", action="store_true", default=default(False), help="print one JSON object")
    group.add_argument("--timeout", type=_positive, metavar="S", default=default(None),
                       help=f"seconds to wait for the server (default {DEFAULT_TIMEOUT:g}, env SYNCTV_TIMEOUT)")


def build_parser() -> argparse.ArgumentParser:
    """The whole command line, built from ``COMMANDS``."""
    top = _Parser(prog="synctv", description="Command-line client of a synctv server.", allow_abbrev=False)
    _global_options(top, top=True)
    levels: dict[tuple[str, ...], argparse._SubParsersAction] = {
        (): top.add_subparsers(dest="verb", metavar="COMMAND", required=True)
    }
    for words, cmd in COMMANDS.items():
        for depth in range(1, len(words)):
            prefix = words[:depth]
            if prefix not in levels:
                group = levels[prefix[:-1]].add_parser(
                    prefix[-1], help=GROUP_HELP.get(prefix[-1]), allow_abbrev=False)
                _global_options(group, top=False)
                levels[prefix] = group.add_subparsers(dest="_".join(prefix), metavar="COMMAND", required=True)
        leaf = levels[words[:-1]].add_parser(words[-1], help=cmd.help, description=cmd.help, allow_abbrev=False)
        exclusive: dict[str, argparse._MutuallyExclusiveGroup] = {}
        for flags in cmd.exclusive:
            exclusive.update(dict.fromkeys(flags, leaf.add_mutually_exclusive_group()))
        for a in cmd.args:
            (exclusive.get(a.flags[0]) or leaf).add_argument(*a.flags, **a.options)
        _global_options(leaf, top=False, taken=frozenset(flag for a in cmd.args for flag in a.flags))
        leaf.set_defaults(command=cmd)
    return top


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit status (see the module docstring)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2), already printed
        return exc.code if isinstance(exc.code, int) else 2
    ctx = Context(args, os.environ, sys.stdin, sys.stderr)
    cmd: Command = args.command
    try:
        data = cmd.handler(ctx, args)
        if data is not None:  # None: the verb printed its own output (watch)
            output.emit(data, cmd.plain, json_mode=args.json, out=sys.stdout)
    except CLIError as exc:
        print(f"synctv: {' '.join(exc.message.split())}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("synctv: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `synctv room list | head -1`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    return EXIT_OK



from synctv.cli import accounts as _accounts  # noqa: E402,F401 -- registers account, media import and info verbs
from synctv.cli import displays as _displays  # noqa: E402,F401 -- registers display, event and video verbs

if __name__ == "__main__":
    sys.exit(main())
