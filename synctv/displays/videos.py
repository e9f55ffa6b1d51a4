"""Uploaded videos and the idle image: files under the data directory, videos also rows in the store.

Layout: ``<data>/videos/<video id>`` (the bytes), ``<data>/videos/.incoming/*.part`` (uploads on
their way in, see ``synctv.api.uploads``; stale ones are removed at start), ``<data>/idle-image``
plus ``<data>/idle-image.json`` (its content type and size). Every file operation and ffprobe run
in a thread; the reactor only decides.

An upload is probed with ffprobe: its duration and container are stored, a file without a video
stream (or that ffprobe cannot read) is refused. Without ffprobe on the PATH the upload is kept
with an unknown duration and a format guessed from its name or Content-Type.
"""

from __future__ import annotations

import json
import os
import posixpath
import secrets
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread
from twisted.logger import Logger

from synctv.core import auth, permissions
from synctv.core.clock import Clock
from synctv.core.displays import Video, video_id_of
from synctv.core.errors import BadRequest, Conflict, NotFound
from synctv.core.models import User
from synctv.providers.upload import video_file_path

VIDEOS_DIR = "videos"
INCOMING_DIR = ".incoming"
IDLE_IMAGE = "idle-image"
IDLE_META = "idle-image.json"
FFPROBE_TIMEOUT_S = 120.0
CONTENT_TYPES = {
    "mp4": "video/mp4", "mov": "video/quicktime", "webm": "video/webm", "mkv": "video/x-matroska",
    "ts": "video/mp2t", "ogg": "video/ogg", "avi": "video/x-msvideo", "flv": "video/x-flv",
}
_EXTENSIONS = {
    ".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".webm": "webm", ".mkv": "mkv", ".ts": "ts",
    ".m2ts": "ts", ".ogv": "ogg", ".ogg": "ogg", ".avi": "avi", ".flv": "flv",
}
_BY_TYPE = {ctype: fmt for fmt, ctype in CONTENT_TYPES.items()}
IMAGE_MAGIC: tuple[tuple[bytes, int, str], ...] = (  # (bytes, at offset, content type)
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"WEBP", 8, "image/webp"),
    (b"ftypavif", 4, "image/avif"),
)


@attrs.frozen
class Probe:
    duration: float | None
    format: str
    has_video: bool


@attrs.frozen
class IdleImage:
    content_type: str
    size: int
    updated_at: int


def format_hint(filename: str | None, content_type: str | None) -> str | None:
    """The container a file claims by its name or Content-Type (``mp4``, ``webm``, ...)."""
    if filename:
        fmt = _EXTENSIONS.get(posixpath.splitext(filename.lower())[1])
        if fmt:
            return fmt
    if content_type:
        return _BY_TYPE.get(content_type.split(";", 1)[0].strip().lower())
    return None


def container_format(format_name: str, hint: str | None) -> str:
    """ffprobe's ``format_name`` (``mov,mp4,m4a,3gp,3g2,mj2``, ``matroska,webm``) as one format."""
    names = set(format_name.split(","))
    if "mp4" in names or "mov" in names:
        return "mov" if hint == "mov" else "mp4"
    if "webm" in names or "matroska" in names:
        return "webm" if hint == "webm" else "mkv"
    for fmt, aliases in (("ts", {"mpegts"}), ("ogg", {"ogg"}), ("avi", {"avi"}), ("flv", {"flv"})):
        if names & aliases:
            return fmt
    return hint or sorted(names)[0] or "unknown"


def parse_ffprobe(output: bytes, hint: str | None) -> Probe:
    """Read ``ffprobe -print_format json -show_format -show_streams`` output; BadRequest for a file
    that is not a video (no video stream, or a still image)."""
    try:
        data = json.loads(output)
        fmt = data.get("format") or {}
        streams = data.get("streams") or []
    except (ValueError, AttributeError):
        raise BadRequest("the file is not a video ffprobe can read") from None
    format_name = str(fmt.get("format_name") or "")
    if not format_name or format_name == "image2" or format_name.endswith("_pipe"):
        raise BadRequest("the file is not a video (ffprobe reads it as an image or not at all)")
    has_video = any(
        s.get("codec_type") == "video" and not (s.get("disposition") or {}).get("attached_pic")
        for s in streams if isinstance(s, dict)
    )
    if not has_video:
        raise BadRequest("the file has no video stream")
    try:
        duration: float | None = float(fmt.get("duration"))
    except (TypeError, ValueError):
        duration = None
    if duration is not None and not 0 < duration < 366 * 24 * 3600:
        duration = None
    return Probe(duration=duration, format=container_format(format_name, hint), has_video=True)


def run_ffprobe(path: str, ffprobe: str = "ffprobe", timeout_s: float = FFPROBE_TIMEOUT_S) -> bytes | None:
    """ffprobe's JSON for ``path`` (blocking: call it in a thread); None when ffprobe is missing.
    Raises BadRequest when ffprobe cannot read the file."""
    command = [ffprobe, "-v", "error", "-print_format", "json", "-show_format", "-show_streams", path]
    try:
        done = subprocess.run(command, capture_output=True, timeout=timeout_s, check=False)
    except FileNotFoundError:
        return None
    except subprocess.TimeoutExpired:
        raise BadRequest(f"ffprobe did not finish reading the file within {timeout_s:g}s") from None
    if done.returncode != 0:
        raise BadRequest("the file is not a video ffprobe can read")
    return done.stdout


def sniff_image(head: bytes) -> str | None:
    """The content type of an image from its first bytes: PNG, JPEG, GIF, WebP or AVIF."""
    for magic, offset, ctype in IMAGE_MAGIC:
        if head[offset:offset + len(magic)] == magic:
            return ctype
    return None


def _read_head(path: Path, n: int = 32) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)


def _write_json_atomically(path: Path, value: Any) -> None:
    tmp = path.with_name(path.name + f".{secrets.token_hex(4)}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(value, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def clean_title(text: str | None, fallback: str) -> str:
    """A title from a query parameter or file name: printable, trimmed, at most 256 characters."""
    text = "".join(ch for ch in (text or "") if ch.isprintable()).strip()
    return (text or fallback)[:256]


class VideoActions:
    """The video and idle-image use-cases of docs/displays.md (site admins change them)."""

    log = Logger()

    def __init__(
        self, *, store: Any, clock: Clock, data_dir: Path, base_url: str = "", ffprobe: str = "ffprobe",
        run_in_thread: Callable[..., Deferred[Any]] = deferToThread,
    ) -> None:
        self.store = store
        self.clock = clock
        self.data_dir = Path(data_dir)
        self.videos_dir = self.data_dir / VIDEOS_DIR
        self.incoming_dir = self.videos_dir / INCOMING_DIR
        self.idle_image_path = self.data_dir / IDLE_IMAGE
        self.base_url = base_url.rstrip("/")
        self.ffprobe = ffprobe
        self._run_in_thread = run_in_thread
        self._idle: IdleImage | None = None

    # -- files ----------------------------------------------------------------------------------

    def _prepare(self) -> IdleImage | None:
        self.incoming_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.incoming_dir.iterdir():
            _unlink(stale)
        try:
            meta = json.loads((self.data_dir / IDLE_META).read_text("utf-8"))
            if self.idle_image_path.is_file():
                return IdleImage(str(meta["content_type"]), int(meta["size"]), int(meta["updated_at"]))
        except (OSError, ValueError, KeyError, TypeError):
            pass
        return None

    async def prepare(self) -> None:
        """Create the folders, drop uploads a crash left behind, load the idle image's record."""
        self._idle = await self._run_in_thread(self._prepare)

    def new_spool_path(self) -> Path:
        """Where the next upload's bytes go while they arrive (same filesystem as the videos)."""
        return self.incoming_dir / f"{secrets.token_hex(12)}.part"

    def _write(self, path: Path, data: bytes) -> None:
        with open(path, "xb") as f:
            f.write(data)

    async def write_file(self, path: Path, data: bytes) -> None:
        """Write a small upload (a body already in memory) to ``path``."""
        await self._run_in_thread(self._write, path, data)

    async def exists(self, path: Path) -> bool:
        return bool(await self._run_in_thread(path.is_file))

    def file_path(self, video: Video) -> Path:
        return self.videos_dir / video.file_name

    def url_for(self, video_id: str) -> str:
        return self.base_url + video_file_path(video_id)

    def to_json(self, video: Video, media_ids: list[str] | None = None) -> dict[str, Any]:
        body = video.to_json(self.url_for(video.id))
        if media_ids is not None:
            body["media_ids"] = media_ids
        return body

    # -- videos ---------------------------------------------------------------------------------

    async def _usage(self) -> dict[str, list[tuple[str, str]]]:
        """video id -> [(room_id, media_id)] of the upload items that play it."""
        usage: dict[str, list[tuple[str, str]]] = {}
        for room_id, media_id, url in await self.store.list_upload_media():
            video_id = video_id_of(url)
            if video_id is not None:
                usage.setdefault(video_id, []).append((room_id, media_id))
        return usage

    async def list_videos(self, room_id: str | None = None) -> list[tuple[Video, list[str]]]:
        """Every video with the ids of the media items that play it; for ``room_id`` (a screen's
        room), only the videos that room's media items play: what that screen should cache."""
        usage = await self._usage()
        listed = []
        for video in await self.store.list_videos():
            uses = usage.get(video.id, [])
            if room_id is not None:
                uses = [u for u in uses if u[0] == room_id]
                if not uses:
                    continue
            listed.append((video, [media_id for _, media_id in uses]))
        return listed

    async def get(self, video_id: str) -> Video:
        video = await self.store.get_video(video_id)
        if video is None:
            raise NotFound(f"no video {video_id[:64]!r}")
        return video

    async def duration_of(self, video_id: str) -> float | None:
        video = await self.store.get_video(video_id)
        return None if video is None else video.duration

    async def add(
        self, actor: User, spooled: Path, size: int, *, title: str | None = None, filename: str | None = None,
        content_type: str | None = None,
    ) -> Video:
        """Keep an upload that has fully arrived at ``spooled`` (this takes ownership of the file)."""
        try:
            permissions.require_site_admin(actor.role)
            if size <= 0:
                raise BadRequest("the upload is empty; send the video file as the request body")
            hint = format_hint(filename, content_type)
            output = await self._run_in_thread(run_ffprobe, str(spooled), self.ffprobe)
            if output is None:
                self.log.warn("ffprobe is not installed: video durations are unknown")
                probe = Probe(duration=None, format=hint or "unknown", has_video=True)
            else:
                probe = parse_ffprobe(output, hint)
            video_id = auth.new_id()
            video = Video(
                id=video_id, title=clean_title(title or (filename and posixpath.splitext(filename)[0]),
                                               f"video {video_id[:8]}"),
                file_name=video_id, size=size,
                content_type=CONTENT_TYPES.get(probe.format, "application/octet-stream"),
                format=probe.format, duration=probe.duration, created_by=actor.id, created_at=self.clock(),
            )
            await self._run_in_thread(os.replace, spooled, self.file_path(video))
        except BaseException:
            await self._run_in_thread(_unlink, spooled)
            raise
        try:
            await self.store.create_video(video)
        except BaseException:
            await self._run_in_thread(_unlink, self.file_path(video))
            raise
        self.log.info("{actor} uploaded video {video_id} ({title}, {size} bytes, {duration}s)",
                      actor=actor.name, video_id=video.id, title=video.title, size=size,
                      duration=video.duration)
        return video

    async def rename(self, actor: User, video_id: str, title: str) -> Video:
        permissions.require_site_admin(actor.role)
        await self.get(video_id)
        updated = await self.store.update_video(video_id, title=title)
        if updated is None:
            raise NotFound(f"no video {video_id[:64]!r}")
        return updated

    async def delete(self, actor: User, video_id: str) -> str:
        """Delete a video no media item plays (Conflict, naming them, otherwise)."""
        permissions.require_site_admin(actor.role)
        video = await self.get(video_id)
        uses = (await self._usage()).get(video.id)
        if uses:
            raise Conflict(
                f"media items play this video; remove them first ({len(uses)} in use)",
                detail={"media": [{"room_id": room_id, "media_id": media_id} for room_id, media_id in uses]},
            )
        if not await self.store.delete_video(video.id):
            raise NotFound(f"no video {video_id[:64]!r}")
        await self._run_in_thread(_unlink, self.file_path(video))
        self.log.info("{actor} deleted video {video_id}", actor=actor.name, video_id=video.id)
        return video.id

    # -- the idle image -------------------------------------------------------------------------

    def idle_image(self) -> IdleImage | None:
        """The idle image's record, or None when none was uploaded (screens get a neutral one)."""
        return self._idle

    def _keep_idle_image(self, spooled: Path, size: int, now_ms: int) -> IdleImage:
        try:
            ctype = sniff_image(_read_head(spooled))
            if ctype is None:
                raise BadRequest("the idle image must be a PNG, JPEG, GIF, WebP or AVIF file")
            os.replace(spooled, self.idle_image_path)
        finally:
            _unlink(spooled)
        image = IdleImage(content_type=ctype, size=size, updated_at=now_ms)
        _write_json_atomically(self.data_dir / IDLE_META, attrs.asdict(image))
        return image

    async def set_idle_image(self, actor: User, spooled: Path, size: int) -> IdleImage:
        """Replace the idle image with an upload at ``spooled`` (this takes ownership of the file)."""
        try:
            permissions.require_site_admin(actor.role)
            if size <= 0:
                raise BadRequest("the upload is empty; send the image file as the request body")
        except BaseException:
            await self._run_in_thread(_unlink, spooled)
            raise
        self._idle = await self._run_in_thread(self._keep_idle_image, spooled, size, self.clock())
        self.log.info("{actor} replaced the idle image ({content_type}, {size} bytes)", actor=actor.name,
                      content_type=self._idle.content_type, size=size)
        return self._idle
