"""Bilibili's web API, pure: what to ask and how to read the answers (``synctv.providers.bilibili``
sends them). ``../shared/providers-api.md`` section 4.

- References (:func:`parse_reference`): a video page URL (``/video/BV...?p=N``, ``/video/av123``),
  a bare ``BV`` or ``av`` id, or a live room URL (``live.bilibili.com/{room}``).
- WBI signing (:func:`wbi_sign`): ``img_key``/``sub_key`` from ``/x/web-interface/nav`` (answered
  with ``code: -101`` to anonymous callers, keys included), mixed by ``MIXIN_KEY_ENC_TAB``;
  ``w_rid = md5(sorted, cleaned, %20-encoded query + mixin)``.
- Answers: the envelope ``{code, message, data}`` (``code != 0`` is an error; ``-404`` no such
  video), ``view`` (title, pages with ``cid``, ``duration`` in seconds), ``playurl`` (``durl`` MP4
  or FLV, lengths in ms; or ``dash`` with separate video and audio tracks, turned into an MPD by
  :func:`dash_manifest`), the live room's ``get_info`` and ``playUrl``.
- Danmaku (:func:`parse_danmaku`): the raw-deflated XML of ``/x/v1/dm/list.so?oid={cid}``, each
  ``<d p="time,mode,size,color,...,dmid">text</d>``.
"""

from __future__ import annotations

import hashlib
import html
import posixpath
import re
import zlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit
from xml.sax.saxutils import escape, quoteattr

import attrs

from synctv.core.danmaku import Danmaku
from synctv.core.errors import BadRequest, NotFound
from synctv.providers.calls import (
    ApiAnswer,
    CredentialsRejected,
    MalformedAnswer,
    Reader,
    UpstreamRefused,
    parse_json,
    reason_text,
)

MIXIN_KEY_ENC_TAB = (
    46, 47, 18, 2, 53, 8, 23, 32, 15, 50, 10, 31, 58, 3, 45, 35, 27, 43, 5, 49, 33, 9, 42, 19, 29, 28, 14, 39,
    12, 38, 41, 13, 37, 48, 7, 16, 24, 55, 40, 61, 26, 17, 0, 1, 60, 51, 30, 4, 22, 25, 54, 21, 56, 59, 6, 63,
    57, 62, 11, 36, 20, 34, 44, 52,
)
BROWSER_UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/124.0.0.0 Safari/537.36")
VIDEO_HEADERS = {"Referer": "https://www.bilibili.com/", "User-Agent": BROWSER_UA}
LIVE_HEADERS = {"Referer": "https://live.bilibili.com/", "User-Agent": BROWSER_UA}
LINK_TTL_MS = 110 * 60 * 1000  # play URLs work for 120 minutes; a URL without a deadline is trusted this long
MAX_DANMAKU = 20_000
MAX_DANMAKU_TEXT = 100
MAX_XML_BYTES = 16 << 20
_BV = re.compile(r"BV[0-9A-Za-z]{10}")
_AV = re.compile(r"(?i)av([0-9]{1,19})")
_D = re.compile(r'<d\s+p="([^"]{1,200})"\s*>(.*?)</d>', re.S)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_RANGE = re.compile(r"^[0-9]{1,15}-[0-9]{1,15}$")
_CODECS = re.compile(r"^[A-Za-z0-9.,+-]{1,100}$")


@attrs.frozen
class VideoRef:
    bvid: str | None
    aid: int | None
    page: int = 1

    def query(self) -> dict[str, str]:
        return {"bvid": self.bvid} if self.bvid else {"aid": str(self.aid)}


@attrs.frozen
class LiveRef:
    room: int


def parse_reference(text: str, field: str = "url") -> VideoRef | LiveRef:
    """A video or live room from what a user pastes (see the module docstring); BadRequest."""
    text = text.strip()
    hint = "give a video page URL (https://www.bilibili.com/video/BV...), a BV or av id, or a live room URL"
    if len(text) > 2048 or not text:
        raise BadRequest(hint, field=field)
    if _BV.fullmatch(text):
        return VideoRef(text, None)
    m = _AV.fullmatch(text)
    if m:
        return VideoRef(None, int(m.group(1)))
    try:
        parts = urlsplit(text if "://" in text else "https://" + text)
        host = (parts.hostname or "").lower()
    except ValueError:
        raise BadRequest(hint, field=field) from None
    if host == "b23.tv":
        raise BadRequest("short b23.tv links are not followed: open it and paste the video page's URL", field=field)
    segments = [s for s in parts.path.split("/") if s]
    if host == "live.bilibili.com" or host.endswith(".live.bilibili.com"):
        digits = [s for s in segments if s.isdigit()]
        if digits and len(digits[-1]) <= 12:
            return LiveRef(int(digits[-1]))
        raise BadRequest("a live room URL ends with the room number: https://live.bilibili.com/123", field=field)
    if not (host == "bilibili.com" or host.endswith(".bilibili.com")):
        raise BadRequest(hint, field=field)
    page = 1
    pages = parse_qs(parts.query).get("p", [])
    if pages:
        if not pages[0].isdigit() or not 1 <= int(pages[0]) <= 10_000:
            raise BadRequest("?p= must be a page number from 1", field=field)
        page = int(pages[0])
    for segment in segments:
        if _BV.fullmatch(segment):
            return VideoRef(segment, None, page)
        m = _AV.fullmatch(segment)
        if m:
            return VideoRef(None, int(m.group(1)), page)
    raise BadRequest(hint, field=field)


# -- WBI --------------------------------------------------------------------------------------

def mixin_key(img_key: str, sub_key: str) -> str:
    raw = img_key + sub_key
    return "".join(raw[i] for i in MIXIN_KEY_ENC_TAB if i < len(raw))[:32]


def wbi_sign(params: Mapping[str, str], mixin: str, wts: int) -> str:
    """The signed query string of ``params`` (with ``wts`` and ``w_rid``)."""
    cleaned = sorted((k, re.sub(r"[!'()*]", "", str(v))) for k, v in {**params, "wts": str(wts)}.items())
    query = urlencode(cleaned, quote_via=quote)
    w_rid = hashlib.md5((query + mixin).encode("utf-8")).hexdigest()
    return f"{query}&w_rid={w_rid}"


def _key_of(url: str) -> str:
    return posixpath.splitext(posixpath.basename(urlsplit(url).path))[0]


def parse_nav_keys(answer: ApiAnswer) -> tuple[str, str]:
    """``(img_key, sub_key)`` from ``nav`` (``code`` 0 or -101 both carry them)."""
    top = Reader(parse_json(_ok_status(answer, "bilibili nav"), "bilibili nav"), "bilibili nav")
    data = top.obj("data", optional=True)
    wbi = data.obj("wbi_img", optional=True) if data is not None else None
    if wbi is None:
        raise UpstreamRefused(f"bilibili nav gave no signing keys ({reason_text(top.opt_text('message'))})")
    img, sub = _key_of(wbi.text("img_url")), _key_of(wbi.text("sub_url"))
    if not re.fullmatch(r"[0-9A-Za-z]{8,64}", img) or not re.fullmatch(r"[0-9A-Za-z]{8,64}", sub):
        raise MalformedAnswer("bilibili nav's signing keys are not usable")
    return img, sub


def parse_nav_user(answer: ApiAnswer) -> str:
    """The logged-in user's name (an account's cookie check); CredentialsRejected when not logged in."""
    top = Reader(parse_json(_ok_status(answer, "bilibili nav"), "bilibili nav"), "bilibili nav")
    data = top.obj("data", optional=True)
    if top.integer("code") != 0 or data is None or not data.flag("isLogin"):
        raise CredentialsRejected("bilibili does not accept the cookie", reason=reason_text(top.opt_text("message"))
                                  or "not logged in")
    return data.text("uname", "")


def parse_spi(answer: ApiAnswer) -> dict[str, str]:
    """The anonymous ``buvid3``/``buvid4`` cookies of ``/x/frontend/finger/spi``."""
    data = data_of(answer, "bilibili spi")
    found = {}
    for key, name in (("b_3", "buvid3"), ("b_4", "buvid4")):
        value = data.opt_text(key)
        if value and re.fullmatch(r"[0-9A-Za-z{}_-]{1,200}", value):
            found[name] = value
    return found


# -- answers ------------------------------------------------------------------------------------

def _ok_status(answer: ApiAnswer, what: str) -> ApiAnswer:
    if answer.status != 200:
        raise UpstreamRefused(f"{what} answered HTTP {answer.status}" +
                              (" (Bilibili refuses this request without a browser's cookies)"
                               if answer.status == 412 else ""), detail={"upstream_status": answer.status})
    return answer


def data_of(answer: ApiAnswer, what: str) -> Reader:
    """``data`` of a ``code: 0`` answer; ``-404`` is NotFound, ``-101`` CredentialsRejected."""
    top = Reader(parse_json(_ok_status(answer, what), what), what)
    code = top.integer("code")
    message = reason_text(top.opt_text("message") or top.opt_text("msg"))
    if code == -404 or code == 19002000:
        raise NotFound(f"bilibili has no such video or room ({message or code})")
    if code == -101:
        raise CredentialsRejected(f"{what}: not logged in", reason=message or "not logged in")
    if code != 0:
        raise UpstreamRefused(f"{what} answered {code}: {message}", detail={"upstream_code": code})
    data = top.obj("data", optional=True)
    if data is None:
        raise MalformedAnswer(f"the {what} answer has no data")
    return data


@attrs.frozen
class VideoPage:
    cid: int
    page: int
    part: str
    duration: float | None


@attrs.frozen
class VideoInfo:
    bvid: str
    aid: int
    title: str
    pic: str
    pages: tuple[VideoPage, ...]


def parse_view(answer: ApiAnswer) -> VideoInfo:
    data = data_of(answer, "bilibili view")
    pages = []
    for page in data.objs("pages"):
        pages.append(VideoPage(cid=page.integer("cid"), page=page.integer("page", len(pages) + 1),
                               part=page.text("part", ""), duration=page.opt_number("duration")))
    if not pages:
        pages.append(VideoPage(cid=data.integer("cid"), page=1, part="", duration=data.opt_number("duration")))
    bvid = data.text("bvid")
    if not _BV.fullmatch(bvid):
        raise MalformedAnswer("bilibili view's bvid is not a BV id")
    return VideoInfo(bvid=bvid, aid=data.integer("aid", 0), title=data.text("title", bvid),
                     pic=data.text("pic", ""), pages=tuple(pages))


def page_title(info: VideoInfo, page: VideoPage) -> str:
    if len(info.pages) == 1:
        return info.title[:256]
    return f"{info.title} P{page.page} {page.part}".strip()[:256]


def page_url(bvid: str, page: int) -> str:
    return f"https://www.bilibili.com/video/{bvid}?p={page}"


@attrs.frozen
class Stream:
    """A playable answer of ``playurl``: one URL (``durl``), or an MPD of separate tracks (``dash``)."""

    url: str
    format: str
    expires_at: int | None
    document: str | None = None
    metadata: Mapping[str, Any] = attrs.field(factory=dict)


def deadline_ms(url: str) -> int | None:
    """The ``deadline=UNIX`` a Bilibili CDN URL carries, in ms."""
    try:
        values = parse_qs(urlsplit(url).query).get("deadline", [])
    except ValueError:
        return None
    return int(values[0]) * 1000 if values and values[0].isdigit() and len(values[0]) <= 12 else None


def _checked_url(value: str, what: str) -> str:
    if not value.startswith(("https://", "http://")) or any(c in value for c in " \r\n\x00"):
        raise MalformedAnswer(f"the {what} answer's URL is not an http(s) URL")
    return value


def parse_playurl(answer: ApiAnswer, now_ms: int) -> Stream | None:
    """The ``durl`` stream (None when the answer has only ``dash``: see :func:`parse_dash`)."""
    data = data_of(answer, "bilibili playurl")
    durl = data.objs("durl")
    if not durl:
        if data.has("dash"):
            return None
        raise UpstreamRefused("bilibili playurl offers neither durl nor dash for this video")
    url = _checked_url(durl[0].text("url"), "bilibili playurl")
    fmt = data.text("format", "")
    kind = "flv" if fmt.startswith("flv") else "mp4" if fmt.startswith("mp4") else \
        ("flv" if ".flv" in urlsplit(url).path else "mp4")
    expires = deadline_ms(url) or now_ms + LINK_TTL_MS
    return Stream(url, kind, expires, metadata={"quality": data.value.get("quality"),
                                                "length_ms": durl[0].opt_number("length")})


def _track(reader: Reader) -> dict[str, Any]:
    base = reader.opt_text("baseUrl") or reader.opt_text("base_url") or ""
    segment = reader.obj("SegmentBase", optional=True) or reader.obj("segment_base", optional=True)
    if segment is None:
        raise MalformedAnswer("a bilibili dash track has no SegmentBase")
    init = segment.opt_text("Initialization") or segment.opt_text("initialization") or ""
    index = segment.opt_text("indexRange") or segment.opt_text("index_range") or ""
    codecs = reader.text("codecs", "")
    if not _RANGE.match(init) or not _RANGE.match(index) or not _CODECS.match(codecs):
        raise MalformedAnswer("a bilibili dash track's ranges or codecs are not usable")
    return {"url": _checked_url(base, "bilibili playurl"), "init": init, "index": index, "codecs": codecs,
            "bandwidth": reader.integer("bandwidth", 0), "width": reader.integer("width", 0),
            "height": reader.integer("height", 0), "id": reader.integer("id", 0),
            "mime": reader.opt_text("mimeType") or reader.opt_text("mime_type") or "video/mp4"}


def parse_dash(answer: ApiAnswer, now_ms: int) -> Stream:
    """An MPD with the best AVC video track (else the best of any codec) and the best audio track."""
    data = data_of(answer, "bilibili playurl")
    dash = data.obj("dash", optional=True)
    if dash is None:
        raise UpstreamRefused("bilibili playurl offers no dash for this video")
    videos = [_track(v) for v in dash.objs("video")]
    audios = [_track(a) for a in dash.objs("audio")]
    if not videos:
        raise UpstreamRefused("bilibili's dash answer has no video track")
    avc = [v for v in videos if v["codecs"].startswith("avc")]
    video = max(avc or videos, key=lambda v: (v["id"], v["bandwidth"]))
    audio = max(audios, key=lambda a: a["bandwidth"]) if audios else None
    duration = dash.opt_number("duration") or (data.opt_number("timelength") or 0) / 1000
    expires = deadline_ms(video["url"]) or now_ms + LINK_TTL_MS
    return Stream(video["url"], "dash", expires, dash_manifest(video, audio, duration),
                  {"quality": data.value.get("quality")})


def dash_manifest(video: Mapping[str, Any], audio: Mapping[str, Any] | None, duration: float) -> str:
    """An on-demand DASH MPD: one video and at most one audio representation, each a BaseURL with
    its SegmentBase (the player reads the segment index itself)."""

    def representation(track: Mapping[str, Any], kind: str) -> str:
        size = f' width="{int(track["width"])}" height="{int(track["height"])}"' if kind == "video" else ""
        return (f'<AdaptationSet mimeType={quoteattr(str(track["mime"]))} startWithSAP="1" segmentAlignment="true">'
                f'<Representation id="{kind}" bandwidth="{int(track["bandwidth"])}" codecs={quoteattr(track["codecs"])}'
                f'{size}><BaseURL>{escape(track["url"])}</BaseURL>'
                f'<SegmentBase indexRange="{track["index"]}"><Initialization range="{track["init"]}"/></SegmentBase>'
                f"</Representation></AdaptationSet>")

    sets = representation(video, "video") + (representation(audio, "audio") if audio is not None else "")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-on-demand:2011" '
            f'type="static" mediaPresentationDuration="PT{max(0.0, float(duration)):.3f}S" minBufferTime="PT1.5S">'
            f"<Period>{sets}</Period></MPD>\n")


@attrs.frozen
class LiveRoom:
    room: int
    title: str
    cover: str
    live: bool


def parse_room(answer: ApiAnswer) -> LiveRoom:
    data = data_of(answer, "bilibili live room")
    return LiveRoom(room=data.integer("room_id"), title=data.text("title", ""), cover=data.text("user_cover", ""),
                    live=data.value.get("live_status") == 1)


def parse_live_url(answer: ApiAnswer, now_ms: int) -> Stream:
    data = data_of(answer, "bilibili live playUrl")
    durl = data.objs("durl")
    if not durl:
        raise UpstreamRefused("bilibili live playUrl gives no stream")
    url = _checked_url(durl[0].text("url"), "bilibili live playUrl")
    fmt = "hls" if ".m3u8" in urlsplit(url).path else "flv"
    return Stream(url, fmt, deadline_ms(url) or now_ms + LINK_TTL_MS, metadata={"live": True})


# -- danmaku ------------------------------------------------------------------------------------

def inflate(data: bytes, limit: int = MAX_XML_BYTES) -> bytes:
    """The danmaku XML: raw-deflated (as Bilibili sends it), zlib or gzip, or plain."""
    if data.lstrip()[:1] == b"<":
        if len(data) > limit:
            raise MalformedAnswer(f"the bilibili danmaku XML is over {limit} bytes")
        return data
    for wbits in (-15, 47):
        inflater = zlib.decompressobj(wbits)
        try:
            out = inflater.decompress(data, limit)
        except zlib.error:
            continue
        if inflater.unconsumed_tail or not inflater.eof:
            raise MalformedAnswer(f"the bilibili danmaku XML is over {limit} bytes, or cut short")
        return out
    raise MalformedAnswer("the bilibili danmaku answer is neither XML nor deflated XML")


def parse_danmaku(data: bytes, prefix: str) -> list[Danmaku]:
    """The danmaku of an XML answer; lines that do not parse are skipped."""
    text = inflate(data).decode("utf-8", "replace")
    found: list[Danmaku] = []
    for i, m in enumerate(_D.finditer(text)):
        if len(found) >= MAX_DANMAKU:
            break
        fields = m.group(1).split(",")
        try:
            at, mode, size, color = float(fields[0]), int(fields[1]), int(fields[2]), int(fields[3])
        except (IndexError, ValueError):
            continue
        body = _CONTROL.sub(" ", html.unescape(m.group(2))).strip()[:MAX_DANMAKU_TEXT]
        if not body or not 0 <= at <= 366 * 24 * 3600 or not 0 <= color <= 0xFFFFFF:
            continue
        dmid = fields[7] if len(fields) > 7 and fields[7].isdigit() else str(i)
        found.append(Danmaku(id=f"{prefix}:{dmid}", at=round(at, 3), text=body, mode=mode, color=color, size=size))
    return found

