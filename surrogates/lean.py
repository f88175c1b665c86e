"""Lean predictors: a fitted model's predictions from plain arrays, without scikit-learn.

A fresh process that loads a bundle in full spends most of its time importing scikit-learn and skops, not
predicting. For the models campaigns export most, the K-fold committee around ``gbt``, ``gp`` or ``linear``
(every ``auto`` and ``cv`` campaign), a plain ``gbt`` and a plain ``linear``, :func:`compile_model` writes what
prediction needs as arrays and a small JSON program:

- boosted trees as flat node arrays (feature, threshold, children, leaf value, where a missing value goes) and
  the ensemble's baseline, for the model and for its measurement-noise model (Poisson: ``exp`` of the sum);
- a Gaussian process's training rows (standardised), its weights ``alpha_`` and kernel (``C · RBF``, the white
  noise adds nothing off the training rows) and the target's centring;
- a linear model's scaler, weights and intercept;
- the committee's and the noise layer's constants (``noise_std_``, ``std_scale_``, ``noise_var_``,
  ``misfit_var_``).

:class:`LeanModel` evaluates them with numpy alone and returns the same :class:`~surrogates.dist.LogLatencyDist`
as the model (the tests hold it to 1e-9 of the model's own mean and std). Any other model (quantile boosting,
NGBoost, forests, transfer, networks) has no lean form: :func:`compile_model` returns ``None`` and the bundle is
loaded in full (:func:`surrogates.bundle.load_bundle`).

Example:
    >>> import numpy as np
    >>> from surrogates.models import CommitteeRegressor, GBTRegressor
    >>> rng = np.random.default_rng(0); X = rng.uniform(1, 3, (60, 2)); y = np.exp(X[:, 0] * X[:, 1])
    >>> m = CommitteeRegressor(GBTRegressor(max_iter=40), n_folds=3, random_state=0).fit(X, y)
    >>> program, arrays = compile_model(m)
    >>> lean = LeanModel(program, arrays)
    >>> bool(np.allclose(lean.predict_dist(X).std, m.predict_dist(X).std, rtol=1e-9))
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from surrogates.dist import LogLatencyDist

__all__ = ["LEAN_VERSION", "LeanModel", "compile_model"]

LEAN_VERSION = 1  # of the program's layout: a bundle whose program has another version is loaded in full
_CHUNK = 1024  # rows evaluated at once (bounds the rows x trees, rows x training rows working arrays)


class _NoLean(Exception):
    """The model (or one of its parts) has no lean form."""


# -- compiling (at export: the fitted scikit-learn objects are at hand) ------------------------------------------
def compile_model(model: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
    """``(program, arrays)`` that :class:`LeanModel` evaluates to ``model``'s predictive distribution, or ``None``
    when ``model`` has no lean form (see the module docstring)."""
    arrays: dict[str, np.ndarray] = {}
    try:
        program = {"version": LEAN_VERSION, "n_features": int(model.n_features_in_), **_top(model, arrays),
                   "noise": _noise_layer(model, arrays)}
    except _NoLean:
        return None
    return program, arrays


def _top(model: Any, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    kind = type(model).__name__
    if kind == "CommitteeRegressor":
        return {"kind": "committee", "mean": _mean_fn(model.model_, "m", arrays),
                "members": [_mean_fn(f, f"f{i}", arrays) for i, f in enumerate(model.members_)],
                "noise_std": float(model.noise_std_), "std_scale": float(getattr(model, "std_scale_", 1.0))}
    if kind == "GBTRegressor":
        return {"kind": "gbt", "mean": _mean_fn(model, "m", arrays), "std": float(model.std_),
                "std_scale": float(getattr(model, "std_scale_", 1.0))}
    if kind == "ExpLinearRegressor":  # Bayesian ridge: the weights' posterior is the epistemic part
        arrays["m.sigma"] = np.asarray(model.model_.sigma_, dtype=float)
        return {"kind": "linear", "mean": _mean_fn(model, "m", arrays), "noise_var": 1.0 / float(model.model_.alpha_),
                "std_scale": float(getattr(model, "std_scale_", 1.0))}
    raise _NoLean(kind)


def _mean_fn(m: Any, name: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """A model's mean log-latency (what a committee reads of its members) as a program step."""
    kind = type(m).__name__
    if kind == "GBTRegressor":
        return _trees(m.model_, name, arrays)
    if kind == "GPRegressor":
        return _gp(m, name, arrays)
    if kind == "ExpLinearRegressor":
        arrays[f"{name}.center"], arrays[f"{name}.scale"] = _scaler(m.scaler_)
        arrays[f"{name}.coef"] = np.asarray(m.model_.coef_, dtype=float)
        return {"type": "linear", "at": name, "intercept": float(m.model_.intercept_)}
    raise _NoLean(kind)


def _scaler(scaler: Any) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(scaler.mean_, dtype=float), np.asarray(scaler.scale_, dtype=float)


def _trees(hgb: Any, name: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """A fitted ``HistGradientBoostingRegressor`` as one flat node table (children offset per tree)."""
    link = {"squared_error": "identity", "poisson": "exp"}.get(str(hgb.loss))
    if link is None or getattr(hgb, "_preprocessor", None) is not None:
        raise _NoLean(f"boosting loss {hgb.loss!r} or categorical features")
    tables = [p[0].nodes for p in hgb._predictors]
    if any(t["is_categorical"].any() for t in tables):
        raise _NoLean("categorical splits")
    sizes = np.array([len(t) for t in tables])
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    nodes = np.concatenate(tables)
    shift = np.repeat(offsets, sizes)
    leaf = nodes["is_leaf"].astype(bool)
    arrays[f"{name}.roots"] = offsets.astype(np.int64)
    arrays[f"{name}.feature"] = np.where(leaf, 0, nodes["feature_idx"]).astype(np.int64)
    arrays[f"{name}.threshold"] = nodes["num_threshold"].astype(float)
    arrays[f"{name}.left"] = np.where(leaf, 0, nodes["left"].astype(np.int64) + shift)
    arrays[f"{name}.right"] = np.where(leaf, 0, nodes["right"].astype(np.int64) + shift)
    arrays[f"{name}.leaf"] = leaf
    arrays[f"{name}.missing_left"] = nodes["missing_go_to_left"].astype(bool)
    arrays[f"{name}.value"] = nodes["value"].astype(float)
    return {"type": "trees", "at": name, "baseline": float(np.ravel(hgb._baseline_prediction)[0]), "link": link}


def _gp(m: Any, name: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    gpr, kernel = m.model_, m.model_.kernel_
    # scikit-learn's C * RBF + White, as GPRegressor builds it
    parts = (type(kernel).__name__, type(kernel.k1).__name__, type(kernel.k1.k1).__name__,
             type(kernel.k1.k2).__name__, type(kernel.k2).__name__) if hasattr(kernel, "k1") else ()
    if parts != ("Sum", "Product", "ConstantKernel", "RBF", "WhiteKernel"):
        raise _NoLean(f"GP kernel {kernel}")
    arrays[f"{name}.center"], arrays[f"{name}.scale"] = _scaler(m.scaler_)
    arrays[f"{name}.rows"] = np.asarray(gpr.X_train_, dtype=float)
    arrays[f"{name}.alpha"] = np.asarray(gpr.alpha_, dtype=float).reshape(-1)
    arrays[f"{name}.length"] = np.atleast_1d(np.asarray(kernel.k1.k2.length_scale, dtype=float))
    return {"type": "gp", "at": name, "amplitude": float(kernel.k1.k1.constant_value),
            "y_mean": float(np.ravel(gpr._y_train_mean)[0]), "y_std": float(np.ravel(gpr._y_train_std)[0])}


def _noise_layer(model: Any, arrays: dict[str, np.ndarray]) -> dict[str, Any] | None:
    var = getattr(model, "noise_var_", None)
    if var is None:
        return None
    noise_model = getattr(model, "noise_model_", None)
    return {"var": float(var), "misfit_var": float(getattr(model, "misfit_var_", 0.0)),
            "model": None if noise_model is None else _trees(noise_model, "noise", arrays)}


# -- evaluating (numpy only) -----------------------------------------------------------------------------------
class LeanModel:
    """Evaluates a :func:`compile_model` program: ``predict_dist(X)`` and ``predict(X)`` as the model's own."""

    def __init__(self, program: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        if program.get("version") != LEAN_VERSION:
            raise ValueError(f"lean program version {program.get('version')!r}: this code reads {LEAN_VERSION}")
        self.program = dict(program)
        self.arrays = dict(arrays)
        self.n_features_in_ = int(program["n_features"])

    def predict(self, X: Any) -> np.ndarray:
        """Predicted latency (the unit of the training latencies)."""
        return self.predict_dist(X).latency

    def predict_dist(self, X: Any) -> LogLatencyDist:
        """Predictive distribution of log-latency (see :meth:`surrogates.models.LatencyRegressor.predict_dist`)."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has shape {X.shape}: the model expects {self.n_features_in_} features per row")
        if not np.isfinite(X).all():
            raise ValueError("X contains NaN or infinity")
        parts = [self._dist(X[i:i + _CHUNK]) for i in range(0, len(X), _CHUNK)] or [self._dist(X)]
        mean, std, epi, noise = (None if parts[0][k] is None else np.concatenate([p[k] for p in parts])
                                 for k in range(4))
        return LogLatencyDist(mean, std, {}, epi, noise)

    def _dist(self, X: np.ndarray):
        p = self.program
        mean = self._mean(p["mean"], X)
        s = float(p["std_scale"])
        if p["kind"] == "committee":
            epi = np.zeros(len(X))
            if p["members"]:
                preds = np.stack([self._mean(f, X) for f in p["members"]])
                epi = np.sqrt((len(p["members"]) - 1) * preds.var(axis=0))
            std = np.maximum(np.sqrt(epi**2 + float(p["noise_std"]) ** 2) * s, 1e-12)
            epi = np.minimum(epi * s, std)
        elif p["kind"] == "linear":
            a = self.arrays
            Xs = (X - a["m.center"]) / a["m.scale"]
            std = np.sqrt(((Xs @ a["m.sigma"]) * Xs).sum(axis=1) + float(p["noise_var"]))
            epi = np.sqrt(np.maximum(std**2 - float(p["noise_var"]), 0.0))
            std = np.maximum(std * s, 1e-12)
            epi = np.minimum(epi * s, std)
        else:
            std, epi = np.full(len(X), float(p["std"])) * s, None
        noise = None
        layer = p.get("noise")
        if layer is not None:  # as LatencyRegressor.predict_dist: the measured noise it learned
            var = (np.maximum(self._mean(layer["model"], X), 0.0) if layer["model"] is not None
                   else np.full(len(X), float(layer["var"])))
            noise = np.sqrt(var)
            if epi is not None:
                std = np.sqrt(epi**2 + float(layer["misfit_var"]) + var)
            else:
                noise = np.minimum(noise, std)
        std = np.maximum(std, 1e-12)
        if epi is not None:
            epi = np.minimum(epi, std)
        return mean, std, epi, noise

    def _mean(self, step: Mapping[str, Any], X: np.ndarray) -> np.ndarray:
        a, at = self.arrays, step["at"]
        if step["type"] == "trees":
            raw = step["baseline"] + _tree_sum(X, *(a[f"{at}.{k}"] for k in _TREE_KEYS))
            return np.exp(raw) if step["link"] == "exp" else raw
        Xs = (X - a[f"{at}.center"]) / a[f"{at}.scale"]
        if step["type"] == "linear":
            return Xs @ a[f"{at}.coef"] + step["intercept"]
        if step["type"] == "gp":
            length = a[f"{at}.length"]
            d2 = (((Xs / length)[:, None, :] - (a[f"{at}.rows"] / length)[None, :, :]) ** 2).sum(axis=2)
            k = step["amplitude"] * np.exp(-0.5 * d2)
            return step["y_std"] * (k @ a[f"{at}.alpha"]) + step["y_mean"]
        raise ValueError(f"unknown lean step {step['type']!r}")


_TREE_KEYS = ("roots", "feature", "threshold", "left", "right", "leaf", "missing_left", "value")


def _tree_sum(X: np.ndarray, roots, feature, threshold, left, right, leaf, missing_left, value) -> np.ndarray:
    """Every row down every tree at once (one step per level), then the leaves' values summed per row."""
    node = np.broadcast_to(roots, (len(X), len(roots))).copy()
    rows = np.arange(len(X))[:, None]
    while True:
        inner = ~leaf[node]
        if not inner.any():
            break
        x = X[rows, feature[node]]
        go_left = np.where(np.isnan(x), missing_left[node], x <= threshold[node])
        node = np.where(inner, np.where(go_left, left[node], right[node]), node)
    return value[node].sum(axis=1)
