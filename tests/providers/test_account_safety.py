"""What provider accounts guarantee: secrets never leave the server (no answer, log line, error or
database column holds one), an account is its owner's alone, an upstream 401 renews the session
once, a removed account is a clear error, links that expire are fetched again, cached answers
offer the same modes, and a hostile answer is a clean 502."""

from __future__ import annotations

import json

import pytest
import pytest_twisted

from synctv.core.errors import Forbidden
from synctv.providers.alist import AlistBackend
from tests.api.api_support import make_accounts


async def _everything(pw):
    """alice links one account of each kind and adds an item of each to a room bob and carol are in."""
    room = await pw.room("alice")
    await pw.join("bob", room)
    await pw.join("carol", room)
    r = await pw.call("PATCH", f"/api/rooms/{room['id']}/members/carol", "alice", {"role": "guest"})
    assert r.status == 200, r.raw
    accounts, items = {}, {}
    for kind in ("alist", "emby", "jellyfin", "bilibili"):
        accounts[kind] = await pw.link(kind)
        if kind == "bilibili":
            body = {"provider": kind, "url": "BV1y7411Q7Eq", "provider_data": {"account": accounts[kind]["id"]}}
        else:
            ref = "/movies/film.mp4" if kind == "alist" else getattr(pw.fakes, kind).ids["film"]
            body = {"provider": kind, "provider_data": {"account": accounts[kind]["id"], "item": ref}}
        items[kind] = await pw.add(room, body)
    return room, accounts, items


def _secrets(pw) -> list[str]:
    tokens = [*pw.fakes.alist.tokens, *pw.fakes.emby.tokens, *pw.fakes.jellyfin.tokens]
    assert len(tokens) == 3
    return ["alist-pass", "mb-pass", pw.fakes.bilibili.sessdata, *tokens]


@pytest_twisted.ensureDeferred
async def test_no_secret_in_any_answer_log_line_error_or_column(pw, tmp_path):
    room, accounts, items = await _everything(pw)
    for who in ("alice", "bob", "carol"):
        await pw.call("GET", f"/api/rooms/{room['id']}/media", who)
        await pw.call("GET", "/api/me/accounts", who)
        for item in items.values():
            await pw.call("GET", f"/api/rooms/{room['id']}/media/{item['id']}", who)
            for query in ("", "?headers=1", "?headers=0", "?modes=direct&headers=1", "?modes=proxy,hls"):
                r = await pw.playback(room, item, who, query)
                assert r.status == 200, r.raw
                for info in r.json["infos"]:
                    fetched = await pw.fetch(info["url"], {**info["headers"], "Range": "bytes=0-63"})
                    pw.answers.append(fetched.raw[:4096])
    for account in accounts.values():
        if account["kind"] != "bilibili":
            await pw.call("GET", f"/api/me/accounts/{account['id']}/browse")
    await pw.call("POST", "/api/me/accounts", "bob", {**pw.credentials("alist"), "kind": "alist", "password": "no"})
    client = await pw.ws("bob", room["id"])
    await client.request({"type": "observe", "id": "p", "resource": "playback", "profile": {"headers": True}})
    pw.answers.extend(json.dumps(m).encode() for m in client.skipped + client.pending())
    secrets = _secrets(pw)
    for raw in pw.answers:
        for secret in secrets:
            assert secret.encode() not in raw, (secret, raw[:300])
    for line in pw.log_lines:
        for secret in secrets:
            assert secret not in line, line
    rows = await pw.store.run_query("SELECT * FROM provider_accounts")
    assert len(rows) == 4
    for row in rows:
        for secret in secrets:
            assert all(secret not in str(value) for value in row)
    database = b"".join(p.read_bytes() for p in (tmp_path).glob("synctv.db*"))
    for secret in secrets:
        assert secret.encode() not in database


@pytest_twisted.ensureDeferred
async def test_direct_only_for_headers_clients_of_share_direct_accounts_and_never_for_guests(pw):
    room, accounts, items = await _everything(pw)
    emby = items["emby"]
    modes = lambda r: [i["mode"] for i in r.json["infos"]]  # noqa: E731
    assert modes(await pw.playback(room, emby, "alice", "?headers=1")) == ["proxy", "hls"]
    r = await pw.call("PATCH", f"/api/me/accounts/{accounts['emby']['id']}", "alice", {"share_direct": True})
    assert r.status == 200 and r.json["account"]["share_direct"] is True
    pw.catalog.accounts.playback_cache.clear()
    direct = await pw.playback(room, emby, "bob", "?headers=1")
    assert modes(direct) == ["direct", "proxy", "hls"]
    assert direct.json["infos"][0]["headers"]["X-Emby-Token"] in pw.fakes.emby.tokens  # the owner's consent
    got = await pw.fetch(direct.json["infos"][0]["url"], {**direct.json["infos"][0]["headers"], "Range": "bytes=0-9"})
    assert got.status == 206
    assert modes(await pw.playback(room, emby, "bob", "?headers=0")) == ["proxy", "hls"]
    assert modes(await pw.playback(room, emby, "bob")) == ["proxy", "hls"]
    guest = await pw.playback(room, emby, "carol", "?headers=1")
    assert modes(guest) == ["proxy", "hls"]  # the token rides in headers: only for manage_media


@pytest_twisted.ensureDeferred
async def test_an_account_is_its_owners_alone(pw):
    account = await pw.link("emby")
    room = await pw.room("bob", name="bobs")
    assert (await pw.call("GET", "/api/me/accounts", "bob")).json["accounts"] == []
    for method, path in (("GET", f"/api/me/accounts/{account['id']}"),
                         ("GET", f"/api/me/accounts/{account['id']}/browse"),
                         ("DELETE", f"/api/me/accounts/{account['id']}")):
        r = await pw.call(method, path, "bob")
        assert r.status == 404, r.raw
    r = await pw.call("POST", f"/api/rooms/{room['id']}/media", "bob",
                      {"provider": "emby", "provider_data": {"account": account["id"], "item": pw.fakes.emby.ids["film"]}})
    assert (r.status, r.error()["field"]) == (404, "provider_data.account")
    r = await pw.call("POST", f"/api/rooms/{room['id']}/media", "bob",
                      {"provider": "emby", "provider_data": {"item": pw.fakes.emby.ids["film"]}})
    assert (r.status, r.error()["field"]) == (400, "provider_data.account")
    alist = await pw.link("alist", who="bob")
    r = await pw.call("POST", f"/api/rooms/{room['id']}/media", "bob",
                      {"provider": "emby", "provider_data": {"account": alist["id"], "item": "1"}})
    assert r.status == 400 and "is a alist account" in r.error()["message"]


@pytest.mark.parametrize("kind", ["alist", "emby", "jellyfin"])
@pytest_twisted.ensureDeferred
async def test_an_upstream_401_logs_in_again_once_then_502_with_the_reason(pw, kind):
    account = await pw.link(kind)
    fake = getattr(pw.fakes, kind)
    login = "POST /api/auth/login/hash" if kind == "alist" else f"POST {'/emby' if kind == 'emby' else ''}/Users/AuthenticateByName"
    path = "/movies" if kind == "alist" else ""
    browse = f"/api/me/accounts/{account['id']}/browse?path={path}"
    assert (await pw.call("GET", browse)).status == 200
    fake.revoke()  # Alist: code 401 in an HTTP 200; Emby, Jellyfin: HTTP 401
    r = await pw.call("GET", browse)
    assert r.status == 200, r.raw
    assert fake.calls[login] == 2
    fake.revoke()
    fake.users = {"alice": "changed-upstream"}
    r = await pw.call("GET", browse)
    assert r.status == 502, r.raw
    reason = "password is incorrect" if kind == "alist" else "Invalid username or password entered."
    assert reason in r.error()["message"] and "link the account again" in r.error()["message"]
    assert fake.calls[login] == 3
    listed = (await pw.call("GET", f"/api/me/accounts/{account['id']}")).json["account"]
    assert listed["status"] == "login_failed"


@pytest.mark.parametrize("kind", ["emby", "jellyfin"])
@pytest_twisted.ensureDeferred
async def test_playback_refused_even_after_a_fresh_login_is_a_502_after_one_login(pw, kind):
    """The upstream takes the password but refuses the new session too (a user disabled for
    playback, say): playing the item logs in once more, no more, and answers 502 saying so."""
    account = await pw.link(kind)
    fake = getattr(pw.fakes, kind)
    login = f"POST {'/emby' if kind == 'emby' else ''}/Users/AuthenticateByName"
    room = await pw.room("alice")
    item = await pw.add(room, {"provider": kind, "provider_data": {"account": account["id"],
                                                                   "item": fake.ids["film"]}})
    logins = fake.calls[login]
    fake.refuse_sessions = True
    fake.revoke()
    r = await pw.playback(room, item, query="?modes=proxy,hls&formats=mkv,hls")
    assert r.status == 502, r.raw
    assert "even after a fresh login" in r.error()["message"], r.raw
    assert fake.calls[login] == logins + 1
    r = await pw.playback(room, item, query="?modes=proxy,hls&formats=mkv,hls")
    assert r.status == 502 and fake.calls[login] == logins + 2  # no cached failure, no login storm


@pytest_twisted.ensureDeferred
async def test_a_removed_account_is_a_clear_error_on_playback_and_through_the_proxy(pw):
    account = await pw.link("emby")
    room = await pw.room("alice")
    item = await pw.add(room, {"provider": "emby", "provider_data": {"account": account["id"],
                                                                     "item": pw.fakes.emby.ids["film"]}})
    [proxy, _] = (await pw.playback(room, item)).json["infos"]
    assert (await pw.client.request("GET", proxy["url"], headers={"Range": "bytes=0-9"})).status == 206
    assert (await pw.call("DELETE", f"/api/me/accounts/{account['id']}")).json == {"deleted": account["id"]}
    r = await pw.playback(room, item)
    assert r.status == 404
    error = r.error()
    assert "account this item was added with has been removed" in error["message"]
    assert error["detail"]["reason"] == "account_removed"
    pw.proxy.access.forget()
    got = await pw.client.request("GET", proxy["url"], headers={"Range": "bytes=0-9"})
    assert got.status == 404 and b"has been removed" in got.raw


@pytest_twisted.ensureDeferred
async def test_expired_links_are_fetched_again(pw, media):
    """Alist signs raw_url with an expiry: the cached answer and the proxy's resolution are
    renewed before it, so the URL a player holds keeps working while the old upstream link dies."""
    pw.fakes.alist.link_ttl_s = 600
    account = await pw.link("alist")
    room = await pw.room("alice")
    item = await pw.add(room, {"provider": "alist", "provider_data": {"account": account["id"],
                                                                      "item": "/movies/film.mp4"}})
    assert (await pw.call("PATCH", f"/api/me/accounts/{account['id']}", "alice", {"share_direct": True})).status == 200
    [direct] = (await pw.playback(room, item, query="?modes=direct&headers=1")).json["infos"]
    assert direct["expires_at"] == (int(pw.clock() / 1000) + 600) * 1000 or direct["expires_at"] > pw.clock()
    [proxy] = (await pw.playback(room, item, query="?modes=proxy")).json["infos"]
    data = media["video.mp4"].read_bytes()
    assert (await pw.client.request("GET", proxy["url"], headers={"Range": "bytes=0-99"})).raw == data[:100]
    gets = pw.fakes.alist.calls["POST /api/fs/get"]
    pw.clock.advance(601_000)  # the upstream link has expired
    old = await pw.fetch(direct["url"], {"Range": "bytes=0-9"})
    assert old.status == 403  # the fake really refuses the old link now
    got = await pw.client.request("GET", proxy["url"], headers={"Range": "bytes=100-199"})
    assert got.status == 206 and got.raw == data[100:200]
    assert pw.fakes.alist.calls["POST /api/fs/get"] > gets


@pytest_twisted.ensureDeferred
async def test_a_cache_hit_offers_the_same_modes_and_costs_no_upstream_call(pw):
    account = await pw.link("jellyfin")
    room = await pw.room("alice")
    item = await pw.add(room, {"provider": "jellyfin", "provider_data": {"account": account["id"],
                                                                         "item": pw.fakes.jellyfin.ids["film"]}})
    calls = lambda: pw.fakes.jellyfin.calls[f"POST /Items/{pw.fakes.jellyfin.ids['film']}/PlaybackInfo"]  # noqa: E731
    profiles = ["", "?headers=1", "?modes=proxy,hls&formats=mp4,hls&headers=0", "?modes=hls"]
    fresh = []
    for query in profiles:
        pw.catalog.accounts.playback_cache.clear()
        fresh.append([(i["mode"], i["format"]) for i in (await pw.playback(room, item, query=query)).json["infos"]])
    assert calls() == len(profiles)
    for query, expected in zip(profiles, fresh, strict=True):
        cached = [(i["mode"], i["format"]) for i in (await pw.playback(room, item, query=query)).json["infos"]]
        assert cached == expected
    assert calls() == len(profiles)  # the last fresh answer filled the cache: every later one is a hit
    assert fresh[2] == [("hls", "hls")] and fresh[0] == [("proxy", "mkv"), ("hls", "hls")]


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"MediaSources": "x"}', b'{"MediaSources": [{"Id": 5}]}',
                                  b'{"MediaSources": [{"Id": "m", "MediaStreams": [1, {"Type": 3}]}]}',
                                  b'{"MediaSources": [{"Id": "m", "SupportsDirectStream": true, "Container": "../x"}]}'])
@pytest_twisted.ensureDeferred
async def test_a_malformed_playback_info_is_a_clean_502(pw, body):
    account = await pw.link("emby")
    room = await pw.room("alice")
    item = await pw.add(room, {"provider": "emby", "provider_data": {"account": account["id"],
                                                                     "item": pw.fakes.emby.ids["film"]}})
    pw.fakes.emby.broken_playback = body
    r = await pw.playback(room, item)
    if r.status == 200:  # a shape that still makes sense is served (nothing unsafe in it)
        assert all("../" not in i["url"] for i in r.json["infos"])
    else:
        assert r.status == 502 and r.error()["code"] == "bad_gateway", r.raw
    assert not [line for line in pw.log_lines if "Traceback" in line]


@pytest_twisted.ensureDeferred
async def test_jellyfin_quick_connect_disabled_then_approved(pw):
    body = {"kind": "jellyfin", "server": pw.fakes.jellyfin.base}
    r = await pw.call("POST", "/api/me/accounts", body=body)
    assert r.status == 400 and "quick connect is disabled" in r.error()["message"]
    pw.fakes.jellyfin.quick_connect = True
    r = await pw.call("POST", "/api/me/accounts", body=body)
    assert r.status == 201, r.raw
    account, code = r.json["account"], r.json["quick_connect"]["code"]
    assert account["status"] == "pending" and len(code) == 6
    browse = f"/api/me/accounts/{account['id']}/browse"
    r = await pw.call("GET", browse)
    assert r.status == 409 and code in r.error()["message"]
    pw.fakes.jellyfin.approve(code)
    r = await pw.call("GET", browse)
    assert r.status == 200 and [i["title"] for i in r.json["items"]] == ["Movies", "Shows"]
    assert (await pw.call("GET", f"/api/me/accounts/{account['id']}")).json["account"]["status"] == "ok"


@pytest_twisted.ensureDeferred
async def test_a_private_server_is_refused_unless_allowed(pw):
    """Without [proxy] allow_networks the address guard refuses a loopback server: no request leaves."""
    accounts = make_accounts(pw.store, pw.clock, {"alist": AlistBackend()})
    before = sum(pw.fakes.alist.calls.values())
    with pytest.raises(Forbidden, match="allow_networks"):
        await accounts.link(pw.users["alice"], kind="alist", server=pw.fakes.alist.base, username="alice",
                            password="alist-pass")
    assert sum(pw.fakes.alist.calls.values()) == before
    await accounts.http.close()
