"""A/B statistics for click-through rates, in pure Python (``math`` and ``statistics`` only).

Reads nothing, writes nothing: functions of counts (successes out of trials). Used by the query
API's experiment endpoint, one call per (variant, control) pair.

* :func:`two_proportion_z_test`: two-sided z-test of p2 - p1 (pooled standard error under H0 by
  default; ``pooled=False`` gives the Wald test with the unpooled error).
* :func:`wilson_interval`: Wilson score interval of one proportion (good at small counts and near
  0 or 1, unlike the normal interval); :func:`normal_interval` is the plain Wald interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

_SQRT2 = math.sqrt(2.0)
_STANDARD_NORMAL = NormalDist()


def normal_cdf(x: float) -> float:
    """P(Z <= x) for a standard normal Z."""
    return 0.5 * math.erfc(-x / _SQRT2)


def two_sided_p(z: float) -> float:
    """P(|Z| >= |z|) for a standard normal Z."""
    return math.erfc(abs(z) / _SQRT2)


def z_critical(confidence: float = 0.95) -> float:
    """The z with P(-z <= Z <= z) = confidence (1.959964... for 0.95): the normal quantile."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return _STANDARD_NORMAL.inv_cdf(1.0 - (1.0 - confidence) / 2.0)


def _check(successes: int, trials: int) -> None:
    if trials < 0 or successes < 0:
        raise ValueError(f"counts must be >= 0, got {successes}/{trials}")
    if successes > trials:
        raise ValueError(f"successes {successes} exceed trials {trials}")


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float] | None:
    """Wilson score interval of successes/trials; None without trials."""
    _check(successes, trials)
    if trials == 0:
        return None
    z = z_critical(confidence)
    p = successes / trials
    z2n = z * z / trials
    centre = (p + z2n / 2.0) / (1.0 + z2n)
    half = z * math.sqrt(p * (1.0 - p) / trials + z2n / (4.0 * trials)) / (1.0 + z2n)
    # At 0 successes the lower bound is exactly 0 (centre == half), at all successes the upper
    # is exactly 1; in floats the difference can come out as +-1e-17, so the ends are set.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


def normal_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float] | None:
    """Wald (normal approximation) interval p +- z sqrt(p(1-p)/n), clipped to [0, 1]; None without trials."""
    _check(successes, trials)
    if trials == 0:
        return None
    z = z_critical(confidence)
    p = successes / trials
    half = z * math.sqrt(p * (1.0 - p) / trials)
    return max(0.0, p - half), min(1.0, p + half)


@dataclass(frozen=True)
class ZTest:
    p1: float
    p2: float
    diff: float  # p2 - p1
    lift: float | None  # (p2 - p1) / p1; None when p1 is 0
    z: float
    p_value: float
    diff_ci: tuple[float, float]  # Wald interval of p2 - p1 (unpooled error)


def two_proportion_z_test(
    x1: int, n1: int, x2: int, n2: int, *, pooled: bool = True, confidence: float = 0.95
) -> ZTest | None:
    """Two-sided z-test of H0: p1 = p2 for x1/n1 (control) against x2/n2; None if a side has no trials.

    With ``pooled`` (the default, the usual test of H0) the standard error uses the pooled rate
    (x1 + x2) / (n1 + n2); otherwise the unpooled sqrt(p1(1-p1)/n1 + p2(1-p2)/n2). When the error
    is 0 (both rates 0, or both 1) the rates cannot differ: z = 0, p = 1.
    """
    _check(x1, n1)
    _check(x2, n2)
    if n1 == 0 or n2 == 0:
        return None
    p1, p2 = x1 / n1, x2 / n2
    diff = p2 - p1
    unpooled_se = math.sqrt(p1 * (1.0 - p1) / n1 + p2 * (1.0 - p2) / n2)
    if pooled:
        p = (x1 + x2) / (n1 + n2)
        se = math.sqrt(p * (1.0 - p) * (1.0 / n1 + 1.0 / n2))
    else:
        se = unpooled_se
    z = diff / se if se > 0 else 0.0
    p_value = two_sided_p(z) if se > 0 else 1.0
    half = z_critical(confidence) * unpooled_se
    return ZTest(
        p1=p1,
        p2=p2,
        diff=diff,
        lift=diff / p1 if p1 > 0 else None,
        z=z,
        p_value=p_value,
        diff_ci=(diff - half, diff + half),
    )
