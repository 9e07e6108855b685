"""The guard's decision (`halt-when: failing`): is the rolling-out version failing?

Pure: rows in, a judgement out; no network, no clock, no memory between runs. What it
compares (contract, "Halt on evidence"): for each day with active devices measured on BOTH
versions, up to the last day the failure report has reached, the devices that hit a
failure of the chosen kinds against the active devices, for the rolling-out version and for
the fallback. Late or partial data are left out of both sides, never read as zero.

The test (halt_rollout/poisson_ratio.py has the arithmetic and docs/guard.md the argument
in full): failing device-days on each version are Poisson counts, with whatever touches
both versions on a day (an OS update, a holiday, data still arriving) cancelling out of
each day's split of failing devices between the two: the exact conditional comparison of
two Poisson rates (Przyborowski & Wilenski 1940; Cox 1953; Gu, Ng, Tang & Schucany 2008),
day-matched, with Clopper-Pearson bounds (1934) on the ratio rho of the two failing
shares, conservative across days by Hoeffding (1956), and an allowance for each version's
own day-to-day swings beyond Poisson (10%; quasi-likelihood, McCullagh & Nelder 1989).
- failing: rho's lower bound exceeds `failure_ratio` and at least `min_failing_devices`
  failing devices on the rolling-out version;
- healthy: rho's upper bound is at most `failure_ratio`;
- inconclusive otherwise.

Why a false halt stays under 1 in 1,000 for a whole 7-day hourly watch: each look's bound
is one-sided at LOOK_LEVEL = 0.001 / 168. For a version no worse than the fallback
(rho <= 1 < failure_ratio), each look halts with probability at most LOOK_LEVEL, so the
168 looks of a week together at most 168 * LOOK_LEVEL = 0.001, by the union (Bonferroni)
bound, however the looks depend on one another: nothing needs remembering between runs.
A watch of more than 168 looks spends more than that budget.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from datetime import date

from . import poisson_ratio
from .evidence_days import (
    DayShare,
    DayTable,
    FailureRow,
    Readings,
    UsageRow,
    unique_versions,
    version_match_key,
)

__all__ = [
    "EVENT_TYPES",
    "FALSE_HALT_BUDGET",
    "LOOKS_PER_WATCH",
    "LOOK_LEVEL",
    "DayShare",
    "FailureRow",
    "Judgement",
    "Outcome",
    "Readings",
    "SideFigures",
    "Thresholds",
    "UsageRow",
    "judge",
]

EVENT_TYPES = ("crash", "hang", "memory", "jse")
FALSE_HALT_BUDGET = 0.001  # the contract's: for a whole watch
LOOKS_PER_WATCH = 7 * 24  # a 7-day hourly watch
LOOK_LEVEL = FALSE_HALT_BUDGET / LOOKS_PER_WATCH


@dataclass(frozen=True)
class Thresholds:
    failure_ratio: float
    min_failing_devices: int
    event_types: tuple[str, ...]


class Outcome(enum.StrEnum):
    FAILING = "failing"
    HEALTHY = "healthy"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class SideFigures:
    versions: tuple[str, ...]
    active_devices: float  # device-days over the period
    failing_devices: float  # failing device-days over the period
    failing_share: float | None  # None when nothing active was measured

    def as_dict(self) -> dict[str, object]:
        return {
            "versions": list(self.versions),
            "active-devices": _plain(self.active_devices),
            "failing-devices": _plain(self.failing_devices),
            "failing-share": None if self.failing_share is None else _figure(self.failing_share),
        }


@dataclass(frozen=True)
class Judgement:
    outcome: Outcome
    rolling_out: SideFigures
    fallback: SideFigures
    period_from: date | None
    period_to: date | None
    ratio: float | None  # observed (day-matched estimate); None when it has no finite value
    ratio_bound: float | None  # the bound the decision used: lower when the observed ratio
    # is above the margin, upper when at or below it (the sentence says which)
    thresholds: Thresholds
    why: str
    days: tuple[DayShare, ...]

    def evidence(
        self, *, app_id: str, flight_id: str | None, submission_id: str
    ) -> dict[str, object]:
        """The contract's evidence object."""
        return {
            "app-id": app_id,
            "flight-id": flight_id,
            "submission-id": submission_id,
            "outcome": str(self.outcome),
            "rolling-out": self.rolling_out.as_dict(),
            "fallback": self.fallback.as_dict(),
            "period": {
                "from": None if self.period_from is None else self.period_from.isoformat(),
                "to": None if self.period_to is None else self.period_to.isoformat(),
            },
            "ratio": None if self.ratio is None else _figure(self.ratio),
            "ratio-bound": None if self.ratio_bound is None else _figure(self.ratio_bound),
            "failure-ratio": self.thresholds.failure_ratio,
            "min-failing-devices": self.thresholds.min_failing_devices,
            "event-types": list(self.thresholds.event_types),
            "why": self.why,
        }

    def sentence(self, ending: str) -> str:
        """`why` with another ending, e.g. "would be halted (dry run)"."""
        return f"{self.why.rsplit(': ', 1)[0]}: {ending}"


def judge(
    readings: Readings,
    *,
    rolling_out_versions: tuple[str, ...],
    fallback_versions: tuple[str, ...],
    thresholds: Thresholds,
) -> Judgement:
    fallback_keys = {version_match_key(v) for v in fallback_versions}
    new = tuple(
        v
        for v in unique_versions(rolling_out_versions)
        if version_match_key(v) not in fallback_keys
    )
    old = unique_versions(fallback_versions)
    new_keys = {version_match_key(v) for v in new}
    table = DayTable(readings, new_keys, fallback_keys, set(thresholds.event_types))
    base = _Partial(new or unique_versions(rolling_out_versions), old, thresholds, table)
    if not rolling_out_versions:  # not "the same package again": nothing to say what it is
        return base.inconclusive(
            "the rolling-out submission has no package version to compare (none of its "
            "packages carries a version the Store's figures can be matched to)"
        )
    if not new:
        shown = ", ".join(rolling_out_versions) or "(none)"
        return base.inconclusive(
            f"the rolling-out version {shown} is also the fallback's (the same package "
            "published again), so the two cannot be told apart"
        )
    if not old:
        return base.inconclusive("the fallback submission has no package version to compare")
    if not table.period:
        return base.inconclusive(table.missing(_names(new), _names(old)))
    counts = [table.counts[d] for d in table.period]
    ratio, margin = poisson_ratio.estimate(counts), thresholds.failure_ratio
    if ratio is None:
        return base.inconclusive(
            f"no device hit a failure on either version from {table.period[0]} to "
            f"{table.period[-1]}, so the two cannot be compared yet"
        )
    rolling_out, fallback = base.sides()
    head = (
        f"{_names(new)} fails on {_percent(rolling_out.failing_share)} of active devices "
        f"against {_percent(fallback.failing_share)} on {_names(old)}"
    )
    shown_margin = f"{margin:g}×"
    if ratio > margin:
        bound = poisson_ratio.lower_bound(counts, LOOK_LEVEL)
        enough = rolling_out.failing_devices >= thresholds.min_failing_devices
        if bound > margin and enough:
            why = (
                f"{head}: at least {_times(bound, margin)} times worse, above the "
                f"{shown_margin} margin: halted"
            )
            return base.judged(Outcome.FAILING, ratio, bound, why)
        if bound > margin:
            why = (
                f"{head}: at least {_times(bound)} times worse, but from "
                f"{_count(rolling_out.failing_devices)} failing devices, of the "
                f"{thresholds.min_failing_devices} needed to halt: inconclusive"
            )
        else:
            why = (
                f"{head}: {_times(ratio)} times as often, but only at least {_times(bound)} "
                f"times worse at the guard's confidence, not shown above the {shown_margin} "
                "margin yet: inconclusive"
            )
        return base.judged(Outcome.INCONCLUSIVE, ratio, bound, why)
    bound = poisson_ratio.upper_bound(counts, LOOK_LEVEL)
    if bound <= margin:
        why = (
            f"{head}: at most {_times(bound, margin)} times worse, below the {shown_margin} "
            "margin: healthy"
        )
        return base.judged(Outcome.HEALTHY, ratio, bound, why)
    why = (
        f"{head}: {_times(ratio)} times as often, but at most "
        f"{_times(bound)} times worse at the "
        f"guard's confidence, not shown below the {shown_margin} margin yet: inconclusive"
    )
    return base.judged(Outcome.INCONCLUSIVE, ratio, bound, why)


class _Partial:
    """What every judgement of one call shares."""

    def __init__(
        self, new: tuple[str, ...], old: tuple[str, ...], thresholds: Thresholds, table: DayTable
    ) -> None:
        self.new, self.old, self.thresholds, self.table = new, old, thresholds, table

    def sides(self) -> tuple[SideFigures, SideFigures]:
        counts = [self.table.counts[d] for d in self.table.period]
        new_active = sum(c.rolling_out_active for c in counts)
        new_failing = sum(c.rolling_out_failing for c in counts)
        old_active = sum(c.fallback_active for c in counts)
        old_failing = sum(c.fallback_failing for c in counts)
        return (
            SideFigures(self.new, new_active, new_failing, _share(new_failing, new_active)),
            SideFigures(self.old, old_active, old_failing, _share(old_failing, old_active)),
        )

    def judged(
        self, outcome: Outcome, ratio: float | None, bound: float | None, why: str
    ) -> Judgement:
        rolling_out, fallback = self.sides()
        period = self.table.period
        return Judgement(
            outcome=outcome,
            rolling_out=rolling_out,
            fallback=fallback,
            period_from=period[0] if period else None,
            period_to=period[-1] if period else None,
            ratio=ratio if ratio is not None and math.isfinite(ratio) else None,
            ratio_bound=bound if bound is not None and math.isfinite(bound) else None,
            thresholds=self.thresholds,
            why=why,
            days=self.table.days,
        )

    def inconclusive(self, reason: str) -> Judgement:
        return self.judged(Outcome.INCONCLUSIVE, None, None, f"{reason}: inconclusive")


def _names(versions: tuple[str, ...]) -> str:
    return ", ".join(versions)


def _share(failing: float, active: float) -> float | None:
    return failing / active if active > 0 else None


def _percent(share: float | None) -> str:
    if share is None:
        return "an unmeasured share"
    value = share * 100
    return f"{value:.1f}%" if value >= 0.1 or value == 0 else f"{value:.2g}%"


def _times(value: float, margin: float | None = None) -> str:
    """A ratio, with as many decimals as it takes not to read as the margin itself."""
    if math.isinf(value):
        return "unboundedly many"
    if value < 0.1:
        return f"{value:.2g}"
    digits = 1
    while margin is not None and digits < 4 and round(value, digits) == margin != value:
        digits += 1
    return f"{value:.{digits}f}"


def _count(value: float) -> str:
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def _plain(value: float) -> float:
    """A count of devices, to a millionth of one."""
    return round(value, 6)


def _figure(value: float) -> float:
    """A share or a ratio, to six significant digits: a large app's share of a few in ten
    million is small, not zero."""
    return float(f"{value:.6g}")
