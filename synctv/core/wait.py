"""The room waits for its slowest viewer, within bounds (docs/realtime.md, "Waiting for viewers").

Pure rules; callers pass the time (server ms). A *viewer* is a connection that reported its
readiness (``readiness {ready, wait}``): ``ready`` says whether its player can play at the room's
position now, ``wait`` is false for "don't wait for me".

- **A wait** holds the room's playback while a viewer is not ready: the state becomes a scheduled
  start at the position the room had reached, ``wait_s`` ahead (``waiting_state``). The state
  itself says when play goes on, so a wait can never hang: at ``at_ms`` every page plays, whether
  or not anyone is ready, with no server action needed (a server that died mid-wait included).
- **Resuming early**: when no viewer the wait waits for is still not ready, play resumes
  ``RESUME_LEAD_MS`` later, the same instant for every page (``resumed_state``), by
  compare-and-set on the wait's version: a user's play, pause or seek in between wins.
- **Who is waited for** (``waited_for``): viewers not ready whose ``wait`` is on. A viewer still
  not ready at a wait's end is **dropped**: it catches up alone and starts no new wait until it
  has been ready again (``may_start``).
- **Bounds against a viewer that stalls on purpose** (``WaitBudget``): the waits one user starts
  may hold the room for at most ``wait_s`` within any ``BUDGET_WINDOW_FACTOR * wait_s`` seconds;
  past that its stalls are not waited for.
- Only ``watch`` rooms wait, only while ``settings.wait_for_all`` (default on), and only while
  the room plays a started timeline (not paused, ended, empty, or in a scheduled start).

Room settings owned here: ``wait_for_all`` (boolean) and ``wait_s`` (seconds, ``MIN_WAIT_S`` to
``MAX_WAIT_S``); ``check_settings`` validates them and keeps every other key as it is.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from synctv.core.errors import BadRequest
from synctv.core.models import PlaybackState

DEFAULT_WAIT_S = 10.0
MIN_WAIT_S = 1.0
MAX_WAIT_S = 120.0
RESUME_LEAD_MS = 500  # all ready: play resumes this long after the decision, on every page at once
BUDGET_WINDOW_FACTOR = 10  # a user's waits may hold the room wait_s within this many times wait_s
VIEWERS_MAX = 200  # viewer entries one node announces (not-ready ones first)
VIEWERS_SHOWN = 50  # viewer entries a `viewers` frame carries (not-ready ones first), and names waited for


# -- settings -------------------------------------------------------------------------------------


@attrs.frozen
class WaitSettings:
    """A room's ``settings.wait_for_all`` and ``settings.wait_s``."""

    wait_for_all: bool = True
    wait_s: float = DEFAULT_WAIT_S

    @property
    def wait_ms(self) -> int:
        return round(self.wait_s * 1000)

    @classmethod
    def of(cls, settings: Mapping[str, Any] | None) -> WaitSettings:
        """The settings as stored; a value that is missing or (stored before validation) out of
        shape reads as its default."""
        settings = settings or {}
        wait_for_all = settings.get("wait_for_all", True)
        wait_s = settings.get("wait_s", DEFAULT_WAIT_S)
        if not isinstance(wait_for_all, bool):
            wait_for_all = True
        if isinstance(wait_s, bool) or not isinstance(wait_s, (int, float)) or not math.isfinite(wait_s) \
                or not MIN_WAIT_S <= wait_s <= MAX_WAIT_S:
            wait_s = DEFAULT_WAIT_S
        return cls(wait_for_all=wait_for_all, wait_s=float(wait_s))

    def to_json(self) -> dict[str, Any]:
        return {"wait_for_all": self.wait_for_all, "wait_s": self.wait_s}


def check_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``settings`` with ``wait_for_all`` and ``wait_s`` checked (BadRequest naming the field);
    every other key is kept as it is (other parts of synctv own them)."""
    checked = dict(settings)
    if "wait_for_all" in checked and not isinstance(checked["wait_for_all"], bool):
        raise BadRequest("settings.wait_for_all must be true or false", field="settings.wait_for_all")
    if "wait_s" in checked:
        value = checked["wait_s"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or not MIN_WAIT_S <= value <= MAX_WAIT_S:
            raise BadRequest(
                f"settings.wait_s must be a number of seconds from {MIN_WAIT_S:g} to {MAX_WAIT_S:g}",
                field="settings.wait_s")
    return checked


# -- the state changes ----------------------------------------------------------------------------


def is_running(state: PlaybackState, now_ms: int) -> bool:
    """Whether the room plays a started timeline: something selected, playing, not ended, and
    ``at_ms`` reached (not a scheduled start)."""
    return state.media_id is not None and state.playing and not state.ended and state.at_ms <= now_ms


def waiting_state(state: PlaybackState, settings: WaitSettings, kind: str, now_ms: int) -> PlaybackState | None:
    """The state that holds the room for a viewer who is not ready, or None when the room does
    not wait: a ``display`` room, ``wait_for_all`` off, or nothing running (``is_running``).

    It is a scheduled start at the position the room has reached now, ``wait_s`` ahead: every
    page pauses there and plays at ``at_ms`` unless play resumes earlier (``resumed_state``).
    """
    if kind != "watch" or not settings.wait_for_all or not is_running(state, now_ms):
        return None
    return attrs.evolve(
        state, position=state.expected_position(now_ms), at_ms=now_ms + settings.wait_ms,
        version=state.version + 1, event_id=None,
    )


def resumed_state(state: PlaybackState, wait_version: int, now_ms: int) -> PlaybackState | None:
    """Everyone is ready: the wait (the state of version ``wait_version``) starts
    ``RESUME_LEAD_MS`` from now. None when the state moved on since the wait began, or the wait's
    own start is that near anyway."""
    if state.version != wait_version or not state.playing or state.ended:
        return None
    at_ms = now_ms + RESUME_LEAD_MS
    if at_ms >= state.at_ms:
        return None
    return attrs.evolve(state, at_ms=at_ms, version=state.version + 1)


# -- viewers --------------------------------------------------------------------------------------


@attrs.frozen
class ViewerEntry:
    """One viewer as its node announces it: readiness (None before its first report), its
    "wait for me" choice, since when ``ready`` has its value, whether the room still waits for
    it (``over_budget``), and its newest telemetry (``{drift_ms, rate, offset_ms, rtt_ms, at_ms}``)."""

    connection_id: str
    user_id: str
    user_name: str
    ready: bool | None = None
    wait: bool = True
    since_ms: int = 0
    over_budget: bool = False
    telemetry: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "connection_id": self.connection_id, "user_id": self.user_id, "user_name": self.user_name,
            "ready": self.ready, "wait": self.wait, "since_ms": self.since_ms, "over_budget": self.over_budget,
            "telemetry": dict(self.telemetry) if self.telemetry is not None else None,
        }

    @classmethod
    def from_json(cls, value: Any) -> ViewerEntry:
        if not isinstance(value, dict) or not isinstance(value.get("connection_id"), str) \
                or not isinstance(value.get("user_id"), str):
            raise BadRequest("a viewer entry needs connection_id and user_id")
        ready = value.get("ready")
        telemetry = value.get("telemetry")
        since = value.get("since_ms")
        return cls(
            connection_id=value["connection_id"], user_id=value["user_id"],
            user_name=value["user_name"] if isinstance(value.get("user_name"), str) else "",
            ready=ready if isinstance(ready, bool) else None, wait=value.get("wait") is not False,
            since_ms=since if isinstance(since, int) and not isinstance(since, bool) else 0,
            over_budget=value.get("over_budget") is True,
            telemetry=telemetry if isinstance(telemetry, dict) else None,
        )


def waited_for(viewers: Iterable[ViewerEntry]) -> list[ViewerEntry]:
    """The viewers a wait waits for: not ready, "wait for me" on, within their budget."""
    return [v for v in viewers if v.ready is False and v.wait and not v.over_budget]


def announced(viewers: Iterable[ViewerEntry], limit: int = VIEWERS_MAX) -> tuple[ViewerEntry, ...]:
    """At most ``limit`` entries for one node's announcement: those not ready first, then by name."""
    ordered = sorted(viewers, key=lambda v: (v.ready is not False, v.user_name, v.connection_id))
    return tuple(ordered[:limit])


@attrs.frozen
class Wait:
    """A wait the room is in: the state of ``version`` holds it at ``position`` until ``until_ms``
    (that state's ``at_ms``); started at ``started_ms`` for ``user_name`` (``user_id``)."""

    version: int
    position: float
    started_ms: int
    until_ms: int
    user_id: str
    user_name: str

    @classmethod
    def begun(cls, state: PlaybackState, now_ms: int, user_id: str, user_name: str) -> Wait:
        return cls(state.version, state.position, now_ms, state.at_ms, user_id, user_name)

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def from_json(cls, value: Any) -> Wait:
        if not isinstance(value, dict):
            raise BadRequest("a wait must be an object")
        try:
            return cls(
                version=int(value["version"]), position=float(value["position"]),
                started_ms=int(value["started_ms"]), until_ms=int(value["until_ms"]),
                user_id=str(value["user_id"]), user_name=str(value.get("user_name") or ""),
            )
        except (KeyError, TypeError, ValueError):
            raise BadRequest("a wait needs version, position, started_ms, until_ms and user_id") from None


def may_start(viewer: ViewerEntry, last_wait_end_ms: int | None) -> bool:
    """Whether ``viewer``'s stall may start a wait: not ready, waiting on, within budget, and not
    dropped (not ready since before the last wait ended: it catches up alone until it has been
    ready again)."""
    if viewer.ready is not False or not viewer.wait or viewer.over_budget:
        return False
    return last_wait_end_ms is None or viewer.since_ms > last_wait_end_ms


# -- the budget -----------------------------------------------------------------------------------


@attrs.define
class WaitBudget:
    """How long the waits each user started held the room, over a sliding window.

    A wait is recorded when it starts (``record``) and closed when the state moves on
    (``close``); an open wait counts until now, and never past its ``until_ms``.
    """

    _waits: dict[str, list[list[int]]] = attrs.field(factory=dict)  # user -> [[start, end, version]]

    def record(self, user_id: str, wait: Wait) -> None:
        self._waits.setdefault(user_id, []).append([wait.started_ms, wait.until_ms, wait.version])

    def close(self, version: int, now_ms: int) -> None:
        """The wait of ``version`` ended at ``now_ms`` (its state was replaced)."""
        for spans in self._waits.values():
            for span in spans:
                if span[2] == version and span[1] > now_ms:
                    span[1] = max(span[0], now_ms)

    def held_ms(self, user_id: str, now_ms: int, settings: WaitSettings) -> int:
        """Milliseconds the waits ``user_id`` started held the room within the window before now."""
        window_start = now_ms - BUDGET_WINDOW_FACTOR * settings.wait_ms
        spans = self._waits.get(user_id, [])
        spans[:] = [s for s in spans if s[1] > window_start]  # forget what left the window
        if not spans:
            self._waits.pop(user_id, None)
        return sum(max(0, min(end, now_ms) - max(start, window_start)) for start, end, _ in spans)

    def over(self, user_id: str, now_ms: int, settings: WaitSettings) -> bool:
        return self.held_ms(user_id, now_ms, settings) >= settings.wait_ms


# -- one room, as one node sees it ----------------------------------------------------------------


class WaitTracker:
    """One room's viewers over every node, its current wait and its users' budgets (sans-IO).

    The realtime layer feeds it: each node's viewer announcements (``put``, the local node's
    included), every playback state seen (``saw_state``), every wait begun (``begin``), and
    asks it: which local viewer's stall starts a wait now (``starter``), which wait may resume
    (``to_resume``), and what the pages see (``view``). Other nodes' entries expire
    ``expire_ms`` after their last announcement, as presence does.
    """

    def __init__(self, local_node: str, expire_ms: int, settings: WaitSettings | None = None,
                 kind: str = "watch") -> None:
        self.local_node = local_node
        self.expire_ms = expire_ms
        self.settings = settings or WaitSettings()
        self.kind = kind
        self.budget = WaitBudget()
        self.wait: Wait | None = None
        self.last_wait_end_ms: int | None = None
        self.state: PlaybackState | None = None
        self._nodes: dict[str, tuple[int, tuple[ViewerEntry, ...]]] = {}

    # -- inputs ---------------------------------------------------------------------------------

    def configure(self, settings: WaitSettings, kind: str) -> None:
        self.settings, self.kind = settings, kind

    def put(self, node: str, entries: Iterable[ViewerEntry], now_ms: int) -> bool:
        """``node``'s viewers; True when anything a page shows changed."""
        entries = tuple(entries)
        before = self._nodes.get(node)
        if entries or node == self.local_node:
            self._nodes[node] = (now_ms, entries)
        else:
            self._nodes.pop(node, None)
        return (before is None and bool(entries)) or (before is not None and before[1] != entries)

    def expire(self, now_ms: int) -> bool:
        stale = [n for n, (seen, _) in self._nodes.items() if n != self.local_node and now_ms - seen > self.expire_ms]
        for node in stale:
            del self._nodes[node]
        return bool(stale)

    def saw_state(self, state: PlaybackState, now_ms: int) -> None:
        """A playback state (newer than the last one seen): a wait whose state was replaced ended."""
        if self.state is not None and state.version <= self.state.version:
            return
        self.state = state
        wait = self.wait
        if wait is not None and state.version != wait.version:
            self._end(wait, now_ms)

    def begin(self, wait: Wait) -> None:
        """A wait began (on any node). One older than the state already seen is over already."""
        if self.state is not None and self.state.version > wait.version:
            return
        self.wait = wait

    def _end(self, wait: Wait, now_ms: int) -> None:
        self.budget.close(wait.version, now_ms)
        self.last_wait_end_ms = max(self.last_wait_end_ms or 0, min(now_ms, wait.until_ms))
        self.wait = None

    def tick(self, now_ms: int) -> None:
        """Time passed: a wait whose deadline went by is over (the state played on by itself)."""
        wait = self.wait
        if wait is not None and now_ms >= wait.until_ms:
            self._end(wait, now_ms)

    # -- questions ------------------------------------------------------------------------------

    def viewers(self) -> list[ViewerEntry]:
        return [entry for _, entries in self._nodes.values() for entry in entries]

    def over_budget(self, user_id: str, now_ms: int) -> bool:
        return self.budget.over(user_id, now_ms, self.settings)

    def starter(self, local: Iterable[ViewerEntry], now_ms: int) -> ViewerEntry | None:
        """The local viewer whose stall starts a wait now, or None (no wait running, the room
        waits, the state runs, and a viewer may start one: ``may_start``)."""
        self.tick(now_ms)
        state = self.state
        if self.wait is not None or state is None or self.kind != "watch" or not self.settings.wait_for_all:
            return None
        if not is_running(state, now_ms):
            return None
        for viewer in local:
            if may_start(viewer, self.last_wait_end_ms) and not self.over_budget(viewer.user_id, now_ms):
                return viewer
        return None

    def to_resume(self, now_ms: int) -> int | None:
        """The version of the wait that may resume now (nobody it waits for is still not ready),
        or None."""
        self.tick(now_ms)
        wait = self.wait
        if wait is None or now_ms + RESUME_LEAD_MS >= wait.until_ms:
            return None
        if self.state is not None and self.state.version != wait.version:
            return None
        return None if waited_for(self.viewers()) else wait.version

    def view(self, now_ms: int, limit: int = VIEWERS_SHOWN) -> dict[str, Any]:
        """What the pages see: ``{viewers: [...], count, wait: {..., waiting_for, waiting} | null}``:
        at most ``limit`` viewers (those not ready first, then by name) of ``count``, and at most
        ``limit`` of the ``waiting`` viewers the wait waits for."""
        self.tick(now_ms)
        everyone = self.viewers()
        viewers = sorted(announced(everyone, limit), key=lambda v: (v.user_name, v.connection_id))
        wait = None
        if self.wait is not None:
            waiting = waited_for(everyone)
            wait = {
                **self.wait.to_json(),
                "waiting_for": [{"connection_id": v.connection_id, "user_id": v.user_id, "user_name": v.user_name}
                                for v in sorted(waiting, key=lambda v: (v.user_name, v.connection_id))[:limit]],
                "waiting": len(waiting),
            }
        return {"viewers": [v.to_json() for v in viewers], "count": len(everyone), "wait": wait}
