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

from .deadline import Deadline

CANCEL_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# Exit code of a run ended by a second signal (as of every run that did not end well).
EXIT_AT_ONCE = 1


class Cancellation:
    """Installed once, before any work; `watch` hands it the run's deadline.

    The signal handler only writes: it runs in the main thread between any two
    bytecodes, perhaps while that thread holds a lock the cancelling needs, so
    the cancelling is done by a watcher thread that the handler wakes.
    """

    def __init__(self, *, log_descriptor: int = 1) -> None:
        self.log_descriptor = log_descriptor
        self.why: str | None = None
        self._deadline: Deadline | None = None
        self._lock = threading.Lock()
        self._wake_read, self._wake_write = os.pipe()

    def install(self) -> None:
        """Handle the cancel signals (only the main thread may; elsewhere, nothing)."""
        if threading.current_thread() is not threading.main_thread():
            return
        threading.Thread(target=self._watch_for_signal, name="cancel", daemon=True).start()
        for number in CANCEL_SIGNALS:
            signal.signal(number, self._handle)

    def watch(self, deadline: Deadline) -> None:
        """Cancel this deadline on a signal, or now if one came while there was none."""
        with self._lock:
            self._deadline = deadline
            why = self.why
        if why is not None:
            deadline.cancel(why)

    @property
    def cancelled(self) -> bool:
        return self.why is not None

    def _handle(self, number: int, _frame: FrameType | None) -> None:
        name = signal.Signals(number).name
        if self.why is not None:
            self._say(f"{name} received again: ending now.\n")
            os._exit(EXIT_AT_ONCE)
        self.why = f"the run was cancelled ({name})"
        self._say(
            f"{name} received: the run is cancelled. Nothing more will be sent; writing what "
            "is known (a second signal ends at once).\n"
        )
        os.write(self._wake_write, b"!")

    def _say(self, text: str) -> None:
        # Straight to the descriptor: the interrupted code may hold the stream's lock.
        with contextlib.suppress(OSError):  # a closed log: the outputs still follow
            os.write(self.log_descriptor, text.encode())

    def _watch_for_signal(self) -> None:
        os.read(self._wake_read, 1)
        with self._lock:
            deadline, why = self._deadline, self.why
        if deadline is not None and why is not None:
            deadline.cancel(why)
