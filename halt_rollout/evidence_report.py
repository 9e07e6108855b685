"""The guard's decisions as people read them: the figures, the sentence, the trend.

Plain text only (the log's lines, a table's cells before quoting, the `evidence`
output's objects); evidence_summary.py makes Markdown of them, with data as code. This module
reads a Judgement's attributes and imports nothing of the decision: the summary of an
emergency stop loads it without loading the guard.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from .evidence import Judgement, SideFigures
    from .inputs import Target


class JudgedResult(Protocol):
    """What of a target's result the evidence's words read (halt.TargetResult is one): named
    here, so that this module, which the guard imports, never imports the halt."""

    @property
    def judgement(self) -> Judgement | None: ...

    @property
    def result(self) -> object: ...

    @property
    def target(self) -> Target: ...

    @property
    def submission_id(self) -> str | None: ...


Judged = TypeVar("Judged", bound=JudgedResult)

# Eight heights of a bar, lowest first: a day's failing share, both versions on one scale.
BARS = "▁▂▃▄▅▆▇█"
NOT_MEASURED = "·"
NOT_A_CRASH_RATE = (
    "These shares are not Partner Center's crash rate: failures come from the devices that "
    "share diagnostic data, usage from every device that sends telemetry. Only the "
    "comparison of the two versions, measured alike over the same days, carries meaning."
)
# How a result ends the evidence's sentence, when it is not the decision's own ending.
_ENDINGS = {
    "dry-run": "would be halted (dry run)",
    "unknown": "halt sent, not confirmed",
    "already-halted": "halted meanwhile by someone else",
    "failed": "the halt failed",
}


def sentence(result: JudgedResult) -> str:
    """The one sentence a responder can repeat, ending with what this run did."""
    judgement = result.judgement
    if judgement is None:
        return ""
    ending = _ENDINGS.get(str(result.result)) if str(judgement.outcome) == "failing" else None
    return judgement.sentence(ending) if ending else judgement.why


def evidence_record(result: JudgedResult) -> dict[str, Any] | None:
    """The contract's evidence object for a judged rollout; None for one not judged."""
    judgement = result.judgement
    if judgement is None:
        return None
    record = judgement.evidence(
        app_id=result.target.app_id,
        flight_id=result.target.flight_id,
        submission_id=result.submission_id or "",
    )
    record["why"] = sentence(result)
    return record


def percent(share: float | None) -> str:
    if share is None or not math.isfinite(share):
        return "not measured"
    value = share * 100
    # Two decimals; a share below a hundredth of a percent (a large app's) is small, not 0.
    return f"{value:.2f}%" if value >= 0.01 or value == 0 else f"{value:.2g}%"


def devices(count: float) -> str:
    """Device-days as the Store counts them (fractional), to one decimal at most."""
    return f"{count:,.1f}".removesuffix(".0")


def trend(judgement: Judgement) -> tuple[str, str]:
    """Per-day failing share of the rolling-out and the fallback version, oldest day first,
    as bars on one scale (so the two rows compare); `·` for a day not measured."""
    shares = [
        share
        for day in judgement.days
        for share in (day.rolling_out, day.fallback)
        if share is not None and math.isfinite(share)
    ]
    top = max(shares, default=0.0)

    def bar(share: float | None) -> str:
        if share is None or not math.isfinite(share):
            return NOT_MEASURED
        level = 0 if top <= 0 else round(share / top * (len(BARS) - 1))
        return BARS[max(0, min(len(BARS) - 1, level))]

    return (
        "".join(bar(day.rolling_out) for day in judgement.days),
        "".join(bar(day.fallback) for day in judgement.days),
    )


def period(judgement: Judgement) -> str:
    if judgement.period_from is None or judgement.period_to is None:
        return "no days measured on both sides"
    # The days in it: a day between them without usage on one side is not one of them.
    days = sum(1 for d in judgement.days if d.rolling_out is not None and d.fallback is not None)
    return (
        f"{judgement.period_from.isoformat()} to {judgement.period_to.isoformat()} "
        f"({days} day{'s' if days != 1 else ''} with usage on both sides)"
    )


def ratio_text(judgement: Judgement) -> str:
    observed = "not measured" if judgement.ratio is None else _times(judgement.ratio)
    bound = "none" if judgement.ratio_bound is None else _times(judgement.ratio_bound)
    limits = judgement.thresholds
    return (
        f"observed {observed}, confidence bound {bound}; margin {limits.failure_ratio:g}×, "
        f"minimum {limits.min_failing_devices} failing devices, counting "
        f"{', '.join(limits.event_types)}"
    )


def side(name: str, figures: SideFigures) -> str:
    versions = ", ".join(figures.versions) or "no version"
    return (
        f"{name} {versions}: {devices(figures.failing_devices)} failing of "
        f"{devices(figures.active_devices)} active device-days ({percent(figures.failing_share)})"
    )


def explanation_lines(judgement: Judgement) -> list[str]:
    """The decision in the log: the sentence, then every figure behind it."""
    rolling, fallback = trend(judgement)
    lines = [
        f"evidence: {judgement.why}",
        f"  period: {period(judgement)}",
        f"  {side('rolling out', judgement.rolling_out)}",
        f"  {side('fallback', judgement.fallback)}",
        f"  ratio: {ratio_text(judgement)}",
    ]
    if judgement.days:
        lines += [
            "  failing share per day, oldest first (· not measured):",
            f"    rolling out {rolling}",
            f"    fallback    {fallback}",
        ]
    return lines


def figure_rows(judgement: Judgement) -> list[tuple[str, str, str]]:
    """(figure, rolling-out, fallback) rows of the summary's evidence table, as text."""
    rolling, fallback = judgement.rolling_out, judgement.fallback
    spark_rolling, spark_fallback = trend(judgement)
    return [
        ("versions", ", ".join(rolling.versions) or "–", ", ".join(fallback.versions) or "–"),
        ("active device-days", devices(rolling.active_devices), devices(fallback.active_devices)),
        (
            "failing device-days",
            devices(rolling.failing_devices),
            devices(fallback.failing_devices),
        ),
        ("failing share", percent(rolling.failing_share), percent(fallback.failing_share)),
        ("per day, oldest first", spark_rolling or "–", spark_fallback or "–"),
    ]


def judged(results: Sequence[Judged]) -> list[Judged]:
    return [result for result in results if result.judgement is not None]


def _times(ratio: float) -> str:
    return f"{ratio:.2f}×" if ratio >= 0.01 or ratio == 0 else f"{ratio:.2g}×"
