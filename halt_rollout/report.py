"""What a run's results look like to people and to later steps.

Pure functions from results to the outputs, the job summary and the error
annotations; the edges (the runner, the command line) only write them out.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .halt import Result, TargetResult

OUTPUT_NAMES = (
    "result",
    "status",
    "fallback-submission-id",
    "rollout-percentage",
    "submission-id",
    "results",
)
_BADGES = {
    Result.HALTED: "🛑 halted",
    Result.ALREADY_HALTED: "⏹️ already halted",
    Result.DRY_RUN: "🔍 dry run: would halt",
    Result.FAILED: "❌ failed",
}


def overall_result(results: Sequence[TargetResult]) -> Result:
    """One word for the run: failed if any target failed, else the strongest outcome."""
    outcomes = {r.result for r in results}
    for result in (Result.FAILED, Result.HALTED, Result.DRY_RUN, Result.ALREADY_HALTED):
        if result in outcomes:
            return result
    return Result.FAILED  # no targets at all: nothing was halted


def result_record(result: TargetResult) -> dict[str, Any]:
    """The target's object in the `results` output."""
    rollout = result.rollout
    record: dict[str, Any] = {
        "name": result.target.label,
        "app-id": result.target.app_id,
        "flight-id": result.target.flight_id,
        "submission-id": result.submission_id,
        "result": str(result.result),
        "status": rollout.status if rollout else None,
        "fallback-submission-id": rollout.fallback_submission_id if rollout else None,
        "rollout-percentage": rollout.percentage if rollout else None,
    }
    if result.failure:
        record["error"] = f"{result.failure.title}: {result.failure.message}"
    return record


def outputs(results: Sequence[TargetResult]) -> dict[str, str]:
    """The step outputs. With several targets, a single-valued output is set only
    when every target has the same value; `results` always has each one."""
    records = [result_record(r) for r in results]

    def shared(key: str) -> str:
        values = {json.dumps(record[key]) for record in records}
        if len(values) != 1 or records[0][key] is None:
            return ""
        value = records[0][key]
        return value if isinstance(value, str) else json.dumps(value)

    return {
        "result": str(overall_result(results)),
        "status": shared("status"),
        "fallback-submission-id": shared("fallback-submission-id"),
        "rollout-percentage": shared("rollout-percentage"),
        "submission-id": shared("submission-id"),
        "results": json.dumps(records, separators=(",", ":"), ensure_ascii=False),
    }


def failed_outputs() -> dict[str, str]:
    """Outputs of a run that stopped before any target was known (bad inputs)."""
    return dict.fromkeys(OUTPUT_NAMES, "") | {"result": "failed", "results": "[]"}


def error_annotations(results: Sequence[TargetResult]) -> list[tuple[str, str]]:
    """One (title, message) error annotation per failed target."""
    several = len(results) > 1
    return [
        (f"{r.target.label}: {r.failure.title}" if several else r.failure.title, r.failure.message)
        for r in results
        if r.failure
    ]


def summary(results: Sequence[TargetResult], *, dry_run: bool) -> str:
    """The job summary: a headline, one row per target, then what failed and why."""
    failed = [r for r in results if r.failure]
    if failed:
        headline = f"❌ Rollout halt failed for {len(failed)} of {len(results)} target(s)"
    elif dry_run:
        headline = "🔍 Dry run: nothing was halted"
    elif all(r.result is Result.ALREADY_HALTED for r in results):
        headline = "⏹️ Already halted before this run: nothing sent"
    else:
        headline = "🛑 Rollout halted" if len(results) == 1 else "🛑 Rollouts halted"
    lines = [
        f"## {headline}",
        "",
        "| Target | App | Flight | Submission | Result | Rollout status | Rollout % "
        "| Fallback submission |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for result in results:
        record = result_record(result)
        cells = [
            _cell(record["name"]),
            _code(record["app-id"]),
            _code(record["flight-id"]),
            _code(record["submission-id"]),
            _BADGES[result.result],
            _cell(record["status"]),
            _cell(f"{record['rollout-percentage']:g}" if result.rollout else None),
            _code(record["fallback-submission-id"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if failed:
        lines += ["", "### What went wrong", ""]
        for result in failed:
            failure = result.failure
            if failure is not None:
                lines.append(
                    f"- **{_cell(result.target.label)}: {_cell(failure.title)}**: "
                    f"{_cell(failure.message)}"
                )
    if dry_run and not failed:
        lines += ["", "Run again with `dry-run: false` to halt the rollouts marked *would halt*."]
    return "\n".join(lines) + "\n"


def _cell(text: str | None) -> str:
    """Text safe inside a Markdown table cell (no pipes, no HTML, one line)."""
    if text is None:
        return "–"
    return (
        " ".join(str(text).split())
        .replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("|", "\\|")
    )


def _code(text: str | None) -> str:
    return f"`{text}`" if text else "–"
