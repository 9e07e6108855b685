"""How many times more often one version fails than another, day-matched, with bounds.

Each day d has failing device counts N_d (rolling-out version) and F_d (fallback), from
A_d and B_d active devices. Model: given that day's conditions u_d (a Windows update, a
weekend, data still arriving: whatever touches both versions alike), N_d and F_d are
independent Poisson counts with means rho * lambda * u_d * A_d and lambda * u_d * B_d;
rho is the ratio of the two versions' failing shares, the figure the guard judges.

Conditional on the day's total T_d = N_d + F_d, N_d is binomial with
p_d(rho) = rho * r_d / (rho * r_d + 1), r_d = A_d / B_d: u_d and lambda cancel, so the
day's conditions, however large and however they vary, drop out. This is the classical
exact comparison of two Poisson rates (Przyborowski & Wilenski 1940; Cox 1953; see Gu,
Ng, Tang & Schucany 2008), taken day by day. S = sum N_d is sufficient for rho; its
conditional MLE solves sum T_d p_d(rho) = S (`estimate`).

Bounds: Clopper-Pearson bounds (Clopper & Pearson 1934) on the pooled share S / T at a
one-sided level, mapped to rho through pbar(rho) = sum T_d p_d(rho) / T, which increases
with rho. When r_d is the same every day this is the textbook conditional interval,
p = rho * A / (rho * A + B). When it is not (the rollout's share grows), S is a sum of
binomials with different p_d; Hoeffding (1956, Theorem 4) shows that its tails beyond one
count from the mean are no heavier than the binomial's with the same mean pbar, so the
bounds keep their level (they are conservative).

Overdispersion: when the days disagree with one another more than binomial chance
allows (Pearson's X^2 over the days, divided by its degrees of freedom, from 3 days on),
both counts are divided by that factor before the bounds are taken (the quasi-likelihood
adjustment: Williams 1982; McCullagh & Nelder 1989, §4.5). It only ever widens the bounds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .incomplete_beta import lower_quantile

# Days of data before their disagreement is taken as a measure of extra-Poisson noise:
# with fewer, X^2 has one degree of freedom and would widen the bounds at random.
MIN_DAYS_FOR_DISPERSION = 3


@dataclass(frozen=True)
class DayCounts:
    rolling_out_active: float  # > 0
    rolling_out_failing: float  # >= 0
    fallback_active: float  # > 0
    fallback_failing: float  # >= 0


class Strata:
    """The days that carry information (some failing device on either side)."""

    def __init__(self, days: Sequence[DayCounts]) -> None:
        kept = [d for d in days if d.rolling_out_failing + d.fallback_failing > 0.0]
        self.totals = [d.rolling_out_failing + d.fallback_failing for d in kept]
        self.log_exposure = [math.log(d.rolling_out_active / d.fallback_active) for d in kept]
        self.observed = [d.rolling_out_failing for d in kept]
        self.total = sum(self.totals)
        self.rolling_out = sum(self.observed)

    def expected_share(self, log_ratio: float) -> float:
        """pbar(rho): the rolling-out side's expected share of the failing devices."""
        return (
            sum(
                t * _sigmoid(log_ratio + e)
                for t, e in zip(self.totals, self.log_exposure, strict=True)
            )
            / self.total
        )

    def ratio_for_share(self, share: float) -> float:
        """The rho whose pbar is `share` (0 for 0, inf for 1)."""
        if share <= 0.0:
            return 0.0
        if share >= 1.0:
            return math.inf
        logit = math.log(share) - math.log1p(-share)
        lo, hi = logit - max(self.log_exposure), logit - min(self.log_exposure)
        t = (lo + hi) / 2.0
        for _ in range(200):
            gap = self.expected_share(t) - share
            if gap > 0.0:
                hi = t
            else:
                lo = t
            slope = (
                sum(
                    w * s * (1.0 - s)
                    for w, s in (
                        (w, _sigmoid(t + e))
                        for w, e in zip(self.totals, self.log_exposure, strict=True)
                    )
                )
                / self.total
            )
            step = gap / slope if slope > 0.0 else math.inf
            t = t - step if lo < t - step < hi else (lo + hi) / 2.0
            if abs(gap) < 1e-14 or hi - lo < 1e-13:
                break
        return math.exp(t)

    def dispersion(self, ratio: float) -> float:
        """Pearson's X^2 / (days - 1) against the fitted ratio, at least 1."""
        if len(self.totals) < MIN_DAYS_FOR_DISPERSION or not 0.0 < ratio < math.inf:
            return 1.0
        log_ratio = math.log(ratio)
        x2 = 0.0
        for t, e, n in zip(self.totals, self.log_exposure, self.observed, strict=True):
            p = _sigmoid(log_ratio + e)
            x2 += (n - t * p) ** 2 / (t * p * (1.0 - p))
        return max(1.0, x2 / (len(self.totals) - 1))


@dataclass(frozen=True)
class RatioFigures:
    estimate: float | None  # conditional MLE of rho; None without failing devices on either side
    dispersion: float  # >= 1


def estimate(days: Sequence[DayCounts]) -> RatioFigures:
    strata = Strata(days)
    if strata.total <= 0.0:
        return RatioFigures(None, 1.0)
    ratio = strata.ratio_for_share(strata.rolling_out / strata.total)
    return RatioFigures(ratio, strata.dispersion(ratio))


def lower_bound(days: Sequence[DayCounts], level: float, dispersion: float = 1.0) -> float:
    """rho's one-sided lower confidence bound at `level` (0 when nothing failed)."""
    strata = Strata(days)
    s, t = strata.rolling_out / dispersion, strata.total / dispersion
    if s <= 0.0:
        return 0.0
    return strata.ratio_for_share(lower_quantile(level, s, t - s + 1.0))


def upper_bound(days: Sequence[DayCounts], level: float, dispersion: float = 1.0) -> float:
    """rho's one-sided upper confidence bound at `level` (inf when the fallback never failed)."""
    strata = Strata(days)
    s, t = strata.rolling_out / dispersion, strata.total / dispersion
    if t - s <= 0.0:
        return math.inf
    return strata.ratio_for_share(1.0 - lower_quantile(level, t - s, s + 1.0))


def _sigmoid(t: float) -> float:
    if t >= 0.0:
        return 1.0 / (1.0 + math.exp(-t))
    z = math.exp(t)
    return z / (1.0 + z)
