"""The action's edge: runner environment in, outputs, summary and annotations out."""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import time
import traceback
from typing import NoReturn

from . import __version__, report
from .errors import InputError
from .github_oidc import oidc_available
from .inputs import INPUT_NAMES, read_settings, secrets_in
from .run import run
from .runner import ActionsRunner


def main(*, started: float | None = None) -> int:
    """Run the action; the exit code is 0 when every target ended well.

    `started` is when the run began (entrypoint.py: when the package began to load),
    by default now. With arguments (`docker run IMAGE --app-id …`) the image acts as
    the command line instead: the runner never passes any to this action.
    """
    started = time.monotonic() if started is None else started
    if len(sys.argv) > 1:
        from . import cli  # noqa: PLC0415 (only the command line needs argparse)

        return cli.main(sys.argv[1:], started=started)
    runner = ActionsRunner()
    raw = runner.read_inputs(INPUT_NAMES)
    # Masks go out before anything else is printed.
    for secret in secrets_in(raw):
        runner.protect(secret)
    runner.protect_runner_secrets()
    try:
        return _run(runner, raw, started)
    except Exception as error:  # a defect, not an expected failure: say so, keep outputs
        runner.error(
            "halt-rollout crashed",
            f"Unexpected {type(error).__name__}: {error}. This is a bug in halt-rollout "
            "(please report it with this log). Check the rollout in Partner Center.",
        )
        runner.group("Traceback", traceback.format_exc().splitlines())
        runner.set_outputs(report.failed_outputs())
        return 1


def _run(runner: ActionsRunner, raw: dict[str, str], started: float) -> int:
    runner.log(f"halt-rollout {__version__}")
    try:
        settings = read_settings(raw, workspace=runner.workspace, oidc_available=oidc_available())
    except InputError as error:
        runner.error(error.title, error.message)
        runner.set_outputs(report.failed_outputs())
        runner.write_summary(f"## ❌ Invalid input\n\n{error.message}\n")
        return 1
    results = run(settings, log=runner.log, protect=runner.protect, started=started)
    for title, message in report.error_annotations(results):
        runner.error(title, message)
    runner.set_outputs(report.outputs(results))
    runner.write_summary(report.summary(results, dry_run=settings.dry_run))
    return 0 if all(result.ok for result in results) else 1


def exit_now(code: int) -> NoReturn:
    """End the process with `code` without Python's teardown of every loaded module.

    With azure-identity's 500 modules that teardown takes longer than the whole halt's
    HTTP (about 60 ms here). Nothing is lost by skipping it: every file this action
    writes is closed when written, the standard streams are flushed here, and what was
    registered for exit (atexit, logging's flush) still runs.
    """
    for stream in (sys.stdout, sys.stderr):
        # A closed or broken pipe: nothing left to save.
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    atexit._run_exitfuncs()
    os._exit(code)
