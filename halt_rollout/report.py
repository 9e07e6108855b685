"""What a run's results look like to people and to later steps.

Pure functions from results to the outputs, the job summary and the error
annotations; the edges (the runner, the command line) only write them out.
In the summary, text that comes from data (target names, IDs, the Store's and
Entra's messages) is only ever shown as code: never a link, an image or HTML.
"""

from __future__ import annotations

import json
import re
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
# GitHub refuses a step summary over 1 MiB; the rest of the room is for the table.
MAX_SUMMARY_BYTES = 1024 * 1024
_DETAILS_BUDGET_BYTES = 768 * 1024
_BACKTICKS = re.compile(r"`+")
_BADGES = {
    Result.HALTED: "🛑 halted",
    Result.ALREADY_HALTED: "⏹️ already halted",
    Result.DRY_RUN: "🔍 dry run: would halt",
    Result.FAILED: "❌ failed",
    Result.NOTHING_TO_HALT: "➖ not rolling out: left alone",
}


def overall_result(results: Sequence[TargetResult]) -> Result:
    """One word for the run: failed if any target failed, else the strongest outcome.

    A rollout that all-flights left alone sent nothing and needs nothing: for the
    run as a whole it counts as already-halted (the contract's four words)."""
    outcomes = {r.result for r in results}
    for result in (Result.FAILED, Result.HALTED, Result.DRY_RUN, Result.ALREADY_HALTED):
        if result in outcomes:
            return result
    if Result.NOTHING_TO_HALT in outcomes:
        return Result.ALREADY_HALTED
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
        "versions": list(result.versions) if result.versions is not None else None,
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
    elif all(r.result is Result.NOTHING_TO_HALT for r in results):
        headline = "➖ No rollout in progress: nothing sent"
    elif all(r.result in (Result.ALREADY_HALTED, Result.NOTHING_TO_HALT) for r in results):
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
            _cell(record["app-id"]),
            _cell(record["flight-id"]),
            _cell(record["submission-id"]),
            _BADGES[result.result],
            _cell(record["status"]),
            _cell(f"{record['rollout-percentage']:g}" if result.rollout else None),
            _cell(record["fallback-submission-id"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if failed:
        lines += ["", "### What went wrong"]
        used = sum(len(line.encode()) + 1 for line in lines)
        for shown, result in enumerate(failed):
            failure = result.failure
            if failure is None:
                continue
            block = [
                "",
                f"**{_code(result.target.label)}: {_code(failure.title)}**",
                "",
                *_fenced(failure.message),
            ]
            size = sum(len(line.encode()) + 1 for line in block)
            if used + size > _DETAILS_BUDGET_BYTES:
                lines += [
                    "",
                    f"{len(failed) - shown} more failure(s) left out to keep this summary under "
                    "GitHub's 1 MiB limit: see the log and the `results` output.",
                ]
                break
            lines += block
            used += size
    if dry_run and not failed:
        lines += ["", "Run again with `dry-run: false` to halt the rollouts marked *would halt*."]
    return "\n".join(lines) + "\n"


def _cell(text: str | None) -> str:
    """Data in a table cell: one line, as code, with its pipes escaped for the table."""
    if text is None:
        return "–"
    return _code(text).replace("|", "\\|")


# What a Markdown renderer could make live, were data ever read outside code: links,
# images, HTML and GFM's autolinks. A zero-width space inside each keeps the text as it
# reads and breaks the trigger; inside code (where data always is) nothing is live anyway.
_TRIGGERS = (("](", "]\u200b("), ("![", "!\u200b["), ("<", "<\u200b"), ("://", ":\u200b//"))
_WWW = re.compile(r"(?i)\b(www)\.")


def defused(text: str) -> str:
    for trigger, broken in _TRIGGERS:
        text = text.replace(trigger, broken)
    return _WWW.sub("\\1\u200b.", text)


def _code(text: str) -> str:
    """Data as an inline code span: nothing in it is live Markdown or HTML."""
    flat = defused(" ".join(str(text).split()))
    if not flat:
        return "–"
    longest = max((len(run) for run in _BACKTICKS.findall(flat)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""
    return f"{fence}{pad}{flat}{pad}{fence}"


def _fenced(text: str) -> list[str]:
    """Data as a fenced code block, its fence longer than any run of backticks in it."""
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    fence = "`" * max(3, longest + 1)
    lines = (defused(line) for line in text.splitlines() if line.strip())
    return [f"{fence}text", *lines, fence]
