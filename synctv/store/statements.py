"""How interactions and drivers talk: statements in, results out, constraint violations thrown in.

An interaction (see ``sql``) is a generator that yields ``Execute`` statements -- SQL with ``?``
placeholders -- and receives a ``Result`` (``rows``, ``rowcount``) for each; its return value is
the operation's result. A driver runs one interaction inside one transaction. When a statement
breaks a constraint the driver throws ``IntegrityViolation`` into the generator, which may turn
it into a domain error (``Conflict``, ``NotFound``); after that the interaction must not execute
more statements (PostgreSQL has aborted the transaction). A violation the interaction lets
escape becomes the default domain error (``IntegrityViolation.to_domain``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from typing import Any, TypeVar

import attrs

from synctv.core.errors import BadRequest, Conflict, DomainError, NotFound

T = TypeVar("T")


def _check_param(value: Any) -> None:
    if isinstance(value, str):
        if "\x00" in value:
            raise BadRequest("text must not contain NUL characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise BadRequest("text must be valid Unicode (no lone surrogates)") from None
    elif isinstance(value, float) and not math.isfinite(value):
        raise BadRequest("numbers must be finite")


@attrs.frozen
class Execute:
    """One statement. Parameters are checked here so both dialects refuse the same values."""

    sql: str
    params: tuple[Any, ...] = ()

    def __attrs_post_init__(self) -> None:
        for value in self.params:
            _check_param(value)


@attrs.frozen
class Result:
    rows: list[tuple[Any, ...]]
    rowcount: int


class IntegrityViolation(Exception):
    """A constraint refused a statement. ``kind``: unique | foreign_key | check | not_null."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind} violation: {detail}")
        self.kind = kind
        self.detail = detail

    def on(self, column: str) -> bool:
        """Whether the violated constraint names ``column`` (best effort, for messages)."""
        return column in self.detail

    def to_domain(self) -> DomainError:
        """The default mapping when an interaction did not translate the violation itself."""
        if self.kind == "unique":
            return Conflict("that value is already taken")
        if self.kind == "foreign_key":
            return NotFound("a referenced record does not exist")
        return BadRequest(f"invalid value ({self.kind.replace('_', ' ')} constraint)")


Interaction = Generator[Execute, Result, T]


def run_sync(interaction: Interaction[T], execute: Callable[[Execute], Result]) -> T:
    """Drive ``interaction`` with a blocking ``execute``; ``IntegrityViolation`` is thrown in."""
    try:
        reply: Result | None = None
        error: IntegrityViolation | None = None
        while True:
            try:
                statement = interaction.throw(error) if error is not None else interaction.send(reply)
            except StopIteration as stop:
                return stop.value
            except IntegrityViolation as violation:
                raise violation.to_domain() from None
            try:
                reply, error = execute(statement), None
            except IntegrityViolation as violation:
                reply, error = None, violation
    finally:
        interaction.close()
