"""The GitHub Actions runner's side: the one module that knows its wire format.

Inputs, masks and annotations go through `actions-toolkit`, and so does the
format of the outputs file; what it lacks is filled in here: the job summary,
and writing the runner's files with care. GITHUB_OUTPUT and GITHUB_STEP_SUMMARY
may be unwritable, a directory, on a full disk or a named pipe no one reads:
a write that cannot finish is given up after a second, a failed one is undone,
and the caller is told why, so the run's results never depend on them. Every
text leaving the process passes through `redact`, so a secret never reaches a
log, the summary or an output, even where the runner's own masking would not
apply (files it does not scan); data's invisible characters are shown visibly.
"""

from __future__ import annotations

import contextlib
import os
import select
import stat
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from functools import partial
from pathlib import Path

from actions_toolkit import core
from actions_toolkit.command import issue_command
from actions_toolkit.file_command import prepare_key_value_message

from . import streams
from .errors import TRUNCATED, one_line
from .redact import Redactor, inert, visible
from .settings_secrets import environment_secrets

# How long writing one of the runner's files may take: a regular file takes
# microseconds; only a pipe no one reads or a hung file system takes longer. Both files
# within a second: a cancelled run has two to write everything.
RUNNER_FILE_SECONDS = 0.5
# A log line or annotation says what a person needs in far less; past this, data is cut
# (a submission with 20,000 packages, a Store that answers a novel).
MAX_LINE_CHARS = 8000


class RunnerFileError(Exception):
    """One of the runner's files could not be written; the message says which and why."""


class ActionsRunner:
    def __init__(self) -> None:
        self.redact = Redactor()
        self._lock = threading.Lock()

    # Inputs -----------------------------------------------------------------

    def read_inputs(self, names: Iterable[str]) -> dict[str, str]:
        """Inputs as the runner passes them (INPUT_APP-ID), or as a shell can (INPUT_APP_ID)."""
        values = {}
        for name in names:
            value = core.get_input(name)
            if not value:
                value = core.get_input(name.replace("-", "_"))
            values[name] = value
        return values

    @property
    def workspace(self) -> Path:
        return Path(os.environ.get("GITHUB_WORKSPACE") or os.getcwd())

    # Secrets ----------------------------------------------------------------

    def protect_runner_secrets(self) -> None:
        """The runner's own token for OIDC requests is a secret too, and so are a proxy
        URL's credentials (`http://user:password@proxy:3128`, however malformed)."""
        for secret in environment_secrets():
            self.protect(secret)

    def protect(self, secret: str) -> None:
        """Mask a secret in the runner's log and redact it from everything we write."""
        for part in self.redact.add(secret):
            with self._lock:
                streams.guarded("stdout", partial(core.set_secret, part))

    # Log --------------------------------------------------------------------

    def log(self, line: str) -> None:
        """A line of the log; never a workflow command, whatever data it carries."""
        shown = self._shown(line)
        with self._lock:
            streams.guarded("stdout", lambda: core.info(shown))

    def log_lines(self, lines: Iterable[str]) -> None:
        """Many lines of the log in one write: 50,000 results take a fraction of a second."""
        # Redacted as one text (a secret split across lines is hidden too), then each
        # line cut, then shown: the same order as a single line's, at one pass's cost.
        redacted = self.redact("\n".join(lines)).split("\n")
        shown = inert(visible("".join(_cut(line) + os.linesep for line in redacted)))
        with self._lock:
            streams.guarded("stdout", lambda: sys.stdout.write(shown))

    def error(self, title: str, message: str) -> None:
        """One `::error title=…::` annotation (escaped by the toolkit)."""
        self._annotate("error", title, message)

    def warning(self, title: str, message: str) -> None:
        self._annotate("warning", title, message)

    def group(self, title: str, lines: Iterable[str]) -> None:
        shown = [self._shown(line) for line in lines]

        def write() -> None:
            core.start_group(self._shown(title))
            for line in shown:
                core.info(line)
            core.end_group()

        with self._lock:
            streams.guarded("stdout", write)

    def _annotate(self, kind: str, title: str, message: str) -> None:
        shown_title = visible(_cut(self.redact(title)))
        shown_message = visible(_cut(self.redact(message)))
        with self._lock:
            streams.guarded(
                "stdout", lambda: issue_command(kind, {"title": shown_title}, shown_message)
            )

    def _shown(self, text: str) -> str:
        # Redacted first: nothing inserted afterwards can split a secret past it.
        return inert(visible(_cut(self.redact(text))))

    @property
    def log_lost(self) -> str | None:
        """Why the log could not be written from some point on, or None."""
        return streams.LOST.get("stdout")

    # Outputs and summary ------------------------------------------------------

    def set_outputs(self, outputs: Mapping[str, str]) -> None:
        """All outputs in one write; RunnerFileError when GITHUB_OUTPUT cannot take them."""
        path = os.environ.get("GITHUB_OUTPUT")
        if not path:
            # Run from a shell: the runner's older command, which the log shows.
            shown = {name: self.redact(value) for name, value in outputs.items()}

            def write() -> None:
                for name, value in shown.items():
                    core.set_output(name, value)

            with self._lock:
                if not streams.guarded("stdout", write):
                    raise RunnerFileError(f"the log could not be written ({self.log_lost})")
            return
        text = "".join(
            prepare_key_value_message(name, self.redact(value)) + os.linesep
            for name, value in outputs.items()
        )
        append_to_runner_file("GITHUB_OUTPUT", path, text)

    def write_summary(self, markdown: str) -> None:
        """The job summary; RunnerFileError when GITHUB_STEP_SUMMARY cannot take it."""
        path = os.environ.get("GITHUB_STEP_SUMMARY")
        if not path:
            return  # run from a shell: the log says it all
        append_to_runner_file(
            "GITHUB_STEP_SUMMARY", path, self.redact(markdown).rstrip("\n") + "\n"
        )


def _cut(text: str) -> str:
    """A log line or annotation of bounded length, whatever the data it carries."""
    if len(text) <= MAX_LINE_CHARS:
        return text
    return f"{text[:MAX_LINE_CHARS]}{TRUNCATED} ({len(text) - MAX_LINE_CHARS} characters more)"


def append_to_runner_file(variable: str, path: str, text: str) -> None:
    """Append `text` to a file the runner reads, whole or not at all, within
    RUNNER_FILE_SECONDS; RunnerFileError says why not. The write runs in a thread
    of its own, so even a file system that hangs holds the run up no longer."""
    outcome: list[BaseException | None] = []

    def write() -> None:
        try:
            data = text.encode("utf-8", "backslashreplace")  # a lone surrogate stays data
            _append(path, data, time.monotonic() + RUNNER_FILE_SECONDS)
            outcome.append(None)
        except BaseException as error:  # handed to the waiting thread
            outcome.append(error)

    writer = threading.Thread(target=write, name=f"write {variable}", daemon=True)
    writer.start()
    writer.join(RUNNER_FILE_SECONDS + 0.25)
    where = f"{variable} ({one_line(path, 200)})"
    if not outcome:
        raise RunnerFileError(f"{where} could not be written within {RUNNER_FILE_SECONDS:g} s")
    error = outcome[0]
    if error is not None:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise RunnerFileError(f"{where} could not be written: {one_line(reason, 200)}")


def _append(path: str, data: bytes, until: float) -> None:
    # Non-blocking: a named pipe with no reader fails at once (ENXIO) instead of
    # waiting for one, and one whose reader stops reading cannot stall a write.
    flags = os.O_WRONLY | os.O_APPEND
    for name in ("O_NONBLOCK", "O_NOCTTY", "O_CLOEXEC"):
        flags |= getattr(os, name, 0)
    descriptor = os.open(path, flags)
    try:
        info = os.fstat(descriptor)
        start = info.st_size if stat.S_ISREG(info.st_mode) else None
        if start and not _ends_a_line(path, start):
            # Another step's last line has no line end: ours would join it, and the
            # runner would read neither.
            data = b"\n" + data
        try:
            _write_all(descriptor, data, until)
        except BaseException:
            if start is not None:  # half a file command would break the runner's parsing
                with contextlib.suppress(OSError):
                    os.ftruncate(descriptor, start)
            raise
    finally:
        os.close(descriptor)


def _ends_a_line(path: str, size: int) -> bool:
    """Whether the regular file's last byte ends a line (or cannot be read to tell)."""
    try:
        reader = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError:  # writable, not readable: nothing to tell
        return True
    try:
        return os.pread(reader, 1, size - 1) in (b"\n", b"")
    except OSError:
        return True
    finally:
        os.close(reader)


def _write_all(descriptor: int, data: bytes, until: float) -> None:
    view = memoryview(data)
    while view:
        try:
            written = os.write(descriptor, view)
        except BlockingIOError:
            left = until - time.monotonic()
            if left <= 0:
                raise TimeoutError("no one reads it") from None
            select.select([], [descriptor], [], min(left, 0.05))
            continue
        view = view[written:]
