"""The direct provider: URL checks, format guessing and filtering by the client profile."""

from __future__ import annotations

import pytest

from synctv.core.errors import BadRequest
from synctv.core.models import MediaItem, Subtitle
from synctv.providers import ClientProfile, DirectProvider, default_providers
from synctv.providers.direct import guess_format

T0 = 1_700_000_000_000


def item(url: str = "https://cdn.example/a.mp4", **kw) -> MediaItem:
    return MediaItem(id="m1", room_id="r1", sort=0, title="t", url=url, **kw)


@pytest.mark.parametrize("url, fmt", [
    ("https://h/live/index.m3u8", "hls"),
    ("https://h/a.M3U8?token=x", "hls"),
    ("http://h/s.flv", "flv"),
    ("https://h/movie.mp4#t=10", "mp4"),
    ("https://h/clip.m4v", "mp4"),
    ("https://h/v.webm", "webm"),
    ("https://h/v.mkv", "mkv"),
    ("https://h/song.mp3", "mp3"),
    ("https://h/song.m4a", "m4a"),
    ("https://h/a.ogg", "ogg"),
    ("https://h/a.ogv", "ogg"),
    ("https://h/manifest.mpd", "dash"),
    ("https://h/My%20Film.MKV", "mkv"),
    ("https://h/watch?v=abc.mp4", "unknown"),  # the query is not the path
    ("https://h/stream", "unknown"),
    ("https://h/archive.tar.gz", "unknown"),
    ("https://h/dir.mp4/", "unknown"),
])
def test_format_is_guessed_from_the_path_extension(url, fmt):
    """The path's extension (case-insensitive, decoded, query ignored) names the format."""
    assert guess_format(url) == fmt


@pytest.mark.parametrize("url", [
    "https://cdn.example/a.mp4", "http://10.0.0.2:8080/x", "https://user:pw@h/a", "HTTPS://H/a",
])
def test_http_urls_with_a_host_are_accepted(url):
    """validate accepts absolute http(s) URLs that name a host."""
    DirectProvider().validate(url, {})


@pytest.mark.parametrize("url", [
    "ftp://h/a.mp4", "file:///etc/passwd", "javascript:alert(1)", "https:///a.mp4", "//h/a.mp4", "/a.mp4",
    "https://h a/x", "https://h/a\nb", "http://h:99999/", "http://[::1/", "",
])
def test_other_urls_are_a_bad_request_naming_url(url):
    """Anything else is a BadRequest with field url."""
    with pytest.raises(BadRequest) as caught:
        DirectProvider().validate(url, {})
    assert caught.value.field == "url"


def test_no_profile_offers_direct_then_proxy_with_headers_and_subtitles():
    """With no profile: direct (the item's URL, format, headers, subtitles), then proxy naming the
    same upstream (the server signs it into a proxy URL; synctv.proxy.proxy_urls)."""
    subtitle = Subtitle("en", "https://h/en.vtt")
    media = item(headers={"Referer": "https://h/"}, subtitles=(subtitle,))
    direct, proxy = DirectProvider().infos(media, ClientProfile())
    assert direct.to_json() == {
        "mode": "direct", "url": media.url, "format": "mp4", "headers": {"Referer": "https://h/"},
        "subtitles": [subtitle.to_json()], "expires_at": None, "metadata": {},
    }
    assert (proxy.mode, proxy.url, proxy.format, proxy.headers, proxy.subtitles) == (
        "proxy", media.url, "mp4", {"Referer": "https://h/"}, (subtitle,))


@pytest.mark.parametrize("profile, offered", [
    (ClientProfile(modes=frozenset({"proxy"})), ["proxy"]),
    (ClientProfile(modes=frozenset({"direct"})), ["direct"]),
    (ClientProfile(modes=frozenset({"direct", "proxy"})), ["direct", "proxy"]),
    (ClientProfile(formats=frozenset({"hls"})), []),
    (ClientProfile(formats=frozenset({"mp4", "hls"})), ["direct", "proxy"]),
    (ClientProfile(can_send_headers=False), ["direct", "proxy"]),  # the plain item needs no headers
])
def test_profile_filters_a_plain_item(profile, offered):
    """modes pick the modes, best first; formats without the item's format rule it out."""
    assert [i.mode for i in DirectProvider().infos(item(), profile)] == offered


def test_an_item_needing_headers_is_proxied_for_a_client_that_cannot_send_them():
    """headers=0 excludes direct for an item with headers, leaving proxy; headers=1 or unsaid: both."""
    media = item(headers={"Cookie": "a=b"})
    assert [i.mode for i in DirectProvider().infos(media, ClientProfile(can_send_headers=False))] == ["proxy"]
    assert [i.mode for i in DirectProvider().infos(media, ClientProfile(can_send_headers=True))] == ["direct", "proxy"]
    assert [i.mode for i in DirectProvider().infos(media, ClientProfile())] == ["direct", "proxy"]


def test_unknown_format_is_never_excluded_by_a_formats_list():
    """An item whose format cannot be guessed is still offered to a client listing formats."""
    assert DirectProvider().infos(item("https://h/stream"), ClientProfile(formats=frozenset({"mp4"})))


def test_subtitles_needing_headers_are_dropped_for_a_headerless_client():
    """headers=0: direct keeps only the plain subtitles; proxy keeps all (the server sends theirs)."""
    plain, guarded = Subtitle("en", "https://h/en.vtt"), Subtitle("fr", "https://h/fr.vtt", headers={"X": "1"})
    direct, proxy = DirectProvider().infos(item(subtitles=(plain, guarded)), ClientProfile(can_send_headers=False))
    assert direct.subtitles == (plain,)
    assert proxy.subtitles == (plain, guarded)


def test_playback_fires_with_the_result():
    """playback() answers a Deferred PlaybackResult naming the item and the provider."""
    d = DirectProvider().playback(item(), ClientProfile(formats=frozenset({"flv"})), T0)
    result = d.result
    assert (result.media_id, result.provider, result.infos) == ("m1", "direct", ())
    assert result.to_json() == {"media_id": "m1", "provider": "direct", "infos": []}


def test_default_registry():
    """default_providers() has direct; an unknown name is a BadRequest naming the field; a
    second provider with the same name is refused."""
    registry = default_providers()
    assert registry.names() == ["direct"] and "direct" in registry
    assert isinstance(registry.require("direct"), DirectProvider)
    assert registry.get("alist") is None
    with pytest.raises(BadRequest) as caught:
        registry.require("alist")
    assert caught.value.field == "provider"
    with pytest.raises(ValueError):
        registry.register(DirectProvider())
