"""Uncertainty-aware latency surrogates: feature encoders, models, metrics, model selection and bundles.

Example:
    >>> from profiler.families import get_family
    >>> from surrogates import FeatureEncoder, get_model
    >>> fam = get_family("resv1")
    >>> cfgs = fam.space.sample(60, seed=0)
    >>> X = FeatureEncoder(fam).transform(cfgs)
    >>> y = [fam.counts(c).macs / 1e6 + 0.05 for c in cfgs]   # stand-in latencies (ms) for the example
    >>> dist = get_model("quantile-gbt", random_state=0).fit(X, y).predict_dist(X[:5])
    >>> dist.mean.shape, sorted(dist.quantiles)
    ((5,), [0.1, 0.5, 0.9])
"""

from __future__ import annotations

import importlib
from typing import Any

from surrogates._errors import BundleError, EncoderError, ModelError  # noqa: F401 - re-exported in __all__

# public names -> the module that defines them; loaded on first use, so that importing the package (e.g. for its
# exceptions, in the CLI) does not import scikit-learn, ngboost and torch
_LAZY = {
    "Predictor": "surrogates.bundle", "export_bundle": "surrogates.bundle", "load_bundle": "surrogates.bundle",
    "read_manifest": "surrogates.bundle",
    "ENCODER_VERSION": "surrogates.features", "FeatureEncoder": "surrogates.features",
    "evaluate": "surrogates.metrics", "format_metrics": "surrogates.metrics", "spearman": "surrogates.metrics",
    "spearman_ci": "surrogates.metrics",
    "DEFAULT_MODEL": "surrogates.models", "LatencyRegressor": "surrogates.models",
    "LogLatencyDist": "surrogates.models", "get_model": "surrogates.models", "list_models": "surrogates.models",
    "register_model": "surrogates.models",
    "Comparison": "surrogates.selection", "compare_models": "surrogates.selection",
}

__all__ = sorted([*_LAZY, "BundleError", "EncoderError", "ModelError"])


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'surrogates' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
