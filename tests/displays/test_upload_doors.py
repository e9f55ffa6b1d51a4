"""Uploads are judged before their bodies are read (synctv.api.uploads): a revoked token, a user who
is no site admin, a third upload of one user or a full spool are answered at once, over real
sockets against the real Site, while a few bytes of a 4 GiB body have been sent; nothing is left
on disk and other requests keep being answered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread

from synctv.api import uploads
from tests.displays.raw_http import Answer, RawUpload
from tests.displays.support import make_video

GiB = 1 << 30
MiB = 1 << 20


@pytest.fixture
def clip(tmp_path_factory) -> bytes:
    return make_video(tmp_path_factory.mktemp("media") / "clip.mp4", seconds=1.0).read_bytes()


@pytest.fixture
def spools(monkeypatch) -> list[uploads.Spool]:
    """Every Spool the server opens (one per upload that was allowed)."""
    opened: list[uploads.Spool] = []

    class RecordingSpool(uploads.Spool):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            opened.append(self)

    monkeypatch.setattr(uploads, "Spool", RecordingSpool)
    return opened


def _port(show) -> int:
    return show.world.served.port.getHost().port


def _open(show, token: str | None, length: int | None, path: str = "/api/videos",
          headers: dict[str, str] | None = None, method: str = "POST", first: bytes = b"") -> RawUpload:
    return RawUpload("127.0.0.1", _port(show), path, token=token, length=length, method=method,
                     headers={"Content-Type": "video/mp4", **(headers or {})}, first=first)


def _files(show) -> list[Path]:
    videos = show.runtime.videos
    return [p for p in videos.incoming_dir.iterdir()] + [p for p in videos.videos_dir.iterdir()
                                                          if p.name != ".incoming"]


async def _tick() -> None:
    from twisted.internet import reactor
    from twisted.internet.task import deferLater

    await deferLater(reactor, 0.01, lambda: None)


async def _until(condition: Any, what: str, timeout_s: float = 30.0) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await _tick()


def _refused_early(show, token: str | None, length: int = 4 * GiB, **options: Any) -> tuple[Answer, int, bool]:
    """Headers of a 4 GiB upload and 1000 bytes; the answer, the bytes sent, whether it closed."""
    upload = _open(show, token, length, **options)
    try:
        upload.send(b"x" * 1000)
        answer = upload.answer()
        return answer, upload.sent, upload.closed_by_server()
    finally:
        upload.close()


@pytest_twisted.ensureDeferred
async def test_a_revoked_tokens_4_gib_upload_is_refused_after_a_few_bytes(show, spools):
    """The token's signature is fine but its generation was bumped: 401 while 1000 of 4 GiB bytes
    were sent, the connection is closed, no spool file was ever opened."""
    admin = show.world.users["admin"]
    await show.world.store.update_user(admin.id, bump_generation=True)
    answer, sent, closed = await deferToThread(_refused_early, show, show.world.tokens["admin"])
    assert (answer.status, answer.error()["code"]) == (401, "unauthorized")
    assert "revoked" in answer.error()["message"] and answer.headers["connection"] == "close"
    assert sent == 1000 and closed
    assert spools == [] and _files(show) == []
    assert show.runtime.uploads.budget.in_flight(admin.id) == 0


@pytest_twisted.ensureDeferred
async def test_a_user_who_is_no_site_admin_is_refused_before_the_body(show, spools):
    """alice's valid token: 403 for a video and for the idle image, after a few bytes; nothing kept."""
    answer, sent, closed = await deferToThread(_refused_early, show, show.world.tokens["alice"])
    assert (answer.status, answer.error()["code"], sent, closed) == (403, "forbidden", 1000, True)
    assert "site admin" in answer.error()["message"]
    answer, _, _ = await deferToThread(_refused_early, show, show.world.tokens["alice"], 10 * MiB,
                                       path="/admin/idle-image", method="PUT", headers={"Content-Type": "image/png"})
    assert answer.status == 403
    assert spools == [] and _files(show) == []


@pytest_twisted.ensureDeferred
async def test_expect_100_continue_is_answered_only_once_the_upload_is_allowed(show, clip, spools):
    """A client that waits for 100 Continue gets it for a site admin (then 201), and a final 401
    instead for a revoked token: then not one byte of the body was sent."""
    def allowed() -> Answer:
        upload = _open(show, show.world.tokens["admin"], len(clip), headers={"Expect": "100-continue"})
        try:
            assert upload.interim() == 100
            upload.send(clip)
            return upload.answer()
        finally:
            upload.close()

    answer = await deferToThread(allowed)
    assert answer.status == 201, answer.body
    await show.world.store.update_user(show.world.users["root"].id, bump_generation=True)

    def refused() -> tuple[Answer, int]:
        upload = _open(show, show.world.tokens["root"], 4 * GiB, headers={"Expect": "100-continue"})
        try:
            return upload.answer(), upload.sent
        finally:
            upload.close()

    answer, sent = await deferToThread(refused)
    assert (answer.status, answer.interim, sent) == (401, (), 0)
    assert len(spools) == 1


@pytest_twisted.ensureDeferred
async def test_bytes_wait_unwritten_while_the_store_is_asked(show, clip, spools, monkeypatch):
    """While the token's generation and role are being checked, the server reads no more than one
    socket read of the body and writes none of it; allowed, the bytes held go to the spool first."""
    gate: Deferred[None] = Deferred()
    real = show.runtime.uploads.authorize
    seen: list[int] = []
    original = uploads.UploadRequest.handleContentChunk

    def recording(request: uploads.UploadRequest, data: bytes) -> None:
        original(request, data)
        seen.append(request.body_bytes)

    monkeypatch.setattr(uploads.UploadRequest, "handleContentChunk", recording)

    async def slow(token: str) -> Any:
        await gate
        return await real(token)

    monkeypatch.setattr(show.runtime.uploads, "authorize", lambda token: Deferred.fromCoroutine(slow(token)))
    upload = await deferToThread(_open, show, show.world.tokens["admin"], len(clip), first=clip[:4096])
    await _until(lambda: seen, "the bytes that came with the headers")
    await deferToThread(upload.send, clip[4096:])  # lands in socket buffers; the server does not read it
    for _ in range(20):
        await _tick()
    assert max(seen) <= 65536 and spools == [] and _files(show) == []
    gate.callback(None)
    answer = await deferToThread(upload.answer)
    upload.close()
    assert answer.status == 201, answer.body
    assert (show.runtime.videos.videos_dir / answer.json["video"]["id"]).read_bytes() == clip


@pytest_twisted.ensureDeferred
async def test_a_third_upload_of_one_user_is_refused_while_two_proceed(show, clip, spools):
    """Two uploads of admin stay open mid-body; a third is 429 naming the bound; root (another
    user) may upload meanwhile and others are served; the two then finish, and the slots are free."""
    token = show.world.tokens["admin"]
    first = await deferToThread(_open, show, token, len(clip))
    second = await deferToThread(_open, show, token, len(clip))
    for upload in (first, second):
        await deferToThread(upload.send, clip[:1000])
    await _until(lambda: len(spools) == 2, "both uploads to be allowed")

    answer, _, closed = await deferToThread(_refused_early, show, token)
    assert (answer.status, answer.error()["code"]) == (429, "rate_limited")
    assert answer.error()["detail"] == {"limit": "max_uploads_per_user", "max": 2} and closed
    r = await show.world.client.get("/api/rooms", token=show.world.tokens["bob"])
    assert r.status == 200

    def whole(token: str) -> Answer:
        upload = _open(show, token, len(clip))
        try:
            upload.send(clip)
            return upload.answer()
        finally:
            upload.close()

    assert (await deferToThread(whole, show.world.tokens["root"])).status == 201
    for upload in (first, second):
        await deferToThread(upload.send, clip[1000:])
        answer = await deferToThread(upload.answer)
        upload.close()
        assert answer.status == 201, answer.body
    await _until(lambda: show.runtime.uploads.budget.in_flight(show.world.users["admin"].id) == 0, "slots")
    assert (await deferToThread(whole, token)).status == 201
    assert show.runtime.uploads.budget.reserved == 0
    assert list(show.runtime.videos.incoming_dir.iterdir()) == []


@pytest_twisted.ensureDeferred
async def test_the_spool_budget_bounds_all_uploads(show, spools):
    """With max_spool_bytes = 3 MiB: a 4 MiB upload is 413 at once; a 2 MiB upload in progress
    leaves no room for another (429); a chunked upload is cut as it passes the budget and its file
    removed; when the first goes away, everything is free again."""
    budget = show.runtime.uploads.budget
    budget.max_spool_bytes = 3 * MiB
    admin, root = show.world.tokens["admin"], show.world.tokens["root"]
    answer, _, _ = await deferToThread(_refused_early, show, admin)
    assert (answer.status, answer.error()["code"]) == (413, "payload_too_large")  # 4 GiB > 3 MiB
    holding = await deferToThread(_open, show, admin, 2 * MiB)
    await deferToThread(holding.send, b"x" * 1000)
    await _until(lambda: len(spools) == 1, "the first upload to be allowed")

    def declared(length: int) -> Answer:
        upload = _open(show, root, length)
        try:
            upload.send(b"x" * 10)
            return upload.answer()
        finally:
            upload.close()

    answer = await deferToThread(declared, 2 * MiB)
    assert (answer.status, answer.error()["detail"]["limit"]) == (429, "max_spool_bytes")

    def chunked() -> Answer:
        upload = _open(show, root, None)
        for _ in range(8):
            if not upload.send(b"y" * (256 * 1024)):
                break
        try:
            return upload.answer()
        finally:
            upload.close()

    answer = await deferToThread(chunked)
    assert (answer.status, answer.error()["detail"]["limit"]) == (429, "max_spool_bytes")
    assert len(spools) == 2
    await spools[1].released
    await deferToThread(holding.abort)
    await spools[0].released
    await _until(lambda: budget.reserved == 0 and not budget.by_user, "the budget to be free")
    assert _files(show) == []


@pytest_twisted.ensureDeferred
async def test_a_client_that_keeps_sending_reads_the_answer_and_is_cut_off(show):
    """After a refusal the server reads and drops at most about LINGER_BYTES more, then closes:
    a client pushing a 4 GiB body reads the 401 and cannot send more than a few MiB."""
    await show.world.store.update_user(show.world.users["admin"].id, bump_generation=True)
    upload = await deferToThread(_open, show, show.world.tokens["admin"], 4 * GiB)
    answers: list[Answer] = []
    reader = deferToThread(lambda: answers.append(upload.answer()))

    def push() -> int:
        block = b"z" * (256 * 1024)
        while upload.sent < 256 * MiB and upload.send(block):
            pass
        return upload.sent

    sent = await deferToThread(push)
    await reader
    upload.close()
    assert answers[0].status == 401
    assert sent < 64 * MiB, sent  # kernel buffers on both sides plus LINGER_BYTES, not 4 GiB


@pytest_twisted.ensureDeferred
async def test_a_client_gone_while_its_upload_is_checked_leaves_nothing(show, spools, monkeypatch):
    """The client resets the connection while the store is asked (reading is paused then, so the
    loss is noticed when the check ends): no file is left and the user's slot is free."""
    gate: Deferred[None] = Deferred()
    real = show.runtime.uploads.authorize
    asked: list[str] = []

    async def slow(token: str) -> Any:
        asked.append(token)
        await gate
        return await real(token)

    monkeypatch.setattr(show.runtime.uploads, "authorize", lambda token: Deferred.fromCoroutine(slow(token)))
    upload = await deferToThread(_open, show, show.world.tokens["admin"], 4 * GiB)
    await deferToThread(upload.send, b"x" * 5000)
    await _until(lambda: asked, "the upload to be checked")
    await deferToThread(upload.abort)
    gate.callback(None)
    admin_id = show.world.users["admin"].id
    await _until(lambda: show.runtime.uploads.budget.in_flight(admin_id) == 0, "the slot to be freed")
    for spool in spools:
        await spool.released
    assert _files(show) == [] and show.runtime.uploads.budget.reserved == 0
