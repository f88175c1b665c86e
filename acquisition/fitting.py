"""Fit a latency surrogate on stored measurements and export it as a predictor bundle.

Used by ``python -m acquisition fit`` (and by the engine): the ok measurements of one family on one platform
and protocol are split into train / validation / test (70 / 15 / 15 %, seeded, as in the paper), the model is
chosen (``auto``: a time-bounded k-fold comparison on train + validation, :func:`surrogates.compare_models`),
fitted on train + validation, scored on the untouched test split, and exported with those test metrics. Each
row's own measurement noise (``noise``: the spread of its placements, NaN for rows measured before it was
stored) goes to the model's ``fit`` as ``sample_noise`` when some row has it (a heteroscedastic model:
:mod:`surrogates.models._base`).
Fitting time is charged to the ledger (activity ``fit``) when the store is writable. The training set itself is
:mod:`acquisition.dataset`'s.

Example:
    >>> train, validation, test = split_indices(100, seed=0)
    >>> len(train), len(validation), len(test)
    (70, 15, 15)
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from acquisition.dataset import Dataset, FitError, load_dataset, split_indices
from acquisition.noise import noise_ceiling

__all__ = ["Dataset", "FitError", "FitResult", "fit_and_export", "load_dataset", "split_indices"]

log = logging.getLogger("latency_acquisition")


@dataclass
class FitResult:
    model_name: str
    metrics: dict[str, float]
    n_train: int
    n_test: int
    fit_s: float
    bundle: str | None = None
    comparison: Any = None
    dataset: Dataset | None = None
    noise: Any = None  # acquisition.noise.NoiseCeiling of the re-measured rows, or None
    noise_rows: str = ""  # which rows the ceiling is of: "test" (the same rows) or "stored" (other rows)
    acc10_on_noise_rows: float | None = None  # the model's ±10 % accuracy on those same test rows


MIN_NOISE_ROWS = 20  # fewer re-measured test rows than this: the ceiling of every re-measured row is shown


def fit_and_export(store: Any, family_name: str, *, out: str | None, model: str = "auto",
                   platform: str | None = None, protocol: str | None = None, seed: int = 0,
                   select_budget_s: float = 120.0, n_jobs: int | None = None,
                   charge: bool = True, select_by: str = "spearman") -> FitResult:
    """Load, split, (select,) fit, score on test and export; see the module docstring."""
    from profiler.families import get_family
    from surrogates import FeatureEncoder, compare_models, evaluate, export_bundle, get_model, list_models

    if model != "auto" and model not in list_models():
        raise FitError(f"unknown model {model!r}: available models are auto, {', '.join(list_models())}")
    family = get_family(family_name)
    ds = load_dataset(store, family_name, platform=platform, protocol=protocol)
    train, val, test = split_indices(len(ds), seed=seed)
    fit_rows = np.concatenate([train, val])
    encoder = FeatureEncoder(family)
    X = encoder.transform(ds.configs)
    y = ds.latency_ms
    t0 = time.perf_counter()
    comparison = None
    name = model
    if model == "auto":
        comparison = compare_models(X[fit_rows], y[fit_rows], cv=5, time_budget_s=select_budget_s, seed=seed,
                                    n_jobs=n_jobs, criterion=select_by)
        name = str(comparison.best)
        log.info("model selection:\n%s", comparison.table())
    est = get_model(name)
    if "random_state" in est.get_params():
        est.set_params(random_state=seed)
    known = ds.noise[fit_rows]
    est.fit(X[fit_rows], y[fit_rows], **({"sample_noise": known} if np.isfinite(known).any() else {}))
    fit_s = time.perf_counter() - t0
    metrics = evaluate(y[test], est.predict_dist(X[test]), ci=True)
    noise, noise_rows, acc_same = _noise(store, ds, test, est.predict(X[test]))
    if noise is not None:
        metrics.update(noise.as_dict())
    if charge and not getattr(store, "readonly", False):
        store.charge("fit", fit_s, platform=ds.platform, family=family_name, note=f"fit {name} on {len(fit_rows)}")
    if out is not None:
        t1 = time.perf_counter()
        export_bundle(out, est, encoder, model_name=name,
                      platform={"id": ds.platform, "fingerprint": ds.fingerprint, "protocol": ds.protocol},
                      n_train=len(fit_rows), metrics={**metrics, "n_test": len(test)},
                      extra={"statistic": "min_ms", "seed": seed, "split": "70/15/15 train/validation/test; "
                             "fitted on train+validation, metrics on test"})
        if charge and not getattr(store, "readonly", False):
            store.charge("export", time.perf_counter() - t1, platform=ds.platform, family=family_name)
    return FitResult(name, metrics, len(fit_rows), len(test), fit_s, out, comparison, ds, noise, noise_rows,
                     acc_same)


def _noise(store: Any, ds: Dataset, test: np.ndarray, pred: np.ndarray) -> tuple[Any, str, float | None]:
    """The noise ceiling of the test rows that were re-measured (or of every re-measured row, when too few of
    the test rows were), and the model's ±10 % accuracy on those same test rows."""
    from surrogates.metrics import accuracy_within

    if not store.has_table("repeats"):  # an older database opened read-only
        return None, "", None
    keys = [ds.keys[i] for i in test]
    same = noise_ceiling(store, ds.family, platform=ds.platform, protocol=ds.protocol, keys=keys)
    if same is not None and same.n >= MIN_NOISE_ROWS:
        repeated = {r["key"] for r in store.repeats(family=ds.family, platform=ds.platform, protocol=ds.protocol)}
        rows = [j for j, k in enumerate(keys) if k in repeated]
        return same, "test", accuracy_within(ds.latency_ms[test][rows], pred[rows], 0.1)
    every = noise_ceiling(store, ds.family, platform=ds.platform, protocol=ds.protocol)
    return every, "stored" if every is not None else "", None
