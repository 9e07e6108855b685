"""After the results in the job summary: what to do now about each kind of ending, and
what a halt means."""

from __future__ import annotations

from collections.abc import Sequence

from .halt import Result, TargetResult
from .incident import (
    RERUN_IS_SAFE,
    WHAT_A_FLIGHT_HALT_MEANS,
    WHAT_A_HALT_MEANS,
    partner_center_url,
)
from .markdown_safety import as_code
from .step_outputs import Redact, unchanged

# At most this many targets get their own Partner Center link under "what next"; the
# table names the rest.
_MAX_LINKS = 10


def what_next(
    results: Sequence[TargetResult], *, dry_run: bool, redact: Redact = unchanged
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
            found.append(f"- {as_code(redact(target.label))}: [{shown} in Partner Center]({where})")
        if len(chosen) > _MAX_LINKS:
            found.append(f"- and {len(chosen) - _MAX_LINKS} more: see the table above")
        return found

    def section(heading: str, text: str, result: Result, *after: str) -> list[str]:
        """A heading, what to do, and a link to each rollout of that result."""
        if not any(r.result is result for r in results):
            return []
        return ["", heading, "", text, "", *links(result), *after]

    rerun = RERUN_IS_SAFE
    lines += section(
        "### Not confirmed: check these now",
        "The halt was sent but its answer never came in time: it may have taken effect. "
        "Check each rollout in Partner Center.",
        Result.UNKNOWN,
        "",
        rerun,
    )
    lines += section(
        "### What to do now",
        "Read what went wrong above. A failure that waiting can clear (the Store's rate "
        f"limit, an outage, the deadline) clears by running again. {rerun} If a rollout "
        "must stop now and the API cannot stop it, halt it in Partner Center:",
        Result.FAILED,
    )
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
