"""Answer bodies too large or too hostile to hold: described as runs of repeated bytes and
streamed, so a body of gigabytes costs the emulator no memory."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

JSON_TYPE = "application/json; charset=utf-8"
CHUNK = 64 * 1024


@dataclass(frozen=True)
class Stream:
    """A body of `runs`, each a unit of bytes and how many times it repeats.

    An endless answer sends the runs up to `grow`, then repeats that run's unit forever: the
    pathological part of the body is what never ends.
    """

    runs: tuple[tuple[bytes, int], ...]
    content_type: str
    grow: int = 0

    def __post_init__(self) -> None:
        if not self.runs or any(not unit or count < 0 for unit, count in self.runs):
            raise ValueError("a stream needs runs of non-empty units repeated 0 or more times")
        if not 0 <= self.grow < len(self.runs):
            raise ValueError("grow must index one of the runs")

    def __len__(self) -> int:
        return sum(len(unit) * count for unit, count in self.runs)

    def chunks(self, endless: bool = False) -> Iterator[bytes]:
        """The body in pieces of about CHUNK bytes (never empty)."""
        runs = self.runs[: self.grow + 1] if endless else self.runs
        for unit, count in runs:
            yield from _repeat(unit, count)
        if endless:
            unit = self.runs[self.grow][0]
            block = unit * max(1, CHUNK // len(unit))
            yield from itertools.repeat(block)


def _repeat(unit: bytes, count: int) -> Iterator[bytes]:
    per_chunk = max(1, CHUNK // len(unit))
    while count > 0:
        n = min(count, per_chunk)
        yield unit * n
        count -= n


def filler(size: int, unit: bytes = b"x", content_type: str = "application/octet-stream") -> Stream:
    """`size` bytes of `unit` repeated (the last copy cut to fit)."""
    if size < 0:
        raise ValueError("size must be at least 0")
    whole, rest = divmod(size, len(unit))
    runs = [(unit, whole)]
    if rest:
        runs.append((unit[:rest], 1))
    return Stream(tuple(runs), content_type)


def deep_json(depth: int = 100_000) -> Stream:
    """Valid JSON, objects nested `depth` deep: {"a":{"a":…0…}}."""
    return Stream(((b'{"a":', depth), (b"0", 1), (b"}", depth)), JSON_TYPE)


def unclosed_titles(count: int = 1_000_000) -> Stream:
    """An HTML page whose head opens `count` <title tags and closes none (6 bytes each)."""
    return Stream(
        ((b"<!DOCTYPE html><html><head>", 1), (b"<title", count)),
        "text/html; charset=utf-8",
        grow=1,
    )


def whitespace_message(spaces: int = 8 * 1024 * 1024, status: int = 500) -> Stream:
    """A gateway error whose message is `spaces` spaces."""
    return Stream(
        ((f'{{"statusCode": {status}, "message": "'.encode(), 1), (b" ", spaces), (b'"}', 1)),
        JSON_TYPE,
        grow=1,
    )


PATTERNS: dict[str, Callable[[int], Stream]] = {
    "filler": filler,
    "deep_json": deep_json,
    "unclosed_titles": unclosed_titles,
    "whitespace_message": whitespace_message,
}


def make(pattern: str, count: int) -> Stream:
    """A stream by name (for the control API): `count` is the filler's size in bytes, the
    JSON's depth, the number of <title tags, or the number of spaces."""
    if pattern not in PATTERNS:
        raise ValueError(f"unknown stream pattern {pattern!r}; expected one of {sorted(PATTERNS)}")
    if count < 0:
        raise ValueError("count must be at least 0")
    return PATTERNS[pattern](count)
