"""ClientProfile.from_query: the client profile query parameters of the playback route."""

from __future__ import annotations

import pytest

from synctv.core.errors import BadRequest
from synctv.providers import ClientProfile


def test_no_parameters_means_anything_goes():
    """An empty query is the open profile: every mode, format and header need accepted."""
    profile = ClientProfile.from_query({})
    assert profile == ClientProfile(None, None, None)
    assert profile.accepts_mode("proxy") and profile.accepts_format("flv") and profile.accepts_headers({"A": "b"})


def test_twisted_style_bytes_query():
    """twisted.web's request.args (bytes keys and values) parse; names are lower-cased and trimmed."""
    profile = ClientProfile.from_query({b"modes": [b"Direct, proxy"], b"formats": [b"mp4,HLS"], b"headers": [b"0"]})
    assert profile == ClientProfile(frozenset({"direct", "proxy"}), frozenset({"mp4", "hls"}), False)


def test_repeated_parameters_add_up_and_others_are_ignored():
    """modes=a&modes=b is modes=a,b; unknown parameters (cache busters) are ignored."""
    profile = ClientProfile.from_query({"modes": ["direct", "hls"], "headers": ["1", "1"], "_": ["123"]})
    assert profile.modes == frozenset({"direct", "hls"})
    assert profile.can_send_headers is True


@pytest.mark.parametrize("query, field", [
    ({"modes": [""]}, "modes"),
    ({"modes": ["direct,"]}, "modes"),
    ({"modes": ["teleport"]}, "modes"),
    ({"formats": ["mp4,,hls"]}, "formats"),
    ({"formats": ["m p4"]}, "formats"),
    ({"formats": [",".join(f"f{i}" for i in range(33))]}, "formats"),
    ({b"formats": [b"\xff"]}, "formats"),
    ({"headers": ["yes"]}, "headers"),
    ({"headers": ["0", "1"]}, "headers"),
    ({"headers": [""]}, "headers"),
])
def test_bad_values_are_a_bad_request_naming_the_parameter(query, field):
    """Empty items, unknown modes, odd characters, too many names, headers other than 0/1."""
    with pytest.raises(BadRequest) as caught:
        ClientProfile.from_query(query)
    assert caught.value.field == field


def test_accepts():
    """accepts_format keeps 'unknown'; accepts_headers only refuses headers to headers=0."""
    profile = ClientProfile(modes=frozenset({"direct"}), formats=frozenset({"mp4"}), can_send_headers=False)
    assert profile.accepts_mode("direct") and not profile.accepts_mode("proxy")
    assert profile.accepts_format("unknown") and not profile.accepts_format("hls")
    assert profile.accepts_headers({}) and not profile.accepts_headers({"Referer": "x"})
