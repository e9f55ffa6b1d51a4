"""Bilibili: videos and live rooms by URL, anonymously (or with an account's cookie), and their danmaku.

The backend of ``synctv.providers.catalog.CatalogProvider`` for ``{provider: "bilibili", url}``
(``synctv.providers.bilibili_api`` holds the pure half). ``[providers] bilibili_api`` and
``bilibili_live_api`` are the API bases (the public ones by default; tests point them at a local
server).

- Adding: ``view`` (WBI-signed) gives the title, the parts and each part's ``cid`` and duration;
  ``?p=N`` picks the part, an import adds every part. A live room URL adds the room (``get_info``).
- Playing: ``playurl`` with ``platform=html5`` (an MP4 in ``durl``, fetchable without a login);
  when the answer has only ``dash``, a second ``playurl`` (``fnval=16``) gives the tracks, served
  as an MPD through the proxy. Live rooms: ``playUrl`` (``platform=web``, HTTP-FLV). The CDN wants
  a bilibili ``Referer`` and a browser ``User-Agent``, which a browser cannot send for a
  ``<video>``: browsers play through the proxy; ``direct`` goes to clients that send headers.
- Every request carries the anonymous ``buvid3``/``buvid4`` cookies of ``finger/spi`` (fetched
  once an hour) and the account's cookie when the item was added with one; the WBI keys of
  ``nav`` are kept ``WBI_TTL_MS``.
- Danmaku: :meth:`BilibiliBackend.danmaku` reads a part's XML once (kept for ``DANMAKU_TTL_MS``,
  at most ``MAX_TRACKS`` parts) for ``synctv.providers.danmaku``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from synctv.core.clock import Clock
from synctv.core.danmaku import DanmakuTrack
from synctv.core.errors import BadRequest, DomainError, Unavailable
from synctv.core.models import MediaItem
from synctv.providers import bilibili_api as api
from synctv.providers.base import ItemDescription, PlaybackInfo
from synctv.providers.calls import ApiAnswer, ApiCall, MalformedAnswer
from synctv.providers.catalog import BrowseEntry, Connection, Resolved
from synctv.providers.client import ApiClient
from synctv.proxy.cache import Collapser

PUBLIC_API = "https://api.bilibili.com"
PUBLIC_LIVE_API = "https://api.live.bilibili.com"
WBI_TTL_MS = 10 * 60 * 1000
SPI_TTL_MS = 60 * 60 * 1000
DANMAKU_TTL_MS = 30 * 60 * 1000
MAX_TRACKS = 64
MP4_QUALITY = "80"  # asked for; anonymous answers are capped lower by Bilibili


class BilibiliBackend:
    kind = "bilibili"
    needs_account = False
    log = Logger()

    def __init__(self, http: ApiClient, clock: Clock, *, api_base: str = PUBLIC_API,
                 live_base: str = PUBLIC_LIVE_API) -> None:
        self.http = http
        self.clock = clock
        self.api_base = api_base.rstrip("/")
        self.live_base = live_base.rstrip("/")
        self._mixin: tuple[int, str] | None = None
        self._buvid: tuple[int, str] | None = None
        self._tracks: OrderedDict[int, tuple[int, DanmakuTrack]] = OrderedDict()
        self._fetches: Collapser[int, DanmakuTrack] = Collapser()

    # -- plumbing -------------------------------------------------------------------------------

    async def _anonymous_cookie(self, http: ApiClient) -> str:
        now = self.clock()
        if self._buvid is not None and now - self._buvid[0] < SPI_TTL_MS:
            return self._buvid[1]
        try:
            found = api.parse_spi(await http.send(ApiCall("GET", f"{self.api_base}/x/frontend/finger/spi",
                                                          "bilibili spi", dict(api.VIDEO_HEADERS))))
        except DomainError as e:
            self.log.info("bilibili spi failed ({error}); going on without buvid cookies", error=e.message)
            found = {}
        cookie = "; ".join(f"{k}={v}" for k, v in found.items())
        self._buvid = (now, cookie)
        return cookie

    async def _headers(self, http: ApiClient, session: Mapping[str, Any]) -> dict[str, str]:
        cookies = [c for c in (await self._anonymous_cookie(http), str(session.get("cookie") or "")) if c]
        return {**api.VIDEO_HEADERS, **({"Cookie": "; ".join(cookies)} if cookies else {})}

    async def _mixin_key(self, http: ApiClient, headers: Mapping[str, str]) -> str:
        now = self.clock()
        if self._mixin is not None and now - self._mixin[0] < WBI_TTL_MS:
            return self._mixin[1]
        answer = await http.send(ApiCall("GET", f"{self.api_base}/x/web-interface/nav", "bilibili nav",
                                         dict(headers)))
        key = api.mixin_key(*api.parse_nav_keys(answer))
        self._mixin = (now, key)
        return key

    async def _signed(self, conn: Connection, path: str, params: Mapping[str, str], what: str) -> ApiAnswer:
        headers = await self._headers(conn.http, conn.session)
        mixin = await self._mixin_key(conn.http, headers)
        query = api.wbi_sign(params, mixin, self.clock() // 1000)
        return await conn.http.send(ApiCall("GET", f"{self.api_base}{path}?{query}", what, headers))

    async def _live(self, conn: Connection, path: str, params: Mapping[str, str], what: str) -> ApiAnswer:
        headers = {**await self._headers(conn.http, conn.session), **api.LIVE_HEADERS}
        return await conn.http.send(ApiCall("GET", f"{self.live_base}{path}?{urlencode(dict(params))}", what,
                                            headers))

    async def _view(self, conn: Connection, ref: api.VideoRef) -> api.VideoInfo:
        return api.parse_view(await self._signed(conn, "/x/web-interface/wbi/view", ref.query(), "bilibili view"))

    # -- the backend ----------------------------------------------------------------------------

    async def login(self, http: ApiClient, server: str, username: str, credentials: Mapping[str, Any],
                    session: Mapping[str, Any]) -> dict[str, Any]:
        cookie = str(credentials.get("cookie") or "")
        if not cookie or any(c in cookie for c in "\r\n\x00"):
            raise BadRequest("the cookie must be one line (SESSDATA=...; ...)", field="cookie")
        headers = {**api.VIDEO_HEADERS, "Cookie": cookie}
        answer = await http.send(ApiCall("GET", f"{self.api_base}/x/web-interface/nav", "bilibili nav", headers))
        return {"cookie": cookie, "username": api.parse_nav_user(answer)}

    async def browse(self, conn: Connection, path: str) -> list[BrowseEntry]:
        raise BadRequest("bilibili accounts are not browsed: add a video by its URL with provider bilibili",
                         field="account")

    def _reference(self, url: str, provider_data: Mapping[str, Any]) -> api.VideoRef | api.LiveRef:
        text = url or provider_data.get("url")
        if not isinstance(text, str) or not text:
            raise BadRequest("url: a bilibili video page URL, a BV or av id, or a live room URL", field="url")
        return api.parse_reference(text)

    def _page(self, info: api.VideoInfo, page: api.VideoPage) -> ItemDescription:
        return ItemDescription(
            url=api.page_url(info.bvid, page.page), title=api.page_title(info, page), duration=page.duration,
            provider_data={"bvid": info.bvid, "aid": info.aid, "cid": page.cid, "page": page.page,
                           "thumbnail": info.pic})

    async def describe(self, conn: Connection, url: str, provider_data: Mapping[str, Any]) -> ItemDescription:
        ref = self._reference(url, provider_data)
        if isinstance(ref, api.LiveRef):
            room = api.parse_room(await self._live(conn, "/room/v1/Room/get_info", {"room_id": str(ref.room)},
                                                   "bilibili live room"))
            return ItemDescription(url=f"https://live.bilibili.com/{room.room}", title=room.title[:256] or
                                   f"live {room.room}", provider_data={"live_room": room.room, "thumbnail": room.cover})
        info = await self._view(conn, ref)
        pages = [p for p in info.pages if p.page == ref.page]
        if not pages:
            raise BadRequest(f"{info.bvid} has {len(info.pages)} parts; there is no part {ref.page}", field="url")
        return self._page(info, pages[0])

    async def children(self, conn: Connection, url: str, provider_data: Mapping[str, Any]) -> list[ItemDescription]:
        ref = self._reference(url, provider_data)
        if isinstance(ref, api.LiveRef):
            raise BadRequest("a live room has no parts to import; add it with POST .../media", field="url")
        info = await self._view(conn, ref)
        return [self._page(info, page) for page in info.pages]

    def _infos(self, stream: api.Stream, headers: Mapping[str, str]) -> tuple[PlaybackInfo, ...]:
        common = {"format": stream.format, "headers": dict(headers), "metadata": dict(stream.metadata),
                  "expires_at": stream.expires_at}
        proxy = PlaybackInfo(mode="proxy", url=stream.url, signer="proxy", document=stream.document, **common)
        if stream.document is not None:
            return (proxy,)  # the MPD is made here: only the proxy serves it
        return (PlaybackInfo(mode="direct", url=stream.url, **common), proxy)

    async def resolve(self, conn: Connection, item: MediaItem, now_ms: int) -> Resolved:
        data = item.provider_data
        if "live_room" in data:
            room_id = str(data.get("live_room"))
            room = api.parse_room(await self._live(conn, "/room/v1/Room/get_info", {"room_id": room_id},
                                                   "bilibili live room"))
            if not room.live:
                raise Unavailable(f"bilibili live room {room.room} is not on the air now")
            stream = api.parse_live_url(await self._live(
                conn, "/room/v1/Room/playUrl", {"cid": str(room.room), "quality": "4", "platform": "web"},
                "bilibili live playUrl"), now_ms)
            return Resolved(self._infos(stream, api.LIVE_HEADERS), stream.expires_at)
        bvid, cid = data.get("bvid"), data.get("cid")
        if not isinstance(bvid, str) or isinstance(cid, bool) or not isinstance(cid, int):
            raise BadRequest("this bilibili item has no bvid and cid; add it again", field="provider_data")
        base = {"bvid": bvid, "cid": str(cid), "fnver": "0"}
        answer = await self._signed(conn, "/x/player/wbi/playurl",
                                    {**base, "qn": MP4_QUALITY, "fnval": "1", "platform": "html5",
                                     "high_quality": "1"}, "bilibili playurl")
        stream = api.parse_playurl(answer, now_ms)
        if stream is None:
            answer = await self._signed(conn, "/x/player/wbi/playurl",
                                        {**base, "fnval": "16", "platform": "pc"}, "bilibili playurl")
            stream = api.parse_dash(answer, now_ms)
        return Resolved(self._infos(stream, api.VIDEO_HEADERS), stream.expires_at)

    async def thumbnail(self, conn: Connection, item_ref: str) -> ApiCall | None:
        if not item_ref.startswith(("https://", "http://")):
            return None
        return ApiCall("GET", item_ref, "bilibili image", dict(api.VIDEO_HEADERS))

    # -- danmaku --------------------------------------------------------------------------------

    def danmaku(self, item: MediaItem) -> Deferred[DanmakuTrack | None]:
        """The danmaku of a video part (None for a live room or an item without a ``cid``)."""
        cid = item.provider_data.get("cid")
        if isinstance(cid, bool) or not isinstance(cid, int):
            return Deferred.fromCoroutine(_none())
        kept = self._tracks.get(cid)
        if kept is not None and self.clock() - kept[0] < DANMAKU_TTL_MS:
            return Deferred.fromCoroutine(_value(kept[1]))
        return self._fetches.run(cid, lambda: Deferred.fromCoroutine(self._fetch_danmaku(cid)))

    async def _fetch_danmaku(self, cid: int) -> DanmakuTrack:
        headers = await self._headers(self.http, {})
        answer = await self.http.send(ApiCall("GET", f"{self.api_base}/x/v1/dm/list.so?oid={cid}",
                                              "bilibili danmaku", headers))
        if answer.status != 200:
            raise MalformedAnswer(f"bilibili danmaku answered HTTP {answer.status}")
        track = DanmakuTrack(api.parse_danmaku(answer.body, f"bilibili:{cid}"))
        self._tracks[cid] = (self.clock(), track)
        while len(self._tracks) > MAX_TRACKS:
            self._tracks.popitem(last=False)
        return track


async def _none() -> None:
    return None


async def _value(track: DanmakuTrack) -> DanmakuTrack:
    return track
