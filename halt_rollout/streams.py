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
    """Make both streams write what they cannot encode as escapes, never an error."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            with contextlib.suppress(ValueError, OSError):  # closed, or detached
                stream.reconfigure(errors="backslashreplace")


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
