"""Cancellation: SIGINT and SIGTERM are the deadline arriving now.

When a run is cancelled (from the Actions UI, or a job's `timeout-minutes`),
actions/runner sends SIGINT to `docker run`, which hands it to the container's
first process (this one), then SIGTERM 7.5 s later, then kills it 2.5 s after
that. As PID 1 the process would ignore SIGTERM without a handler. The first
signal makes the deadline arrive: nothing new is sent, and the run ends as a
run out of time does, with every target's truthful result written. A second
signal ends the process at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only its type: the handler is installed before the network stack loads
    from .deadline import Deadline

CANCEL_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# Exit code of a run ended by a second signal (as of every run that did not end well).
EXIT_AT_ONCE = 1


class Cancellation:
    """Installed once, before any work; `watch` hands it the run's deadline.

    The handler runs in the main thread between any two bytecodes, perhaps inside
    `watch` itself: both set their own field before reading the other's, so either
    order of the two ends with the deadline cancelled. `Deadline.cancel` takes no
    lock, and the notice goes straight to the descriptor (the interrupted code may
    hold the stream's lock).
    """

    def __init__(self, *, log_descriptor: int = 1) -> None:
        self.log_descriptor = log_descriptor
        self.why: str | None = None
        self._deadline: Deadline | None = None

    def install(self) -> None:
        """Handle the cancel signals (only the main thread may; elsewhere, nothing). Done
        first thing, before the slow imports: a cancel may come at any moment."""
        if threading.current_thread() is not threading.main_thread():
            return
        for number in CANCEL_SIGNALS:
            signal.signal(number, self._handle)
        # The image starts Python with them blocked (Dockerfile): one that came meanwhile
        # is pending, and is handled now.
        if hasattr(signal, "pthread_sigmask"):
            signal.pthread_sigmask(signal.SIG_UNBLOCK, CANCEL_SIGNALS)

    def watch(self, deadline: Deadline) -> None:
        """Cancel this deadline on a signal, or now if one came while there was none."""
        self._deadline = deadline
        if self.why is not None:
            deadline.cancel(self.why)

    @property
    def cancelled(self) -> bool:
        return self.why is not None

    def _handle(self, number: int, _frame: FrameType | None) -> None:
        name = signal.Signals(number).name
        if self.why is not None:
            self._say(f"{name} received again: ending now.\n")
            os._exit(EXIT_AT_ONCE)
        self.why = f"cancelled by {name}"
        self._say(
            f"{name} received: the run is cancelled. Nothing more will be sent; writing what "
            "is known (a second signal ends at once).\n"
        )
        deadline = self._deadline
        if deadline is not None:
            deadline.cancel(self.why)

    def _say(self, text: str) -> None:
        with contextlib.suppress(OSError):  # a closed log: the outputs still follow
            os.write(self.log_descriptor, text.encode())


# The process's one cancellation, installed by its entry points before anything else.
CANCELLATION = Cancellation()
