"""Network latency from exported predictor bundles: Σ block predictions, a calibrated overhead, a distribution.

:class:`NetworkLatencyModel` holds one bundle (:class:`surrogates.bundle.Predictor`) per block family, all of
one platform. For a list of networks it predicts every block at once (grouped by family, each distinct block
predicted once and cached), sums per network and applies the :class:`Calibration`:

    latency = intercept + slope x Σ block medians

fitted on a few networks measured whole (hardware in the loop) on relative errors (what MAPE and ±10 %
accuracy count) with a soft-L1 loss beyond 5 % (one badly measured network must not tilt the line: on this
CPU, 10 networks fitted by plain least squares gave 78 % within ±10 % on one draw, 84 % robustly, against a
median of 98 % over 30 draws), with ``intercept >= 0`` (the stem, head and framework
overhead) and ``slope > 0`` (blocks run faster or slower in a chain than alone: warm caches, fused dispatch;
measured 1.085x on this CPU before this module existed). With one or two networks only the slope is fitted.

**The predictive distribution.** Each block's prediction is log-normal (its bundle's ``predict_dist``). The sum
of log-normals is approximated by a log-normal with the same mean and variance (Fenton–Wilkinson), assuming
independent block errors; then the calibration scales it: the affine map moves the median, and the log-std is
multiplied by ``std_scale`` (fitted so that the calibration networks' leave-one-out log residuals have unit
RMS when standardised, floored at 1: block errors of one network are correlated, independence is optimistic).
:meth:`NetworkLatencyModel.prob_within` gives P(latency ≤ budget) for a search constraint.

Example:
    >>> model = NetworkLatencyModel.load(["mbconv.bundle"])            # doctest: +SKIP
    >>> nets = get_space("stacked-mbconv").sample(1000, seed=0)        # doctest: +SKIP
    >>> model.predict(nets)[:3]                                       # doctest: +SKIP
    array([2.91, 4.87, 1.73])
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.stats import norm

from nas.network import Network, NetworkError
from profiler.files import atomic_write

__all__ = ["ROBUST_SCALE", "Calibration", "NetworkLatency", "NetworkLatencyModel"]

ROBUST_SCALE = 0.05  # relative residual beyond which the calibration fit counts errors linearly (soft L1)


@dataclass(frozen=True)
class Calibration:
    """``latency = intercept_ms + slope * Σ blocks``, log-std x ``std_scale``; ``n`` networks fitted it."""

    intercept_ms: float = 0.0
    slope: float = 1.0
    std_scale: float = 1.0
    n: int = 0
    platform: str | None = None

    @classmethod
    def fit(cls, block_sum_ms: Sequence[float], measured_ms: Sequence[float], *, sum_log_std: Sequence[float] | None
            = None, platform: str | None = None) -> Calibration:
        """Fit on networks whose blocks' predicted sum and whole measured latency are known (module docstring)."""
        from scipy.optimize import least_squares, lsq_linear

        s = np.asarray(block_sum_ms, dtype=float)
        m = np.asarray(measured_ms, dtype=float)
        if s.shape != m.shape or s.ndim != 1 or len(s) == 0:
            raise NetworkError(f"calibration needs matching, non-empty lists (got {s.shape} and {m.shape})")
        if not (np.all(np.isfinite(s)) and np.all(s > 0) and np.all(np.isfinite(m)) and np.all(m > 0)):
            raise NetworkError("calibration latencies must be positive and finite")

        def solve(idx: np.ndarray) -> tuple[float, float]:
            if len(idx) < 3:
                return 0.0, float(np.exp(np.median(np.log(m[idx] / s[idx]))))
            A = np.stack([1.0 / m[idx], s[idx] / m[idx]], axis=1)
            bounds = ([0.0, 1e-6], [np.inf, np.inf])
            x0 = np.clip(lsq_linear(A, np.ones(len(idx)), bounds=bounds).x, [0.0, 1e-6], None)
            # robust to one badly measured network: relative residuals beyond ~5 % count linearly
            res = least_squares(lambda p: A @ p - 1.0, x0, bounds=bounds, loss="soft_l1", f_scale=ROBUST_SCALE)
            return float(res.x[0]), float(res.x[1])

        a, b = solve(np.arange(len(s)))
        scale = 1.0
        if sum_log_std is not None and len(s) >= 4:
            sd = np.asarray(sum_log_std, dtype=float)
            z = []
            for i in range(len(s)):
                rest = np.delete(np.arange(len(s)), i)
                ai, bi = solve(rest)
                z.append((math.log(m[i]) - math.log(ai + bi * s[i])) / max(sd[i], 1e-6))
            scale = max(1.0, float(np.sqrt(np.mean(np.square(z)))))
        return cls(a, b, scale, len(s), platform)

    def apply(self, block_sum_ms: np.ndarray) -> np.ndarray:
        return self.intercept_ms + self.slope * np.asarray(block_sum_ms, dtype=float)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def save(self, path: str | os.PathLike[str]) -> None:
        with atomic_write(path) as fh:
            fh.write(self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Calibration:
        try:
            with open(path, encoding="utf-8") as fh:
                d = json.load(fh)
        except (OSError, json.JSONDecodeError) as e:
            raise NetworkError(f"calibration {os.fspath(path)!r} cannot be read: {e}") from None
        try:
            return cls(float(d["intercept_ms"]), float(d["slope"]), float(d.get("std_scale", 1.0)),
                       int(d.get("n", 0)), d.get("platform"))
        except (KeyError, TypeError, ValueError) as e:
            raise NetworkError(f"calibration {os.fspath(path)!r} is not a calibration file: {e}") from None


@dataclass
class NetworkLatency:
    """Predicted latency of n networks: the raw Σ of block medians, the calibrated median and a log-normal."""

    block_sum_ms: np.ndarray
    median_ms: np.ndarray
    log_mean: np.ndarray
    log_std: np.ndarray

    def interval(self, coverage: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
        z = norm.ppf(0.5 + coverage / 2)
        return np.exp(self.log_mean - z * self.log_std), np.exp(self.log_mean + z * self.log_std)

    def prob_within(self, budget_ms: float) -> np.ndarray:
        """P(latency <= budget_ms) under the log-normal."""
        return norm.cdf((math.log(budget_ms) - self.log_mean) / np.maximum(self.log_std, 1e-12))


class NetworkLatencyModel:
    """One predictor bundle per family, one platform; predicts networks (module docstring)."""

    def __init__(self, predictors: Mapping[str, Any], calibration: Calibration | None = None) -> None:
        if not predictors:
            raise NetworkError("a network latency model needs at least one predictor bundle")
        plats = {p.platform for p in predictors.values()}
        if len(plats) > 1:
            listing = ", ".join(f"{f}: {p.platform}" for f, p in predictors.items())
            raise NetworkError(f"the bundles were fitted on different platforms ({listing}): use one platform")
        self.predictors = dict(predictors)
        self.platform: str | None = next(iter(plats))
        if calibration is not None and calibration.platform and self.platform and \
                calibration.platform != self.platform:
            raise NetworkError(f"the calibration was fitted on platform {calibration.platform!r}, the bundles on "
                               f"{self.platform!r}")
        self.calibration = calibration or Calibration(platform=self.platform)
        self._cache: dict[tuple[str, Any], tuple[float, float]] = {}

    @classmethod
    def load(cls, paths: Sequence[str | os.PathLike[str]], calibration: str | os.PathLike[str] | Calibration |
             None = None) -> NetworkLatencyModel:
        """Load bundles (one per family: two bundles of one family are an error) and an optional calibration."""
        from surrogates import BundleError, load_bundle

        preds: dict[str, Any] = {}
        for p in paths:
            try:
                pred = load_bundle(p)
            except (BundleError, OSError, ValueError) as e:
                raise NetworkError(f"bundle {os.fspath(p)!r}: {e}") from None
            fam = pred.family.name
            if fam in preds:
                raise NetworkError(f"two bundles for family {fam!r} (the second is {os.fspath(p)!r})")
            preds[fam] = pred
        cal = Calibration.load(calibration) if isinstance(calibration, str | os.PathLike) else calibration
        return cls(preds, cal)

    @property
    def families(self) -> list[str]:
        return sorted(self.predictors)

    def check(self, networks: Sequence[Network]) -> None:
        """A clear error for the first block whose family has no bundle."""
        for i, net in enumerate(networks):
            for j, b in enumerate(net.blocks):
                if b.family not in self.predictors:
                    raise NetworkError(f"network {i}, block {j} is of family {b.family!r}, which has no bundle "
                                       f"(bundles for: {', '.join(self.families)} on platform {self.platform})")

    def _blocks(self, networks: Sequence[Network]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per block of every network, in order: owner index, log mean, log std."""
        self.check(networks)
        return self.block_dists([net.blocks for net in networks])

    def block_dists(self, block_lists: Sequence[Sequence[Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per block of each list of :class:`~nas.network.Block` s (validated configurations of families with a
        bundle), in order: the index of its list, the log mean and the log std of its predicted latency."""
        owner, keys = [], []
        todo: dict[str, dict[tuple[Any, ...], Mapping[str, Any]]] = {}
        for i, blocks in enumerate(block_lists):
            for b in blocks:
                k = (b.family, tuple(b.config.items()))  # validated configs: one canonical key order
                owner.append(i)
                keys.append(k)
                if k not in self._cache:
                    todo.setdefault(b.family, {})[k[1]] = b.config
        for fam, cfgs in todo.items():
            pred = self.predictors[fam]
            X = pred.encoder.transform(list(cfgs.values()), validated=True)  # validated when the network was made
            d = pred.model.predict_dist(X)
            for k, mu, sd in zip(cfgs, d.mean, d.std, strict=True):
                self._cache[(fam, k)] = (float(mu), float(sd))
        if len(self._cache) > 2_000_000:
            self._cache.clear()
        vals = np.asarray([self._cache[k] for k in keys], dtype=float).reshape(-1, 2)
        return np.asarray(owner, dtype=int), vals[:, 0], vals[:, 1]

    def _raw(self, networks: Sequence[Network]) -> tuple[np.ndarray, np.ndarray]:
        """Σ of block medians and the Fenton–Wilkinson log-std of the sum, per network (uncalibrated)."""
        n = len(networks)
        owner, mu, sd = self._blocks(networks)
        median_sum = np.bincount(owner, weights=np.exp(mu), minlength=n)
        mean_sum = np.bincount(owner, weights=np.exp(mu + sd**2 / 2), minlength=n)
        var_sum = np.bincount(owner, weights=np.expm1(sd**2) * np.exp(2 * mu + sd**2), minlength=n)
        return median_sum, np.sqrt(np.log1p(var_sum / np.maximum(mean_sum, 1e-300) ** 2))

    def predict_dist(self, networks: Sequence[Network]) -> NetworkLatency:
        """The calibrated predictive distribution of each network's latency (module docstring)."""
        median_sum, s = self._raw(networks)
        cal = self.calibration
        median = cal.apply(median_sum)
        return NetworkLatency(median_sum, median, np.log(median), s * cal.std_scale)

    def predict(self, networks: Sequence[Network]) -> np.ndarray:
        """Calibrated median latency (ms) of each network."""
        return self.predict_dist(networks).median_ms

    def prob_within(self, networks: Sequence[Network], budget_ms: float) -> np.ndarray:
        return self.predict_dist(networks).prob_within(budget_ms)

    def calibrate(self, networks: Sequence[Network], measured_ms: Sequence[float]) -> Calibration:
        """Fit the overhead on networks measured whole; sets and returns :attr:`calibration`."""
        block_sum, s = self._raw(networks)
        self.calibration = Calibration.fit(block_sum, measured_ms, sum_log_std=s, platform=self.platform)
        return self.calibration

    def __repr__(self) -> str:
        c = self.calibration
        return (f"<NetworkLatencyModel {'+'.join(self.families)} on {self.platform}: "
                f"{c.intercept_ms:.3g} ms + {c.slope:.3g} x Σ blocks>")
