"""Statistics over seeds: distribution-free intervals for medians, and censored samples-to-target."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.stats import quantile_test

__all__ = ["median_ci", "quantile_band"]


def median_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Median and its distribution-free confidence interval from order statistics
    (:func:`scipy.stats.quantile_test`'s interval for the 0.5 quantile).

    The interval ``[x_(j), x_(n-j+1)]`` with the largest ``j`` such that ``P(Bin(n, 1/2) < j) <= (1 - level)/2``
    covers the population median with probability at least ``level`` for any continuous distribution. Values
    may be ``inf`` (a censored run: the target not reached within the budget); with fewer than 6 values the
    interval at 95 % cannot be bounded and is reported as the whole range. Returns ``(median, lo, hi)``; NaNs for
    no values.

    >>> median_ci([5, 1, 4, 2, 3, 9, 8, 7, 6, 10])
    (5.5, 2.0, 9.0)
    """
    x = np.sort(np.asarray([v for v in values if not (isinstance(v, float) and math.isnan(v))], dtype=float))
    n = len(x)
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    med = float(np.median(x)) if np.isfinite(x).all() else _median_with_inf(x)
    ci = quantile_test(x, q=med if math.isfinite(med) else x[0], p=0.5).confidence_interval(level)
    # unbounded (too few values for the level): the range; an infinite upper end is a censored run's
    lo = float(ci.low) if math.isfinite(ci.low) else float(x[0])
    hi = float(ci.high) if math.isfinite(ci.high) else float(x[-1])
    return med, lo, hi


def _median_with_inf(x: np.ndarray) -> float:
    n = len(x)
    mid = (x[(n - 1) // 2], x[n // 2])
    return float("inf") if math.isinf(mid[0]) or math.isinf(mid[1]) else float(sum(mid) / 2)


def quantile_band(values: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Column-wise :func:`median_ci` of a (seeds x points) array (NaN cells ignored)."""
    out = np.full((3, values.shape[1]), np.nan)
    for j in range(values.shape[1]):
        col = values[:, j]
        col = col[~np.isnan(col)]
        if len(col):
            out[:, j] = median_ci(col, level)
    return out[0], out[1], out[2]
