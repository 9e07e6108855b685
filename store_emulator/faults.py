"""Fault injection: scripted misbehaviour for chosen requests."""

from __future__ import annotations

import json
import math
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from .bodies import JSON_TYPE, Stream, filler
from .responses import Response

KINDS = (
    "respond",
    "respond_after",
    "reset_before",
    "reset_after",
    "hang",
    "hang_after",
    "truncate",
    "delay",
    "trickle",
    "huge",
)
FRAMINGS = ("length", "chunked", "close")


@dataclass
class Fault:
    """What to do instead of answering normally.

    `path` is a regular expression searched in the request path (no query); the empty
    pattern matches every path. `method` is an HTTP method or "*". `times` is how many
    requests it applies to (None: forever). A fault applies to any endpoint: the Store,
    Entra's discovery and token endpoints, GitHub's OIDC token endpoint.

    The fault's own answer is `status`, `body` and `headers`. `body` may be a dict (sent
    as JSON), str, bytes, or a bodies.Stream (generated while it is sent, never held).

    Kinds:
      respond       answer the fault's own answer; the state is untouched.
      respond_after apply the request (a halt takes effect), then answer the fault's own answer
                    (a gateway's 504 hiding a success).
      reset_before  close the connection with a TCP reset instead of answering; state untouched.
      reset_after   apply the request (a halt takes effect), then reset instead of answering.
      hang          read the request, answer nothing for `seconds`, then close; state untouched.
      hang_after    apply the request, then hang like `hang` (a timeout after the Store acted).
      truncate      send headers promising more body than is sent, then close. Without a
                    `body` the request is applied and its real answer is cut; with a `body`
                    the fault's own `status`/`body` are cut and the state is untouched.
      delay         wait `seconds` (a slow Store), then apply the request and answer normally;
                    with a `body`, answer the fault's own answer instead, state untouched.
      trickle       send the answer, status line, headers and body, one byte every `interval`
                    seconds: the real answer (request applied) or, with a `body`, the fault's
                    own (state untouched). With `endless`, the body never ends: spaces follow
                    it (or a stream body's growing part repeats) for as long as the client reads.
      huge          answer `status` with a body of `size` bytes of `body` (str or bytes,
                    default "x") repeated, or the stream `body` is; streamed, never held in
                    memory. With `endless`, it never ends. State untouched.

    `framing` says how the body of any answer but a truncated one is delimited: "length"
    (Content-Length), "chunked" (Transfer-Encoding: chunked) or "close" (neither; the
    connection closes after it). An `endless` body needs "chunked" or "close".
    """

    method: str = "*"
    path: str = ""
    times: int | None = 1
    kind: str = "respond"
    status: int = 500
    body: str | bytes | dict[str, Any] | Stream | None = None
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 3600.0
    interval: float = 1.0
    size: int = 0
    framing: str = "length"
    endless: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {KINDS}")
        if self.times is not None and self.times < 1:
            raise ValueError("times must be at least 1, or None for forever")
        if not 100 <= self.status <= 599:
            raise ValueError(f"status {self.status} is not an HTTP status")
        if self.framing not in FRAMINGS:
            raise ValueError(f"unknown framing {self.framing!r}; expected one of {FRAMINGS}")
        if self.endless and self.framing == "length":
            raise ValueError("an endless body needs framing 'chunked' or 'close'")
        if not (math.isfinite(self.seconds) and self.seconds >= 0):
            raise ValueError("seconds must be a finite number, at least 0")
        if not (math.isfinite(self.interval) and self.interval >= 0):
            raise ValueError("interval must be a finite number, at least 0")
        if self.size < 0:
            raise ValueError("size must be at least 0")
        if self.kind == "huge" and isinstance(self.body, dict):
            raise ValueError("a huge body is a stream, or str or bytes to repeat")
        if self.kind == "truncate" and isinstance(self.body, Stream):
            raise ValueError("truncate cuts a small body; a stream cannot be cut in half")
        if self.kind == "huge" and self.body in ("", b""):
            raise ValueError("a huge body cannot repeat an empty unit")
        re.compile(self.path)  # fail at add time, not at request time

    def matches(self, method: str, path: str) -> bool:
        if self.method != "*" and self.method.upper() != method.upper():
            return False
        return re.search(self.path, path) is not None

    def response(self) -> Response:
        """The fault's own answer (or the part a `truncate` fault cuts)."""
        stream: Stream | None = None
        if isinstance(self.body, Stream):
            body, stream, kind = b"", self.body, self.body.content_type
        elif isinstance(self.body, dict):
            body, kind = json.dumps(self.body).encode(), JSON_TYPE
        elif isinstance(self.body, str):
            body, kind = self.body.encode(), "text/plain; charset=utf-8"
        elif isinstance(self.body, bytes):
            body, kind = self.body, "application/octet-stream"
        else:
            body, kind = b"", ""
        return Response(self.status, body, self._headers(kind), stream)

    def huge_response(self) -> Response:
        """The answer of a `huge` fault: the stream body, or `size` bytes of the unit."""
        if isinstance(self.body, str):
            stream = filler(self.size, self.body.encode(), "text/plain; charset=utf-8")
        elif isinstance(self.body, bytes):
            stream = filler(self.size, self.body)
        elif isinstance(self.body, Stream):
            stream = self.body
        else:
            stream = filler(self.size)
        return Response(self.status, b"", self._headers(stream.content_type), stream)

    def _headers(self, content_type: str) -> dict[str, str]:
        headers = {"Content-Type": content_type} if content_type else {}
        # The fault's own headers win, whatever their capitalisation.
        for name in self.headers:
            for existing in [h for h in headers if h.lower() == name.lower()]:
                del headers[existing]
        headers.update(self.headers)
        return headers


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
