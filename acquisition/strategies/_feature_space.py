"""Standardised feature space and farthest-point selection, shared by the strategy contract and the strategies.

:mod:`acquisition.strategies._base` falls back to :func:`space_filling` before the first fit, and the ``sobol``
strategy (:mod:`acquisition.strategies.space_filling`) is that same selection: both import it from here, so
neither imports the other.

Example:
    >>> import numpy as np
    >>> X = np.array([[0.0], [1.0], [2.0], [10.0]])
    >>> space_filling(X, np.array([[0.0]]), 2, np.random.default_rng(0))   # farthest from 0, then from 0 and 10
    [3, 2]
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["farthest_points", "space_filling", "standardize"]


def standardize(X: np.ndarray, ref: np.ndarray | None = None) -> tuple[np.ndarray, Callable]:
    """``X`` scaled to zero mean and unit std per column (statistics over ``X`` and ``ref`` together), and the
    function that applies the same scaling to other rows."""
    base = X if ref is None or len(ref) == 0 else np.vstack([X, ref])
    mu, sd = base.mean(axis=0), base.std(axis=0)
    sd[sd == 0] = 1.0

    def f(a: np.ndarray) -> np.ndarray:
        return (a - mu) / sd

    return f(X), f


def farthest_points(Z: np.ndarray, ref: np.ndarray | None, k: int, rng: np.random.Generator,
                    weight: np.ndarray | None = None) -> list[int]:
    """Greedy farthest-point selection of ``k`` rows of ``Z`` away from ``ref``; ``weight`` scales distances."""
    n = len(Z)
    if ref is not None and len(ref):
        d = np.full(n, np.inf)
        for i in range(0, len(ref), 2048):  # chunks keep memory at n x 2048
            block = ref[i:i + 2048]
            d = np.minimum(d, np.sqrt(((Z[:, None, :] - block[None, :, :]) ** 2).sum(-1)).min(axis=1))
    else:
        d = np.full(n, np.inf)
    w = np.ones(n) if weight is None else np.asarray(weight, dtype=float)
    picked: list[int] = []
    for _ in range(k):
        score = np.where(np.isinf(d), 1e300, d) * w
        if picked:
            score[picked] = -np.inf
        best = np.flatnonzero(score == score.max())
        i = int(rng.choice(best))
        picked.append(i)
        d = np.minimum(d, np.sqrt(((Z - Z[i]) ** 2).sum(-1)))
    return picked


def space_filling(X: np.ndarray, X_train: np.ndarray | None, k: int, rng: np.random.Generator) -> list[int]:
    """``k`` rows of ``X`` chosen by farthest-point sampling in standardised feature space, away from
    ``X_train`` (what is measured) and from each other."""
    ref = X_train if X_train is not None and len(X_train) else None
    Z, f = standardize(X, ref)
    return farthest_points(Z, f(ref) if ref is not None else None, k, rng)
