"""The predictive distribution every latency model returns, and the parameter check they share.

Both live apart from :mod:`surrogates.models` so that a bundle's lean predictor (:mod:`surrogates.lean`) uses
them without importing scikit-learn.

Example:
    >>> import numpy as np
    >>> d = LogLatencyDist(mean=np.log(np.array([2.0, 4.0])), std=np.array([0.1, 0.2]))
    >>> [round(float(v), 3) for v in d.interval(0.8)[1]]
    [2.273, 5.169]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np

__all__ = ["LogLatencyDist", "check_range"]

_NORMAL = NormalDist()  # its inv_cdf is scipy's ndtri (the same algorithm, AS241), without importing scipy


def check_range(name: str, value: object, *, low: float | None = None, high: float | None = None,
                integer: bool = False, low_open: bool = False, high_open: bool = False) -> None:
    """Raise ``ValueError`` naming the parameter and its allowed range when ``value`` is outside it."""
    ok = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
    if ok and integer:
        ok = float(value).is_integer()  # type: ignore[arg-type]
    if ok:
        v = float(value)  # type: ignore[arg-type]
        ok = np.isfinite(v)
        if ok and low is not None:
            ok = v > low if low_open else v >= low
        if ok and high is not None:
            ok = v < high if high_open else v <= high
    if not ok:
        lo = "" if low is None else f"{low} {'<' if low_open else '<='} "
        hi = "" if high is None else f" {'<' if high_open else '<='} {high}"
        what = "an integer" if integer else "a number"
        raise ValueError(f"{name}={value!r} is not allowed: expected {what} with {lo}{name}{hi}")


@dataclass(frozen=True)
class LogLatencyDist:
    """Predictive distribution of log-latency for n inputs.

    ``mean`` and ``std`` are arrays of shape (n,); ``quantiles`` maps a level in (0, 1) to an array of
    log-latency quantiles (present when the model predicts them natively, e.g. quantile gradient boosting).
    ``epistemic`` (shape (n,), or None for a model without a committee) is the part of ``std`` that comes from
    what the model does not know; ``noise`` is the rest, or, for a model fitted with ``sample_noise``, the
    measured noise it learned per input (``aleatoric``; see the module docstring).
    """

    mean: np.ndarray
    std: np.ndarray
    quantiles: dict[float, np.ndarray] = field(default_factory=dict)
    epistemic: np.ndarray | None = None
    aleatoric: np.ndarray | None = None

    @property
    def noise(self) -> np.ndarray:
        """The measurement noise per input when the model learned it (``aleatoric``), else the part of ``std``
        that is not epistemic (all of it for a model without an epistemic part)."""
        if self.aleatoric is not None:
            return self.aleatoric
        if self.epistemic is None:
            return self.std
        return np.sqrt(np.maximum(self.std**2 - self.epistemic**2, 0.0))

    @property
    def latency(self) -> np.ndarray:
        """Point prediction in latency units: ``exp(mean)`` (the median of a log-normal)."""
        return np.exp(self.mean)

    def quantile(self, level: float) -> np.ndarray:
        """Log-latency quantile at ``level``: native when available, else from a normal of ``mean``/``std``."""
        check_range("level", level, low=0.0, high=1.0, low_open=True, high_open=True)
        for q, v in self.quantiles.items():
            if abs(q - level) < 1e-9:
                return v
        return self.mean + _NORMAL.inv_cdf(level) * self.std

    def interval(self, coverage: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
        """Central interval of latency (not log) holding ``coverage`` of the predictive mass."""
        check_range("coverage", coverage, low=0.0, high=1.0, low_open=True, high_open=True)
        a = (1.0 - coverage) / 2
        return np.exp(self.quantile(a)), np.exp(self.quantile(1.0 - a))
