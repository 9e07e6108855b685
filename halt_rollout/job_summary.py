"""The job summary, the incident's record, fitted into GitHub's 1 MiB.

A headline; why, who and which run; one row per target; what failed and why; then what to
do now (what_next). GitHub keeps at most 1 MiB of a step's summary: it is fitted by leaving
out whole rows, least urgent first, with a line that says how many."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from .evidence_summary import evidence_section, quiet_guard_headline
from .guard_inputs import BLIND_TITLE
from .halt import Result, TargetResult
from .incident import (
    Incident,
)
from .markdown_safety import as_cell, as_code, as_fenced, as_plain
from .step_outputs import Redact, count_by_result, result_record, rows_within, unchanged
from .version_guard import matches
from .what_next import what_next

# GitHub keeps at most 1 MiB of a step's summary; what runs of its own (headings,
# lines that say what was left out) fits in the margin.
MAX_SUMMARY_BYTES = 1024 * 1024


_SUMMARY_BUDGET_BYTES = MAX_SUMMARY_BYTES - 32 * 1024


# A table longer than this is read by no one (the log lists every target), and
# building it must stay quick for a cancel's two seconds, however many targets.
MAX_SUMMARY_ROWS = 1000
MAX_FAILURE_DETAILS = 200
# With failures to explain, the table may take this share of the room; their details
# the rest.
_TABLE_SHARE_WITH_FAILURES = 0.6


_BADGES = {
    Result.HALTED: "🛑 halted",
    Result.ALREADY_HALTED: "⏹️ already halted",
    Result.DRY_RUN: "🔍 dry run: would halt",
    Result.UNKNOWN: "❓ unknown: sent, not confirmed",
    Result.FAILED: "❌ failed",
    Result.NOTHING_TO_HALT: "➖ not rolling out: left alone",
    Result.HEALTHY: "✅ healthy: left rolling out",
    Result.INCONCLUSIVE: "⏳ inconclusive: left rolling out",
}


def summary(
    results: Sequence[TargetResult],
    *,
    dry_run: bool,
    redact: Redact = unchanged,
    cancelled: str | None = None,
    incident: Incident | None = None,
) -> str:
    """The job summary, the incident's record: a headline; why, who and which run; one
    row per target; what failed and why; then what to do now and what a halt means.

    `cancelled` says how the run was cut short ("cancelled by SIGINT"), when it was."""
    problems = [r for r in results if r.failure]
    if cancelled:
        headline = f"⚠️ Run cancelled: {len(problems)} of {len(results)} target(s) not confirmed"
    elif problems:
        failed = [r for r in problems if r.result is Result.FAILED]
        blind = [r for r in failed if r.failure and r.failure.title == BLIND_TITLE]
        headline = (
            f"❌ Guard blind for {len(failed)} of {len(results)} target(s): the failure data "
            "could not be read; nothing was halted"
            if failed and len(blind) == len(failed)
            else f"❌ Rollout halt failed for {len(failed)} of {len(results)} target(s)"
            if failed
            else f"❓ Halt not confirmed for {len(problems)} of {len(results)} target(s)"
        )
    elif dry_run:
        headline = "🔍 Dry run: nothing was halted"
    elif guard_headline := quiet_guard_headline(results):
        headline = guard_headline
    elif all(r.result is Result.NOTHING_TO_HALT for r in results):
        headline = "➖ No rollout in progress: nothing sent"
    elif all(r.result in (Result.ALREADY_HALTED, Result.NOTHING_TO_HALT) for r in results):
        headline = "⏹️ Already halted before this run: nothing sent"
    else:
        headline = "🛑 Rollout halted" if len(results) == 1 else "🛑 Rollouts halted"
    lines = [f"## {headline}", "", *incident_head(incident, redact)]
    if cancelled:
        lines += [
            f"The run was {as_plain(cancelled)}: nothing more was sent after that. "
            "A halt that was sent but not confirmed is marked *unknown*: check it in Partner "
            "Center. Running it again is safe.",
            "",
        ]
    lines += [
        "| Target | App | Flight | Submission | Result | Rollout status | Rollout % "
        "| Fallback submission |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    rows: dict[int, str] = {}

    def size_of(index: int) -> int:
        rows[index] = _row(results[index], redact)
        return _size([rows[index]])

    tail = what_next(results, dry_run=dry_run, redact=redact)
    budget = _SUMMARY_BUDGET_BYTES - _size(tail)
    available = budget - _size(lines)
    table_budget = int(available * _TABLE_SHARE_WITH_FAILURES) if problems else available
    keep = rows_within(results, size_of, table_budget, MAX_SUMMARY_ROWS)
    lines += [rows[index] for index, kept in enumerate(keep) if kept]
    left_out = Counter(r.result for r, kept in zip(results, keep, strict=True) if not kept)
    if left_out:
        lines += [
            "",
            f"{count_by_result(left_out)} more row(s) left out to keep this summary under "
            f"GitHub's 1 MiB limit and {MAX_SUMMARY_ROWS} rows: the log lists every target.",
        ]
    lines += evidence_section(results, redact, budget - _size(lines))
    if problems:
        lines += ["", "### What went wrong"]
        used = _size(lines)
        for shown, result in enumerate(problems):
            failure = result.failure
            if failure is None:
                continue
            if shown >= MAX_FAILURE_DETAILS:
                lines += [
                    "",
                    f"{len(problems) - shown} more failure(s) left out: the first "
                    f"{MAX_FAILURE_DETAILS} say what went wrong; the log lists every target, "
                    "and the `results` output carries each error that fits.",
                ]
                break
            block = [
                "",
                f"**{as_code(redact(result.target.label))}: {as_code(redact(failure.title))}**",
                "",
                *as_fenced(redact(failure.message)),
            ]
            if used + _size(block) > budget:
                lines += [
                    "",
                    f"{len(problems) - shown} more failure(s) left out to keep this summary "
                    "under GitHub's 1 MiB limit: see the log and the `results` output.",
                ]
                break
            lines += block
            used += _size(block)
    return "\n".join([*lines, *tail]) + "\n"


def problem_summary(
    title: str, message: str, *, redact: Redact = unchanged, incident: Incident | None = None
) -> str:
    """The summary of a run that ended before any target was worked on (a refused input,
    a defect): the title, why and who, and the message as data."""
    lines = [
        f"## ❌ {as_plain(title)}",
        "",
        *incident_head(incident, redact),
        *as_fenced(redact(message)),
    ]
    return "\n".join(lines) + "\n"


def incident_head(incident: Incident | None, redact: Redact = unchanged) -> list[str]:
    """Why the stop was pressed, who pressed it, and the run: the record's first lines."""
    if incident is None:
        return []
    why = as_code(redact(incident.reason)) if incident.reason else "*no reason given*"
    who = as_code(redact(incident.actor)) if incident.actor else "*unknown*"
    if incident.triggering_actor:
        who += f" (this attempt started by {as_code(redact(incident.triggering_actor))})"
    lines = [f"- **Why:** {why}", f"- **Who:** {who}"]
    if incident.run_url:  # built from checked parts (incident.py): a link of ours
        lines.append(f"- **Run:** [{incident.run_url}]({incident.run_url})")
    return [*lines, ""]


def _row(result: TargetResult, redact: Redact) -> str:
    record = result_record(result, redact)
    cells = [
        as_cell(record["name"]),
        as_cell(record["app-id"]),
        as_cell(record["flight-id"]),
        as_cell(record["submission-id"]),
        _badge(result),
        as_cell(record["status"]),
        as_cell(f"{record['rollout-percentage']:g}" if result.rollout else None),
        as_cell(record["fallback-submission-id"]),
    ]
    return "| " + " | ".join(cells) + " |"


def _badge(result: TargetResult) -> str:
    """The result's badge; under all-flights, a rollout of another version says so."""
    expected, versions = result.target.expected_version, result.versions
    other_version = expected and versions is not None and not matches(versions, expected)
    if result.result is Result.NOTHING_TO_HALT and other_version:
        return f"➖ not version {expected}: left alone"
    return _BADGES[result.result]


def _size(lines: Sequence[str]) -> int:
    return sum(len(line.encode()) + 1 for line in lines)
