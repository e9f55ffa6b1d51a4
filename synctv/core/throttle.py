"""Throttling of password guesses (pure: the caller passes the time).

A ``FailureThrottle`` counts failed attempts per key in a sliding window: once a key has
``limit`` failures within ``window_ms``, further attempts are refused until the oldest of them
leaves the window, and ``retry_after_ms`` says how long that is. A refused attempt does not run
the password check at all (it costs no hashing) and is not counted again.

``PasswordThrottle`` applies two throttles to one attempt, as docs/operations.md describes:

- per target (a user name, or a room for room passwords): ``per_target`` failures
  (default 5 in 5 minutes), cleared by a success on that target;
- per source address: ``per_source`` failures (default 50 in 5 minutes), never cleared by a
  success, so logging into one's own account does not reset a spray across other names, while
  another user's correct password from the same address below that bound still works.

Memory is bounded: each throttle keeps at most ``max_keys`` keys (least recently failed dropped
first) and at most ``limit`` timestamps per key.
"""

from __future__ import annotations

import collections
import ipaddress
import math

import attrs

from synctv.core.errors import RateLimited

DEFAULT_MAX_KEYS = 65536


@attrs.frozen
class ThrottleConfig:
    """The ``[auth]`` config section: password-guess bounds and the hashing pool."""

    max_failures: int = 5
    max_failures_per_address: int = 50
    failure_window_s: float = 300.0
    hash_threads: int = 2
    hash_queue: int = 64


def source_key(host: str) -> str:
    """What counts as one source address: an IPv4 address, or an IPv6 address's /64 (one
    customer's usual allocation, where picking a fresh address per attempt costs nothing)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host  # a UNIX socket or a name: as it is
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class FailureThrottle:
    """See the module docstring."""

    def __init__(self, limit: int, window_ms: int, max_keys: int = DEFAULT_MAX_KEYS) -> None:
        if limit < 1 or window_ms < 1 or max_keys < 1:
            raise ValueError("limit, window_ms and max_keys must be positive")
        self.limit = limit
        self.window_ms = window_ms
        self.max_keys = max_keys
        self._failures: collections.OrderedDict[str, collections.deque[int]] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._failures)

    def _recent(self, key: str, now_ms: int) -> collections.deque[int] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        while times and times[0] <= now_ms - self.window_ms:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times

    def retry_after_ms(self, key: str, now_ms: int) -> int:
        """0 when an attempt on ``key`` may go ahead, else how long until one may."""
        times = self._recent(key, now_ms)
        if times is None or len(times) < self.limit:
            return 0
        return max(1, times[0] + self.window_ms - now_ms)

    def failed(self, key: str, now_ms: int) -> None:
        times = self._recent(key, now_ms)
        if times is None:
            times = self._failures[key] = collections.deque(maxlen=self.limit)
        times.append(now_ms)
        self._failures.move_to_end(key)
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)

    def clear(self, key: str) -> None:
        self._failures.pop(key, None)


class PasswordThrottle:
    """Per-target and per-source bounds on password attempts (module docstring)."""

    def __init__(self, config: ThrottleConfig = ThrottleConfig(), max_keys: int = DEFAULT_MAX_KEYS) -> None:
        window_ms = int(config.failure_window_s * 1000)
        self.per_target = FailureThrottle(config.max_failures, window_ms, max_keys)
        self.per_source = FailureThrottle(config.max_failures_per_address, window_ms, max_keys)

    def check(self, target: str, source: str | None, now_ms: int, what: str) -> None:
        """Raise ``RateLimited`` (with ``retry_after`` seconds) when an attempt must not run."""
        wait = self.per_target.retry_after_ms(target, now_ms)
        reason = f"too many failed {what} attempts; try again later"
        if source is not None:
            by_source = self.per_source.retry_after_ms(source, now_ms)
            if by_source > wait:
                wait = by_source
                reason = f"too many failed {what} attempts from your address; try again later"
        if wait:
            seconds = math.ceil(wait / 1000)
            raise RateLimited(f"{reason} (in {seconds} s)", detail={"retry_after": seconds})

    def failed(self, target: str, source: str | None, now_ms: int) -> None:
        self.per_target.failed(target, now_ms)
        if source is not None:
            self.per_source.failed(source, now_ms)

    def succeeded(self, target: str) -> None:
        self.per_target.clear(target)
