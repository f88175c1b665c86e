"""Metrics of latency predictions and of their predictive distributions (docs/design.md §4).

Point metrics take measured and predicted latencies (same unit); distribution metrics take the measured
latencies and a :class:`~surrogates.models.LogLatencyDist`. :func:`evaluate` computes them all at once.

- ``spearman`` (ρ) and ``kendall`` (τ-b): rank correlations, tie-aware (average ranks / τ-b);
- ``pearson`` (r) on latencies; ``mape`` (%), ``rmse`` (latency units);
- ``acc5`` / ``acc10``: share of predictions within ±5 % / ±10 % of the measurement;
- ``coverage80``: share of measurements inside the central 80 % predictive interval;
- ``nll``: mean negative log-likelihood of log-latency under the predictive normal (lower is better; it is the
  log-normal NLL of latency minus the mean log-latency, so it does not depend on the latency unit's scale
  beyond a shift);
- ``spearman_ci``: a bootstrap confidence interval for ρ (BCa, paired resampling).

Example:
    >>> import numpy as np
    >>> y = np.array([1.0, 2.0, 3.0, 4.0]); p = np.array([1.1, 1.9, 3.3, 3.9])
    >>> round(spearman(y, p), 3), round(accuracy_within(y, p, 0.1), 2)
    (1.0, 1.0)
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
from scipy import stats

from surrogates.models._base import LogLatencyDist, check_range

__all__ = [
    "accuracy_within",
    "coverage",
    "evaluate",
    "gaussian_nll",
    "kendall",
    "mape",
    "pearson",
    "rmse",
    "spearman",
    "spearman_ci",
]


def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true, dtype=float).ravel()
    p = np.asarray(y_pred, dtype=float).ravel()
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in length ({t.size} vs {p.size})")
    if t.size == 0:
        raise ValueError("no values to score (y_true is empty)")
    return t, p


def _correlation(test, y_true, y_pred) -> float:
    """``test(t, p).statistic``; nan (not a warning-laden crash) when either side is constant or too short."""
    t, p = _pair(y_true, y_pred)
    if t.size < 2 or np.ptp(t) == 0 or np.ptp(p) == 0:
        return float("nan")
    value = test(t, p).statistic
    return float(value) if np.isfinite(value) else float("nan")


def spearman(y_true, y_pred) -> float:
    """Spearman's ρ (average ranks for ties); nan when either side is constant."""
    return _correlation(stats.spearmanr, y_true, y_pred)


def kendall(y_true, y_pred) -> float:
    """Kendall's τ-b (accounts for ties on both sides)."""
    return _correlation(lambda t, p: stats.kendalltau(t, p, variant="b"), y_true, y_pred)


def pearson(y_true, y_pred) -> float:
    return _correlation(stats.pearsonr, y_true, y_pred)


def mape(y_true, y_pred) -> float:
    """Mean absolute percentage error, in percent."""
    t, p = _pair(y_true, y_pred)
    if np.any(t <= 0):
        raise ValueError("mape needs positive measured latencies")
    return float(np.mean(np.abs(p / t - 1.0)) * 100.0)


def rmse(y_true, y_pred) -> float:
    t, p = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((p - t) ** 2)))


def accuracy_within(y_true, y_pred, tolerance: float = 0.1) -> float:
    """Share (0..1) of predictions within ``tolerance`` (relative) of the measurement."""
    check_range("tolerance", tolerance, low=0.0, low_open=True)
    t, p = _pair(y_true, y_pred)
    return float(np.mean(np.abs(p / t - 1.0) <= tolerance + 1e-12))


def coverage(y_true, dist: LogLatencyDist, level: float = 0.8) -> float:
    """Share of measurements inside the central ``level`` predictive interval."""
    t = np.asarray(y_true, dtype=float).ravel()
    lo, hi = dist.interval(level)
    return float(np.mean((t >= lo) & (t <= hi)))


def gaussian_nll(y_true, dist: LogLatencyDist) -> float:
    """Mean negative log-likelihood of log(y_true) under N(mean, std)."""
    z = np.log(np.asarray(y_true, dtype=float).ravel())
    return float(-np.mean(stats.norm.logpdf(z, loc=dist.mean, scale=dist.std)))


def _resampled_spearman(t: np.ndarray, p: np.ndarray):
    """Spearman's ρ of paired resamples given as index arrays (``..., m``), vectorised over the leading axes.

    Re-ranking every resample costs a sort per resample; instead each resample is its multiplicity vector over
    the original pairs, and the average rank (ties of the resample included) of each distinct value is the count
    of resampled values below it plus half its own count + 1/2. ρ is then the multiplicity-weighted Pearson
    correlation of those ranks — exactly ``scipy.stats.spearmanr`` of the resample.
    """
    n = t.size
    groups = [np.unique(v, return_inverse=True)[1].ravel() for v in (t, p)]
    sizes = [int(g.max()) + 1 for g in groups]

    def stat(idx: np.ndarray, axis: int = -1) -> np.ndarray:
        idx = np.moveaxis(np.asarray(idx), axis, -1)
        lead, m = idx.shape[:-1], idx.shape[-1]
        flat = idx.reshape(-1, m).astype(np.intp)
        b = flat.shape[0]
        rows = np.arange(b)[:, None]
        counts = np.bincount((flat + n * rows).ravel(), minlength=b * n).reshape(b, n).astype(float)
        ranks = []
        for g, size in zip(groups, sizes, strict=True):
            per_value = np.bincount((g[None, :] + size * rows).ravel(), weights=counts.ravel(),
                                    minlength=b * size).reshape(b, size)
            avg = np.cumsum(per_value, axis=1) - per_value + (per_value + 1.0) / 2.0
            ranks.append(avg[:, g])
        rt, rp = ranks
        rt = rt - (counts * rt).sum(axis=1, keepdims=True) / m
        rp = rp - (counts * rp).sum(axis=1, keepdims=True) / m
        den = np.sqrt((counts * rt * rt).sum(axis=1) * (counts * rp * rp).sum(axis=1))
        with np.errstate(invalid="ignore", divide="ignore"):
            r = (counts * rt * rp).sum(axis=1) / den
        return r.reshape(lead)

    return stat


def spearman_ci(y_true, y_pred, *, confidence: float = 0.95, n_resamples: int = 1000,
                seed: int | None = 0) -> tuple[float, float]:
    """Bootstrap confidence interval (paired, BCa) for Spearman's ρ (``scipy.stats.bootstrap`` on resampled
    pair indices, with a vectorised ρ of each resample)."""
    check_range("confidence", confidence, low=0.0, high=1.0, low_open=True, high_open=True)
    check_range("n_resamples", n_resamples, low=10, integer=True)
    t, p = _pair(y_true, y_pred)
    if t.size < 3:
        return float("nan"), float("nan")
    stat = _resampled_spearman(t, p)
    idx = np.arange(t.size)
    with warnings.catch_warnings():  # BCa on (near-)perfect ranks warns, then returns nan: handled below
        warnings.simplefilter("ignore")
        res = stats.bootstrap((idx,), stat, vectorized=True, confidence_level=confidence,
                              n_resamples=int(n_resamples), method="bca", random_state=seed)
        lo, hi = res.confidence_interval
        if not (np.isfinite(lo) and np.isfinite(hi)):  # BCa degenerates on (near-)perfect ranks: percentile
            res = stats.bootstrap((idx,), stat, vectorized=True, confidence_level=confidence,
                                  n_resamples=int(n_resamples), method="percentile", random_state=seed)
            lo, hi = res.confidence_interval
    return float(lo), float(hi)


def evaluate(y_true, dist_or_pred: LogLatencyDist | np.ndarray, *, ci: bool = False) -> dict[str, float]:
    """All metrics of predictions (an array of latencies) or of a predictive distribution.

    With a distribution, the point prediction is its median ``exp(mean)`` and ``coverage80`` and ``nll`` are
    added. ``ci`` adds ``spearman_lo``/``spearman_hi`` (95 % bootstrap interval).
    """
    dist = dist_or_pred if isinstance(dist_or_pred, LogLatencyDist) else None
    pred = dist.latency if dist is not None else np.asarray(dist_or_pred, dtype=float)
    t, p = _pair(y_true, pred)
    out = {"n": float(t.size), "spearman": spearman(t, p), "kendall": kendall(t, p), "pearson": pearson(t, p),
           "mape": mape(t, p), "rmse": rmse(t, p), "acc5": accuracy_within(t, p, 0.05),
           "acc10": accuracy_within(t, p, 0.10)}
    if dist is not None:
        out["coverage80"] = coverage(t, dist, 0.8)
        out["nll"] = gaussian_nll(t, dist)
        err = np.abs(dist.mean - np.log(t))
        out["sigma_error_spearman"] = spearman(err, dist.std) if np.ptp(dist.std) > 0 else float("nan")
    if ci:
        out["spearman_lo"], out["spearman_hi"] = spearman_ci(t, p)
    return out


def format_metrics(m: Mapping[str, float]) -> str:
    """One line for the CLI: ρ, τ, MAPE, ±10 %, coverage."""
    parts = [f"rho={m['spearman']:.4f}", f"tau={m['kendall']:.4f}", f"MAPE={m['mape']:.2f}%",
             f"acc10={100 * m['acc10']:.1f}%", f"acc5={100 * m['acc5']:.1f}%"]
    if "coverage80" in m:
        parts.append(f"cov80={100 * m['coverage80']:.1f}%")
    if "spearman_lo" in m:
        parts.append(f"rho95%=[{m['spearman_lo']:.4f}, {m['spearman_hi']:.4f}]")
    return "  ".join(parts)
