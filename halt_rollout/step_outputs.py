"""The step's outputs, and the records of `results` fitted into what GitHub keeps.

Pure functions from results to outputs; the edges (the runner, the command line) only
write them out. Around them: log_lines (the log), job_summary and what_next (the job
summary), markdown_safety (data in Markdown).

GitHub keeps at most 1 MB of a job's outputs, and a later step takes `results` through
an environment variable: it is fitted by leaving out whole records, least urgent first
(a rollout left alone goes before a halted one, a halted one before a failure); the log
says how many.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from .errors import TRUNCATED
from .evidence_report import evidence_record, judged
from .halt import Result, TargetResult
from .redact import json_visible

Redact = Callable[[str], str]

OUTPUT_NAMES = (
    "result",
    "status",
    "fallback-submission-id",
    "rollout-percentage",
    "submission-id",
    "results",
    "evidence",
)
# GitHub keeps at most 1 MB of a job's outputs, counted in UTF-16.
MAX_OUTPUTS_UTF16_BYTES = 1_000_000
# Later steps take `results` through an environment variable (never `${{ }}` in a script),
# and Linux refuses one longer than 128 KiB (MAX_ARG_STRLEN): `results` stays under it.
MAX_RESULTS_BYTES = 120_000
# One record stays small whatever a submission carries (20,000 packages, a huge error):
# a target's row is shortened, with a note, before it could be left out whole.
MAX_VERSIONS_IN_RECORD = 50
MAX_ERROR_IN_RECORD = 2000
# Which rows are left out first when a summary or `results` would be too large.
LEAVE_OUT_FIRST = (
    Result.NOTHING_TO_HALT,
    Result.HEALTHY,
    Result.INCONCLUSIVE,
    Result.ALREADY_HALTED,
    Result.DRY_RUN,
    Result.HALTED,
    Result.UNKNOWN,
    Result.FAILED,
)


def unchanged(text: str) -> str:
    return text


def overall_result(results: Sequence[TargetResult]) -> Result:
    """One word for the run: the worst outcome (failed, then unknown), else the strongest.

    A rollout that all-flights left alone sent nothing and needs nothing: for the
    run as a whole it counts as already-halted."""
    outcomes = {r.result for r in results}
    order = (
        *(Result.FAILED, Result.UNKNOWN, Result.HALTED, Result.DRY_RUN),
        # A guard that could not decide yet says more than one that found all well.
        *(Result.INCONCLUSIVE, Result.HEALTHY, Result.ALREADY_HALTED),
    )
    for result in order:
        if result in outcomes:
            return result
    if Result.NOTHING_TO_HALT in outcomes:
        return Result.ALREADY_HALTED
    return Result.FAILED  # no targets at all: nothing was halted


def result_record(result: TargetResult, redact: Redact = unchanged) -> dict[str, Any]:
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
    if (evidence := evidence_record(result)) is not None:
        record["evidence"] = _redacted(evidence, redact)
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


def outputs(results: Sequence[TargetResult], redact: Redact = unchanged) -> dict[str, str]:
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

    kept, _ = _fit_records(results, lambda result: result_record(result, redact))
    kept_evidence, _ = _fit_records(judged(results), _evidence_of(redact))
    return {
        "result": str(overall_result(results)),
        "status": shared("status"),
        "fallback-submission-id": shared("fallback-submission-id"),
        "rollout-percentage": shared("rollout-percentage"),
        "submission-id": shared("submission-id"),
        "results": "[" + ",".join(kept) + "]",
        "evidence": "[" + ",".join(kept_evidence) + "]",
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


def _evidence_of(redact: Redact) -> Callable[[TargetResult], dict[str, Any]]:
    def record(result: TargetResult) -> dict[str, Any]:
        evidence = evidence_record(result)
        return _redacted(evidence, redact) if evidence is not None else {}

    return record


def _redacted(value: Any, redact: Redact) -> Any:
    """The evidence object with every text in it (versions, the sentence) redacted: data."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [_redacted(item, redact) for item in value]
    if isinstance(value, dict):
        return {key: _redacted(item, redact) for key, item in value.items()}
    return value


def results_left_out(results: Sequence[TargetResult], redact: Redact = unchanged) -> str | None:
    """What the `results` and `evidence` outputs left out to fit GitHub's limit, said for
    the log."""
    _, left_out = _fit_records(results, lambda result: result_record(result, redact))
    judged_results = judged(results)
    _, evidence_left_out = _fit_records(judged_results, _evidence_of(redact))
    shortened = sum(
        result.versions is not None and len(result.versions) > MAX_VERSIONS_IN_RECORD
        for result in results
    )
    notes = []
    if shortened:
        notes.append(
            f"{shortened} record(s) of the results output list only the first "
            f"{MAX_VERSIONS_IN_RECORD} package versions (`versions-left-out` counts the rest)"
        )
    said = []
    if left_out:
        said.append(
            f"the results output leaves out {count_by_result(left_out)} of {len(results)} records"
        )
    if evidence_left_out:
        said.append(
            f"the evidence output leaves out {sum(evidence_left_out.values())} of "
            f"{len(judged_results)} rollouts' evidence"
        )
    if said:
        notes.append(
            f"{' and '.join(said)} to stay under {MAX_RESULTS_BYTES // 1000} kB each, so that "
            "a later step can take them through an environment variable (GitHub's limit for a "
            "job's outputs is 1 MB); this log and the job summary list every target"
        )
    return "; ".join(notes) if notes else None


def _fit_records(
    results: Sequence[TargetResult], record_of: Callable[[TargetResult], dict[str, Any]]
) -> tuple[list[str], Counter[Result]]:
    """Each result's record as JSON, in order, less whole records (least urgent first) as
    needed. Only the records that fit are built: the work is bounded by the budget, not
    by the number of results."""
    texts: dict[int, str] = {}

    def size_of(index: int) -> int:
        record = record_of(results[index])
        texts[index] = json_visible(json.dumps(record, separators=(",", ":"), ensure_ascii=False))
        # UTF-16 never takes more than twice UTF-8's bytes: under MAX_RESULTS_BYTES in
        # UTF-8, `results` is well under GitHub's 1 MB in UTF-16 too.
        return len(texts[index].encode()) + 1  # and its comma

    keep = rows_within(results, size_of, MAX_RESULTS_BYTES)
    left_out = Counter(r.result for r, kept in zip(results, keep, strict=True) if not kept)
    return [texts[index] for index, kept in enumerate(keep) if kept], left_out


def rows_within(
    results: Sequence[TargetResult],
    size_of: Callable[[int], int],
    budget: int,
    max_rows: int | None = None,
) -> list[bool]:
    """Which rows to keep so their sizes add up to at most `budget` (and at most
    `max_rows` of them): rows are left out whole, the least urgent results first and,
    among equals, the last first. Rows are measured most urgent first, and only until
    the budget is full: what is left out is never built."""
    urgency = {outcome: rank for rank, outcome in enumerate(reversed(LEAVE_OUT_FIRST))}
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


def count_by_result(left_out: Counter[Result]) -> str:
    total = sum(left_out.values())
    parts = ", ".join(
        f"{left_out[result]} {result}" for result in LEAVE_OUT_FIRST if left_out[result]
    )
    return f"{total} ({parts})"


def failed_outputs() -> dict[str, str]:
    """Outputs of a run that stopped before any target was known (bad inputs)."""
    return dict.fromkeys(OUTPUT_NAMES, "") | {"result": "failed", "results": "[]", "evidence": "[]"}
