"""Plain-text renderings of the ``synctv stream ...`` answers (docs/live.md). No Twisted here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def render_stream_key(data: Mapping[str, Any]) -> str:
    """The two fields OBS asks for, then the whole URL for ffmpeg."""
    lines = [
        f"rtmp_url    {data.get('rtmp_url')}",
        f"stream_key  {data.get('stream_key')}",
        f"publish to  {data.get('publish_url') or str(data.get('rtmp_url')) + '/' + str(data.get('stream_key'))}",
    ]
    if data.get("issued"):
        lines.append("(a new key: a publish with an earlier key has stopped)")
    return "\n".join(lines)


def render_revoked(data: Mapping[str, Any]) -> str:
    return "revoked" if data.get("revoked") else "the item had no stream key"


def _codec(track: Mapping[str, Any] | None) -> str:
    if not track:
        return "-"
    parts = [str(track.get("codec", "?"))]
    if track.get("width") and track.get("height"):
        parts.append(f"{track['width']}x{track['height']}")
    if track.get("fps"):
        parts.append(f"{track['fps']:g} fps")
    if track.get("sample_rate"):
        parts.append(f"{track['sample_rate']} Hz")
    if track.get("channels"):
        parts.append(f"{track['channels']} ch")
    return " ".join(parts)


def render_stream_info(data: Mapping[str, Any]) -> str:
    viewers = data.get("viewers") or {}
    lines = [
        f"state      {data.get('state')}" + (f" ({data['source']})" if data.get("source") else ""),
        f"video      {_codec(data.get('video'))}",
        f"audio      {_codec(data.get('audio'))}",
    ]
    if data.get("bitrate_kbps") is not None:
        lines.append(f"bitrate    {data['bitrate_kbps']:g} kbit/s")
    if data.get("uptime_s") is not None:
        lines.append(f"uptime     {data['uptime_s']:.0f} s")
    lines.append(f"viewers    flv {viewers.get('flv', 0)}, hls {viewers.get('hls', 0)}; "
                 f"dropped {data.get('dropped', 0)}")
    upstream = data.get("upstream")
    if upstream:
        text = f"upstream   {upstream.get('url')} {upstream.get('state')}"
        if upstream.get("last_error"):
            text += f"; last error: {upstream['last_error']} (retries {upstream.get('retries', 0)})"
        lines.append(text)
    for warning in data.get("codec_warnings") or ():
        lines.append(f"warning    {warning}")
    publisher = data.get("publisher")
    if publisher:
        text = f"node       {publisher.get('node_id')} {publisher.get('node_url')}"
        if data.get("node_id") and data["node_id"] != publisher.get("node_id"):
            text += f" (publishing; answered by {data['node_id']})"
        lines.append(text)
    return "\n".join(lines)
