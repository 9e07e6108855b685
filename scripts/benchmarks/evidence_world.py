"""A simulated rollout as the Store's analytics would show it, hour by hour.

What is modelled (the figures are in `World`; docs/benchmarks.md states them):
- every day, `daily_devices` devices are active, `rollout[d]` of them on the rolling-out
  version and the rest on the fallback;
- a device on the fallback hits a failure on a given day with probability about
  `base_share`, one on the rolling-out version `worse` times as often;
- what touches both versions on a day (an OS update, a weekend) multiplies both by the
  same factor, lognormal with log-sd `day_noise`; on top of it each version has its own
  daily factor (log-sd `version_noise`): noise beyond Poisson that the test does not
  model, on purpose;
- failing devices arrive through the day as a Poisson process (hour by hour); active
  devices grow in proportion to the hours elapsed;
- the Store shows an hour's failures `failure_lag` hours after it ends, and its usage
  `usage_lag` hours after (a day can have failures and no usage yet); its rows are those
  of `groupby=packageVersion,date` (usage) and `packageVersion,eventType` at day level
  (failures), with no row for a version and day that had no failure.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, timedelta

from halt_rollout.evidence import FailureRow, Readings, UsageRow

NEW, OLD = "1.4.2.0", "1.4.1.0"
START = date(2026, 11, 2)  # the rollout starts at midnight UTC of this day
DAYS = 8  # the 168 hours of a watch reach into day 7 only through its lags


@dataclass(frozen=True)
class World:
    daily_devices: int
    rollout: tuple[float, ...]  # the rolling-out version's share of devices, day by day
    base_share: float
    worse: float  # the rolling-out version's failing share over the fallback's
    day_noise: float
    version_noise: float
    usage_lag: int  # hours
    failure_lag: int  # hours


class Rollout:
    """One random draw of a `World`: every hour's failing devices, fixed up front."""

    def __init__(self, world: World, rng: random.Random) -> None:
        self.world = world
        self.active: list[tuple[float, float]] = []  # (new, old) per day, whole day
        self.hourly: list[tuple[list[int], list[int]]] = []  # failing per hour (new, old)
        for d in range(DAYS):
            share = world.rollout[min(d, len(world.rollout) - 1)]
            new = round(world.daily_devices * share)
            old = world.daily_devices - new
            day = math.exp(rng.gauss(0.0, world.day_noise) - world.day_noise**2 / 2)
            rates = []
            for devices, ratio in ((new, world.worse), (old, 1.0)):
                own = math.exp(rng.gauss(0.0, world.version_noise) - world.version_noise**2 / 2)
                rates.append(min(1.0, world.base_share * ratio * day * own) * devices / 24)
            self.active.append((float(new), float(old)))
            self.hourly.append(
                (
                    [poisson(rng, rates[0]) for _ in range(24)],
                    [poisson(rng, rates[1]) for _ in range(24)],
                )
            )
        self._usage_cache: dict[tuple[int, int], tuple[UsageRow, ...]] = {}
        self._failure_cache: dict[tuple[int, int], tuple[FailureRow, ...]] = {}

    def readings(self, hour: int) -> Readings:
        """What the Store's reports show at the end of `hour` (hours since the start)."""
        usage: list[UsageRow] = []
        failures: list[FailureRow] = []
        last_day = min(hour // 24, DAYS - 1)
        for d in range(last_day + 1):
            usage.extend(self._usage(d, _hours_in(d, hour - self.world.usage_lag)))
            failures.extend(self._failures(d, _hours_in(d, hour - self.world.failure_lag)))
        return Readings(
            usage=tuple(usage),
            failures=tuple(failures),
            asked_from=START,
            asked_to=START + timedelta(days=last_day),
        )

    def _usage(self, d: int, hours: int) -> tuple[UsageRow, ...]:
        if (d, hours) not in self._usage_cache:
            day, (new, old) = START + timedelta(days=d), self.active[d]
            self._usage_cache[(d, hours)] = (
                ()
                if hours == 0
                else (UsageRow(day, NEW, new * hours / 24), UsageRow(day, OLD, old * hours / 24))
            )
        return self._usage_cache[(d, hours)]

    def _failures(self, d: int, hours: int) -> tuple[FailureRow, ...]:
        if (d, hours) not in self._failure_cache:
            day, (new, old) = START + timedelta(days=d), self.hourly[d]
            rows = []
            for version, counts in ((NEW, new), (OLD, old)):
                seen = sum(counts[:hours])
                if seen:
                    rows.append(FailureRow(day, version, "crash", float(seen)))
            self._failure_cache[(d, hours)] = tuple(rows)
        return self._failure_cache[(d, hours)]


def _hours_in(d: int, until: int) -> int:
    """How many hours of day d have ended by hour `until` (0 to 24)."""
    return max(0, min(24, until - 24 * d))


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw: counting exponential gaps for small means, PTRS above (Hörmann 1993,
    "The transformed rejection method for generating Poisson random variables")."""
    if mean < 10.0:
        count, total = 0, rng.expovariate(1.0)
        while total < mean:
            count += 1
            total += rng.expovariate(1.0)
        return count
    slam = math.sqrt(mean)
    log_mean = math.log(mean)
    b = 0.931 + 2.53 * slam
    a = -0.059 + 0.02483 * b
    inv_alpha = 1.1239 + 1.1328 / (b - 3.4)
    v_r = 0.9277 - 3.6224 / (b - 2)
    while True:
        u = rng.random() - 0.5
        v = rng.random()
        us = 0.5 - abs(u)
        k = math.floor((2 * a / us + b) * u + mean + 0.43)
        if us >= 0.07 and v <= v_r:
            return k
        if k < 0 or (us < 0.013 and v > us):
            continue
        if math.log(v) + math.log(inv_alpha) - math.log(a / (us * us) + b) <= (
            -mean + k * log_mean - math.lgamma(k + 1)
        ):
            return k
