"""Network-level evaluation (the paper's Table 4): random networks measured whole and predicted from bundles.

:func:`evaluate_networks` takes networks, their measured latencies and a :class:`~nas.latency.NetworkLatencyModel`.
The first ``n_calibration`` networks (the sample is random, so they are a random subset) fit the overhead
(:class:`~nas.latency.Calibration`); every metric is computed on the **other** networks only: Pearson r,
Spearman ρ (with its bootstrap 95 % interval), MAPE, ±5/±10 % accuracy, both for the raw Σ of block
predictions and calibrated (plus the 80 %-interval coverage of the calibrated distribution).
:func:`plot_evaluation` draws predicted against measured (raw and calibrated) to a PNG.

Example:
    >>> import numpy as np
    >>> from surrogates.metrics import spearman
    >>> r = EvaluationResult("demo", 3, 0, {"spearman": 1.0}, {"spearman": 1.0}, None, np.ones(3), np.ones(3),
    ...                      np.ones(3), np.ones(3), np.ones(3), np.zeros(3, dtype=bool))
    >>> r.as_dict()["calibrated"]["spearman"]
    1.0
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from nas.latency import Calibration, NetworkLatencyModel
from nas.network import Network, NetworkError
from profiler.files import atomic_write

__all__ = ["EvaluationResult", "evaluate_networks", "plot_evaluation"]


@dataclass
class EvaluationResult:
    space: str
    n_eval: int
    n_calibration: int
    raw: dict[str, float]
    calibrated: dict[str, float]
    calibration: Calibration | None
    measured_ms: np.ndarray
    raw_ms: np.ndarray
    calibrated_ms: np.ndarray
    lo_ms: np.ndarray
    hi_ms: np.ndarray
    used_for_calibration: np.ndarray

    def as_dict(self) -> dict[str, Any]:
        """JSON-able summary; the calibrated metrics are also at the top level (``spearman``, ``pearson``,
        ``mape``, ``acc10``)."""
        top = {k: self.calibrated.get(k) for k in ("spearman", "pearson", "mape", "acc10", "acc5", "coverage80")}
        return {"space": self.space, "n_networks": self.n_eval, "n_calibration": self.n_calibration, **top,
                "calibrated": self.calibrated, "raw": self.raw,
                "calibration": asdict(self.calibration) if self.calibration else None}


def _metrics(y: np.ndarray, pred: np.ndarray, log_mean: np.ndarray | None = None,
             log_std: np.ndarray | None = None) -> dict[str, float]:
    from surrogates.metrics import evaluate
    from surrogates.models import LogLatencyDist

    if log_mean is not None and log_std is not None:
        m = evaluate(y, LogLatencyDist(log_mean, np.maximum(log_std, 1e-12)), ci=True)
    else:
        m = evaluate(y, pred, ci=True)
    keep = ("n", "spearman", "spearman_lo", "spearman_hi", "pearson", "kendall", "mape", "acc5", "acc10",
            "coverage80")
    return {k: float(m[k]) for k in keep if k in m}


def evaluate_networks(model: NetworkLatencyModel, networks: list[Network], measured_ms: np.ndarray, *,
                      n_calibration: int = 10, space: str = "") -> EvaluationResult:
    """Calibrate on the first ``n_calibration`` networks, score raw and calibrated on the rest (docstring)."""
    y = np.asarray(measured_ms, dtype=float)
    if len(y) != len(networks):
        raise NetworkError(f"{len(networks)} networks but {len(y)} measured latencies")
    ok = np.isfinite(y) & (y > 0)
    idx = np.flatnonzero(ok)
    if int(n_calibration) < 0:
        raise NetworkError(f"n_calibration={n_calibration!r} is not allowed: expected 0 or more")
    cal_idx, ev_idx = idx[: int(n_calibration)], idx[int(n_calibration):]
    if len(ev_idx) < 3:
        raise NetworkError(f"{len(ev_idx)} measured networks are left to evaluate after {len(cal_idx)} for "
                           "calibration: need at least 3")
    base = NetworkLatencyModel(model.predictors)
    raw = base.predict_dist(networks)
    calibration = base.calibrate([networks[i] for i in cal_idx], y[cal_idx]) if len(cal_idx) else None
    cal = base.predict_dist(networks)
    used = np.zeros(len(networks), dtype=bool)
    used[cal_idx] = True
    res = EvaluationResult(space, len(ev_idx), len(cal_idx), _metrics(y[ev_idx], raw.median_ms[ev_idx]),
                           _metrics(y[ev_idx], cal.median_ms[ev_idx], cal.log_mean[ev_idx], cal.log_std[ev_idx]),
                           calibration, y, raw.median_ms, cal.median_ms, *cal.interval(0.8), used)
    if calibration is not None:
        model.calibration = calibration
    return res


def plot_evaluation(result: EvaluationResult, path: str | os.PathLike[str]) -> str:
    """Predicted against measured latency, raw Σ and calibrated, on the evaluation networks (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ev = ~result.used_for_calibration & np.isfinite(result.measured_ms)
    y = result.measured_ms[ev]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6), sharex=True, sharey=True)
    for ax, pred, title, m in ((axes[0], result.raw_ms[ev], "Σ block predictions (raw)", result.raw),
                               (axes[1], result.calibrated_ms[ev], "calibrated", result.calibrated)):
        if ax is axes[1]:
            ax.errorbar(y, pred, yerr=[pred - result.lo_ms[ev], result.hi_ms[ev] - pred], fmt="none",
                        ecolor="tab:blue", alpha=0.15, lw=1)
        ax.scatter(y, pred, s=10, alpha=0.7)
        lo, hi = float(min(y.min(), pred.min())), float(max(y.max(), pred.max()))
        xs = np.array([lo, hi])
        ax.plot(xs, xs, "k--", lw=1)
        ax.fill_between(xs, xs * 0.9, xs * 1.1, color="grey", alpha=0.15, label="±10 %")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("measured latency (ms)")
        ax.set_title(f"{title}\nρ {m['spearman']:.3f}, r {m['pearson']:.3f}, MAPE {m['mape']:.1f} %, "
                     f"±10 % {100 * m['acc10']:.0f} %", fontsize=9)
        ax.legend(loc="upper left", fontsize=8)
    axes[0].set_ylabel("predicted latency (ms)")
    fig.suptitle(f"{result.space}: {result.n_eval} networks (calibration on {result.n_calibration} others)")
    fig.tight_layout()
    out = os.fspath(path)
    with atomic_write(out, "wb") as fh:
        fig.savefig(fh, format="png", dpi=110)
    plt.close(fig)
    return out
