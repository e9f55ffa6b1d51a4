"""SRT to WebVTT (synctv.core.subtitles)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from synctv.core.subtitles import srt_to_vtt

SRT = (b"1\r\n00:00:01,000 --> 00:00:02,500\r\n<i>Hello</i> <script>x</script>\r\nline two\r\n\r\n"
       b"2\n00:01:00,5 --> 00:01:02,000 X1:0\nBye\n\n3\nnot a timing\nskipped\n\n"
       b"4\n00:00:05,000 --> 00:00:04,000\nbackwards\n")


def test_cues_timings_and_kept_tags():
    vtt = srt_to_vtt(SRT).decode()
    assert vtt == ("WEBVTT\n\n00:00:01.000 --> 00:00:02.500\n<i>Hello</i> &lt;script&gt;x&lt;/script&gt;\nline two\n\n"
                   "00:01:00.500 --> 00:01:02.000\nBye\n")


def test_encodings_by_bom():
    text = "1\n00:00:00,000 --> 00:00:01,000\nÜnïcödé ✓\n"
    for data in (b"\xef\xbb\xbf" + text.encode(), text.encode("utf-16"), text.encode()):
        assert "Ünïcödé ✓" in srt_to_vtt(data).decode()
    assert "Ü" in srt_to_vtt(text.encode("latin-1", "replace")).decode()


def test_no_input_can_inject_a_block():
    """A cue text that looks like a timing or a WebVTT block stays text."""
    vtt = srt_to_vtt(b"1\n00:00:00,000 --> 00:00:01,000\nSTYLE\n00:00:02.000 --> 00:00:03.000\n::cue{}\n").decode()
    assert vtt.count("-->") == 1 and "--&gt;" in vtt


@given(st.binary(max_size=2000))
def test_any_bytes_give_a_valid_document(data):
    vtt = srt_to_vtt(data).decode("utf-8")
    assert vtt.startswith("WEBVTT\n")
    blocks = [b for b in vtt.split("\n\n")[1:] if b.strip()]
    for block in blocks:
        first, *rest = block.split("\n")
        assert " --> " in first and all("-->" not in line for line in rest)
