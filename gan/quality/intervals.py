"""Confidence intervals and tests for proportions: a C2ST's held-out accuracy (gan/quality/metrics.py) and the
quiz's error rates (gan/quiz/scores.py) share them."""

from __future__ import annotations

import math

Z_95 = 1.959963984540054  # two-sided 95% quantile of the standard normal


def wilson_interval(proportion: float, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion observed over n trials."""
    centre = (proportion + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(proportion * (1 - proportion) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # At 0 or 1 the interval ends exactly there; rounding would leave it 1e-16 short.
    low = 0.0 if proportion <= 0 else max(0.0, centre - half)
    high = 1.0 if proportion >= 1 else min(1.0, centre + half)
    return low, high


def binomial_p_value(proportion: float, n: int) -> float:
    """P(accuracy >= the observed one) for a classifier that guesses (p = 0.5): normal approximation with
    continuity correction, accurate at the hundreds of images C2ST needs."""
    successes = round(proportion * n)
    z = (successes - 0.5 - n / 2) / math.sqrt(n / 4)
    return 0.5 * math.erfc(z / math.sqrt(2))
