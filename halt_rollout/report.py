"""What a run's results look like to people and to later steps.

Pure functions from results to the outputs, the job summary and the error
annotations; the edges (the runner, the command line) only write them out.
In the summary, text that comes from data (target names, IDs, the Store's and
Entra's messages) is only ever shown as code: never a link, an image or HTML.
Every piece of data is redacted first (`redact`, the run's secrets), then its
invisible characters are made visible, and only then quoted or defused, so that
nothing inserted can split a secret past the redaction.

GitHub keeps at most 1 MiB of a step's summary and 1 MB of a job's outputs:
both are fitted by leaving out whole rows, least urgent first (a rollout left
alone goes before a halted one, a halted one before a failure), with a line that
says how many.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from .errors import TRUNCATED
from .halt import Result, TargetResult, carries
from .incident import (
    RERUN_IS_SAFE,
    WHAT_A_FLIGHT_HALT_MEANS,
    WHAT_A_HALT_MEANS,
    Incident,
    partner_center_url,
)
from .redact import json_visible, visible

Redact = Callable[[str], str]

OUTPUT_NAMES = (
    "result",
    "status",
    "fallback-submission-id",
    "rollout-percentage",
    "submission-id",
    "results",
)
# GitHub keeps at most 1 MiB of a step's summary; what runs of its own (headings,
# lines that say what was left out) fits in the margin.
MAX_SUMMARY_BYTES = 1024 * 1024
_SUMMARY_BUDGET_BYTES = MAX_SUMMARY_BYTES - 32 * 1024
# A table longer than this is read by no one: the log lists every target.
MAX_SUMMARY_ROWS = 1000
MAX_FAILURE_DETAILS = 200
# With failures to explain, the table may take this share of the room; their details
# the rest.
_TABLE_SHARE_WITH_FAILURES = 0.6
# GitHub keeps at most 1 MB of a job's outputs, counted in UTF-16.
MAX_OUTPUTS_UTF16_BYTES = 1_000_000
# Later steps take `results` through an environment variable (never `${{ }}` in a script),
# and Linux refuses one longer than 128 KiB (MAX_ARG_STRLEN): `results` stays under it.
MAX_RESULTS_BYTES = 120_000
# One record stays small whatever a submission carries (20,000 packages, a huge error):
# a target's row is shortened, with a note, before it could be left out whole.
MAX_VERSIONS_IN_RECORD = 50
MAX_ERROR_IN_RECORD = 2000
_BACKTICKS = re.compile(r"`+")
_BADGES = {
    Result.HALTED: "🛑 halted",
    Result.ALREADY_HALTED: "⏹️ already halted",
    Result.DRY_RUN: "🔍 dry run: would halt",
    Result.UNKNOWN: "❓ unknown: sent, not confirmed",
    Result.FAILED: "❌ failed",
    Result.NOTHING_TO_HALT: "➖ not rolling out: left alone",
}
# At most this many targets get their own Partner Center link under "what next"; the
# table names the rest.
_MAX_LINKS = 10
# Which rows are left out first when a summary or `results` would be too large.
_LEAVE_OUT_FIRST = (
    Result.NOTHING_TO_HALT,
    Result.ALREADY_HALTED,
    Result.DRY_RUN,
    Result.HALTED,
    Result.UNKNOWN,
    Result.FAILED,
)


def _same(text: str) -> str:
    return text


def overall_result(results: Sequence[TargetResult]) -> Result:
    """One word for the run: the worst outcome (failed, then unknown), else the strongest.

    A rollout that all-flights left alone sent nothing and needs nothing: for the
    run as a whole it counts as already-halted."""
    outcomes = {r.result for r in results}
    order = (Result.FAILED, Result.UNKNOWN, Result.HALTED, Result.DRY_RUN, Result.ALREADY_HALTED)
    for result in order:
        if result in outcomes:
            return result
    if Result.NOTHING_TO_HALT in outcomes:
        return Result.ALREADY_HALTED
    return Result.FAILED  # no targets at all: nothing was halted


def result_record(result: TargetResult, redact: Redact = _same) -> dict[str, Any]:
    """The target's object in the `results` output, its data redacted."""
    rollout = result.rollout

    def data(text: str | None) -> str | None:
        return None if text is None else redact(text)

    record: dict[str, Any] = {
        "name": data(result.target.label),
        "app-id": result.target.app_id,
        "flight-id": result.target.flight_id,
        "submission-id": result.submission_id,
        "result": str(result.result),
        "status": data(rollout.status) if rollout else None,
        "fallback-submission-id": rollout.fallback_submission_id if rollout else None,
        "rollout-percentage": rollout.percentage if rollout else None,
        "versions": None,
    }
    if result.versions is not None:
        record["versions"] = list(result.versions[:MAX_VERSIONS_IN_RECORD])
        if len(result.versions) > MAX_VERSIONS_IN_RECORD:
            record["versions-left-out"] = len(result.versions) - MAX_VERSIONS_IN_RECORD
    if result.failure:
        # Redacted before it is cut: a cut cannot split a secret past the redaction.
        error = redact(f"{result.failure.title}: {result.failure.message}")
        if len(error) > MAX_ERROR_IN_RECORD:
            error = error[: MAX_ERROR_IN_RECORD - 1] + TRUNCATED
        record["error"] = error
    return record


def outputs(results: Sequence[TargetResult], redact: Redact = _same) -> dict[str, str]:
    """The step outputs. With several targets, a single-valued output is set only
    when every target has the same value; `results` has each one that fits GitHub's
    limit (`results_left_out` says how many did not)."""
    first = result_record(results[0], redact) if results else {}

    def shared(key: str) -> str:
        value = first.get(key)
        if value is None:
            return ""
        # Compared on the results themselves: 50,000 records are not built to find out.
        mine = _shared_value(results[0], key)
        if any(_shared_value(result, key) != mine for result in results):
            return ""
        return value if isinstance(value, str) else json.dumps(value)

    kept, _ = _fit_records(results, redact)
    return {
        "result": str(overall_result(results)),
        "status": shared("status"),
        "fallback-submission-id": shared("fallback-submission-id"),
        "rollout-percentage": shared("rollout-percentage"),
        "submission-id": shared("submission-id"),
        "results": "[" + ",".join(kept) + "]",
    }


def _shared_value(result: TargetResult, key: str) -> object:
    rollout = result.rollout
    if key == "submission-id":
        return result.submission_id
    if rollout is None:
        return None
    if key == "status":
        return rollout.status
    if key == "fallback-submission-id":
        return rollout.fallback_submission_id
    return rollout.percentage


def results_left_out(results: Sequence[TargetResult], redact: Redact = _same) -> str | None:
    """What the `results` output left out to fit GitHub's limit, said for the log."""
    _, left_out = _fit_records(results, redact)
    shortened = sum(
        result.versions is not None and len(result.versions) > MAX_VERSIONS_IN_RECORD
        for result in results
    )
    notes = []
    if shortened:
        notes.append(
            f"{shortened} record(s) list only the first {MAX_VERSIONS_IN_RECORD} package "
            "versions (`versions-left-out` counts the rest)"
        )
    if left_out:
        notes.append(
            f"the results output leaves out {_count_by_result(left_out)} of {len(results)} "
            f"records to stay under {MAX_RESULTS_BYTES // 1000} kB, so that a later step can "
            "take it through an environment variable (GitHub's limit for a job's outputs is "
            "1 MB); this log and the job summary list every target"
        )
    return "; ".join(notes) if notes else None


def _fit_records(
    results: Sequence[TargetResult], redact: Redact
) -> tuple[list[str], Counter[Result]]:
    """Each record as JSON, in order, less whole records (least urgent first) as needed.
    Only the records that fit are written: the work is bounded by the budget, not by the
    number of results."""
    texts: dict[int, str] = {}

    def size_of(index: int) -> int:
        record = result_record(results[index], redact)
        texts[index] = json_visible(json.dumps(record, separators=(",", ":"), ensure_ascii=False))
        # UTF-16 never takes more than twice UTF-8's bytes: under MAX_RESULTS_BYTES in
        # UTF-8, `results` is well under GitHub's 1 MB in UTF-16 too.
        return len(texts[index].encode()) + 1  # and its comma

    keep = _rows_within(results, size_of, MAX_RESULTS_BYTES)
    left_out = Counter(r.result for r, kept in zip(results, keep, strict=True) if not kept)
    return [texts[index] for index, kept in enumerate(keep) if kept], left_out


def _rows_within(
    results: Sequence[TargetResult],
    size_of: Callable[[int], int],
    budget: int,
    max_rows: int | None = None,
) -> list[bool]:
    """Which rows to keep so their sizes add up to at most `budget` (and at most
    `max_rows` of them): rows are left out whole, the least urgent results first and,
    among equals, the last first. Rows are measured most urgent first, and only until
    the budget is full: what is left out is never built."""
    urgency = {outcome: rank for rank, outcome in enumerate(reversed(_LEAVE_OUT_FIRST))}
    order = sorted(range(len(results)), key=lambda index: urgency.get(results[index].result, -1))
    keep = [False] * len(results)
    total = 0
    for kept, index in enumerate(order):
        if max_rows is not None and kept >= max_rows:
            break
        size = size_of(index)
        if total + size > budget:
            break
        keep[index] = True
        total += size
    return keep


def _count_by_result(left_out: Counter[Result]) -> str:
    total = sum(left_out.values())
    parts = ", ".join(
        f"{left_out[result]} {result}" for result in _LEAVE_OUT_FIRST if left_out[result]
    )
    return f"{total} ({parts})"


def failed_outputs() -> dict[str, str]:
    """Outputs of a run that stopped before any target was known (bad inputs)."""
    return dict.fromkeys(OUTPUT_NAMES, "") | {"result": "failed", "results": "[]"}


# GitHub shows at most 10 error annotations of a step; more would only flood the log.
MAX_ERROR_ANNOTATIONS = 10


def error_annotations(results: Sequence[TargetResult]) -> list[tuple[str, str]]:
    """One (title, message) error annotation per target that failed or ended unknown; past
    GitHub's ten, the last one counts the rest (the log and the summary list each)."""
    several = len(results) > 1
    failed = [r for r in results if r.failure]
    fits = len(failed) <= MAX_ERROR_ANNOTATIONS
    annotations = [
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


def summary(
    results: Sequence[TargetResult],
    *,
    dry_run: bool,
    redact: Redact = _same,
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
        headline = (
            f"❌ Rollout halt failed for {len(failed)} of {len(results)} target(s)"
            if failed
            else f"❓ Halt not confirmed for {len(problems)} of {len(results)} target(s)"
        )
    elif dry_run:
        headline = "🔍 Dry run: nothing was halted"
    elif all(r.result is Result.NOTHING_TO_HALT for r in results):
        headline = "➖ No rollout in progress: nothing sent"
    elif all(r.result in (Result.ALREADY_HALTED, Result.NOTHING_TO_HALT) for r in results):
        headline = "⏹️ Already halted before this run: nothing sent"
    else:
        headline = "🛑 Rollout halted" if len(results) == 1 else "🛑 Rollouts halted"
    lines = [f"## {headline}", "", *incident_head(incident, redact)]
    if cancelled:
        lines += [
            f"The run was {_plain(cancelled)}: nothing more was sent after that. "
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
    keep = _rows_within(results, size_of, table_budget, MAX_SUMMARY_ROWS)
    lines += [rows[index] for index, kept in enumerate(keep) if kept]
    left_out = Counter(r.result for r, kept in zip(results, keep, strict=True) if not kept)
    if left_out:
        lines += [
            "",
            f"{_count_by_result(left_out)} more row(s) left out to keep this summary under "
            f"GitHub's 1 MiB limit and {MAX_SUMMARY_ROWS} rows: the log lists every target.",
        ]
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
                f"**{_code(redact(result.target.label))}: {_code(redact(failure.title))}**",
                "",
                *_fenced(redact(failure.message)),
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
    title: str, message: str, *, redact: Redact = _same, incident: Incident | None = None
) -> str:
    """The summary of a run that ended before any target was worked on (a refused input,
    a defect): the title, why and who, and the message as data."""
    lines = [
        f"## ❌ {_plain(title)}",
        "",
        *incident_head(incident, redact),
        *_fenced(redact(message)),
    ]
    return "\n".join(lines) + "\n"


def incident_head(incident: Incident | None, redact: Redact = _same) -> list[str]:
    """Why the stop was pressed, who pressed it, and the run: the record's first lines."""
    if incident is None:
        return []
    why = _code(redact(incident.reason)) if incident.reason else "*no reason given*"
    who = _code(redact(incident.actor)) if incident.actor else "*unknown*"
    if incident.triggering_actor:
        who += f" (this attempt started by {_code(redact(incident.triggering_actor))})"
    lines = [f"- **Why:** {why}", f"- **Who:** {who}"]
    if incident.run_url:  # built from checked parts (incident.py): a link of ours
        lines.append(f"- **Run:** [{incident.run_url}]({incident.run_url})")
    return [*lines, ""]


def what_next(
    results: Sequence[TargetResult], *, dry_run: bool, redact: Redact = _same
) -> list[str]:
    """After the results: what to do now about each kind of ending, and what a halt
    means for customers and the next release (in the Store's documented terms)."""
    lines: list[str] = []

    def links(kind: Result | tuple[Result, ...]) -> list[str]:
        kinds = kind if isinstance(kind, tuple) else (kind,)
        chosen = [r for r in results if r.result in kinds]
        found = []
        for result in chosen[:_MAX_LINKS]:
            target = result.target
            where = partner_center_url(target.app_id, result.submission_id)
            shown = f"submission {result.submission_id}" if result.submission_id else "the app"
            found.append(f"- {_code(redact(target.label))}: [{shown} in Partner Center]({where})")
        if len(chosen) > _MAX_LINKS:
            found.append(f"- and {len(chosen) - _MAX_LINKS} more: see the table above")
        return found

    rerun = RERUN_IS_SAFE
    if any(r.result is Result.UNKNOWN for r in results):
        lines += [
            "",
            "### Not confirmed: check these now",
            "",
            "The halt was sent but its answer never came in time: it may have taken effect. "
            "Check each rollout in Partner Center.",
            "",
            *links(Result.UNKNOWN),
            "",
            rerun,
        ]
    if any(r.result is Result.FAILED for r in results):
        lines += [
            "",
            "### What to do now",
            "",
            "Read what went wrong above. A failure that waiting can clear (the Store's rate "
            f"limit, an outage, the deadline) clears by running again. {rerun} If a rollout "
            "must stop now and the API cannot stop it, halt it in Partner Center:",
            "",
            *links(Result.FAILED),
        ]
    stopped = (Result.HALTED, Result.ALREADY_HALTED)
    if not dry_run and any(r.result in stopped for r in results):
        flights = any(r.target.flight_id for r in results if r.result in stopped)
        meaning = WHAT_A_HALT_MEANS + (WHAT_A_FLIGHT_HALT_MEANS if flights else ())
        lines += [
            "",
            "### What the halt means",
            "",
            *(f"- {sentence}" for sentence in meaning),
            "",
            "In Partner Center:",
            "",
            *links(stopped),
        ]
    if dry_run and not any(r.failure for r in results):
        lines += ["", "Run again with `dry-run: false` to halt the rollouts marked *would halt*."]
    return lines


def _row(result: TargetResult, redact: Redact) -> str:
    record = result_record(result, redact)
    cells = [
        _cell(record["name"]),
        _cell(record["app-id"]),
        _cell(record["flight-id"]),
        _cell(record["submission-id"]),
        _badge(result),
        _cell(record["status"]),
        _cell(f"{record['rollout-percentage']:g}" if result.rollout else None),
        _cell(record["fallback-submission-id"]),
    ]
    return "| " + " | ".join(cells) + " |"


def _badge(result: TargetResult) -> str:
    """The result's badge; under all-flights, a rollout of another version says so."""
    expected, versions = result.target.expected_version, result.versions
    other_version = expected and versions is not None and not carries(versions, expected)
    if result.result is Result.NOTHING_TO_HALT and other_version:
        return f"➖ not version {expected}: left alone"
    return _BADGES[result.result]


def _size(lines: Sequence[str]) -> int:
    return sum(len(line.encode()) + 1 for line in lines)


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
# Markdown's punctuation, escaped where our own words carry data outside code.
_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_\[\]<>!|~])")


def defused(text: str) -> str:
    for trigger, broken in _TRIGGERS:
        text = text.replace(trigger, broken)
    return _WWW.sub("\\1\u200b.", text)


def _plain(text: str) -> str:
    """Data as plain text in a line of prose: every Markdown character escaped."""
    flat = " ".join(visible(text).split())
    return defused(_MARKDOWN_PUNCTUATION.sub(r"\\\1", flat))


def _code(text: str) -> str:
    """Data as an inline code span: nothing in it is live Markdown or HTML."""
    flat = defused(" ".join(visible(str(text)).split()))
    if not flat:
        return "–"
    longest = max((len(run) for run in _BACKTICKS.findall(flat)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""
    return f"{fence}{pad}{flat}{pad}{fence}"


def _fenced(text: str) -> list[str]:
    """Data as a fenced code block, its fence longer than any run of backticks in it."""
    lines = [defused(visible(line)) for line in text.splitlines() if line.strip()]
    longest = max((len(run) for line in lines for run in _BACKTICKS.findall(line)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}text", *lines, fence]
