"""How run_action starts entrypoint.py: subprocess.Popen, or a faster launcher a test suite
installs (tests/zygote.py forks runs from a pre-imported server; the demo, the benchmarks
and the container test never install one, so their runs are real process starts)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Sequence
from typing import Any

Launcher = Callable[..., "subprocess.Popen[str]"]

_launcher: list[Launcher] = [subprocess.Popen]


def use(launcher: Launcher) -> None:
    """Start every later run with `launcher`, called as subprocess.Popen is."""
    _launcher[0] = launcher


def popen(args: Sequence[str], **options: Any) -> subprocess.Popen[str]:
    """subprocess.Popen(args, **options) through the installed launcher."""
    return _launcher[0](list(args), **options)


def created_at(process: subprocess.Popen[str], asked: float) -> float:
    """When `process` was created, on time.monotonic(): what its launcher noted (a fork
    server's moment of forking, tests/zygote.py), else `asked`, when it was asked for.
    Never after the run's own start: a busy machine may return from Popen later than that,
    and a run timed from there would look shorter than it was."""
    return float(getattr(process, "created_at", asked))


def run(args: Sequence[str], *, timeout: float, **options: Any) -> subprocess.CompletedProcess[str]:
    """subprocess.run(args, capture_output=True, text=True, check=False, timeout=timeout)
    through the installed launcher; on a timeout the process is killed, as run kills it."""
    return run_timed(args, timeout=timeout, **options)[0]


def run_timed(
    args: Sequence[str], *, timeout: float, **options: Any
) -> tuple[subprocess.CompletedProcess[str], float]:
    """run(), and the seconds from when the process was created to its end: the launcher's
    own time to get ready (a fork server starting up on a busy machine) is not the run's."""
    asked = time.monotonic()
    with popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **options
    ) as process:
        started = created_at(process, asked)
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
        seconds = time.monotonic() - started
    completed = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    return completed, seconds
