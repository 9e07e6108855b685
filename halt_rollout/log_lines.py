"""What the log says about the results: a line per target, the error annotations, and a
cancelled run's error."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from .halt import Result, TargetResult
from .incident import (
    RERUN_IS_SAFE,
)

# GitHub shows at most 10 error annotations of a step; more would only flood the log.
MAX_ERROR_ANNOTATIONS = 10


def error_annotations(results: Sequence[TargetResult]) -> list[tuple[str, str]]:
    """One (title, message) error annotation per target that failed or ended unknown; past
    GitHub's ten, the last one counts the rest (the log and the summary list each)."""
    several = len(results) > 1
    failed = [r for r in results if r.failure]
    fits = len(failed) <= MAX_ERROR_ANNOTATIONS
    annotations = [  # built only for those shown: there may be 50,000
        (f"{r.target.label}: {r.failure.title}" if several else r.failure.title, r.failure.message)
        for r in (failed if fits else failed[: MAX_ERROR_ANNOTATIONS - 1])
        if r.failure
    ]
    if fits:
        return annotations
    rest = failed[MAX_ERROR_ANNOTATIONS - 1 :]
    names = ", ".join(r.target.label for r in rest[:20])
    more = f" and {len(rest) - 20} more" if len(rest) > 20 else ""
    return [
        *annotations,
        (
            f"{len(rest)} more targets failed",
            f"{len(rest)} more targets failed or were not confirmed: {names}{more}. The log's "
            "Results list and the job summary say what each came to and why.",
        ),
    ]


def result_lines(results: Sequence[TargetResult]) -> list[str]:
    """Each target's result in one line of the log, the record that never depends on
    the runner's files."""
    lines = []
    for result in results:
        line = f"{result.target.label}: {result.result}"
        if result.submission_id:
            line += f", submission {result.submission_id}"
        if result.rollout:
            line += f", {result.rollout.status} at {result.rollout.percentage:g}%"
        if result.failure:
            line += f" ({result.failure.title})"
        lines.append(line)
    return lines


def results_in_words(results: Sequence[TargetResult]) -> str:
    """`2 halted, 1 already-halted`: what the run came to, in a few words."""
    counts = Counter(str(r.result) for r in results)
    return ", ".join(f"{count} {result}" for result, count in counts.items()) or "no targets"


def cancelled_annotation(results: Sequence[TargetResult], why: str) -> tuple[str, str]:
    """The one error of a cancelled run: what each target came to, and what to do now."""
    came_to = results_in_words(results)
    unknown = [r.target.label for r in results if r.result is Result.UNKNOWN]
    message = f"The run was {why}; nothing more was sent after that. Results: {came_to}."
    if unknown:
        names = ", ".join(unknown[:5]) + (
            f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        )
        message += (
            f" A halt was sent but not confirmed for {names}: check the rollout in Partner Center."
        )
    if any(not r.ok for r in results):
        message += f" {RERUN_IS_SAFE}"
    return "Run cancelled", message
