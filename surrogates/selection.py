"""Model selection: a time-bounded k-fold comparison of registered models on one dataset.

Every (model, fold) pair is one joblib task; tasks run in parallel (``n_jobs``) in fold-major order, so that
when the ``time_budget_s`` runs out every model has been scored on the same first folds. Tasks not started by
then are skipped; a model is ranked by its mean held-out score over the folds that all models completed
(``criterion``: Spearman ρ, the default, or ``acc10``, the share within ±10 %; ties: the faster fit wins).

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0); X = rng.uniform(1, 3, (120, 3)); y = np.exp(X.sum(axis=1))
    >>> res = compare_models(X, y, models=["linear", "gbt"], cv=3, seed=0)
    >>> res.best in ("linear", "gbt"), sorted(res.scores)
    (True, ['gbt', 'linear'])
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from sklearn.model_selection import KFold

from surrogates.metrics import evaluate
from surrogates.models import get_model, list_models

CRITERIA = ("spearman", "acc10")  # what --model auto ranks by: rank correlation, or the share within ±10 %

__all__ = ["Comparison", "compare_models"]

log = logging.getLogger("latency_acquisition.surrogates")


@dataclass
class Comparison:
    """Result of :func:`compare_models`: per-model mean metrics over the common folds, and the winner."""

    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    folds_done: dict[str, int] = field(default_factory=dict)
    common_folds: int = 0
    best: str | None = None
    elapsed_s: float = 0.0
    timed_out: bool = False
    criterion: str = "spearman"

    def table(self) -> str:
        """A plain-text table, best first."""
        rows = sorted(self.scores.items(), key=lambda kv: -np.nan_to_num(kv[1][self.criterion], nan=-2))
        lines = [f"{'model':<18}{'folds':>6}{'rho':>9}{'MAPE %':>9}{'acc10 %':>9}{'cov80 %':>9}{'fit s':>8}"]
        for name, s in rows:
            lines.append(f"{name:<18}{self.folds_done[name]:>6}{s['spearman']:>9.4f}{s['mape']:>9.2f}"
                         f"{100 * s['acc10']:>9.1f}{100 * s.get('coverage80', np.nan):>9.1f}{s['fit_s']:>8.2f}")
        return "\n".join(lines)


def _score(name: str, params: Mapping[str, Any], fold: int, X, y, train, test, seed,
           threads: int | None) -> tuple:
    from threadpoolctl import threadpool_limits

    # parallel folds each get one OpenMP/BLAS thread: nested threads oversubscribe the cores and slow
    # histogram gradient boosting down by orders of magnitude
    with threadpool_limits(threads):
        t0 = time.perf_counter()
        model = get_model(name, **_with_seed(name, params, seed))
        model.fit(X[train], y[train])
        fit_s = time.perf_counter() - t0
        m = evaluate(y[test], model.predict_dist(X[test]))
    m["fit_s"] = fit_s
    return name, fold, m


def _with_seed(name: str, params: Mapping[str, Any], seed: int | None) -> dict[str, Any]:
    out = dict(params)
    if seed is not None and "random_state" in get_model(name).get_params():
        out.setdefault("random_state", seed)
    return out


def compare_models(X, y, models: Sequence[str] | None = None, *, cv: int = 5,
                   time_budget_s: float | None = None, n_jobs: int | None = None, seed: int | None = 0,
                   params: Mapping[str, Mapping[str, Any]] | None = None,
                   criterion: str = "spearman") -> Comparison:
    """Compare ``models`` (default: all registered) by ``cv``-fold cross-validation within ``time_budget_s``,
    ranked by ``criterion`` (``spearman`` or ``acc10``)."""
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    names = list(models) if models is not None else list_models()
    if not names:
        raise ValueError("models must name at least one model")
    for n in names:
        get_model(n)  # unknown names fail here, before any work
    if criterion not in CRITERIA:
        raise ValueError(f"criterion={criterion!r} is not allowed: expected one of {', '.join(CRITERIA)}")
    if not isinstance(cv, int) or cv < 2:
        raise ValueError(f"cv={cv!r} is not allowed: expected an integer >= 2")
    if len(y) < cv:
        raise ValueError(f"{len(y)} rows are too few for cv={cv} folds")
    if time_budget_s is not None and not time_budget_s > 0:
        raise ValueError(f"time_budget_s={time_budget_s!r} is not allowed: expected a number > 0")
    params = params or {}
    threads = None if n_jobs in (None, 1) else 1
    splits = list(KFold(cv, shuffle=True, random_state=seed).split(X))
    tasks = [(name, fold) for fold in range(cv) for name in names]  # fold-major: common folds finish first
    t0 = time.perf_counter()
    res = Comparison(criterion=criterion)
    per_model: dict[str, dict[int, dict[str, float]]] = {n: {} for n in names}

    def gen():
        for name, fold in tasks:
            if time_budget_s is not None and time.perf_counter() - t0 > time_budget_s:
                res.timed_out = True
                return
            train, test = splits[fold]
            yield delayed(_score)(name, params.get(name, {}), fold, X, y, train, test, seed, threads)

    for name, fold, m in Parallel(n_jobs=n_jobs, return_as="generator_unordered")(gen()):
        per_model[name][fold] = m
        log.debug("fold %d of %s: rho=%.4f", fold, name, m["spearman"])
    common = set.intersection(*(set(v) for v in per_model.values())) if per_model else set()
    res.common_folds = len(common)
    for name, folds in per_model.items():
        res.folds_done[name] = len(folds)
        use = [folds[f] for f in sorted(common)] or list(folds.values())
        if not use:
            continue
        res.scores[name] = {k: float(np.nanmean([m[k] for m in use])) for k in use[0]}
    ranked = sorted(res.scores, key=lambda n: (-np.nan_to_num(res.scores[n][criterion], nan=-2),
                                               res.scores[n]["fit_s"]))
    res.best = ranked[0] if ranked else None
    res.elapsed_s = time.perf_counter() - t0
    return res
