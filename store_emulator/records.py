"""What the emulator remembers about each request it received."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any


class Headers(Mapping[str, str]):
    """Request headers with case-insensitive lookup, as HTTP defines them."""

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: dict[str, tuple[str, str]] = {}
        for name, value in items:
            key = name.lower()
            if key in self._items:  # repeated header: join, as RFC 9110 allows
                self._items[key] = (name, f"{self._items[key][1]}, {value}")
            else:
                self._items[key] = (name, value)

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()][1]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({dict(self.items())!r})"


@dataclass
class Recorded:
    """One request as received, plus what the emulator did with it.

    `status` is None when no complete answer was sent (a reset, hang or truncation fault).
    `started` is time.monotonic() when the request head had been read.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: Headers
    body: bytes
    started: float
    correlation_id: str = ""
    status: int | None = None
    fault: str | None = None

    def json(self) -> Any:
        return json.loads(self.body)

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": dict(self.headers.items()),
            "body": self.body.decode("utf-8", "backslashreplace"),
            "started": self.started,
            "correlation_id": self.correlation_id,
            "status": self.status,
            "fault": self.fault,
        }
