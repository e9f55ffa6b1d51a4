"""Hypothesis feeds every provider parser malformed upstream answers: each either parses or raises
a domain error (a clean 502, 404 or refusal), never anything else (a KeyError, a TypeError, ...
would be a traceback and a 500)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synctv.core.errors import DomainError
from synctv.providers import alist, bilibili_api, jellyfin, mediabrowser
from synctv.providers.calls import ApiAnswer
from synctv.providers.catalog import Connection
from synctv.providers.emby import EMBY
from synctv.providers.jellyfin import JELLYFIN

KEYS = ["code", "message", "data", "token", "content", "name", "is_dir", "type", "raw_url", "related", "sign",
        "thumb", "provider", "AccessToken", "User", "Id", "Name", "Items", "Type", "IsFolder", "RunTimeTicks",
        "ImageTags", "Primary", "MediaSources", "Container", "SupportsDirectStream", "SupportsDirectPlay",
        "TranscodingUrl", "TranscodingSubProtocol", "MediaStreams", "Index", "IsTextSubtitleStream",
        "DeliveryUrl", "IsExternalUrl", "DirectStreamUrl", "PlaySessionId", "Secret", "Code", "Authenticated",
        "wbi_img", "img_url", "sub_url", "isLogin", "uname", "b_3", "b_4", "bvid", "aid", "title", "pic", "pages",
        "cid", "page", "part", "duration", "durl", "url", "format", "dash", "video", "audio", "baseUrl",
        "SegmentBase", "Initialization", "indexRange", "codecs", "bandwidth", "room_id", "live_status",
        "ParentIndexNumber", "IndexNumber", "SeriesName", "SeriesId", "quality", "length"]
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**63, max_value=2**63),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40),
                    st.sampled_from(["BV1xx411c7mD", "https://cdn/x.mp4?deadline=9", "0-99", "avc1.64001e",
                                     "a" * 32, "Episode", "Series", "Subtitle", "hls", "mkv,mp4"]))
JSON = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), inner, max_size=6)), max_leaves=30)
ENVELOPES = st.one_of(
    JSON,
    st.fixed_dictionaries({"code": st.sampled_from([0, 200, 401, 400, -404, -101, 500, 3]), "message": SCALARS,
                           "data": JSON}),
    st.fixed_dictionaries({"MediaSources": st.lists(JSON, max_size=3), "PlaySessionId": SCALARS}),
    st.fixed_dictionaries({"Items": st.lists(JSON, max_size=3)}),
)
BODIES = st.one_of(ENVELOPES.map(lambda v: json.dumps(v).encode()), st.binary(max_size=200),
                   st.sampled_from([b"", b"null", b"[]", b"{", b"NaN", b"\xff\xfe", b"1e999999"]))
STATUSES = st.sampled_from([200, 200, 200, 204, 401, 404, 412, 500, 502])
CONN = Connection(None, {"token": "tok-secret-123", "user_id": "a" * 32, "device_id": "d"}, None)  # type: ignore[arg-type]

PARSERS: list[tuple[str, Any]] = [
    ("alist token", alist.parse_token),
    ("alist list", alist.parse_list),
    ("alist object", alist.parse_object),
    ("emby login", lambda a: mediabrowser.parse_login(EMBY, a, "dev")),
    ("jellyfin login", lambda a: mediabrowser.parse_login(JELLYFIN, a, "dev")),
    ("item", lambda a: mediabrowser.parse_item(a, "emby item")),
    ("items", lambda a: mediabrowser.parse_items(a, "emby items")),
    ("emby playback", lambda a: mediabrowser.playback_infos(EMBY, CONN, "123", False, a)),
    ("jellyfin playback", lambda a: mediabrowser.playback_infos(JELLYFIN, CONN, "a" * 32, True, a)),
    ("quick connect enabled", jellyfin.parse_enabled),
    ("quick connect", jellyfin.parse_quick_connect),
    ("nav keys", bilibili_api.parse_nav_keys),
    ("nav user", bilibili_api.parse_nav_user),
    ("spi", bilibili_api.parse_spi),
    ("view", bilibili_api.parse_view),
    ("playurl", lambda a: bilibili_api.parse_playurl(a, 0)),
    ("dash", lambda a: bilibili_api.parse_dash(a, 0)),
    ("live room", bilibili_api.parse_room),
    ("live url", lambda a: bilibili_api.parse_live_url(a, 0)),
    ("danmaku", lambda a: bilibili_api.parse_danmaku(a.body, "p")),
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(index=st.integers(min_value=0, max_value=len(PARSERS) - 1), status=STATUSES, body=BODIES)
def test_every_parser_parses_or_raises_a_domain_error(index, status, body):
    name, parse = PARSERS[index]
    answer = ApiAnswer(status, {"content-type": "application/json"}, body)
    try:
        parse(answer)
    except DomainError as e:
        assert e.code in ("bad_gateway", "not_found", "bad_request", "unavailable"), (name, e.code)
        assert "tok-secret-123" not in e.message


@settings(max_examples=200, deadline=None)
@given(body=BODIES)
def test_every_parser_survives_each_body(body):
    """The same body through every parser (so each parser sees every shape)."""
    for status in (200, 401):
        answer = ApiAnswer(status, {}, body)
        for name, parse in PARSERS:
            try:
                parse(answer)
            except DomainError:
                pass
            except Exception as e:  # pragma: no cover - the failure message names the parser
                raise AssertionError(f"{name} raised {e!r} for {body[:80]!r}") from e
