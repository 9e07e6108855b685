"""The action's edge: runner environment in, outputs, summary and annotations out."""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Sequence

from . import __version__, job_summary, log_lines, step_outputs, streams
from .cancel import CANCELLATION, Cancellation
from .deadline import Deadline
from .errors import InputError
from .github_oidc import oidc_available
from .halt import TargetResult
from .incident import Incident, incident_from
from .inputs import INPUT_NAMES, read_reason, read_settings, secrets_in
from .run import run
from .runner import ActionsRunner, RunnerFileError


def main(*, started: float | None = None) -> int:
    """Run the action; the exit code is 0 when every target ended well.

    `started` is when the run began (entrypoint.py: when the package began to load),
    by default now. With arguments (`docker run IMAGE --app-id …`) the image acts as
    the command line instead: the runner never passes any to this action.
    """
    started = time.monotonic() if started is None else started
    # Text a stream cannot encode is shown escaped; a stream that breaks is let go of:
    # never an error in the middle of an emergency stop.
    streams.prepare()
    cancellation = CANCELLATION
    cancellation.install()  # already, from entrypoint.py; again for other callers
    if len(sys.argv) > 1:
        from . import cli  # noqa: PLC0415 (only the command line needs argparse)

        return cli.main(sys.argv[1:], started=started, cancellation=cancellation)
    runner = ActionsRunner()
    raw = runner.read_inputs(INPUT_NAMES)
    # Masks go out before anything else is printed.
    for secret in secrets_in(raw):
        runner.protect(secret)
    runner.protect_runner_secrets()
    # Why, who and which run come first in the log: the run is the incident's record.
    incident = incident_from(os.environ, read_reason(raw.get("reason", ""), []))
    for line in incident.log_lines():
        runner.log(line)
    try:
        return _run(runner, raw, started, cancellation, incident)
    except Exception as error:  # a defect, not an expected failure: say so, keep outputs
        title = "halt-rollout crashed"
        message = (
            f"Unexpected {type(error).__name__}: {error}. This is a bug in halt-rollout "
            "(please report it with this log). Check the rollout in Partner Center."
        )
        runner.error(title, message)
        runner.group("Traceback", traceback.format_exc().splitlines())
        _write_runner_files(
            runner,
            step_outputs.failed_outputs(),
            job_summary.problem_summary(title, message, redact=runner.redact, incident=incident),
            results=(),
        )
        return 1


def _run(
    runner: ActionsRunner,
    raw: dict[str, str],
    started: float,
    cancellation: Cancellation,
    incident: Incident,
) -> int:
    runner.log(f"halt-rollout {__version__}")
    try:
        settings = read_settings(raw, workspace=runner.workspace, oidc_available=oidc_available())
    except InputError as error:
        runner.error(error.title, error.message)
        _write_runner_files(
            runner,
            step_outputs.failed_outputs(),
            job_summary.problem_summary(
                error.title, error.message, redact=runner.redact, incident=incident
            ),
            results=(),
        )
        return 1
    deadline = Deadline(settings.timeout_seconds, started=started)
    cancellation.watch(deadline)
    results = run(
        settings,
        log=runner.log,
        protect=runner.protect,
        hide=runner.redact.add,
        deadline=deadline,
    )
    runner.log_lines(["Results:", *(f"  {line}" for line in log_lines.result_lines(results))])
    cancelled = cancellation.why
    if cancelled:
        runner.error(*log_lines.cancelled_annotation(results, cancelled))
    else:
        for title, message in log_lines.error_annotations(results):
            runner.error(title, message)
    if left_out := step_outputs.results_left_out(results, runner.redact):
        runner.warning("Results output shortened", left_out)
    written = _write_runner_files(
        runner,
        step_outputs.outputs(results, runner.redact),
        job_summary.summary(
            results,
            dry_run=settings.dry_run,
            redact=runner.redact,
            cancelled=cancelled,
            incident=incident,
        ),
        results=results,
    )
    if cancellation.why and not cancelled:
        # Cancelled after every result was known, while the files were being written: the
        # exit code says cancelled, and so does one error.
        runner.error(*log_lines.cancelled_annotation(results, cancellation.why))
    ended_well = all(result.ok for result in results) and not cancellation.cancelled
    return 0 if ended_well and written else 1


def _write_runner_files(
    runner: ActionsRunner,
    outputs: dict[str, str],
    summary: str,
    *,
    results: Sequence[TargetResult],
) -> bool:
    """Outputs, then the summary; False when the outputs could not be written.

    Neither changes a result: the log has already stated each one. Outputs that
    cannot be written fail the step (later steps would read nothing); a summary
    that cannot be written is only a warning."""
    written = True
    try:
        runner.set_outputs(outputs)
    except RunnerFileError as error:
        written = False
        stand = (
            f" The halts themselves stand: {log_lines.results_in_words(results)}."
            if results
            else ""
        )
        runner.error(
            "Outputs not written",
            f"{error}.{stand} Later steps that read this step's outputs will not find "
            "them; the log and the job summary have every result.",
        )
    if runner.log_lost:
        summary += (
            f"\n> [!WARNING]\n> The log could not be written from some point on "
            f"({runner.log_lost}): this summary, the outputs and the exit code hold every "
            "result.\n"
        )
    try:
        runner.write_summary(summary)
    except RunnerFileError as error:
        runner.warning("Job summary not written", f"{error}. The log has every result.")
    return written
