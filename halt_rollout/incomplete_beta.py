"""The regularized incomplete beta function and its inverse, for the guard's test.

I_x(a, b) is the beta distribution's CDF; the binomial's tails and Clopper-Pearson's
bounds are made of it: P(Bin(n, p) >= k) = I_p(k, n - k + 1). The guard needs it for
fractional counts (the Store's device counts are not integers), where the beta form is
the natural extension.

Written out here (a few dozen lines of the standard arithmetic) rather than taken from
scipy, which would more than fill the action's 40 MB install budget on its own:
- I_x(a, b) by its continued fraction, evaluated with the modified Lentz method
  (Press, Teukolsky, Vetterling & Flannery, *Numerical Recipes*, 3rd ed., 2007, §6.4
  and §5.2; Lentz 1976), on the side of the mean where it converges fast, with the
  symmetry I_x(a, b) = 1 - I_{1-x}(b, a) for the other side;
- the inverse by Newton's method on log I, kept inside a bracket that bisection
  shrinks whenever a Newton step would leave it (so it always converges).
Checked against values computed with mpmath at 50 digits (tests/test_guard_arithmetic.py).
"""

from __future__ import annotations

import math

_TINY = 1e-300
_EPS = 1e-15
_MAX_TERMS = 10_000


def _continued_fraction(x: float, a: float, b: float) -> float:
    """The continued fraction of I_x(a, b) (modified Lentz); fast for x < (a+1)/(a+b+2)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    tiny, big = _TINY, 1.0 / _TINY
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / d if d > tiny or d < -tiny else big
    h = d
    for m in range(1, _MAX_TERMS):
        m2 = m + m
        # Even step, then odd step; a denominator that vanishes is replaced by a tiny one.
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / d if d > tiny or d < -tiny else big
        c = 1.0 + aa / c
        if -tiny < c < tiny:
            c = tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / d if d > tiny or d < -tiny else big
        c = 1.0 + aa / c
        if -tiny < c < tiny:
            c = tiny
        delta = d * c
        h *= delta
        if -_EPS < delta - 1.0 < _EPS:
            return h
    raise ArithmeticError(f"incomplete beta did not converge (x={x}, a={a}, b={b})")


def _log_front(x: float, a: float, b: float) -> float:
    """log of x^a (1-x)^b / B(a, b)."""
    return (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )


def log_lower_tail(x: float, a: float, b: float) -> float:
    """log I_x(a, b), accurate in the lower tail (where I is tiny); a, b > 0."""
    if x <= 0.0:
        return -math.inf
    if x >= 1.0:
        return 0.0
    if x < (a + 1.0) / (a + b + 2.0):
        return _log_front(x, a, b) + math.log(_continued_fraction(x, a, b) / a)
    upper = math.exp(_log_front(x, a, b)) * _continued_fraction(1.0 - x, b, a) / b
    return math.log1p(-upper) if upper < 1.0 else -math.inf


def regularized_incomplete_beta(x: float, a: float, b: float) -> float:
    """I_x(a, b) for 0 <= x <= 1 and a, b > 0."""
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_lower_tail(x, a, b))
    return 1.0 - math.exp(log_lower_tail(1.0 - x, b, a))


def lower_quantile(level: float, a: float, b: float) -> float:
    """The x with I_x(a, b) = level, for a small level (0 < level < 0.5); a, b > 0.

    Newton on log I against u = log x (d log I / du = x times the beta density over I),
    safeguarded by a bracket [lo, hi] of u that always holds the root: a step that would
    leave it bisects instead (or, with no lower end yet, divides x by e^10).
    """
    target = math.log(level)
    # Start from the normal approximation on the logit scale (log of a ratio of two gamma
    # variables), about 2% off in the tails the guard uses: Newton then needs 2 or 3 steps.
    a_start, b_start = max(a - 0.5, a / 2, 1e-150), max(b - 0.5, b / 2, 1e-150)
    shift = _normal_upper_quantile(level) * math.sqrt(1.0 / a_start + 1.0 / b_start)
    u = -math.log1p(b_start / a_start * math.exp(min(shift, 700.0)))
    lo, hi = -math.inf, 0.0
    log_beta = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    for _ in range(400):
        x = math.exp(u)
        value = log_lower_tail(x, a, b)
        gap = value - target
        if gap > 0.0:
            hi = u
        else:
            lo = u
        if abs(gap) < 1e-11 or hi - lo < 1e-14:
            return x
        log_slope = a * u + (b - 1.0) * math.log1p(-x) - log_beta - value
        slope = math.exp(log_slope) if log_slope > -700.0 else 0.0
        candidate = u - gap / slope if slope > 0.0 else math.nan
        if not lo < candidate < hi:
            candidate = hi - 10.0 if lo == -math.inf else (lo + hi) / 2.0
        elif abs(candidate - u) < 1e-10:  # quadratic convergence: this step is the last
            return math.exp(candidate)
        u = candidate
    return math.exp(u)


def _normal_upper_quantile(level: float) -> float:
    """z with P(Z > z) = level, to about 4.5e-4 (Abramowitz & Stegun 26.2.23): a start."""
    t = math.sqrt(-2.0 * math.log(level))
    return t - (2.515517 + 0.802853 * t + 0.010328 * t * t) / (
        1.0 + 1.432788 * t + 0.189269 * t * t + 0.001308 * t * t * t
    )
