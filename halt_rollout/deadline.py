"""The run's one deadline (`timeout-seconds`), and the HTTP transport that keeps it.

A per-socket-read timeout is not a deadline: a server that sends a byte a
second never trips one, and neither does a TLS handshake dribbled out, a proxy
that answers CONNECT slowly, a body without end, a name that never resolves or
a host whose every address black-holes. So every request made through
`Deadline.session()` is watched from name resolution to the last byte, direct or
through a proxy's tunnel: its sockets are known before they connect, and when
its time is up a timer shuts them down under whatever is using them; no request
starts once the time is gone. Answers are read whole, up to MAX_ANSWER_BYTES,
before anything parses them. The Store calls, azure-identity's sign-in and the
GitHub OIDC request all go through these sessions: this is the one place where
the deadline is enforced on the network. The sockets are watched in
watched_connections, the adapter that reads answers whole is deadline_adapter, and
what a failed request raises is in lost_answer.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator

import requests

from .deadline_adapter import _DeadlineAdapter
from .watched_connections import LONGEST_WAIT_SECONDS, _Exchange


class Deadline:
    """The run's end on the monotonic clock, and the sessions that honour it."""

    def __init__(
        self,
        seconds: float,
        *,
        started: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        stop: threading.Event | None = None,
    ) -> None:
        self.seconds = seconds
        self._clock = clock
        self.end = (clock() if started is None else started) + seconds
        self._reserve = threading.local()
        # Sleeps are an Event's wait(): tests pass one that records them instead.
        self._stop = stop or threading.Event()
        self._cancelled = False
        self._cancel_reason = ""
        self._lock = threading.Lock()
        self._exchanges: set[_Exchange] = set()
        _CANCELLER.start()

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def remaining(self) -> float:
        """Seconds left for the request about to start (less any reserve held back)."""
        if self._cancelled:
            return 0.0
        return max(0.0, self._request_end() - self._clock())

    def now(self) -> float:
        return self._clock()

    def expired(self) -> bool:
        return self._cancelled or self._clock() >= self.end

    def cancel(self, reason: str = "the run was cancelled") -> None:
        """Make the deadline arrive now: sleeps wake, requests in flight are cut, none starts.

        Safe in a signal handler: it only sets flags and wakes the thread that does
        the cutting, so it takes no lock that the code it interrupted may hold.
        """
        self._cancel_reason = reason
        self._cancelled = True
        _CANCELLER.request(self)

    def why(self) -> str:
        """What ended the time: the cancellation, or timeout-seconds."""
        if self._cancelled:
            return self._cancel_reason
        return f"timeout-seconds ({self.seconds:g}) ran out"

    @contextlib.contextmanager
    def keeping(self, seconds: float) -> Iterator[None]:
        """Within this block, requests and waits end `seconds` before the deadline, so
        that something (a last read of the rollout) still fits in after them."""
        outer = getattr(self._reserve, "seconds", 0.0)
        self._reserve.seconds = max(outer, seconds)
        try:
            yield
        finally:
            self._reserve.seconds = outer

    def sleep(self, seconds: float) -> None:
        """Sleep, but never past the deadline (nor past a cancellation)."""
        self._stop.wait(min(seconds, self.remaining(), LONGEST_WAIT_SECONDS))

    def session(self) -> requests.Session:
        """A requests session whose every request ends by the deadline."""
        session = requests.Session()
        adapter = _DeadlineAdapter(self)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    def _request_end(self) -> float:
        return self.end - getattr(self._reserve, "seconds", 0.0)

    def _enter(self, exchange: _Exchange) -> None:
        with self._lock:
            self._exchanges.add(exchange)
        if self._cancelled:  # cancelled while it was being registered: cut it now
            exchange.shut_all()

    def _leave(self, exchange: _Exchange) -> None:
        with self._lock:
            self._exchanges.discard(exchange)

    def _cut_everything(self) -> None:
        """After cancel(): wake the sleepers and cut every request in flight."""
        self._stop.set()
        with self._lock:
            exchanges = list(self._exchanges)
        for exchange in exchanges:
            exchange.shut_all()


class _Canceller:
    """The thread that carries out cancel(): a signal handler may interrupt code holding
    any lock (an Event's, the deadline's, threading's own), so the handler only appends
    to a list and writes a byte to a pipe, which take none."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[Deadline] = []
        self._wake: int | None = None

    def start(self) -> None:
        with self._lock:
            if self._wake is not None:
                return
            read_end, write_end = os.pipe()
            with contextlib.suppress(OSError):  # a full pipe must not block a handler
                os.set_blocking(write_end, False)
            threading.Thread(
                target=self._run, args=(read_end,), daemon=True, name="deadline-cancel"
            ).start()
            self._wake = write_end

    def request(self, deadline: Deadline) -> None:
        self._pending.append(deadline)
        if self._wake is not None:
            with contextlib.suppress(OSError):
                os.write(self._wake, b"\0")

    def _run(self, read_end: int) -> None:
        while os.read(read_end, 512):
            while self._pending:
                self._pending.pop()._cut_everything()


_CANCELLER = _Canceller()
