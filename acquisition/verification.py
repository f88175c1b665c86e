"""Verification: what a campaign knows about its model's accuracy on configurations it has never measured.

**Prequential evidence** (:func:`prequential_evidence`). When an iteration queries its batch, the model fitted
at that iteration predicts every configuration of the batch *before* it is measured, and the prediction is
stored with the ask (``campaign_asks.pred_log``, and ``pred_n``: how many training rows that model had). Once the
batch is measured, each randomly drawn row of it is a truly unseen check of a model at most one batch older than
the current one: the random share is a uniform sample of the candidates, i.e. of what the predictor will be
asked about. Rows the strategy picked, the initial design and probes are not random and are never evidence.

**The estimate** (:func:`estimate`): the evidence rows whose predicting model had at least ``window`` times the
current number of training rows (older, weaker models only make it pessimistic), scored together: Spearman ρ
with a one-sided lower confidence bound, ±10 % accuracy with its lower bound and MAPE with its upper bound.

- ρ's bound is Fisher's z with the Bonett–Wright variance ``(1 + ρ²/2) / (n − 3)`` of Spearman's ρ. Under a
  Gaussian copula at ρ 0.98–0.99 its one-sided 95 % bound exceeds the truth in 1–2.6 % of samples from 15 rows
  on (conservative), but in 7–30 % at 8–10 rows, where a perfect ranking of a few rows is likely: below
  :data:`MIN_EVIDENCE` rows the bound is undefined (NaN) and no target can be claimed.
- ±10 % accuracy: the Wilson score bound of a proportion; MAPE: the mean plus z times its standard error.

The bounds serve every verification mode (:func:`score`): the engine's default scores the out-of-fold
predictions of the random share (``verification="cv"``: five fold models on four fifths of the rows), which
the studies in the design notes found closer to the never-seen truth than the prequential estimate (it lags by
its window: on the TF-NAS table at ρ 0.99 the rows of models with half the current rows ran 0.005–0.03 below the
truth, out-of-fold ρ 0.002–0.013).

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0); y = rng.normal(0, 1, 60)
    >>> ev = Evidence(y_log=y, pred_log=y + rng.normal(0, 0.05, 60), pred_n=np.full(60, 100))
    >>> m = estimate(ev, n_now=120)
    >>> m["n_verify"], round(m["spearman"], 3), m["spearman_lo"] < m["spearman"]
    (60.0, 0.998, True)
    >>> estimate(Evidence(y[:5], y[:5], np.full(5, 100)), n_now=100)["spearman_lo"]
    nan
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import norm

__all__ = ["LEVEL", "MIN_EVIDENCE", "WINDOW", "Evidence", "accuracy_lower", "estimate", "mape_upper",
           "paired_gain_lower", "prequential_evidence", "score", "spearman_lower", "spearman_upper"]

LEVEL = 0.95  # one-sided confidence of the lower bounds the stop rule reads
MIN_EVIDENCE = 15  # fewer rows than this give no bound (Fisher's z fails on near-perfect rankings of few rows)
WINDOW = 0.5  # evidence from models fitted on at least this share of the current training rows
RHO_CAP = 0.9995  # a perfect sample ranking is read as this (z is infinite at 1)


@dataclass
class Evidence:
    """Measured log-latencies of randomly drawn rows, each predicted before it was measured (``pred_log``) by a
    model fitted on ``pred_n`` rows; ``batch`` is the iteration that asked for the row."""

    y_log: np.ndarray
    pred_log: np.ndarray
    pred_n: np.ndarray
    batch: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.y_log = np.asarray(self.y_log, dtype=float)
        self.pred_log = np.asarray(self.pred_log, dtype=float)
        self.pred_n = np.asarray(self.pred_n, dtype=float)
        if not (len(self.y_log) == len(self.pred_log) == len(self.pred_n)):
            raise ValueError("evidence arrays differ in length")

    def __len__(self) -> int:
        return len(self.y_log)

    def select(self, keep: np.ndarray) -> Evidence:
        return Evidence(self.y_log[keep], self.pred_log[keep], self.pred_n[keep],
                        None if self.batch is None else self.batch[keep])


def spearman_lower(rho: float, n: int, level: float = LEVEL) -> float:
    """One-sided lower confidence bound of Spearman's ρ from ``n`` rows (Fisher z, Bonett–Wright variance);
    NaN below :data:`MIN_EVIDENCE` rows.

    >>> round(spearman_lower(0.99, 30), 4), round(spearman_lower(0.99, 200), 4)
    (0.9785, 0.9867)
    """
    if n < MIN_EVIDENCE or not math.isfinite(rho):
        return float("nan")
    r = min(rho, RHO_CAP)
    se = math.sqrt((1.0 + r * r / 2.0) / (n - 3))
    return float(math.tanh(math.atanh(r) - norm.ppf(level) * se))


def accuracy_lower(k: int, n: int, level: float = LEVEL) -> float:
    """One-sided Wilson lower bound of a proportion ``k / n``; NaN below :data:`MIN_EVIDENCE` rows.

    >>> round(accuracy_lower(45, 50), 3)
    0.808
    """
    if n < MIN_EVIDENCE:
        return float("nan")
    z = norm.ppf(level)
    p = k / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return float((centre - half) / (1 + z * z / n))


def mape_upper(errors_pct: np.ndarray, level: float = LEVEL) -> float:
    """One-sided upper bound of the mean absolute percentage error (mean + z·SE); NaN below
    :data:`MIN_EVIDENCE` rows."""
    e = np.asarray(errors_pct, dtype=float)
    if len(e) < MIN_EVIDENCE:
        return float("nan")
    return float(e.mean() + norm.ppf(level) * e.std(ddof=1) / math.sqrt(len(e)))


def spearman_upper(rho: float, n: int, level: float = LEVEL) -> float:
    """The matching one-sided upper bound (NaN below :data:`MIN_EVIDENCE` rows)."""
    if n < MIN_EVIDENCE or not math.isfinite(rho):
        return float("nan")
    r = min(rho, RHO_CAP)
    se = math.sqrt((1.0 + r * r / 2.0) / (n - 3))
    return float(math.tanh(math.atanh(r) + norm.ppf(level) * se))


def _spearman_rows(y: np.ndarray, a: np.ndarray, axis: int = -1) -> np.ndarray:
    from scipy.stats import rankdata

    ry, ra = rankdata(y, axis=axis), rankdata(a, axis=axis)
    ry = ry - ry.mean(axis=axis, keepdims=True)
    ra = ra - ra.mean(axis=axis, keepdims=True)
    return (ry * ra).sum(axis=axis) / np.sqrt((ry * ry).sum(axis=axis) * (ra * ra).sum(axis=axis))


def paired_gain_lower(y: np.ndarray, a: np.ndarray, b: np.ndarray, *, level: float = LEVEL,
                      n_resamples: int = 999, seed: int = 0) -> float:
    """One-sided lower confidence bound of ρ(y, a) − ρ(y, b): how much better predictions ``a`` rank the rows
    than ``b`` at least, by a paired percentile bootstrap over the rows (:func:`scipy.stats.bootstrap`). NaN
    below :data:`MIN_EVIDENCE` rows.

    >>> rng = np.random.default_rng(0); y = rng.normal(size=200)
    >>> paired_gain_lower(y, y + rng.normal(0, 0.1, 200), y + rng.normal(0, 1.0, 200)) > 0.1
    True
    """
    from scipy.stats import bootstrap

    y, a, b = (np.asarray(v, dtype=float) for v in (y, a, b))
    if len(y) < MIN_EVIDENCE:
        return float("nan")
    res = bootstrap((y, a, b), lambda y_, a_, b_, axis=-1: _spearman_rows(y_, a_, axis) - _spearman_rows(y_, b_, axis),
                    paired=True, vectorized=True, n_resamples=n_resamples, confidence_level=level,
                    method="percentile", alternative="greater", random_state=seed)
    low = float(res.confidence_interval.low)
    return low if math.isfinite(low) else float(_spearman_rows(y, a) - _spearman_rows(y, b))


def score(y_ms: np.ndarray, pred_ms: np.ndarray, *, level: float = LEVEL) -> dict[str, float]:
    """The verified metrics of predictions ``pred_ms`` of never-seen rows measured at ``y_ms``: ``spearman``,
    ``mape``, ``acc10`` (point estimates), ``spearman_lo``/``spearman_hi`` (one-sided bounds at ``level``),
    ``acc10_lo`` (lower bound), ``mape_hi`` (upper bound) and ``n_verify`` (rows); NaN where too few rows."""
    from surrogates.metrics import spearman

    t, p = np.asarray(y_ms, dtype=float), np.asarray(pred_ms, dtype=float)
    n = len(t)
    nan = float("nan")
    if n < 3:
        return {"spearman": nan, "spearman_lo": nan, "spearman_hi": nan, "mape": nan, "mape_hi": nan,
                "acc10": nan, "acc10_lo": nan, "n_verify": float(n)}
    rho = float(spearman(t, p))
    err = np.abs(p / t - 1.0)
    k = int(np.sum(err <= 0.10))
    return {"spearman": rho, "spearman_lo": spearman_lower(rho, n, level), "spearman_hi": spearman_upper(rho, n, level),
            "mape": float(100 * err.mean()), "mape_hi": mape_upper(100 * err, level),
            "acc10": k / n, "acc10_lo": accuracy_lower(k, n, level), "n_verify": float(n)}


def estimate(evidence: Evidence, n_now: int, *, window: float = WINDOW, level: float = LEVEL) -> dict[str, float]:
    """:func:`score` of the evidence rows predicted by models with at least ``window · n_now`` training rows."""
    ev = evidence.select(evidence.pred_n >= window * n_now) if len(evidence) else evidence
    return score(np.exp(ev.y_log), np.exp(ev.pred_log), level=level)


def prequential_evidence(asks: Sequence[dict[str, Any]], labels: dict[str, float]) -> Evidence:
    """Evidence from a campaign's stored asks (``drawn``, ``key``, ``pred_log``, ``pred_n``, ``batch``) and the
    labels (latency in ms, by configuration key) of its measured training rows: every randomly drawn ask that
    was predicted before it was measured and has an ok measurement."""
    rows = [a for a in asks if a.get("drawn") == "random" and a.get("pred_log") is not None
            and a["key"] in labels]
    seen: set[str] = set()
    y, p, n, b = [], [], [], []
    for a in rows:
        if a["key"] in seen:  # a key asked twice (another protocol) is one row
            continue
        seen.add(a["key"])
        y.append(math.log(labels[a["key"]]))
        p.append(float(a["pred_log"]))
        n.append(float(a["pred_n"] or 0))
        b.append(int(a["batch"]) if str(a.get("batch") or "").isdigit() else -1)
    return Evidence(np.asarray(y), np.asarray(p), np.asarray(n), np.asarray(b))
