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
shares, conservative across days by Hoeffding (1956).
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
import functools
import math
from dataclasses import dataclass
from datetime import date

from . import poisson_ratio
from .poisson_ratio import DayCounts
from .shapes import version_key

EVENT_TYPES = ("crash", "hang", "memory", "jse")
FALSE_HALT_BUDGET = 0.001  # the contract's: for a whole watch
LOOKS_PER_WATCH = 7 * 24  # a 7-day hourly watch
LOOK_LEVEL = FALSE_HALT_BUDGET / LOOKS_PER_WATCH


@dataclass(frozen=True)
class UsageRow:
    """One usagedaily row (groupby=packageVersion,date)."""

    day: date
    version: str
    active_devices: float


@dataclass(frozen=True)
class FailureRow:
    """One failurehits row (groupby=packageVersion,eventType; aggregationLevel=day)."""

    day: date
    version: str
    event_type: str  # crash | hang | memory | jse; anything else is data, not counted
    failing_devices: float


@dataclass(frozen=True)
class Readings:
    """Everything the analytics reader got, every page."""

    usage: tuple[UsageRow, ...]
    failures: tuple[FailureRow, ...]
    asked_from: date
    asked_to: date


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
            "failing-share": None if self.failing_share is None else _plain(self.failing_share),
        }


@dataclass(frozen=True)
class DayShare:
    """One day's failing shares, for the trend in the summary (None: not measured)."""

    day: date
    rolling_out: float | None
    fallback: float | None


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
            "ratio": None if self.ratio is None else _plain(self.ratio),
            "ratio-bound": None if self.ratio_bound is None else _plain(self.ratio_bound),
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
    fallback_keys = {_key(v) for v in fallback_versions}
    new = tuple(v for v in _unique(rolling_out_versions) if _key(v) not in fallback_keys)
    old = _unique(fallback_versions)
    new_keys = {_key(v) for v in new}
    table = _Table(readings, new_keys, fallback_keys, set(thresholds.event_types))
    base = _Partial(new or _unique(rolling_out_versions), old, thresholds, table)
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
                f"{head}: at least {_times(bound)} times worse, above the {shown_margin} "
                "margin: halted"
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
            f"{head}: at most {_times(bound)} times worse, below the {shown_margin} margin: healthy"
        )
        return base.judged(Outcome.HEALTHY, ratio, bound, why)
    why = (
        f"{head}: {_times(ratio)} times as often, but at most "
        f"{_times(bound)} times worse at the "
        f"guard's confidence, not shown below the {shown_margin} margin yet: inconclusive"
    )
    return base.judged(Outcome.INCONCLUSIVE, ratio, bound, why)


class _Table:
    """The rows sorted into days and sides; the period both sides were measured over."""

    def __init__(
        self,
        readings: Readings,
        new_keys: set[object],
        old_keys: set[object],
        event_types: set[str],
    ) -> None:
        first, last = readings.asked_from, readings.asked_to
        sides: dict[str, tuple[int, object]] = {}  # version as written -> (side, key)
        for version in {r.version for r in readings.usage} | {r.version for r in readings.failures}:
            key = _key(version)
            sides[version] = (0 if key in new_keys else 1 if key in old_keys else -1, key)
        # A row repeated (pages that overlap while the Store updates) counts once, at its
        # largest: a day's counts only grow. Different versions of one side add up. A count
        # that is not a positive finite number counts nothing (the reader refuses worse).
        active: tuple[dict[tuple[date, object], float], ...] = ({}, {})
        for u in readings.usage:
            where, key = sides[u.version]
            if where >= 0 and first <= u.day <= last and 0.0 < u.active_devices < math.inf:
                k = (u.day, key)
                active[where][k] = max(active[where].get(k, 0.0), u.active_devices)
        failing: tuple[dict[tuple[date, object, str], float], ...] = ({}, {})
        for f in readings.failures:
            where, key = sides[f.version]
            if (
                where >= 0
                and first <= f.day <= last
                and f.event_type in event_types
                and 0.0 < f.failing_devices < math.inf
            ):
                k3 = (f.day, key, f.event_type)
                failing[where][k3] = max(failing[where].get(k3, 0.0), f.failing_devices)
        self.failure_days = {f.day for f in readings.failures if first <= f.day <= last}
        self.active = tuple(_by_day(side) for side in active)
        self.failing = tuple(_by_day(side) for side in failing)
        self.last_failure = max(self.failure_days, default=None)
        both = self.active[0].keys() & self.active[1].keys()
        self.period = sorted(
            d for d in both if self.last_failure is not None and d <= self.last_failure
        )
        self.counts = {
            d: DayCounts(
                rolling_out_active=self.active[0][d],
                rolling_out_failing=self.failing[0].get(d, 0.0),
                fallback_active=self.active[1][d],
                fallback_failing=self.failing[1].get(d, 0.0),
            )
            for d in self.period
        }
        shown = sorted(self.active[0].keys() | self.active[1].keys())
        self.days = tuple(DayShare(d, self._share(d, 0), self._share(d, 1)) for d in shown)

    def _share(self, day: date, where: int) -> float | None:
        if day not in self.active[where] or self.last_failure is None or day > self.last_failure:
            return None
        return self.failing[where].get(day, 0.0) / self.active[where][day]

    @property
    def usage_days(self) -> dict[str, set[date]]:
        return {"new": set(self.active[0]), "old": set(self.active[1])}

    def missing(self, new: str, old: str) -> str:
        if not self.usage_days["new"]:
            return f"no active devices measured for {new} yet"
        if not self.usage_days["old"]:
            return f"no active devices measured for {old} yet"
        if not self.usage_days["new"] & self.usage_days["old"]:
            return f"no day has active devices measured for both {new} and {old} yet"
        if not self.failure_days:
            return "the failure report has no rows for the days asked for yet"
        return (
            "the periods of failures and of usage do not overlap: failures reported up to "
            f"{max(self.failure_days)}, usage of both versions from "
            f"{min(self.usage_days['new'] & self.usage_days['old'])}"
        )


class _Partial:
    """What every judgement of one call shares."""

    def __init__(
        self, new: tuple[str, ...], old: tuple[str, ...], thresholds: Thresholds, table: _Table
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


def _by_day(
    rows: dict[tuple[date, object], float] | dict[tuple[date, object, str], float],
) -> dict[date, float]:
    sums: dict[date, float] = {}
    for k, n in rows.items():
        sums[k[0]] = sums.get(k[0], 0.0) + n
    return sums


@functools.lru_cache(maxsize=256)
def _key(version: str) -> object:
    """Versions match as numbers (1.4.2 is 1.4.2.0); one that is not a version, as text."""
    key = version_key(version)
    return version if key is None else key


def _unique(versions: tuple[str, ...]) -> tuple[str, ...]:
    seen: set[object] = set()
    kept: list[str] = []
    for v in versions:
        if _key(v) not in seen:
            seen.add(_key(v))
            kept.append(v)
    return tuple(kept)


def _names(versions: tuple[str, ...]) -> str:
    return ", ".join(versions)


def _share(failing: float, active: float) -> float | None:
    return failing / active if active > 0 else None


def _percent(share: float | None) -> str:
    if share is None:
        return "an unmeasured share"
    value = share * 100
    return f"{value:.1f}%" if value >= 0.1 or value == 0 else f"{value:.2g}%"


def _times(value: float) -> str:
    if math.isinf(value):
        return "unboundedly many"
    return f"{value:.1f}" if value >= 0.1 else f"{value:.2g}"


def _count(value: float) -> str:
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def _plain(value: float) -> float:
    return round(value, 6)
