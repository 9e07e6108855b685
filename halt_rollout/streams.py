"""The standard streams as an emergency stop needs them: a log that cannot be written
never stops the stop.

A reader that goes away (`| head -n 2`, quitting `less`) breaks the pipe; a stream
that cannot encode a character (`LC_ALL=C`, `PYTHONIOENCODING=cp1252` on a Windows
runner) meets a flight named `Insiders 🚀 ring`. Neither may cost a halt, a result or
the exit code. Characters a stream cannot encode are written escaped (`\\U0001f680`);
a stream that fails is let go of (pointed at the null device, so later writes and the
exit's flush cannot fail again), and the failure is said once on the other stream,
where it still can be.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import sys
import threading
from collections.abc import Callable
from typing import TextIO

_lock = threading.Lock()
# Why each stream was let go of, by name ("stdout", "stderr"); said once.
LOST: dict[str, str] = {}


def prepare() -> None:
    """Make both streams write what they cannot encode as escapes, never an error; a
    stream closed before the start is let go of at once."""
    closed = [name for name, fd in (("stdout", 1), ("stderr", 2)) if _stand_in_if_closed(name, fd)]
    for name in closed:
        _let_go(name, OSError(errno.EBADF, "it was closed before the run began"))
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            with contextlib.suppress(ValueError, OSError):  # closed, or detached
                stream.reconfigure(errors="backslashreplace")


def _stand_in_if_closed(name: str, descriptor: int) -> bool:
    """Whether the stream was closed before the start (`2>&-`, a daemon): then Python has
    None for it, and its descriptor is free for the next file or socket opened, which
    would receive log lines. The null device takes the descriptor, and a stream on it
    stands in for None."""
    closed = False
    try:
        os.fstat(descriptor)
    except OSError:
        devnull = os.open(os.devnull, os.O_WRONLY)  # the lowest free number: this one
        if devnull != descriptor:
            os.dup2(devnull, descriptor)
            os.close(devnull)
        closed = True
    if getattr(sys, name) is None:
        stand_in = open(  # noqa: SIM115 (the process's stream, kept open to its end)
            descriptor, "w", encoding="utf-8", errors="backslashreplace", closefd=False
        )
        setattr(sys, name, stand_in)
        closed = True
    return closed


def encodes_everything(stream: TextIO) -> bool:
    """Whether the stream writes any character as itself (UTF-8, UTF-16, …)."""
    encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "").replace("_", "")
    return encoding.startswith(("utf8", "utf16", "utf32"))


def guarded(name: str, write: Callable[[], object]) -> bool:
    """Run `write` (which writes to the stream `name`, "stdout" or "stderr") and flush
    it; False when the stream failed, which is then let go of and said on the other."""
    stream = _stream(name)
    if name in LOST:
        return False
    try:
        write()
        stream.flush()
    except (OSError, ValueError) as error:  # a broken pipe, a closed stream, an encoding
        _let_go(name, error)
        return False
    return True


def _stream(name: str) -> TextIO:
    return sys.stdout if name == "stdout" else sys.stderr


def _let_go(name: str, error: BaseException) -> None:
    why = getattr(error, "strerror", None) or type(error).__name__
    with _lock:
        if name in LOST:
            return
        LOST[name] = str(why)
    stream = _stream(name)
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    with contextlib.suppress(OSError, ValueError):
        stream.flush()  # what the failed write left in the buffer goes to the null device
    other = "stderr" if name == "stdout" else "stdout"
    if other not in LOST:
        guarded(
            other,
            lambda: _stream(other).write(
                f"halt-rollout: {name} could not be written ({why}); the run goes on, and "
                "the exit code still follows its results.\n"
            ),
        )
