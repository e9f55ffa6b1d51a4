"""The room page's pure helpers in Chromium without a server (web/ served by Playwright's router):
choosing a PlaybackInfo for this browser (media.js), falling back from one it cannot decode
(room-player.js, with media made by ffmpeg), errors that say what to do (session.js), the engine's
query options, danmaku timing and places (room-chat.js), Bilibili links
and account wording (room-playlist.js, room-accounts.js)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.providers.fakes import make_media
from tests.tools import require_tools
from tests.web.conftest import OFFLINE


@pytest.fixture
def page(open_page: Any) -> Any:
    return open_page(OFFLINE)


def test_pick_source_takes_the_first_entry_this_browser_plays(page: Any) -> None:
    """Native video for MP4/WebM (direct, then proxy, in the server's order); HLS with hls.js when
    Media Source Extensions exist (else natively, where the browser can); HTTP-FLV with mpegts.js; an MKV/HEVC-only item says to try
    another browser; an empty result says to check the item."""
    r = page.evaluate("""async () => {
      const m = await import("/js/media.js");
      const video = document.createElement("video");
      const info = (mode, format, url, live = false) => ({ mode, format, url, metadata: live ? { live: true } : {} });
      const pick = (infos, mse = true) => m.pickSource({ infos }, video, { mse });
      const brief = (s) => s.error ? { error: s.error } : { kind: s.kind, url: s.url, live: s.live };
      return {
        mp4: brief(pick([info("direct", "mp4", "/a.mp4"), info("proxy", "mp4", "/p.mp4")])),
        hlsMse: brief(pick([info("hls", "hls", "/x.m3u8")])),
        hlsNoMse: brief(pick([info("hls", "hls", "/x.m3u8")], false)),
        liveFlv: brief(pick([info("flv", "flv", "/l.flv", true), info("hls", "hls", "/l.m3u8", true)])),
        hevc: brief(pick([info("direct", "hevc", "/h.mp4")])),
        none: brief(pick([])),
        nativeHls: video.canPlayType("application/vnd.apple.mpegurl") !== "",
        url: m.pickUrl({ infos: [info("hls", "hls", "/x.m3u8"), info("proxy", "mp4", "/c.mp4")] }, (f) => f === "mp4"),
      };
    }""")
    assert r["mp4"] == {"kind": "native", "url": "/a.mp4", "live": False}
    assert r["hlsMse"] == {"kind": "hls", "url": "/x.m3u8", "live": False}
    if r["nativeHls"]:  # newer Chromium plays HLS itself
        assert r["hlsNoMse"] == {"kind": "native", "url": "/x.m3u8", "live": False}
    else:
        assert "HLS" in r["hlsNoMse"]["error"]
    assert r["liveFlv"] == {"kind": "flv", "url": "/l.flv", "live": True}
    assert "HEVC" in r["hevc"]["error"] and "another browser" in r["hevc"]["error"]
    assert "check its URL" in r["none"]["error"]
    assert r["url"] == "/c.mp4"


def test_errors_say_what_to_do(page: Any) -> None:
    """Each kind of refusal becomes a sentence with the next step."""
    r = page.evaluate("""async () => {
      const { HttpError, explain } = await import("/js/session.js");
      return {
        login: explain(new HttpError(401, "unauthorized", "wrong name or password"), "signing in"),
        expired: explain(new HttpError(401, "unauthorized", "the token expired")),
        needs: explain(new HttpError(403, "forbidden", "this room needs a password", { field: "password" })),
        wrong: explain(new HttpError(403, "forbidden", "wrong room password", { field: "password" })),
        slow: explain(new HttpError(429, "rate_limited", "too many failed passwords", { retryAfter: 30 }), "joining"),
        offline: explain(new HttpError(0, "offline", "the server did not answer")),
      };
    }""")
    assert "Wrong name or password" in r["login"]
    assert "Sign in again" in r["expired"]
    assert "Ask whoever shared the link" in r["needs"]
    assert "room password was wrong" in r["wrong"]
    assert "Wait 30 s" in r["slow"]
    assert "keeps trying" in r["offline"]


def test_engine_options_for_the_room_page(page: Any) -> None:
    """The room page learns its play latency under its own key; presets still learn apart."""
    r = page.evaluate("""async () => {
      const { optionsFromQuery } = await import("/js/engine.js");
      const q = (s, prefix) => optionsFromQuery(new URLSearchParams(s), prefix);
      return { room: q("", "synctv.room.playLatencyMs"), display: q(""),
               preset: q("preset=jellyfin", "synctv.room.playLatencyMs") };
    }""")
    assert r["room"] == {"storageKey": "synctv.room.playLatencyMs"}
    assert r["display"] == {}
    assert r["preset"]["storageKey"] == "synctv.room.playLatencyMs.jellyfin" and r["preset"]["deadbandMs"] == 60


def test_danmaku_fly_at_their_media_time_and_not_when_long_past(page: Any) -> None:
    """A danmaku waits for the video to reach its moment; one up to 3 s late flies at once; one
    further in the past never does."""
    r = page.evaluate("""async () => {
      const { DanmakuLayer } = await import("/js/room-chat.js");
      const layer = document.createElement("div");
      layer.style.cssText = "position:relative;width:400px;height:200px";
      document.body.append(layer);
      const video = { currentTime: 10 };
      const d = new DanmakuLayer(layer, video);
      d.add({ id: "1", text: "now", at: 10 }, false);
      d.add({ id: "2", text: "late", at: 8 }, false);
      d.add({ id: "3", text: "stale", at: 2 }, false);
      d.add({ id: "4", text: "later", at: 12 }, true);
      const first = [...layer.children].map((n) => n.textContent);
      video.currentTime = 12.01;
      d._release();
      const all = [...layer.children].map((n) => n.textContent);
      return { first, all, mine: layer.querySelector(".mine")?.textContent, shown: d.shown };
    }""")
    assert sorted(r["first"]) == ["late", "now"]
    assert sorted(r["all"]) == ["late", "later", "now"] and r["mine"] == "later" and r["shown"] == 3


def test_an_mkv_gives_way_to_a_transcode_and_dash_names_the_command(page: Any) -> None:
    """An MKV (which a browser may or may not decode) comes after an HLS transcode, and is still
    played when it is all there is; a DASH-only answer says to use mpv with the command that prints
    its URL; an HEVC answer too; the sound of a video without a picture is explained."""
    r = page.evaluate("""async () => {
      const m = await import("/js/media.js");
      const video = document.createElement("video");
      const info = (mode, format, url) => ({ mode, format, url, metadata: {} });
      const kinds = (infos) => m.playableSources({ infos }, video, { mse: true }).map((s) => `${s.kind} ${s.info.format}`);
      return {
        emby: kinds([info("proxy", "mkv", "/f.mkv"), info("hls", "hls", "/t.m3u8")]),
        mkvOnly: kinds([info("proxy", "mkv", "/f.mkv")]),
        order: kinds([info("direct", "mp4", "/a.mp4"), info("proxy", "mkv", "/b.mkv"), info("proxy", "webm", "/c.webm")]),
        dash: m.pickSource({ infos: [info("proxy", "dash", "/x.mpd")] }, video, { infoCommand: "synctv media info cinema M1" }),
        dashKinds: kinds([info("proxy", "dash", "/x.mpd")]),
        hevc: m.unplayable({ infos: [info("proxy", "hevc", "/h.mp4")] }, "synctv media info cinema M2"),
        picture: m.noPicture("synctv media info cinema M3"),
      };
    }""")
    assert r["emby"] == ["hls hls", "native mkv"]
    assert r["mkvOnly"] == ["native mkv"]
    assert r["order"] == ["native mp4", "native webm", "native mkv"]
    assert r["dashKinds"] == []
    assert "only available as DASH" in r["dash"]["error"]
    assert "`synctv media info cinema M1 --modes proxy`" in r["dash"]["error"] and "mpv" in r["dash"]["error"]
    assert "HEVC" in r["hevc"] and "synctv media info cinema M2" in r["hevc"]
    assert "picture" in r["picture"] and "HEVC" in r["picture"] and "synctv media info cinema M3" in r["picture"]


def test_provider_danmaku_keep_their_colour_and_place(page: Any) -> None:
    """Bilibili's modes: 1-3 and 6 scroll, 5 stays at the top, 4 at the bottom; 7-9 (scripts) are
    not shown; a colour other than white colours the text, anything else is white; a dark colour
    gets a light outline."""
    r = page.evaluate("""async () => {
      const { DanmakuLayer, danmakuColor } = await import("/js/room-chat.js");
      const layer = document.createElement("div");
      layer.style.cssText = "position:relative;width:400px;height:200px";
      document.body.append(layer);
      const d = new DanmakuLayer(layer, { currentTime: 5 });
      const add = (id, mode, color) => d.add({ id, text: id, at: 5, mode, color }, false);
      add("plain"); add("scroll", 1, 0xffffff); add("reverse", 6, 0x00ff00); add("top", 5, 0xff0000);
      add("bottom", 4, 0x0000ff); add("dark", 5, 0x000010); add("advanced", 7, 0xff0000); add("code", 8);
      const shown = Object.fromEntries([...layer.children].map((n) => [n.textContent,
        { place: n.dataset.place, color: n.style.color, dark: n.classList.contains("dark"), top: n.style.top,
          bottom: n.style.bottom }]));
      return { shown, colors: [danmakuColor(0xff4d4f), danmakuColor(0xffffff), danmakuColor(-1), danmakuColor(1.5),
                               danmakuColor("#fff"), danmakuColor(0x1000000), danmakuColor(0)] };
    }""")
    shown = r["shown"]
    assert sorted(shown) == ["bottom", "dark", "plain", "reverse", "scroll", "top"]
    assert shown["plain"] == {"place": "scroll", "color": "", "dark": False, "top": "4px", "bottom": ""}
    assert shown["reverse"]["place"] == "scroll" and shown["reverse"]["color"] == "rgb(0, 255, 0)"
    assert shown["top"]["place"] == "top" and shown["top"]["color"] == "rgb(255, 0, 0)" and shown["top"]["top"] == "4px"
    assert shown["bottom"]["place"] == "bottom" and shown["bottom"]["bottom"] == "4px" and shown["bottom"]["top"] == ""
    assert shown["dark"]["dark"] is True and shown["dark"]["top"] != "4px"  # the next top lane
    assert r["colors"] == ["#ff4d4f", "", "", "", "", "", "#000000"]


def test_bilibili_links_and_account_wording(page: Any) -> None:
    """What the add form sends to the bilibili provider; how accounts are named; a refused link
    quotes the upstream's reason."""
    r = page.evaluate("""async () => {
      const { bilibiliRef } = await import("/js/room-playlist.js");
      const { accountLabel, explainLink } = await import("/js/room-accounts.js");
      const { HttpError } = await import("/js/session.js");
      const refs = ["https://www.bilibili.com/video/BV1xx411c7mD?p=2", "BV1xx411c7mD", "av170001", "m.bilibili.com/video/av1",
        "https://live.bilibili.com/21", "https://b23.tv/x", "https://example.com/bilibili.com.mp4", "http://media/a.mp4",
        "BV1xx", "not a url at all", "https://evilbilibili.com/video/BV1xx411c7mD"];
      return {
        refs: Object.fromEntries(refs.map((t) => [t, bilibiliRef(t)])),
        labels: [accountLabel({ kind: "alist", server: "http://nas.lan:5244", username: "alice", status: "ok" }),
                 accountLabel({ kind: "jellyfin", server: "http://jf:8096", username: "bob", status: "pending" }),
                 accountLabel({ kind: "emby", server: "bad", username: "carol", status: "login_failed" })],
        refused: explainLink(new HttpError(400, "bad_request", "the alist server refused the login: password is incorrect",
          { detail: { upstream_reason: "password is incorrect" } }), "alist"),
        other: explainLink(new HttpError(400, "bad_request", "server must be an http(s) URL", { field: "server" }), "emby"),
      };
    }""")
    assert r["refs"] == {
        "https://www.bilibili.com/video/BV1xx411c7mD?p=2": "video", "BV1xx411c7mD": "video", "av170001": "video",
        "m.bilibili.com/video/av1": "video", "https://live.bilibili.com/21": "live", "https://b23.tv/x": "video",
        "https://example.com/bilibili.com.mp4": None, "http://media/a.mp4": None, "BV1xx": None,
        "not a url at all": None, "https://evilbilibili.com/video/BV1xx411c7mD": None}
    assert r["labels"] == ["Alist: alice @ nas.lan:5244", "Jellyfin: bob @ jf:8096 (waiting for quick connect)",
                           "Emby: carol (sign-in refused: link it again)"]
    assert r["refused"].startswith("The Alist server refused the sign-in: “password is incorrect”.")
    assert "user name and the password" in r["refused"]
    assert r["other"] == "Server must be an http(s) URL."


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    require_tools("ffmpeg")
    return make_media(tmp_path_factory.mktemp("clips"))


def test_a_video_without_a_picture_gives_way_to_the_next_entry(page: Any, clips: dict[str, Path]) -> None:
    """RoomPlayer with an HEVC MP4 first (Chromium decodes its sound, not its picture) and an H.264
    MP4 second: it falls back to the second. With the HEVC one alone it keeps the sound and says
    what to do; a refreshed result (new URLs) does not load the failed entry again."""
    def serve(route: Any) -> None:
        name = route.request.url.rsplit("/", 1)[-1].split("?", 1)[0]
        route.fulfill(status=200, body=clips[name].read_bytes(), headers={"Content-Type": "video/mp4"})

    page.route(OFFLINE + "/clips/**", serve)
    r = page.evaluate("""async () => {
      const { RoomPlayer } = await import("/js/room-player.js");
      const engine = { follow() {}, serverNow: () => Date.now(), controller: { mode: "stopped" } };
      const info = (url) => ({ mode: "proxy", format: "mp4", url, metadata: {} });
      const until = async (f) => { for (let i = 0; i < 300 && !f(); i++) await new Promise((r) => setTimeout(r, 50)); return f(); };
      const make = () => { const video = document.createElement("video"); video.muted = true; document.body.append(video);
                           return new RoomPlayer(video, engine, { infoCommand: (id) => `synctv media info cinema ${id}` }); };
      const both = make();
      both.onPlayback({ media_id: "m1", infos: [info("/clips/hevc.mp4?v=1"), info("/clips/video.mp4?v=1")] });
      await until(() => both.video.videoWidth > 0);
      const alone = make();
      alone.onPlayback({ media_id: "m2", infos: [info("/clips/hevc.mp4?v=1")] });
      await until(() => alone.problem !== "");
      const kept = alone.source?.url;
      alone.onPlayback({ media_id: "m2", infos: [info("/clips/hevc.mp4?v=2")] });
      return { url: both.source?.url, fallbacks: both.fallbacks, problem: both.problem, width: both.video.videoWidth,
               aloneProblem: alone.problem, aloneSource: alone.source?.url, kept, aloneFallbacks: alone.fallbacks };
    }""")
    assert r["url"] == "/clips/video.mp4?v=1" and r["fallbacks"] == 1 and r["problem"] == "" and r["width"] == 96
    assert "picture" in r["aloneProblem"] and "synctv media info cinema m2 --modes proxy" in r["aloneProblem"]
    assert r["kept"] == r["aloneSource"] == "/clips/hevc.mp4?v=1" and r["aloneFallbacks"] == 0
