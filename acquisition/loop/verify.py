"""Verification: what the stop rule reads of a fitted model, each iteration.

Contract: :func:`verify` returns the metrics (``spearman`` with its one-sided bounds ``spearman_lo`` and
``spearman_hi``, ``mape``, ``acc10``, ``n_verify``, ``coverage80``, ``cv_spearman`` ...) of the campaign's
verification mode, from evidence that spends no device time (``cv``, ``prequential``) or from the holdout set.
The estimators and their bounds are :mod:`acquisition.verification`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from acquisition.loop.base import TrainingData

__all__ = ["verify"]


def verify(model: Any, data: TrainingData, mode: str, asks: Callable[[], list[dict[str, Any]]]
           ) -> dict[str, float]:
    """Metrics the stop rule reads (:func:`acquisition.verification.score`: point estimates and one-sided
    bounds): on the prequential evidence, the out-of-fold predictions of the randomly drawn training rows, or
    the holdout set (module docstring). ``cv_spearman`` and ``coverage80`` come from the committee's
    out-of-fold predictions of the random rows, when the model is a committee. ``mode`` is the campaign's
    verification; ``asks()`` returns its stored asks (the prequential evidence)."""
    from acquisition.verification import estimate, prequential_evidence, score
    from surrogates.metrics import coverage
    from surrogates.models import LogLatencyDist

    rows = np.asarray([r.get("drawn") == "random" for r in data.train], dtype=bool)
    oof = getattr(model, "oof_log_", None)
    cv: dict[str, float] = {"cv_spearman": float("nan"), "coverage80": float("nan")}
    if oof is not None and rows.sum() >= 3:
        full = model.predict_dist(data.X[rows])
        dist = LogLatencyDist(oof[rows], full.std, {}, full.epistemic)
        cv_m = score(data.y[rows], np.exp(oof[rows]))
        cv = {"cv_spearman": cv_m["spearman"], "coverage80": coverage(data.y[rows], dist, 0.8), **(
            cv_m if mode == "cv" else {})}
    if mode == "holdout":
        dist_val = model.predict_dist(data.X_val)
        m = {**score(data.y_val, dist_val.latency), "coverage80": coverage(data.y_val, dist_val, 0.8)}
    elif mode == "prequential":
        labels = {r["key"]: float(r["y"]) for r in data.train}
        m = {**estimate(prequential_evidence(asks(), labels), len(data.train)),
             **{k: cv[k] for k in ("cv_spearman", "coverage80")}}
    else:
        m = {**score([], []), **cv}  # cv already holds the out-of-fold scores when there are enough rows
    return m
