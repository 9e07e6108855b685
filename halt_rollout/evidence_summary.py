"""The guard's part of the job summary: each judged rollout's decision, its figures and
its trend per day, with the Store's data shown as code (markdown_safety), never live."""

from __future__ import annotations

from collections.abc import Sequence

from .evidence_report import (
    NOT_A_CRASH_RATE,
    figure_rows,
    judged,
    period,
    ratio_text,
    sentence,
)
from .halt import Result, TargetResult
from .markdown_safety import as_cell, as_code, as_plain
from .step_outputs import Redact

_QUIET = (Result.HEALTHY, Result.INCONCLUSIVE, Result.NOTHING_TO_HALT, Result.ALREADY_HALTED)


def quiet_guard_headline(results: Sequence[TargetResult]) -> str | None:
    """A guard's run that sent nothing: healthy, or not enough evidence yet."""
    outcomes = {r.result for r in results}
    if not outcomes <= set(_QUIET):
        return None
    if Result.INCONCLUSIVE in outcomes:
        return "⏳ Not enough evidence to halt yet: nothing sent"
    if Result.HEALTHY in outcomes:
        return (
            "✅ Rollout healthy: nothing sent" if len(results) == 1 else "✅ Healthy: nothing sent"
        )
    return None


def evidence_section(results: Sequence[TargetResult], redact: Redact, budget: int) -> list[str]:
    """Each judged rollout's decision: its sentence, its figures, its trend per day; within
    `budget` bytes, whole rollouts left out past it with a line that says how many."""
    chosen = judged(results)
    if not chosen:
        return []
    lines = ["", "### Evidence (halt-when: failing)", "", NOT_A_CRASH_RATE]
    for shown, result in enumerate(chosen):
        judgement = result.judgement
        if judgement is None:
            continue
        block = [
            "",
            f"**{as_code(redact(result.target.label))}** ({result.result})",
            "",
            f"Decision: {as_plain(redact(sentence(result)))}",
            "",
            "| Figure | Rolling out | Fallback |",
            "| --- | --- | --- |",
            *(
                f"| {name} | {as_cell(redact(rolling))} | {as_cell(redact(fallback))} |"
                for name, rolling, fallback in figure_rows(judgement)
            ),
            "",
            f"Period: {as_plain(period(judgement))}. Ratio: {as_plain(ratio_text(judgement))}.",
        ]
        if _size(lines) + _size(block) > budget:
            lines += [
                "",
                f"{len(chosen) - shown} more rollout(s)' evidence left out to keep this summary "
                "under GitHub's 1 MiB limit: see the log and the `evidence` output.",
            ]
            break
        lines += block
    return lines


def _size(lines: Sequence[str]) -> int:
    return sum(len(line.encode()) + 1 for line in lines)
