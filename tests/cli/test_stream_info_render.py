"""``synctv stream info`` as text: a relayed stream names the publishing node and the node that
answered; codec warnings are shown, one line each."""

from __future__ import annotations

from synctv.cli.stream import render_stream_info


def test_a_relay_names_both_nodes_and_warnings_are_shown():
    text = render_stream_info({
        "state": "live", "source": "relay", "video": {"codec": "hevc"}, "audio": {"codec": "mp4a.40.2"},
        "viewers": {"flv": 2, "hls": 0}, "dropped": 0, "node_id": "b:8080",
        "codec_warnings": ["the video is HEVC (H.265): browsers will not decode it (black screen); set the "
                           "encoder to H.264 (x264 or a hardware H.264 encoder)"],
        "publisher": {"node_id": "a:8080", "node_url": "http://10.0.0.5:8080"},
    })
    lines = text.splitlines()
    assert lines[0] == "state      live (relay)"
    assert "warning    the video is HEVC (H.265): browsers will not decode it" in text
    assert lines[-1] == "node       a:8080 http://10.0.0.5:8080 (publishing; answered by b:8080)"


def test_the_publishing_node_itself_says_nothing_more():
    text = render_stream_info({"state": "live", "source": "rtmp", "node_id": "a:8080", "codec_warnings": [],
                               "publisher": {"node_id": "a:8080", "node_url": "http://a:8080"}})
    assert "warning" not in text and text.splitlines()[-1] == "node       a:8080 http://a:8080"
