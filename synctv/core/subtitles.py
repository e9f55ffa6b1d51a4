"""SubRip (SRT) to WebVTT, for browsers: a ``<track>`` element plays WebVTT only.

Pure. :func:`srt_to_vtt` takes the upstream's bytes (UTF-8, UTF-8 with a BOM, UTF-16 with a BOM,
else Latin-1) and always returns a valid WebVTT document: cues whose timing line cannot be
read are dropped, never passed on, so a hostile file cannot inject a WebVTT block of its own
(``STYLE``, ``NOTE``, a header) through a cue's text. Cue text keeps SRT's ``<b>``, ``<i>``,
``<u>`` tags (WebVTT has them); other markup is escaped.
"""

from __future__ import annotations

import html
import re

_TIMING = re.compile(
    r"^\s*(\d{1,3}):(\d{1,2}):(\d{1,2})[,.](\d{1,3})\s*-->\s*(\d{1,3}):(\d{1,2}):(\d{1,2})[,.](\d{1,3})"
)
_KEPT_TAG = re.compile(r"&lt;(/?)([biu])&gt;", re.IGNORECASE)
MAX_CUES = 20_000


def decode_text(data: bytes) -> str:
    """Subtitle bytes as text: by BOM (UTF-8, UTF-16), else UTF-8, else Latin-1."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", "replace")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", "replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _ms(h: str, m: str, s: str, frac: str) -> int:
    return ((int(h) * 60 + int(m)) * 60 + int(s)) * 1000 + int(frac.ljust(3, "0"))


def _stamp(ms: int) -> str:
    seconds, ms = divmod(ms, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{ms:03d}"


def _cue_text(lines: list[str]) -> str:
    text = "\n".join(line for line in lines if line.strip())
    escaped = html.escape(text, quote=False)
    return _KEPT_TAG.sub(lambda m: f"<{m.group(1)}{m.group(2).lower()}>", escaped)


def srt_to_vtt(data: bytes) -> bytes:
    """The WebVTT document with the cues of the SRT ``data`` (see the module docstring)."""
    text = decode_text(data).replace("\r\n", "\n").replace("\r", "\n")
    cues: list[str] = []
    for block in re.split(r"\n\s*\n", text):
        lines = block.split("\n")
        for i, line in enumerate(lines[:2]):  # the timing is the first or second line (after the number)
            m = _TIMING.match(line)
            if m is None:
                continue
            start, end = _ms(*m.group(1, 2, 3, 4)), _ms(*m.group(5, 6, 7, 8))
            body = _cue_text(lines[i + 1:])
            if body and start < end:
                cues.append(f"{_stamp(start)} --> {_stamp(end)}\n{body}")
            break
        if len(cues) >= MAX_CUES:
            break
    return ("WEBVTT\n\n" + "\n\n".join(cues) + ("\n" if cues else "")).encode("utf-8")
