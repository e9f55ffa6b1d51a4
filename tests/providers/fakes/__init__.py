"""Local stand-ins for Alist, Emby, Jellyfin and Bilibili, speaking the documented subset of each API
(../shared/providers-api.md) with their error shapes, over real HTTP on loopback.

Each is a twisted.web resource that records its calls (``calls``: a Counter of ``METHOD /path``)
and serves real media made by ffmpeg (:func:`make_media`) with Range (``static.File``):

- :class:`FakeAlist`: ``/api/auth/login/hash`` (code 400 in an HTTP 200 for a wrong password),
  a tree with ``/movies`` and ``/clips`` (``hevc.mp4``: H.265 video with AAC sound, which Chromium
  plays as sound only),
  ``/api/fs/list`` (``content: null`` for an empty folder), ``/api/fs/get`` (``raw_url`` signed with an
  expiry, ``related`` subtitles), ``/d/...`` (403 for an expired sign, and for a User-Agent other
  than the one that asked ``fs/get`` for the link, as Alist's 115 and Baidu drivers bind links). A raw token in
  ``Authorization`` (``Bearer`` is refused); ``revoke()`` makes every token answer ``code: 401``.
- :class:`FakeMediaBrowser`: Emby (``/emby`` base, ``X-Emby-Token``/``api_key``,
  ``DirectStreamUrl``) or Jellyfin (no base, ``Authorization: MediaBrowser Token=``/``ApiKey`` only,
  as with legacy authorization off; quick connect, disabled by default): views, items, episodes,
  PlaybackInfo, the direct stream, an HLS transcode whose playlists carry ``api_key`` (the worst
  case), subtitles, images. ``revoke()`` makes tokens answer 401.
- :class:`FakeBilibili`: ``finger/spi``, ``nav`` (WBI keys; -101 anonymously), ``wbi/view`` and
  ``wbi/playurl`` (the WBI signature is checked; 412 without a ``buvid3`` cookie; ``-404`` for an
  unknown video), the CDN (403 without Referer and a browser User-Agent; a ``deadline``), raw-
  deflated danmaku XML (scrolling, top and bottom ones in colours), and the live room API.
  ``DASH_ONLY`` answers ``playurl`` with DASH tracks only.

``python -m tests.providers.fakes DIR`` runs all four on free loopback ports and prints one JSON
line of their base URLs and credentials (for the CLI tests and bench/providers.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.providers.fakes.alist import ALIST_SUFFIX, FakeAlist
from tests.providers.fakes.base import SRT, VTT, Fake, listen, make_media
from tests.providers.fakes.bilibili import DANMAKU, DASH_ONLY, FakeBilibili, wbi_expected
from tests.providers.fakes.mediabrowser import FakeMediaBrowser

__all__ = ["ALIST_SUFFIX", "DANMAKU", "DASH_ONLY", "SRT", "VTT", "Fake", "FakeAlist", "FakeBilibili",
           "FakeMediaBrowser", "FakeUpstreams", "listen", "main", "make_media", "wbi_expected"]

ROOT = Path(__file__).resolve().parents[3]  # the checkout


class FakeUpstreams:
    """``with FakeUpstreams(folder) as info:`` the four fakes in a child process (``main``);
    ``info`` is its JSON line (base URLs, credentials, item ids). For tests and benchmarks that
    run synctv as a real process."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.proc: subprocess.Popen[str] | None = None
        self.info: dict[str, Any] = {}

    def __enter__(self) -> dict[str, Any]:
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.providers.fakes", str(self.folder)],
                                     cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # ffmpeg makes the media first: seconds
        if not line:
            raise RuntimeError(f"the fake upstreams did not start (exit {self.proc.wait(timeout=30)})")
        self.info = json.loads(line)
        return self.info

    def calls(self, name: str) -> dict[str, int]:
        """The call counts of one fake (``alist``, ``emby``, ``jellyfin``, ``bilibili``)."""
        import urllib.request

        with urllib.request.urlopen(self.info[name] + "/_calls", timeout=30) as answer:
            return json.loads(answer.read())

    def __exit__(self, *exc: Any) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


def main(argv: list[str]) -> int:
    from twisted.internet import reactor

    media = make_media(Path(argv[0]))
    fakes = {"alist": FakeAlist(media), "emby": FakeMediaBrowser(media, "emby"),
             "jellyfin": FakeMediaBrowser(media, "jellyfin"), "bilibili": FakeBilibili(media)}
    for fake in fakes.values():
        listen(reactor, fake)
    info = {name: fake.base for name, fake in fakes.items()}
    info.update({"alist_user": "alice", "alist_password": "alist-pass", "mb_user": "alice", "mb_password": "mb-pass",
                 "bilibili_cookie": fakes["bilibili"].sessdata,
                 "emby_ids": fakes["emby"].ids, "jellyfin_ids": fakes["jellyfin"].ids})
    print(json.dumps(info), flush=True)
    reactor.run()
    return 0
