"""The room page's pure helpers in Chromium without a server (web/ served by Playwright's router):
choosing a PlaybackInfo for this browser (media.js), errors that say what to do (session.js),
room links (home.js's logic, duplicated nowhere), danmaku timing (room-chat.js)."""

from __future__ import annotations

from typing import Any

import pytest

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


def test_engine_options_and_room_links(page: Any) -> None:
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
