"""``synctv account ...``, ``synctv media import`` and ``synctv media info`` (docs/providers.md).

Verbs register into ``synctv.cli.main``'s table (main imports this module at its end). ``media
info`` prints a PlaybackResult with every URL made absolute on the server, so each line can be
given to curl, ffprobe or mpv as it is (with the ``-H`` headers it shows, if any).
"""

from __future__ import annotations

import argparse
import urllib.parse
from collections.abc import Mapping
from typing import Any

from synctv.cli import output
from synctv.cli.client import UsageError, api_path
from synctv.cli.main import Context, _compact, _read_password, arg, command

KINDS = ("alist", "emby", "jellyfin", "bilibili")


def _account_line(data: Mapping[str, Any]) -> str:
    account = data.get("account") or {}
    line = (f"{account.get('id')}  {account.get('kind')} account {account.get('username') or '-'}"
            f"{' on ' + account['server'] if account.get('server') else ''}: {account.get('status')}")
    code = (data.get("quick_connect") or {}).get("code")
    if code:
        line += f"\napprove quick connect code {code} in Jellyfin, then use the account"
    return line


def _accounts_table(data: Mapping[str, Any]) -> str:
    return output.table(data.get("accounts", []), [
        ("ID", lambda a: a.get("id")), ("KIND", lambda a: a.get("kind")), ("SERVER", lambda a: a.get("server") or "-"),
        ("USER", lambda a: a.get("username") or "-"), ("STATUS", lambda a: a.get("status")),
        ("SHARE_DIRECT", lambda a: "yes" if a.get("share_direct") else "no"),
    ], empty="no accounts (synctv account add KIND ...)")


def _browse_table(data: Mapping[str, Any]) -> str:
    return output.table(data.get("items", []), [
        ("KIND", lambda i: i.get("kind")), ("PLAY", lambda i: "yes" if i.get("playable") else "-"),
        ("DURATION", lambda i: None if i.get("duration") is None else output.number(i["duration"]) + "s"),
        ("ID", lambda i: i.get("id")), ("TITLE", lambda i: i.get("title")),
    ], empty="nothing here")


@command("account add", "link your account on a provider (logs in there first); prints its id",
         arg("kind", choices=KINDS), arg("--server", dest="account_server", metavar="URL",
             help="the Alist, Emby or Jellyfin server (synctv's own --server goes before 'account')"),
         arg("--username"), arg("--password", help="read from the terminal or stdin when not given"),
         arg("--cookie", help="bilibili: your browser cookie (SESSDATA=...)"),
         arg("--quick-connect", action="store_true", help="jellyfin: no password; approve a code in Jellyfin"),
         arg("--share-direct", action="store_true",
             help="let other members' native players get the upstream URL with this account's credential"),
         plain=_account_line, exclusive=(("--password", "--cookie", "--quick-connect"),))
def account_add(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    password = args.password
    if args.kind == "bilibili":
        if not args.cookie:
            raise UsageError("account add bilibili: give --cookie 'SESSDATA=...' (anonymous videos need no account)")
    elif args.cookie is not None:
        raise UsageError(f"account add {args.kind}: --cookie is for bilibili; give --username and --password")
    elif not args.quick_connect:
        password = _read_password(ctx, args.password, f"{args.kind} password for {args.username}: ")
    body = _compact(kind=args.kind, server=args.account_server, username=args.username, password=password,
                    cookie=args.cookie, share_direct=args.share_direct or None)
    answer = ctx.client.post("/api/me/accounts", body)
    return {"id": (answer.get("account") or {}).get("id"), **answer}


@command("account list", "your provider accounts", plain=_accounts_table)
def account_list(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    return ctx.client.get("/api/me/accounts")


@command("account remove", "unlink one of your accounts", arg("account", metavar="ID"), plain=output.render_deleted)
def account_remove(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    return ctx.client.delete(api_path("me", "accounts", args.account))


@command("account share", "let other members' native players get direct URLs of this account (or not)",
         arg("account", metavar="ID"), arg("share", choices=("on", "off")), plain=_account_line)
def account_share(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    return ctx.client.patch(api_path("me", "accounts", args.account), {"share_direct": args.share == "on"})


@command("account browse", "list a folder of one of your accounts (the top when no PATH)",
         arg("account", metavar="ID"),
         arg("path", nargs="?", default="", help="alist: a folder path; emby, jellyfin: an item id"),
         plain=_browse_table)
def account_browse(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    query = urllib.parse.urlencode({"path": args.path})
    return ctx.client.get(api_path("me", "accounts", args.account, "browse") + "?" + query)


def _imported(data: Mapping[str, Any]) -> str:
    return "\n".join(f"{m.get('id')}  {m.get('title')}" for m in data.get("media", [])) or "nothing added"


@command("media import", "add every playable item of a folder, season or series (or every bilibili part)",
         arg("room", help="id or name"), arg("--provider", required=True, choices=KINDS),
         arg("--account", metavar="ID"), arg("--item", help="the folder, season or series (as browse lists it)"),
         arg("--url", help="bilibili: a video page URL or BV id"), plain=_imported)
def media_import(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    body = _compact(provider=args.provider, url=args.url,
                    provider_data=_compact(account=args.account, item=args.item) or None)
    answer = ctx.client.post(api_path("rooms", args.room, "media", "import"), body)
    return {"ids": [m.get("id") for m in answer.get("media", [])], **answer}


def _absolute(server: str, url: str) -> str:
    return urllib.parse.urljoin(server + "/", url) if url.startswith("/") else url


def _info_text(data: Mapping[str, Any]) -> str:
    lines = []
    for info in data.get("infos", []):
        expires = f"  expires {output.format_ms(info['expires_at'])}" if info.get("expires_at") else ""
        lines.append(f"{info.get('mode')}  {info.get('format')}{expires}")
        headers = " ".join(f"-H '{k}: {v}'" for k, v in (info.get("headers") or {}).items())
        lines.append(f"  {info.get('url')}" + (f"  {headers}" if headers else ""))
        for subtitle in info.get("subtitles") or []:
            lines.append(f"  subtitle {subtitle.get('name')} ({subtitle.get('format')}): {subtitle.get('url')}")
    return "\n".join(lines) or "no way to play it for this client profile"


@command("media info", "how a media item plays: its PlaybackResult, every URL ready for curl",
         arg("room", help="id or name"), arg("media", help="media id"),
         arg("--modes", help="comma-separated modes the client accepts: direct,proxy,hls,flv"),
         arg("--formats", help="comma-separated formats the client plays: mp4,hls,flv,..."),
         arg("--headers", choices=("0", "1"), help="1 if the client can send request headers"), plain=_info_text)
def media_info(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    query = urllib.parse.urlencode(_compact(modes=args.modes, formats=args.formats, headers=args.headers))
    path = api_path("rooms", args.room, "media", args.media, "playback") + (f"?{query}" if query else "")
    result = ctx.client.get(path)
    server = ctx.server
    for info in result.get("infos", []):
        info["url"] = _absolute(server, str(info.get("url", "")))
        for subtitle in info.get("subtitles") or []:
            subtitle["url"] = _absolute(server, str(subtitle.get("url", "")))
    return result
