"""The pure halves of the provider APIs: requests built and answers read, with each upstream's
documented quirks and error shapes (../shared/providers-api.md)."""

from __future__ import annotations

import hashlib
import json
import zlib

import pytest

from synctv.core.accounts import normalize_server
from synctv.core.errors import BadGateway, BadRequest, NotFound
from synctv.providers import alist, bilibili_api, mediabrowser
from synctv.providers.base import ClientProfile, PlaybackInfo
from synctv.providers.calls import (
    ApiAnswer,
    CredentialsRejected,
    MalformedAnswer,
    UpstreamRefused,
    without_params,
)
from synctv.providers.catalog import Connection, cache_until, select_infos
from synctv.providers.emby import EMBY
from synctv.providers.jellyfin import JELLYFIN


def answer(value, status=200):
    return ApiAnswer(status, {}, value if isinstance(value, bytes) else json.dumps(value).encode())


def test_alist_login_hashes_the_password_and_reads_errors_from_code():
    call = alist.login_call("http://a", "u", "pw")
    assert call.url == "http://a/api/auth/login/hash"
    expected = hashlib.sha256(b"pw-https://github.com/alist-org/alist").hexdigest()  # model.StaticHash
    assert json.loads(call.body) == {"username": "u", "password": expected, "otp_code": ""}
    assert alist.parse_token(answer({"code": 200, "message": "success", "data": {"token": "abc"}})) == "abc"
    with pytest.raises(CredentialsRejected, match="password is incorrect"):
        alist.parse_token(answer({"code": 400, "message": "password is incorrect", "data": None}))
    with pytest.raises(CredentialsRejected) as e:  # HTTP 200 with code 401
        alist.parse_list(answer({"code": 401, "message": "token is expired", "data": None}))
    assert e.value.reason == "token is expired"
    assert alist.parse_list(answer({"code": 200, "data": {"content": None, "total": 0}})) == []
    with pytest.raises(NotFound):
        alist.parse_object(answer({"code": 500, "message": "failed get objs: object not found", "data": None}))
    with pytest.raises(UpstreamRefused):
        alist.parse_list(answer({"code": 403, "message": "Refresh without permission", "data": None}))
    assert alist.list_call("http://a", "tok", "/m").headers["Authorization"] == "tok"  # no Bearer


def test_alist_paths_and_link_expiry():
    assert alist.normalize_path("movies/./a.mkv") == "/movies/a.mkv"
    assert alist.normalize_path("") == "/"
    with pytest.raises(BadRequest):
        alist.normalize_path("/a/../etc")
    signed = alist.AlistObject("a", False, 2, raw_url="http://a/d/a?sign=xyz:1700000100")
    assert alist.link_expiry("http://a", signed, 1) == 1_700_000_100_000
    own = alist.AlistObject("a", False, 2, raw_url="http://a/d/a?sign=xyz:0", provider="Local")
    assert alist.link_expiry("http://a", own, 5) is None
    cloud = alist.AlistObject("a", False, 2, raw_url="https://cdn.aliyun/x?auth=1", provider="AliyundriveOpen")
    assert alist.link_expiry("http://a", cloud, 5) == 5 + alist.CLOUD_LINK_TTL_MS


def test_emby_and_jellyfin_authorization_and_401():
    assert EMBY.authorization("dev").startswith('Emby Client="synctv", Device="synctv", DeviceId="dev"')
    assert JELLYFIN.token_headers({"token": "t", "device_id": "d"})["Authorization"].startswith("MediaBrowser ")
    assert 'Token="t"' in JELLYFIN.token_headers({"token": "t", "device_id": "d"})["Authorization"]
    assert EMBY.token_headers({"token": "t"}) == {"X-Emby-Token": "t"}
    call = mediabrowser.login_call(EMBY, "http://e", "u", "p", "dev")
    assert call.url == "http://e/emby/Users/AuthenticateByName" and json.loads(call.body) == {"Username": "u",
                                                                                              "Pw": "p"}
    with pytest.raises(CredentialsRejected) as e:
        mediabrowser.parse_login(EMBY, answer(b"Invalid username or password entered.", 401), "dev")
    assert e.value.reason == "Invalid username or password entered."
    session = mediabrowser.parse_login(JELLYFIN, answer({"AccessToken": "tok", "User": {"Id": "a" * 32,
                                                                                           "Name": "u"}}), "dev")
    assert session == {"token": "tok", "user_id": "a" * 32, "username": "u", "device_id": "dev"}


def test_playback_info_takes_the_token_out_of_every_url():
    conn = Connection(None, {"token": "SECRET", "user_id": "u", "device_id": "d"}, None)  # type: ignore[arg-type]
    body = {"PlaySessionId": "ps", "MediaSources": [{
        "Id": "ms", "Container": "mkv", "SupportsDirectStream": True,
        "DirectStreamUrl": "/videos/5/stream.mkv?Static=true&MediaSourceId=ms&api_key=SECRET",
        "TranscodingUrl": "/videos/5/master.m3u8?MediaSourceId=ms&api_key=SECRET&VideoCodec=h264",
        "TranscodingSubProtocol": "hls",
        "MediaStreams": [{"Index": 2, "Type": "Subtitle", "IsTextSubtitleStream": True, "Language": "eng"},
                         {"Index": 3, "Type": "Subtitle", "IsTextSubtitleStream": False}]}]}
    resolved = mediabrowser.playback_infos(EMBY, conn, "5", False, answer(body))
    assert [(i.mode, i.format) for i in resolved.infos] == [("direct", "mkv"), ("proxy", "mkv"), ("hls", "hls")]
    for info in resolved.infos:
        assert "SECRET" not in info.url and info.headers == {"X-Emby-Token": "SECRET"}
        assert info.hidden_params == {"api_key", "ApiKey"}
        [subtitle] = info.subtitles  # the image-based stream (3) is left out
        assert (subtitle.url, subtitle.format) == ("/emby/Videos/5/ms/Subtitles/2/Stream.vtt", "vtt")
    jf = mediabrowser.playback_infos(JELLYFIN, conn, "5", False, answer(body))
    assert jf.infos[0].url.endswith("/Videos/5/stream.mkv?static=true&mediaSourceId=ms&playSessionId=ps")
    assert without_params("http://h/x?a=1&ApiKey=2&b=3", ["apikey"]) == "http://h/x?a=1&b=3"


def test_external_subtitles_go_to_their_own_url_without_the_accounts_token():
    """A text subtitle Emby or Jellyfin serves from elsewhere (``IsExternalUrl`` with an absolute
    ``DeliveryUrl``) is offered at that URL, SRT or WebVTT by its extension, and carries none of
    the account's headers (they belong to the media server, not to that host); a relative or
    non-HTTP delivery URL falls back to the server's own WebVTT stream."""
    conn = Connection(None, {"token": "SECRET", "user_id": "u", "device_id": "d"}, None)  # type: ignore[arg-type]
    streams = [
        {"Index": 2, "Type": "Subtitle", "IsTextSubtitleStream": True, "IsExternalUrl": True,
         "DisplayTitle": "English (SRT)", "DeliveryUrl": "https://subs.example.org/film.en.SRT?sig=1"},
        {"Index": 3, "Type": "Subtitle", "IsTextSubtitleStream": True, "IsExternalUrl": True,
         "Language": "fre", "DeliveryUrl": "http://subs.example.org/film.fr.vtt"},
        {"Index": 4, "Type": "Subtitle", "IsTextSubtitleStream": True, "IsExternalUrl": True,
         "DeliveryUrl": "file:///etc/passwd"},
        {"Index": 5, "Type": "Subtitle", "IsTextSubtitleStream": True, "IsExternalUrl": True,
         "DeliveryUrl": "/Videos/5/ms/Subtitles/5/0/Stream.srt"},
    ]
    body = {"PlaySessionId": "ps", "MediaSources": [{
        "Id": "ms", "Container": "mp4", "SupportsDirectStream": True,
        "DirectStreamUrl": "/videos/5/stream.mp4?Static=true&MediaSourceId=ms&api_key=SECRET",
        "MediaStreams": streams}]}
    for dialect, base in ((EMBY, "/emby"), (JELLYFIN, "")):
        info = mediabrowser.playback_infos(dialect, conn, "5", False, answer(body)).infos[0]
        got = [(s.name, s.url, s.format, dict(s.headers)) for s in info.subtitles]
        token = dict(info.headers)
        assert got == [
            ("English (SRT)", "https://subs.example.org/film.en.SRT?sig=1", "srt", {}),
            ("fre", "http://subs.example.org/film.fr.vtt", "vtt", {}),
            ("Subtitle 4", f"{base}/Videos/5/ms/Subtitles/4/Stream.vtt", "vtt", token),
            ("Subtitle 5", f"{base}/Videos/5/ms/Subtitles/5/Stream.vtt", "vtt", token),
        ], dialect.kind


def test_bilibili_references():
    assert bilibili_api.parse_reference("BV1xx411c7mD") == bilibili_api.VideoRef("BV1xx411c7mD", None, 1)
    assert bilibili_api.parse_reference("av170001") == bilibili_api.VideoRef(None, 170001, 1)
    assert bilibili_api.parse_reference("https://www.bilibili.com/video/BV1xx411c7mD/?p=2&t=3") == \
        bilibili_api.VideoRef("BV1xx411c7mD", None, 2)
    assert bilibili_api.parse_reference("m.bilibili.com/video/av42") == bilibili_api.VideoRef(None, 42, 1)
    assert bilibili_api.parse_reference("https://live.bilibili.com/21?x=1") == bilibili_api.LiveRef(21)
    for bad in ("https://b23.tv/x", "https://example.com/video/BV1xx411c7mD", "", "hello",
                "https://www.bilibili.com/video/BV1xx411c7mD?p=0"):
        with pytest.raises(BadRequest):
            bilibili_api.parse_reference(bad)


def test_bilibili_wbi_signature_matches_the_documented_vector():
    mixin = bilibili_api.mixin_key("7cd084941338484aae1ad9425b84077c", "4932caff0ff746eab6f01bf08b70ac45")
    assert mixin == "ea1db124af3c7062474693fa704f4ff8"
    assert bilibili_api.wbi_sign({"foo": "114", "bar": "514", "zab": "1919810"}, mixin, 1702204169) == \
        "bar=514&foo=114&wts=1702204169&zab=1919810&w_rid=8f6f2b5b3d485fe1886cec6a0be8c5d4"
    assert "a%20b" in bilibili_api.wbi_sign({"k": "a b!"}, mixin, 1)


def test_bilibili_envelopes_and_streams():
    with pytest.raises(NotFound, match="啥都木有"):
        bilibili_api.parse_view(answer({"code": -404, "message": "啥都木有", "data": None}))
    with pytest.raises(UpstreamRefused, match="412"):
        bilibili_api.parse_view(answer(b"<html/>", 412))
    keys = answer({"code": -101, "message": "账号未登录", "data": {"isLogin": False, "wbi_img": {
        "img_url": "https://i0.hdslb.com/bfs/wbi/7cd084941338484aae1ad9425b84077c.png",
        "sub_url": "https://i0.hdslb.com/bfs/wbi/4932caff0ff746eab6f01bf08b70ac45.png"}}})
    assert bilibili_api.parse_nav_keys(keys) == ("7cd084941338484aae1ad9425b84077c", "4932caff0ff746eab6f01bf08b70ac45")
    with pytest.raises(CredentialsRejected):
        bilibili_api.parse_nav_user(keys)
    stream = bilibili_api.parse_playurl(answer({"code": 0, "data": {"format": "mp4720", "durl": [
        {"url": "https://upos.bilivideo.com/x.mp4?deadline=1700000000", "length": 1000}]}}), 5)
    assert (stream.format, stream.expires_at) == ("mp4", 1_700_000_000_000)
    assert bilibili_api.parse_playurl(answer({"code": 0, "data": {"dash": {}}}), 5) is None
    with pytest.raises(MalformedAnswer):
        bilibili_api.parse_playurl(answer({"code": 0, "data": {"durl": [{"url": "javascript:alert(1)"}]}}), 5)


def test_bilibili_danmaku_xml_raw_deflate_and_plain():
    xml = (b'<i><d p="490.191,1,25,16777215,1584268892,0,a16fe0dd,29950852386521095,10">a &amp; b</d>'
           b'<d p="bad,1">skipped</d><d p="1.5,5,18,255,0,0,x,77">top</d></i>')
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    for body in (xml, deflate.compress(xml) + deflate.flush()):
        found = bilibili_api.parse_danmaku(body, "b:1")
        assert [(d.at, d.text, d.mode, d.color, d.id) for d in found] == [
            (490.191, "a & b", 1, 16777215, "b:1:29950852386521095"), (1.5, "top", 5, 255, "b:1:77")]
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = bomb.compress(b"<i>" + b" " * (bilibili_api.MAX_XML_BYTES + 10)) + bomb.flush()
    with pytest.raises(MalformedAnswer, match="over"):
        bilibili_api.parse_danmaku(data, "b")


def test_server_urls_and_cache_and_selection_rules():
    assert normalize_server("emby", "HTTP://h:8096/emby/") == "http://h:8096"
    for bad in ("ftp://h", "http://u:p@h", "http://h/?x=1", "not a url", ""):
        with pytest.raises(BadRequest):
            normalize_server("alist", bad)
    with pytest.raises(BadRequest):
        normalize_server("bilibili", "http://h")
    assert cache_until(0, None) == 10 * 60 * 1000
    assert cache_until(0, 3_600_000) == 600_000  # capped by the TTL
    assert cache_until(0, 300_000) == 180_000  # 2 minutes before
    assert cache_until(0, 10_000) == 5_000  # at most half the life
    infos = [PlaybackInfo("direct", "u", "mkv"), PlaybackInfo("proxy", "u", "mkv", signer="proxy"),
             PlaybackInfo("hls", "u", "hls", signer="proxy")]
    browser = ClientProfile.from_query({"modes": ["proxy,hls"], "formats": ["mp4,hls"], "headers": ["0"]})
    assert [i.mode for i in select_infos(infos, browser, True)] == ["hls"]
    native = ClientProfile(can_send_headers=True)
    assert [i.mode for i in select_infos(infos, native, True)] == ["direct", "proxy", "hls"]
    assert [i.mode for i in select_infos(infos, native, False)] == ["proxy", "hls"]
    assert [i.mode for i in select_infos(infos, ClientProfile(), True)] == ["proxy", "hls"]
    assert isinstance(BadGateway("x"), BadGateway)
