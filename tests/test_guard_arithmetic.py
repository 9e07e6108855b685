"""The guard's arithmetic is right: its incomplete beta function and quantiles agree with
mpmath at 50 digits, and its Clopper-Pearson bounds hold their level (contract: Halt on
evidence, "a false halt is rare by construction").

The reference values were computed once with mpmath 1.3 (`mpmath.betainc(a, b, 0, x,
regularized=True)`, and its root by 200 bisections for the quantiles) and are written here,
so the test needs neither mpmath nor scipy.
"""

from __future__ import annotations

import math

import pytest

from halt_rollout.evidence import LOOK_LEVEL
from halt_rollout.incomplete_beta import lower_quantile, regularized_incomplete_beta
from halt_rollout.poisson_ratio import (
    VERSION_NOISE,
    DayCounts,
    estimate,
    lower_bound,
    upper_bound,
)

INCOMPLETE_BETA = [
    (0.5, 2.0, 3.0, 0.6875),
    (0.1, 0.5, 0.5, 0.20483276469913346),
    (0.9, 10.0, 2.5, 0.8121862743088557),
    (0.001, 0.3, 40.0, 0.41934500073498063),
    (0.02, 25.0, 1200.0, 0.48528075315474331),
    (0.5, 7.14285714285714, 12.5, 0.89314345008445108),
    (0.012, 70.0, 6300.0, 0.78540683589761568),
    (0.3, 1000.0, 1500.0, 1.1745693415060166e-26),
    (0.999, 3.0, 0.2, 0.66854148390108463),
]
QUANTILES = [
    (5.9523809523809524e-6, 25.0, 476.0, 0.017872475595041287),
    (5.9523809523809524e-6, 7.5, 3.25, 0.12145881564237918),
    (5.9523809523809524e-6, 1.0, 50.0, 1.1904796627120536e-7),
    (5.9523809523809524e-6, 700.0, 6301.0, 0.08498153567001149),
    (0.05, 0.4, 9.0, 4.763821838776376e-5),
    (1.0e-9, 3000.0, 20.0, 0.98047502000625568),
]


@pytest.mark.parametrize(("x", "a", "b", "expected"), INCOMPLETE_BETA)
def test_incomplete_beta_agrees_with_mpmath(x: float, a: float, b: float, expected: float) -> None:
    assert regularized_incomplete_beta(x, a, b) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(("level", "a", "b", "expected"), QUANTILES)
def test_beta_quantile_agrees_with_mpmath(
    level: float, a: float, b: float, expected: float
) -> None:
    assert lower_quantile(level, a, b) == pytest.approx(expected, rel=1e-8)


def test_incomplete_beta_closed_forms() -> None:
    """I_x(1, b) = 1 - (1-x)^b and I_x(a, 1) = x^a, for fractional parameters too."""
    for x in (1e-6, 0.01, 0.3, 0.77, 0.999):
        for p in (0.25, 1.0, 7.5, 300.0):
            assert regularized_incomplete_beta(x, 1.0, p) == pytest.approx(1 - (1 - x) ** p)
            assert regularized_incomplete_beta(x, p, 1.0) == pytest.approx(x**p)


def test_the_look_level_is_the_budget_shared_by_a_week_of_hourly_looks() -> None:
    assert pytest.approx(0.001) == LOOK_LEVEL * 7 * 24


def _days(*counts: tuple[float, float, float, float]) -> list[DayCounts]:
    return [DayCounts(*c) for c in counts]


def test_one_day_bounds_are_the_textbook_conditional_interval() -> None:
    """With one day (or the same exposure ratio every day), the bounds are Clopper-Pearson's
    on p = rho A / (rho A + B), mapped back: rho = p B / ((1 - p) A); the day's counts are
    first divided by the allowance for each version's own noise, D = 1 + 2 c^2 N F / T."""
    days = _days((1000, 30, 9000, 40))
    design = 1 + 2 * VERSION_NOISE**2 * 30 * 40 / 70
    n, f = 30 / design, 40 / design
    p_low = lower_quantile(LOOK_LEVEL, n, f + 1)
    assert lower_bound(days, LOOK_LEVEL) == pytest.approx(p_low * 9000 / ((1 - p_low) * 1000))
    p_high = 1 - lower_quantile(LOOK_LEVEL, f, n + 1)
    assert upper_bound(days, LOOK_LEVEL) == pytest.approx(p_high * 9000 / ((1 - p_high) * 1000))
    assert estimate(days) == pytest.approx((30 / 1000) / (40 / 9000))


def test_few_failing_devices_get_the_exact_test() -> None:
    """At a handful of failing devices the allowance for noise hardly counts: the bound is
    within a few percent of the exact conditional one (a 3% smaller count, at 6e-6)."""
    days = _days((1000, 4, 9000, 3))
    p_low = lower_quantile(LOOK_LEVEL, 4, 4)
    exact = p_low * 9000 / ((1 - p_low) * 1000)
    assert lower_bound(days, LOOK_LEVEL) == pytest.approx(exact, rel=0.15)


def test_a_large_apps_day_carries_no_more_than_its_own_noise_allows() -> None:
    """Ten times the failing devices on the same shares: Poisson alone would narrow the
    bounds about threefold; with each version's own day-to-day noise they narrow far less."""
    small, large = _days((10_000, 300, 90_000, 400)), _days((100_000, 3000, 900_000, 4000))
    ratio = estimate(small)
    assert ratio == pytest.approx(estimate(large))
    assert ratio is not None
    width_small = ratio / lower_bound(small, LOOK_LEVEL)
    width_large = ratio / lower_bound(large, LOOK_LEVEL)
    assert 1 < width_large < width_small
    assert width_large > math.exp(4.0 * math.sqrt(2) * VERSION_NOISE)


def test_a_day_that_touches_both_versions_cancels_out() -> None:
    """The rollout grows from 10% to 50% on the day an OS update triples every failure:
    pooled over the period the new version looks 1.7 times worse; day by day it fails
    exactly as often, and that is what the estimate says."""
    days = _days((1000, 10, 9000, 90), (1000, 10, 9000, 90), (5000, 150, 5000, 150))
    pooled = (170 / 7000) / (330 / 23000)
    assert pooled > 1.6
    assert estimate(days) == pytest.approx(1.0)
    assert lower_bound(days, LOOK_LEVEL) < 1.0 < upper_bound(days, LOOK_LEVEL)


def test_clopper_pearson_keeps_its_level_for_every_count() -> None:
    """The exact binomial check: for n trials at the true p, the probability that the
    lower bound at level 0.01 passes p is at most 0.01 (computed, not sampled)."""
    level, n = 0.01, 60
    for p in (0.02, 0.1, 0.35, 0.5, 0.8):
        missed = sum(
            math.comb(n, k) * p**k * (1 - p) ** (n - k)
            for k in range(1, n + 1)
            if lower_quantile(level, k, n - k + 1) > p
        )
        assert missed <= level
