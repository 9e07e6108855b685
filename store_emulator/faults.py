"""Fault injection: scripted misbehaviour for chosen requests."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from .responses import JSON_TYPE, Response

KINDS = ("respond", "reset_before", "reset_after", "hang", "hang_after", "truncate")


@dataclass
class Fault:
    """What to do instead of answering normally.

    `path` is a regular expression searched in the request path (no query); the empty
    pattern matches every path. `method` is an HTTP method or "*". `times` is how many
    requests it applies to (None: forever).

    Kinds:
      respond       answer `status`, `body` and `headers`; the state is untouched.
      reset_before  close the connection with a TCP reset instead of answering; state untouched.
      reset_after   apply the request (a halt takes effect), then reset instead of answering.
      hang          read the request, answer nothing for `seconds`, then close; state untouched.
      hang_after    apply the request, then hang like `hang` (a timeout after the Store acted).
      truncate      send headers promising more body than is sent, then close. Without a
                    `body` the request is applied and its real answer is cut; with a `body`
                    the fault's own `status`/`body` are cut and the state is untouched.
    """

    method: str = "*"
    path: str = ""
    times: int | None = 1
    kind: str = "respond"
    status: int = 500
    body: str | bytes | dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 3600.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {KINDS}")
        if self.times is not None and self.times < 1:
            raise ValueError("times must be at least 1, or None for forever")
        if not 100 <= self.status <= 599:
            raise ValueError(f"status {self.status} is not an HTTP status")
        re.compile(self.path)  # fail at add time, not at request time

    def matches(self, method: str, path: str) -> bool:
        if self.method != "*" and self.method.upper() != method.upper():
            return False
        return re.search(self.path, path) is not None

    def response(self) -> Response:
        """The answer of a `respond` fault (or the part a `truncate` fault cuts)."""
        headers: dict[str, str] = {}
        if isinstance(self.body, dict):
            body, headers["Content-Type"] = json.dumps(self.body).encode(), JSON_TYPE
        elif isinstance(self.body, str):
            body, headers["Content-Type"] = self.body.encode(), "text/plain; charset=utf-8"
        elif isinstance(self.body, bytes):
            body, headers["Content-Type"] = self.body, "application/octet-stream"
        else:
            body = b""
        # The fault's own headers win, whatever their capitalisation.
        for name in self.headers:
            for existing in [h for h in headers if h.lower() == name.lower()]:
                del headers[existing]
        headers.update(self.headers)
        return Response(self.status, body, headers)


@dataclass
class _Slot:
    fault: Fault
    remaining: int | None  # kept apart so the caller's Fault is never mutated


class FaultQueue:
    """Faults in the order added; each request consumes one use of the first match."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: list[_Slot] = []

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._live.append(_Slot(fault, fault.times))

    def clear(self) -> None:
        with self._lock:
            self._live.clear()

    def take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for slot in self._live:
                if not slot.fault.matches(method, path):
                    continue
                if slot.remaining is not None:
                    slot.remaining -= 1
                    if slot.remaining == 0:
                        self._live.remove(slot)
                return slot.fault
        return None

    def pending(self) -> list[Fault]:
        with self._lock:
            return [slot.fault for slot in self._live]
