"""The thin Twisted half of the providers' upstream calls: send an ``ApiCall``, read the answer.

Every call goes through a ``synctv.proxy.upstream.UpstreamClient`` -- the media proxy's client,
with its address guard -- so an account's server URL that names (or resolves to) a loopback,
private or link-local address is refused unless ``[proxy] allow_networks`` admits it, and every
hop of a redirect is checked the same way. Answers are read whole up to ``max_body_bytes``
(larger is a 502) within the client's connect, answer and idle timeouts.

``calls`` counts the calls per provider kind (the first word of ``ApiCall.what``), for
``bench/providers.py`` and the metrics of how many upstream calls a play costs.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from synctv.providers.calls import ApiAnswer, ApiCall
from synctv.proxy.upstream import UpstreamClient

MAX_BODY_BYTES = 8 << 20
ANSWER_HEADERS = ("content-type", "location", "content-length", "etag")
USER_AGENT = "synctv/0.1 (+https://github.com/synctv-org/synctv)"


class ApiClient:
    """See the module docstring."""

    def __init__(self, upstream: UpstreamClient, *, max_body_bytes: int = MAX_BODY_BYTES,
                 user_agent: str = USER_AGENT) -> None:
        self.upstream = upstream
        self.max_body_bytes = max_body_bytes
        self.user_agent = user_agent
        self.calls: Counter[str] = Counter()

    async def send(self, call: ApiCall, *, limit: int | None = None) -> ApiAnswer:
        """The upstream's answer to ``call``, whatever its status; 502/504/403 domain errors when
        it cannot be had (``synctv.proxy.upstream``)."""
        headers = {"User-Agent": self.user_agent, "Accept": "application/json", **call.headers}
        self.calls[call.what.split(" ", 1)[0]] += 1
        response = await self.upstream.open(call.method, call.url, headers, call.body)
        body = await response.read(limit or self.max_body_bytes)
        found: dict[str, str] = {}
        for name in ANSWER_HEADERS:
            value = response.header(name)
            if value is not None:
                found[name] = value
        return ApiAnswer(response.code, found, body)

    def close(self) -> Any:
        return self.upstream.close()
