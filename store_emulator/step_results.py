"""What the runner takes from a step once it ended: the exit code, the log, GITHUB_OUTPUT
read as EnvFileKeyValuePairs reads it, and the job summary (refused over 1 MiB)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .runner_layout import Step

SUMMARY_LIMIT = 1024 * 1024  # CreateStepSummaryCommand.AttachmentSizeLimit


class FileCommandError(ValueError):
    """A file command the runner could not process: it fails the step with this message."""


@dataclass(frozen=True)
class Cancelled:
    """The cancelling as it happened: which process got the signal, and how soon it all ended."""

    signal: str
    pid: int  # on this machine
    pid_in_container: int  # in the innermost PID namespace it belongs to (NSpid)
    own_pid_namespace: bool  # a PID namespace other than this machine's
    parent: str  # the parent's argv[0]: the container runtime, when nothing is between
    signal_after_seconds: float  # from the start of the run
    process_ended_seconds: float  # from the signal to the action's process ending
    run_ended_seconds: float  # from the signal to `buildah run` returning


@dataclass(frozen=True)
class ActionRun:
    exit_code: int
    stdout: str
    stderr: str
    outputs: dict[str, str]
    summary: str
    seconds: float
    # What the runner would report after the step, e.g. an unreadable GITHUB_OUTPUT.
    file_command_errors: tuple[str, ...] = ()
    cancelled: Cancelled | None = None  # the signal a `Cancel` sent, and what followed

    @property
    def errors(self) -> list[str]:
        """The `::error …::` lines of the log."""
        return [line for line in self.stdout.splitlines() if line.startswith("::error")]


def file_command_pairs(text: str) -> Iterator[tuple[str, str]]:
    """EnvFileKeyValuePairs on Linux: `NAME=VALUE` lines and `NAME<<DELIMITER` blocks.

    Lines end at "\\n" only (a "\\r" is part of a value). Raises FileCommandError with the
    runner's message where it would stop; the pairs before that have been yielded.
    """
    index = 0

    def read_line() -> tuple[str | None, bool]:
        nonlocal index
        if index >= len(text):
            return None, False
        end = text.find("\n", index)
        if end < 0:
            line, index = text[index:], len(text)
            return line, False
        line, index = text[index:end], end + 1
        return line, True

    line, _ = read_line()
    while line is not None:
        if line:
            equals, heredoc = line.find("="), line.find("<<")
            if equals >= 0 and (heredoc < 0 or equals < heredoc):
                key, value = line.split("=", 1)
            elif heredoc >= 0 and (equals < 0 or heredoc < equals):
                key, delimiter = line.split("<<", 1)
                if not key or not delimiter:
                    raise FileCommandError(
                        f"Invalid format '{line}'. Name must not be empty and delimiter must "
                        "not be empty"
                    )
                start = end = index
                value_line, newline = read_line()
                while value_line != delimiter:
                    if value_line is None:
                        raise FileCommandError(
                            f"Invalid value. Matching delimiter not found '{delimiter}'"
                        )
                    if not newline:
                        raise FileCommandError("Invalid value. EOF marker missing new line.")
                    end = index - 1
                    value_line, newline = read_line()
                value = text[start:end] if end > start else ""
            else:
                raise FileCommandError(f"Invalid format '{line}'")
            yield key, value
        line, _ = read_line()


def parse_file_command(text: str) -> dict[str, str]:
    """GITHUB_OUTPUT as the runner reads it; a later value for a name replaces an earlier one."""
    return dict(file_command_pairs(text))


def collect(
    step: Step,
    completed: subprocess.CompletedProcess[str],
    seconds: float,
    cancelled: Cancelled | None = None,
) -> ActionRun:
    """What the runner takes from the step once it ended: exit code, log, outputs, summary."""
    errors: list[str] = []
    outputs: dict[str, str] = {}
    try:
        for key, value in file_command_pairs(_read_exactly(step.path("output"))):
            outputs[key] = value
    except FileCommandError as error:
        errors.append(f"Unable to process file command 'output' successfully. {error}")
    summary_path = step.path("step_summary")
    if summary_path.stat().st_size > SUMMARY_LIMIT:
        errors.append(
            f"$GITHUB_STEP_SUMMARY upload aborted, supports content up to a size of "
            f"{SUMMARY_LIMIT // 1024}k, got {summary_path.stat().st_size // 1024}k."
        )
    return ActionRun(
        exit_code=completed.returncode,
        stdout=completed.stdout,
        stderr=completed.stderr,
        outputs=outputs,
        summary=_read_exactly(summary_path),
        seconds=seconds,
        file_command_errors=tuple(errors),
        cancelled=cancelled,
    )


def _read_exactly(path: Path) -> str:
    """The file's text with its line ends as written (no universal-newline translation)."""
    with path.open(encoding="utf-8", newline="") as stream:
        return stream.read()
