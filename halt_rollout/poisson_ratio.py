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

Noise beyond Poisson that touches one version only (its own day-to-day swings) would make
a large app's counts look far more precise than they are: at thousands of failing devices
a day, Poisson noise is a few percent while a version's own share can swing by ten. So
each day is taken to carry, on top of Poisson, a swing of each version's own failing share
of log-sd VERSION_NOISE: the log of the day's ratio then has variance
1/N_d + 1/F_d + 2 c^2 instead of 1/N_d + 1/F_d, and both of the day's counts are divided
by the same factor D_d = 1 + 2 c^2 N_d F_d / T_d (the quasi-likelihood device with a known
dispersion: McCullagh & Nelder 1989, §4.5), which keeps the day's split and shrinks its
weight. For small counts D_d is about 1 and the test is the exact one above; for large
ones the day's evidence is capped near what such noise allows. No factor is estimated
from the data: a version that turns bad on one day would look like noise to it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .incomplete_beta import lower_quantile

# The day-to-day swing (log-sd) of one version's own failing share, beyond Poisson, that
# the bounds allow for (docs/guard.md, "Noise beyond Poisson").
VERSION_NOISE = 0.1


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
        self.totals: list[float] = []
        self.observed: list[float] = []
        for d in kept:
            total = d.rolling_out_failing + d.fallback_failing
            design = (
                1.0 + 2.0 * VERSION_NOISE**2 * d.rolling_out_failing * d.fallback_failing / total
            )
            self.totals.append(total / design)
            self.observed.append(d.rolling_out_failing / design)
        self.log_exposure = [math.log(d.rolling_out_active / d.fallback_active) for d in kept]
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
        """The rho whose pbar is `share` (0 for 0, inf for 1).

        Newton on log rho from the pooled answer, inside a bracket that bisection keeps:
        pbar is a weighted mean of logistic curves, so the root lies between the logit
        of `share` shifted by the smallest and by the largest log exposure ratio.
        """
        if share <= 0.0:
            return 0.0
        if share >= 1.0:
            return math.inf
        logit = math.log(share) - math.log1p(-share)
        lo, hi = logit - max(self.log_exposure), logit - min(self.log_exposure)
        if hi - lo < 1e-12:  # the same exposure ratio every day: the textbook closed form
            return math.exp(logit - self.log_exposure[0])
        pairs = list(zip(self.totals, self.log_exposure, strict=True))
        t = logit - sum(w * e for w, e in pairs) / self.total
        for _ in range(200):
            value = slope = 0.0
            for w, e in pairs:
                p = _sigmoid(t + e)
                value += w * p
                slope += w * p * (1.0 - p)
            gap = value / self.total - share
            if gap > 0.0:
                hi = t
            else:
                lo = t
            if abs(gap) < 1e-14 or hi - lo < 1e-13:
                break
            step = gap * self.total / slope if slope > 0.0 else math.inf
            t = t - step if lo < t - step < hi else (lo + hi) / 2.0
        return math.exp(t)


def estimate(days: Sequence[DayCounts]) -> float | None:
    """rho's conditional MLE; None when no device failed on either side."""
    strata = Strata(days)
    if strata.total <= 0.0:
        return None
    return strata.ratio_for_share(strata.rolling_out / strata.total)


def lower_bound(days: Sequence[DayCounts], level: float) -> float:
    """rho's one-sided lower confidence bound at `level` (0 when nothing failed)."""
    strata = Strata(days)
    s, t = strata.rolling_out, strata.total
    if s <= 0.0:
        return 0.0
    return strata.ratio_for_share(lower_quantile(level, s, t - s + 1.0))


def upper_bound(days: Sequence[DayCounts], level: float) -> float:
    """rho's one-sided upper confidence bound at `level` (inf when the fallback never failed)."""
    strata = Strata(days)
    s, t = strata.rolling_out, strata.total
    if t - s <= 0.0:
        return math.inf
    return strata.ratio_for_share(1.0 - lower_quantile(level, t - s, s + 1.0))


def _sigmoid(t: float) -> float:
    if t >= 0.0:
        return 1.0 / (1.0 + math.exp(-t))
    z = math.exp(t)
    return z / (1.0 + z)
