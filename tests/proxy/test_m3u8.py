"""HLS playlist URI rewriting (synctv.proxy.m3u8)."""

from __future__ import annotations

import pytest

from synctv.proxy.m3u8 import (
    KIND_KEY,
    KIND_MAP,
    KIND_MEDIA,
    KIND_SEGMENT,
    KIND_VARIANT,
    PLAYLIST_KINDS,
    M3U8Error,
    is_master,
    rewrite_playlist,
)

MASTER_URL = "https://cdn.example/show/master.m3u8?token=abc"
MEDIA_URL = "https://cdn.example/show/720p/index.m3u8"


class Recorder:
    """A rewrite callback that records its calls and answers /p?k=<kind>&i=<index>."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int]] = []

    def __call__(self, url: str, kind: str, index: int) -> str:
        self.calls.append((url, kind, index))
        return f"/p?k={kind}&i={index}"


MASTER = """#EXTM3U
#EXT-X-VERSION:6
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES,URI="skd://key-1",KEYFORMAT="com.apple.streamingkeydelivery"
#EXT-X-SESSION-DATA:DATA-ID="com.example.lyrics",URI="lyrics.json"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="English",DEFAULT=YES,URI="audio/en.m3u8"
#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID="cc",NAME="CC",INSTREAM-ID="CC1"

# a comment stays
#EXT-X-STREAM-INF:BANDWIDTH=1280000,CODECS="avc1.4d401f,mp4a.40.2",RESOLUTION=1280x720,AUDIO="aud"
720p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=2560000,CODECS="avc1.640028,mp4a.40.2",AUDIO="aud"
/abs-path/1080p.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=640000
https://other.example/low.m3u8?sig=1
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=86000,CODECS="avc1.4d401f",URI="720p/iframe.m3u8"
"""

MASTER_REWRITTEN = """#EXTM3U
#EXT-X-VERSION:6
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES,URI="/p?k=session_key&i=0",KEYFORMAT="com.apple.streamingkeydelivery"
#EXT-X-SESSION-DATA:DATA-ID="com.example.lyrics",URI="/p?k=session_data&i=0"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="English",DEFAULT=YES,URI="/p?k=media&i=0"
#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID="cc",NAME="CC",INSTREAM-ID="CC1"

# a comment stays
#EXT-X-STREAM-INF:BANDWIDTH=1280000,CODECS="avc1.4d401f,mp4a.40.2",RESOLUTION=1280x720,AUDIO="aud"
/p?k=variant&i=0
#EXT-X-STREAM-INF:BANDWIDTH=2560000,CODECS="avc1.640028,mp4a.40.2",AUDIO="aud"
/p?k=variant&i=1
#EXT-X-STREAM-INF:BANDWIDTH=640000
/p?k=variant&i=2
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=86000,CODECS="avc1.4d401f",URI="/p?k=iframe&i=0"
"""


def test_master_playlist_golden() -> None:
    """Relative, root-relative and absolute variant URIs and every URI attribute of a master playlist
    are resolved against the playlist URL and replaced; all other lines stay as they were."""
    rec = Recorder()
    assert rewrite_playlist(MASTER, MASTER_URL, rec) == MASTER_REWRITTEN
    assert rec.calls == [
        ("skd://key-1", "session_key", 0),
        ("https://cdn.example/show/lyrics.json", "session_data", 0),
        ("https://cdn.example/show/audio/en.m3u8", KIND_MEDIA, 0),
        ("https://cdn.example/show/720p/index.m3u8", KIND_VARIANT, 0),
        ("https://cdn.example/abs-path/1080p.m3u8", KIND_VARIANT, 1),
        ("https://other.example/low.m3u8?sig=1", KIND_VARIANT, 2),
        ("https://cdn.example/show/720p/iframe.m3u8", "iframe", 0),
    ]
    assert is_master(MASTER)


MEDIA = b"""#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:6
#EXT-X-MEDIA-SEQUENCE:100
#EXT-X-MAP:URI="init.mp4",BYTERANGE="720@0"
#EXT-X-KEY:METHOD=AES-128,URI="../keys/k1.bin",IV=0x1f2e3d4c5b6a79881f2e3d4c5b6a7988
#EXTINF:6.006,
seg100.m4s
#EXTINF:6.006,title with, a comma
#EXT-X-BYTERANGE:1000@720
https://edge.example/abs/seg101.m4s
#EXT-X-KEY:METHOD=NONE
#EXT-X-DISCONTINUITY
#EXTINF:5.000,
seg102.m4s?x=1
#EXT-X-ENDLIST
"""

MEDIA_REWRITTEN = b"""#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:6
#EXT-X-MEDIA-SEQUENCE:100
#EXT-X-MAP:URI="/p?k=map&i=0",BYTERANGE="720@0"
#EXT-X-KEY:METHOD=AES-128,URI="/p?k=key&i=0",IV=0x1f2e3d4c5b6a79881f2e3d4c5b6a7988
#EXTINF:6.006,
/p?k=segment&i=0
#EXTINF:6.006,title with, a comma
#EXT-X-BYTERANGE:1000@720
/p?k=segment&i=1
#EXT-X-KEY:METHOD=NONE
#EXT-X-DISCONTINUITY
#EXTINF:5.000,
/p?k=segment&i=2
#EXT-X-ENDLIST
"""


def test_media_playlist_golden_with_key_and_map() -> None:
    """Segments, EXT-X-MAP and EXT-X-KEY URIs go through the callback; absolute URIs reach it
    unchanged; a key tag without URI and every other line are untouched; bytes in, bytes out."""
    rec = Recorder()
    assert rewrite_playlist(MEDIA, MEDIA_URL, rec) == MEDIA_REWRITTEN
    assert rec.calls == [
        ("https://cdn.example/show/720p/init.mp4", KIND_MAP, 0),
        ("https://cdn.example/show/keys/k1.bin", KIND_KEY, 0),
        ("https://cdn.example/show/720p/seg100.m4s", KIND_SEGMENT, 0),
        ("https://edge.example/abs/seg101.m4s", KIND_SEGMENT, 1),
        ("https://cdn.example/show/720p/seg102.m4s?x=1", KIND_SEGMENT, 2),
    ]
    assert not is_master(MEDIA)


LL_HLS = """#EXTM3U
#EXT-X-TARGETDURATION:4
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.0
#EXT-X-PART-INF:PART-TARGET=0.33334
#EXT-X-MEDIA-SEQUENCE:266
#EXT-X-CONTENT-STEERING:SERVER-URI="/steer?video=1",PATHWAY-ID="CDN-A"
#EXTINF:4.00008,
fileSequence266.mp4
#EXT-X-PART:DURATION=0.33334,URI="filePart267.0.mp4",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.33334,URI="filePart267.1.mp4"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="filePart267.2.mp4"
#EXT-X-RENDITION-REPORT:URI="../1M/waitForMSN.php",LAST-MSN=273,LAST-PART=2
"""


def test_low_latency_tags_are_rewritten() -> None:
    """EXT-X-PART, EXT-X-PRELOAD-HINT, EXT-X-RENDITION-REPORT and EXT-X-CONTENT-STEERING URIs are rewritten."""
    rec = Recorder()
    out = rewrite_playlist(LL_HLS, "https://ll.example/2M/live.m3u8", rec)
    assert [(kind, url) for url, kind, _ in rec.calls] == [
        ("steering", "https://ll.example/steer?video=1"),
        ("segment", "https://ll.example/2M/fileSequence266.mp4"),
        ("part", "https://ll.example/2M/filePart267.0.mp4"),
        ("part", "https://ll.example/2M/filePart267.1.mp4"),
        ("preload_hint", "https://ll.example/2M/filePart267.2.mp4"),
        ("rendition_report", "https://ll.example/1M/waitForMSN.php"),
    ]
    assert '#EXT-X-PART:DURATION=0.33334,URI="/p?k=part&i=1"\n' in out
    assert '#EXT-X-RENDITION-REPORT:URI="/p?k=rendition_report&i=0",LAST-MSN=273,LAST-PART=2\n' in out
    assert "rendition_report" in PLAYLIST_KINDS and "part" not in PLAYLIST_KINDS


def test_crlf_bom_blank_lines_and_missing_final_newline_are_kept() -> None:
    """Line endings (even mixed), a BOM, blank and whitespace-only lines survive byte for byte."""
    body = (
        "\ufeff#EXTM3U\r\n#EXT-X-TARGETDURATION:10\r\n\r\n   \n#EXTINF:10,\r\n  a.ts  \r\n#EXTINF:10,\nb.ts"
    )
    out = rewrite_playlist(body.encode("utf-8"), "http://h/p/list.m3u8", lambda u, k, i: u.upper())
    expected = (
        "\ufeff#EXTM3U\r\n#EXT-X-TARGETDURATION:10\r\n\r\n   \n#EXTINF:10,\r\n"
        "  HTTP://H/P/A.TS  \r\n#EXTINF:10,\nHTTP://H/P/B.TS"
    )
    assert out == expected.encode("utf-8")


def test_identity_callback_only_resolves_uris() -> None:
    """With a callback that returns its input, only relative URIs change (to absolute ones)."""
    out = rewrite_playlist(MEDIA.decode(), MEDIA_URL, lambda u, k, i: u)
    assert out.splitlines()[7] == "https://cdn.example/show/720p/seg100.m4s"
    assert out.splitlines()[10] == "https://edge.example/abs/seg101.m4s"
    assert len(out.splitlines()) == len(MEDIA.decode().splitlines())


def test_undecodable_bytes_stay_and_non_ascii_uris_are_percent_encoded() -> None:
    """Latin-1 bytes in a title are kept as they are; non-ASCII in a URI reaches the callback
    percent-encoded (UTF-8, or the raw byte when it is not UTF-8)."""
    body = b"#EXTM3U\n#EXTINF:10,caf\xe9\n\xe7\x89\x87\xe6\xae\xb5 1.ts\n#EXTINF:10,\nbad\xff.ts\n"
    rec = Recorder()
    out = rewrite_playlist(body, "http://h/", rec)
    assert out == b"#EXTM3U\n#EXTINF:10,caf\xe9\n/p?k=segment&i=0\n#EXTINF:10,\n/p?k=segment&i=1\n"
    assert [u for u, _, _ in rec.calls] == ["http://h/%E7%89%87%E6%AE%B5 1.ts", "http://h/bad%FF.ts"]


def test_quoted_commas_and_odd_attribute_forms() -> None:
    """A URI after a quoted value holding commas is found; a URI= inside another value is not taken;
    an unquoted URI is written back quoted; an empty URI is left alone."""
    body = (
        "#EXTM3U\n"
        '#EXT-X-MEDIA:TYPE=AUDIO,NAME="a,URI=x",GROUP-ID="g",URI="en.m3u8"\n'
        "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=g,URI=fr.m3u8,NAME=x\n"
        '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="g",URI=""\n'
        "#EXT-X-STREAM-INF:BANDWIDTH=1\n"
        "v.m3u8\n"
    )
    rec = Recorder()
    out = rewrite_playlist(body, "http://h/m.m3u8", rec)
    assert out.splitlines()[1:4] == [
        '#EXT-X-MEDIA:TYPE=AUDIO,NAME="a,URI=x",GROUP-ID="g",URI="/p?k=media&i=0"',
        '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=g,URI="/p?k=media&i=1",NAME=x',
        '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="g",URI=""',
    ]
    assert [u for u, _, _ in rec.calls] == ["http://h/en.m3u8", "http://h/fr.m3u8", "http://h/v.m3u8"]


@pytest.mark.parametrize(
    "body",
    [b"", b"<html><body>403</body></html>", b"\n#EXTM3U\n", b"#EXTM3U8\n", b"EXTM3U\n", "#EXT-X-VERSION:3\n"],
)
def test_bodies_that_are_not_playlists_are_rejected(body: bytes | str) -> None:
    """Anything not starting with #EXTM3U is an M3U8Error with a clear message and a stable code."""
    with pytest.raises(M3U8Error, match="not an HLS playlist") as info:
        rewrite_playlist(body, "http://h/x.m3u8", lambda u, k, i: u)
    assert info.value.code == "unavailable"
    with pytest.raises(M3U8Error):
        is_master(body)


def test_a_playlist_mixing_master_and_media_tags_is_rejected() -> None:
    """RFC 8216 4.1: a playlist is master or media, never both."""
    body = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n#EXTINF:10,\ns.ts\n"
    with pytest.raises(M3U8Error, match="mixes"):
        is_master(body)
    with pytest.raises(M3U8Error):
        rewrite_playlist(body, "http://h/", lambda u, k, i: u)


def test_playlist_kind_detection() -> None:
    """Master iff it has master tags; an empty playlist and a media playlist are not masters."""
    assert is_master("#EXTM3U\r\n#EXT-X-STREAM-INF:BANDWIDTH=1\r\nv.m3u8\r\n")
    assert is_master('\ufeff#EXTM3U\n#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1,URI="i.m3u8"\n')
    assert not is_master("#EXTM3U\n")
    assert not is_master(b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n")


@pytest.mark.parametrize("bad", ['/p?x="1"', "/p\r\nx", "/p\n"])
def test_a_callback_answer_that_would_break_the_playlist_is_refused(bad: str) -> None:
    """The callback may not return quotes or line breaks: that would corrupt the playlist."""
    with pytest.raises(ValueError):
        rewrite_playlist(MASTER, MASTER_URL, lambda u, k, i: bad)
