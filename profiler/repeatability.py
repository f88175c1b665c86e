"""How a measurement repeats itself: the same blocks measured twice, and how often the two agree.

The measure of agreement behind both the noise ceiling (:mod:`acquisition.noise`: stored measurements measured
again in a fresh process) and the doctor's probe (:mod:`profiler.doctor`: one set of blocks measured in two fresh
workers). No model can predict a measurement more closely than the measurement repeats itself.

Example:
    >>> import numpy as np
    >>> c = ceiling_of(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.05, 2.0, 3.6, 4.1]))
    >>> c.n, c.within10, round(c.worst_diff, 2), c.spearman
    (4, 0.75, 0.2, 1.0)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["NoiseCeiling", "NoiseError", "ceiling_of", "relative_difference"]


class NoiseError(ValueError):
    """Nothing to compare (or re-measure), or a bad argument."""


@dataclass(frozen=True)
class NoiseCeiling:
    """How a family's measurements repeat in a fresh process (relative differences, 0.05 = 5 %)."""

    n: int
    within10: float  # share of configurations whose two measurements agree within ±10 %
    within5: float
    median_diff: float
    worst_diff: float
    spearman: float

    def describe(self) -> str:
        return (f"the measurement itself repeats within +-10 % for {100 * self.within10:.1f} % of {self.n} "
                f"re-measured blocks (median difference {100 * self.median_diff:.1f} %, worst "
                f"{100 * self.worst_diff:.0f} %)")

    def as_dict(self) -> dict[str, float]:
        return {"noise_n": self.n, "noise_acc10": self.within10, "noise_acc5": self.within5,
                "noise_median_diff": self.median_diff, "noise_worst_diff": self.worst_diff,
                "noise_spearman": self.spearman}


def relative_difference(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """|second / first - 1|: the same measure as a prediction's error against a measurement."""
    a, b = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    return np.abs(b / a - 1.0)


def ceiling_of(first: np.ndarray, second: np.ndarray) -> NoiseCeiling:
    """The :class:`NoiseCeiling` of paired measurements (the first as reference, like a test label)."""
    d = relative_difference(first, second)
    if d.size == 0:
        raise NoiseError("no re-measured pairs to compare")
    return NoiseCeiling(int(d.size), float(np.mean(d <= 0.1 + 1e-12)), float(np.mean(d <= 0.05 + 1e-12)),
                        float(np.median(d)), float(np.max(d)),
                        _spearman(first, second) if d.size > 2 else float("nan"))


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho; nan when either side is constant (as :func:`surrogates.metrics.spearman`)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    value = stats.spearmanr(a, b).statistic
    return float(value) if np.isfinite(value) else float("nan")
