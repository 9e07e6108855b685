"""The guard's rows, sorted into days: which days both versions were measured over.

The analytics reader hands these rows over as the Store wrote them (every page, in any
order); `DayTable` applies the contract's rules for reading them (halt_rollout/evidence.py
decides on the result): rows outside the days asked for are ignored, a repeated row counts
once, versions match as numbers, only the chosen event types count, and the period is the
days with usage on BOTH versions, up to the last day the failure report has reached, so
late or partial data are left out of both sides, never read as zero.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from datetime import date

from .poisson_ratio import DayCounts
from .shapes import version_key

SMALLEST_COUNT = 1e-6  # device counts are fractional, but not this fractional


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
class DayShare:
    """One day's failing shares, for the trend in the summary (None: not measured)."""

    day: date
    rolling_out: float | None
    fallback: float | None


class DayTable:
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
            key = version_match_key(version)
            sides[version] = (0 if key in new_keys else 1 if key in old_keys else -1, key)
        # A row repeated (pages that overlap while the Store updates) counts once, at its
        # largest: a day's counts only grow. Different versions of one side add up. A count
        # below a millionth of a device, or not a finite number, counts nothing (the reader
        # refuses worse): the arithmetic needs no care for sub-normal floats then.
        active: tuple[dict[tuple[date, object], float], ...] = ({}, {})
        for u in readings.usage:
            where, key = sides[u.version]
            if (
                where >= 0
                and first <= u.day <= last
                and SMALLEST_COUNT <= u.active_devices < math.inf
            ):
                k = (u.day, key)
                active[where][k] = max(active[where].get(k, 0.0), u.active_devices)
        failing: tuple[dict[tuple[date, object, str], float], ...] = ({}, {})
        for f in readings.failures:
            where, key = sides[f.version]
            if (
                where >= 0
                and first <= f.day <= last
                and f.event_type in event_types
                and SMALLEST_COUNT <= f.failing_devices < math.inf
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


def _by_day(
    rows: dict[tuple[date, object], float] | dict[tuple[date, object, str], float],
) -> dict[date, float]:
    sums: dict[date, float] = {}
    for k, n in rows.items():
        sums[k[0]] = sums.get(k[0], 0.0) + n
    return sums


@functools.lru_cache(maxsize=256)
def version_match_key(version: str) -> object:
    """Versions match as numbers (1.4.2 is 1.4.2.0); one that is not a version, as text."""
    key = version_key(version)
    return version if key is None else key


def unique_versions(versions: tuple[str, ...]) -> tuple[str, ...]:
    seen: set[object] = set()
    kept: list[str] = []
    for v in versions:
        if version_match_key(v) not in seen:
            seen.add(version_match_key(v))
            kept.append(v)
    return tuple(kept)
