"""The duration probe reads a provider item where its players would (issue 11, part 2): an Alist
file added with no duration gets one from the PlaybackResult's upstream, fetched through the
proxy's address-checked client with the provider's headers (the item's raw URL is never used)."""

from __future__ import annotations

import subprocess

import pytest
import pytest_twisted
from twisted.internet.defer import DeferredList

from synctv.workers.probe import MediaReader, ProbeStep

pytestmark = pytest.mark.tools("ffmpeg")


@pytest_twisted.ensureDeferred
async def test_an_alist_item_gets_its_duration(pw, media):
    from twisted.internet import reactor

    account = await pw.link("alist")
    room = await pw.room("alice")
    item = await pw.add(room, {"provider": "alist", "provider_data": {"account": account["id"],
                                                                      "item": "/movies/film.mp4"}})
    await pw.store.update_media(room["id"], item["id"], duration=None)
    step = ProbeStep(actions=pw.actions, reader=MediaReader(pw.proxy.client, reactor), node="n", reactor=reactor,
                     timeout_s=20)
    await step.run([room["id"]])
    await DeferredList(list(step.in_flight))
    stored = await pw.store.get_media(room["id"], item["id"])
    expected = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of",
                               "default=nw=1:nk=1", str(media["video.mp4"])], capture_output=True, text=True,
                              check=True).stdout
    assert stored.probe_error is None
    assert stored.duration == pytest.approx(float(expected), abs=0.05)
